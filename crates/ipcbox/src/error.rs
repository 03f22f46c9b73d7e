//! Error helpers shared by every mechanism.

use std::fmt;
use std::io;

/// An OS error with the operation and the object it concerned ("open FIFO /tmp/x").
#[derive(Debug)]
struct Context {
    what: String,
    source: io::Error,
}

impl fmt::Display for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.what, self.source)
    }
}

impl std::error::Error for Context {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// Wraps `err` with a description of what was being done, keeping its [`io::ErrorKind`].
pub(crate) fn context(err: impl Into<io::Error>, what: impl fmt::Display) -> io::Error {
    let source = err.into();
    io::Error::new(
        source.kind(),
        Context {
            what: what.to_string(),
            source,
        },
    )
}

/// An [`io::ErrorKind::InvalidInput`] error with the given message.
pub(crate) fn invalid_input(msg: impl fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg.to_string())
}

/// Extension to add context to any `Result` whose error converts into [`io::Error`].
pub(crate) trait ResultExt<T> {
    /// Wraps the error with `what` (computed only on error).
    fn context_with<D: fmt::Display>(self, what: impl FnOnce() -> D) -> io::Result<T>;
}

impl<T, E: Into<io::Error>> ResultExt<T> for Result<T, E> {
    fn context_with<D: fmt::Display>(self, what: impl FnOnce() -> D) -> io::Result<T> {
        self.map_err(|e| context(e, what()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_keeps_kind_and_names_the_object() {
        let err = context(
            io::Error::from_raw_os_error(libc::ENOENT),
            "open FIFO /nope",
        );
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        let text = err.to_string();
        assert!(text.starts_with("open FIFO /nope: "), "{text}");
    }
}
