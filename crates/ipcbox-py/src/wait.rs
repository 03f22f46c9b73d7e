//! Blocking the Python way: `block` and `timeout` arguments, the GIL released while waiting,
//! signals checked between slices.

use std::time::{Duration, Instant};

use pyo3::prelude::*;

use crate::error;

/// The longest stretch a blocked call waits without the GIL before it lets Python run its
/// signal handlers (and raise `KeyboardInterrupt`).
pub(crate) const SLICE: Duration = Duration::from_millis(50);

/// How long a call may wait, from Python's `block` and `timeout` arguments.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Wait {
    /// Do not wait (`block=False`, or a timeout of 0 or less).
    Now,
    /// Wait until then; `None` for ever.
    Until(Option<Instant>),
}

impl Wait {
    /// `block=False` ignores the timeout, as `multiprocessing` does; a timeout that is not a
    /// number of seconds is a `ValueError`.
    pub(crate) fn new(block: bool, timeout: Option<f64>) -> PyResult<Wait> {
        if !block {
            return Ok(Wait::Now);
        }
        match timeout {
            None => Ok(Wait::Until(None)),
            Some(t) if t.is_nan() => Err(error::value("timeout must be a number, not NaN".into())),
            Some(t) if t <= 0.0 => Ok(Wait::Now),
            // A timeout too large for an Instant is for ever.
            Some(t) => Ok(Wait::Until(
                Duration::try_from_secs_f64(t)
                    .ok()
                    .and_then(|d| Instant::now().checked_add(d)),
            )),
        }
    }
}

/// Runs `op` until it returns a value or the wait is over: first once with the GIL held
/// (`op(None)`: do not wait), then in slices without the GIL (`op(Some(end))`: wait until
/// `end`), checking for signals after each slice. `Ok(None)` when time ran out.
pub(crate) fn blocking<R, F>(py: Python<'_>, wait: Wait, mut op: F) -> PyResult<Option<R>>
where
    R: Send,
    F: FnMut(Option<Instant>) -> PyResult<Option<R>> + Send,
{
    if let Some(r) = op(None)? {
        return Ok(Some(r));
    }
    let Wait::Until(end) = wait else {
        return Ok(None);
    };
    loop {
        let now = Instant::now();
        let slice_end = match end {
            Some(end) if now >= end => return Ok(None),
            Some(end) => end.min(now + SLICE),
            None => now + SLICE,
        };
        if let Some(r) = py.detach(|| op(Some(slice_end)))? {
            return Ok(Some(r));
        }
        py.check_signals()?;
    }
}

/// [`blocking`] for a call with a `try_` form (`now`) and a timeout form (`within`, given the
/// time left), the library's outcome rule: `Ok(None)` when the wait ran out; `err` turns a
/// failure into the Python exception.
pub(crate) fn try_or_wait<R: Send, E>(
    py: Python<'_>,
    wait: Wait,
    mut now: impl FnMut() -> Result<Option<R>, E> + Send,
    mut within: impl FnMut(Duration) -> Result<Option<R>, E> + Send,
    err: fn(E) -> PyErr,
) -> PyResult<Option<R>> {
    blocking(py, wait, |end| {
        match end {
            None => now(),
            Some(end) => within(end.saturating_duration_since(Instant::now())),
        }
        .map_err(err)
    })
}

/// [`try_or_wait`] for forms that say whether they happened: `Ok(false)` when the wait ran
/// out.
pub(crate) fn try_or_wait_done<E>(
    py: Python<'_>,
    wait: Wait,
    mut now: impl FnMut() -> Result<bool, E> + Send,
    mut within: impl FnMut(Duration) -> Result<bool, E> + Send,
    err: fn(E) -> PyErr,
) -> PyResult<bool> {
    let done = try_or_wait(
        py,
        wait,
        || now().map(|done| done.then_some(())),
        |left| within(left).map(|done| done.then_some(())),
        err,
    )?;
    Ok(done.is_some())
}

/// Sleeps until the wait is over (a call that can never succeed, such as a thread locking a
/// lock it holds, with a timeout), interruptibly.
pub(crate) fn sleep_out(py: Python<'_>, wait: Wait) -> PyResult<()> {
    blocking(py, wait, |end| {
        if let Some(end) = end {
            std::thread::sleep(end.saturating_duration_since(Instant::now()));
        }
        Ok(None::<()>)
    })
    .map(drop)
}
