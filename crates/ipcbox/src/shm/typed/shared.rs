//! What a value and an array share: the mapping, the lock and the cells.

use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::time::Duration;

use super::header::{init, total_size};
use super::{Element, Kind, LockResult, TryLockResult};
use crate::error::ResultExt;
use crate::layout::sync::RawMutex;
use crate::layout::typed::{DATA_OFFSET, LOCK_OFFSET};
use crate::robust::{lock_result, try_lock_result};
use crate::shm::{AnonymousMap, Link, Segment};
use crate::sys::mmap::{Mapping, Placed};

/// The part shared by [`Value`] and [`Array`]: memory, lock, cells.
pub(super) struct Shared<T: Element> {
    placed: Placed<RawMutex, T::Cell>,
    /// The name of a named value or array, removed on drop if this handle created it.
    link: Option<Link>,
}

impl<T: Element> Shared<T> {
    pub(super) fn new(map: Mapping, link: Option<Link>, len: usize) -> io::Result<Shared<T>> {
        let placed = Placed::new(map, LOCK_OFFSET, DATA_OFFSET, len)?;
        Ok(Shared { placed, link })
    }

    pub(super) fn named(seg: Segment, len: usize) -> io::Result<Shared<T>> {
        let (link, map) = seg.into_parts();
        Shared::new(map, Some(link), len)
    }

    pub(super) fn anonymous(kind: Kind, initial: &[T]) -> io::Result<Shared<T>> {
        let size = total_size::<T>(initial.len()).ok_or_else(|| {
            crate::error::invalid_input(format_args!(
                "anonymous shm {} of {}: {} elements do not fit (at least 1)",
                kind.name(),
                T::NAME,
                initial.len()
            ))
        })?;
        let map = AnonymousMap::new(size)?;
        init::<T>(map.mapping(), kind, initial.len(), initial)?;
        Shared::new(map.into_mapping(), None, initial.len())
    }

    #[inline]
    pub(super) fn placed(&self) -> &Placed<RawMutex, T::Cell> {
        &self.placed
    }

    pub(super) fn name(&self) -> Option<String> {
        self.link.as_ref().map(Link::name)
    }

    pub(super) fn detach(&mut self) {
        if let Some(link) = &mut self.link {
            link.detach();
        }
    }

    pub(super) fn lock<'a, G>(&'a self, guard: impl FnOnce(Held<'a, T>) -> G) -> LockResult<G> {
        let raw = self.placed().lock();
        // A wake-up costs far more than a short wait for a holder about to unlock; the spin
        // only reads the lock word, and the lock then takes it (or sleeps).
        if raw.is_held() {
            crate::spin::spin_until(|| !raw.is_held());
        }
        lock_result(raw.lock(), || guard(Held::new(self)))
    }

    pub(super) fn try_lock<'a, G>(
        &'a self,
        guard: impl FnOnce(Held<'a, T>) -> G,
    ) -> TryLockResult<G> {
        try_lock_result(self.placed().lock().try_lock(), || guard(Held::new(self)))
    }

    pub(super) fn lock_timeout<'a, G>(
        &'a self,
        timeout: Duration,
        guard: impl FnOnce(Held<'a, T>) -> G,
    ) -> TryLockResult<G> {
        try_lock_result(self.placed().lock().lock_timeout(timeout), || {
            guard(Held::new(self))
        })
    }
}

impl<T: Element> fmt::Debug for Shared<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("type", &T::NAME)
            .field("len", &self.placed().cells().len())
            .field("name", &self.name())
            .finish()
    }
}

/// The lock of a [`Shared`], held: unlocks on drop.
pub(super) struct Held<'a, T: Element> {
    shared: &'a Shared<T>,
    _not_send: PhantomData<*const ()>,
}

impl<'a, T: Element> Held<'a, T> {
    fn new(shared: &'a Shared<T>) -> Held<'a, T> {
        Held {
            shared,
            _not_send: PhantomData,
        }
    }

    #[inline]
    pub(super) fn cells(&self) -> &'a [T::Cell] {
        self.shared.placed().cells()
    }

    pub(super) fn mark_consistent(&mut self) -> io::Result<()> {
        self.shared
            .placed()
            .lock()
            .consistent()
            .context_with(|| "mark_consistent (was the owner dead?)")
    }
}

impl<T: Element> Drop for Held<'_, T> {
    fn drop(&mut self) {
        // Unlocking a lock this thread holds only fails if a peer overwrote its word; there
        // is nothing better to do in a destructor than to leave it so.
        let _ = self.shared.placed().lock().unlock();
    }
}
