//! Typed shared data: one value ([`Value`]) or an array ([`Array`]) of plain numbers in shared
//! memory, with a robust lock, atomic fast paths for integers, and a header checked on open.

use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU16, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::time::Duration;

use super::{AnonymousMap, Link, Segment};
use crate::error::ResultExt;
use crate::layout::sync::RawMutex;
use crate::mode::CreationMode;
use crate::robust::lock_result;
use crate::robust::MutexLock;
pub use crate::robust::{LockError, LockResult};
use crate::sys::mmap::view;
use crate::sys::mmap::{cells, Mapping, Placed};

pub use crate::layout::typed::LAYOUT_VERSION;
use crate::layout::typed::{TypedHeader, DATA_OFFSET, LOCK_OFFSET, MAGIC};

mod sealed {
    use std::sync::atomic::Ordering;

    /// How an element type is stored: in an atomic cell of its size.
    pub trait Element: Copy {
        const TAG: u32;
        const NAME: &'static str;
        type Cell: crate::sys::mmap::Cell;
        fn load(cell: &Self::Cell, order: Ordering) -> Self;
        fn store(cell: &Self::Cell, value: Self, order: Ordering);
    }

    /// Read-modify-write operations on integer cells.
    pub trait Integer: Element {
        fn fetch_add(cell: &Self::Cell, value: Self, order: Ordering) -> Self;
        fn fetch_sub(cell: &Self::Cell, value: Self, order: Ordering) -> Self;
        fn swap(cell: &Self::Cell, value: Self, order: Ordering) -> Self;
        fn compare_exchange(cell: &Self::Cell, current: Self, new: Self) -> Result<Self, Self>;
    }
}

/// Element types of [`Value`] and [`Array`]: `u8`…`u64`, `i8`…`i64`, `f32`, `f64`, `bool`.
///
/// Each is stored in its native byte order and size, and its name and size are recorded in
/// the segment's header, so opening with another type fails instead of reinterpreting bytes.
/// The trait is sealed: the list is fixed.
pub trait Element: Copy + PartialEq + fmt::Debug + Send + Sync + 'static + sealed::Element {}

/// The integer [`Element`] types, which have atomic read-modify-write operations
/// ([`Value::fetch_add`], [`Array::fetch_add`], …).
pub trait IntElement: Element + sealed::Integer {}

macro_rules! element {
    ($($t:ty, $tag:literal, $cell:ty, $to:expr, $from:expr;)*) => {$(
        impl sealed::Element for $t {
            const TAG: u32 = $tag;
            const NAME: &'static str = stringify!($t);
            type Cell = $cell;
            #[inline]
            fn load(cell: &$cell, order: Ordering) -> $t {
                let from = $from;
                from(cell.load(order))
            }
            #[inline]
            fn store(cell: &$cell, value: $t, order: Ordering) {
                let to = $to;
                cell.store(to(value), order)
            }
        }
        impl Element for $t {}
    )*};
}

macro_rules! integer {
    ($($t:ty, $bits:ty;)*) => {$(
        impl sealed::Integer for $t {
            #[inline]
            fn fetch_add(cell: &Self::Cell, value: $t, order: Ordering) -> $t {
                cell.fetch_add(value as $bits, order) as $t
            }
            #[inline]
            fn fetch_sub(cell: &Self::Cell, value: $t, order: Ordering) -> $t {
                cell.fetch_sub(value as $bits, order) as $t
            }
            #[inline]
            fn swap(cell: &Self::Cell, value: $t, order: Ordering) -> $t {
                cell.swap(value as $bits, order) as $t
            }
            #[inline]
            fn compare_exchange(cell: &Self::Cell, current: $t, new: $t) -> Result<$t, $t> {
                cell.compare_exchange(
                    current as $bits,
                    new as $bits,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .map(|v| v as $t)
                .map_err(|v| v as $t)
            }
        }
        impl IntElement for $t {}
    )*};
}

element! {
    u8, 1, AtomicU8, |v: u8| v, |b: u8| b;
    u16, 2, AtomicU16, |v: u16| v, |b: u16| b;
    u32, 3, AtomicU32, |v: u32| v, |b: u32| b;
    u64, 4, AtomicU64, |v: u64| v, |b: u64| b;
    i8, 5, AtomicU8, |v: i8| v as u8, |b: u8| b as i8;
    i16, 6, AtomicU16, |v: i16| v as u16, |b: u16| b as i16;
    i32, 7, AtomicU32, |v: i32| v as u32, |b: u32| b as i32;
    i64, 8, AtomicU64, |v: i64| v as u64, |b: u64| b as i64;
    f32, 9, AtomicU32, f32::to_bits, f32::from_bits;
    f64, 10, AtomicU64, f64::to_bits, f64::from_bits;
    bool, 11, AtomicU8, u8::from, |b: u8| b != 0;
}

integer! {
    u8, u8; u16, u16; u32, u32; u64, u64;
    i8, u8; i16, u16; i32, u32; i64, u64;
}

/// The name and size of the element type with `tag`, for error messages.
fn element_name(tag: u32) -> Option<(&'static str, usize)> {
    fn of<T: Element>() -> (u32, &'static str, usize) {
        (T::TAG, T::NAME, size_of::<T>())
    }
    [
        of::<u8>(),
        of::<u16>(),
        of::<u32>(),
        of::<u64>(),
        of::<i8>(),
        of::<i16>(),
        of::<i32>(),
        of::<i64>(),
        of::<f32>(),
        of::<f64>(),
        of::<bool>(),
    ]
    .into_iter()
    .find(|&(t, _, _)| t == tag)
    .map(|(_, name, size)| (name, size))
}

/// Value or array, as recorded in the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Value = 1,
    Array = 2,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Value => "value",
            Kind::Array => "array",
        }
    }

    fn with_article(self) -> &'static str {
        match self {
            Kind::Value => "a value",
            Kind::Array => "an array",
        }
    }

    fn from_raw(raw: u32) -> Option<Kind> {
        match raw {
            1 => Some(Kind::Value),
            2 => Some(Kind::Array),
            _ => None,
        }
    }
}

/// How a named [`Value`] or [`Array`] is created or opened: [`CreationMode`] and permissions.
///
/// ```
/// use ipcbox::{shm, CreationMode};
///
/// # let name = format!("ipcbox-doc-typed-opts-{}", std::process::id());
/// let a = shm::TypedOptions::new().mode(CreationMode::OpenOrCreate).open_value(&name, 7u32)?;
/// let b = shm::TypedOptions::new().mode(CreationMode::OpenOrCreate).open_value(&name, 9u32)?;
/// assert_eq!(b.get(), 7); // opened, not created: the initial value does not apply
/// # drop(a);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct TypedOptions {
    mode: CreationMode,
    permissions: u32,
}

impl Default for TypedOptions {
    fn default() -> TypedOptions {
        TypedOptions::new()
    }
}

impl TypedOptions {
    /// [`CreationMode::CreateExclusive`], permissions `0o600`.
    pub fn new() -> TypedOptions {
        TypedOptions {
            mode: CreationMode::CreateExclusive,
            permissions: 0o600,
        }
    }

    /// Whether to create, open, or either.
    pub fn mode(&mut self, mode: CreationMode) -> &mut TypedOptions {
        self.mode = mode;
        self
    }

    /// Permission bits of a segment this call creates (set exactly, whatever the umask).
    pub fn permissions(&mut self, permissions: u32) -> &mut TypedOptions {
        self.permissions = permissions & 0o777;
        self
    }

    /// A named [`Value`]; `initial` applies only if this call creates it.
    ///
    /// # Errors
    ///
    /// As [`Value::create`] and [`Value::open`].
    pub fn open_value<T: Element>(&self, name: &str, initial: T) -> io::Result<Value<T>> {
        let shared = self.open_shared(name, Kind::Value, Some(1), &[initial])?;
        Ok(Value { shared })
    }

    /// A named [`Array`] of `len` elements, zero if this call creates it; an existing array
    /// must have exactly `len` elements.
    ///
    /// # Errors
    ///
    /// As [`Array::create`] and [`Array::open`], and [`io::ErrorKind::InvalidData`] when an
    /// existing array has another length.
    pub fn open_array<T: Element>(&self, name: &str, len: usize) -> io::Result<Array<T>> {
        let shared = self.open_shared(name, Kind::Array, Some(len), &[])?;
        Ok(Array { shared })
    }

    /// A named [`Array`] holding a copy of `data`, if this call creates it.
    ///
    /// # Errors
    ///
    /// As [`open_array`](TypedOptions::open_array) with `data.len()`.
    pub fn open_array_from<T: Element>(&self, name: &str, data: &[T]) -> io::Result<Array<T>> {
        let shared = self.open_shared(name, Kind::Array, Some(data.len()), data)?;
        Ok(Array { shared })
    }

    /// Creates or opens; `len` is required to create, and checked against an existing one;
    /// `initial` (empty or `len` elements) is written into a created segment.
    fn open_shared<T: Element>(
        &self,
        name: &str,
        kind: Kind,
        len: Option<usize>,
        initial: &[T],
    ) -> io::Result<Shared<T>> {
        let creating = self.mode != CreationMode::Open;
        let size = match len {
            Some(len) if creating => Some(total_size::<T>(len).ok_or_else(|| {
                crate::error::invalid_input(format_args!(
                    "shm {} {name:?}: {len} elements of {} do not fit in memory (at least 1)",
                    kind.name(),
                    T::NAME
                ))
            })?),
            _ => None,
        };
        let mut options = super::Options::new();
        options.mode(self.mode).permissions(self.permissions);
        if let Some(size) = size {
            options.size(size);
        }
        let len_or_1 = len.unwrap_or(1);
        let opened = options.open_with_init(name, |seg| {
            init::<T>(seg.mapping(), kind, len_or_1, initial)
        });
        let seg = match opened {
            // An existing segment smaller than ours: say what it holds if it is ours.
            Err(e) if e.kind() == io::ErrorKind::InvalidData && self.mode != CreationMode::Open => {
                let seg = super::Options::new().open(name).map_err(|_| e)?;
                let found = check_header::<T>(seg.mapping(), kind, &seg.name(), len)?;
                return Shared::named(seg, found);
            }
            r => r?,
        };
        let found = check_header::<T>(seg.mapping(), kind, &seg.name(), len)?;
        Shared::named(seg, found)
    }
}

/// Bytes a segment of `len ≥ 1` elements of `T` needs.
fn total_size<T: Element>(len: usize) -> Option<usize> {
    if len == 0 {
        return None;
    }
    len.checked_mul(size_of::<T>())?
        .checked_add(DATA_OFFSET)
        .filter(|&n| n <= super::SIZE_MAX)
}

/// Writes the lock, the initial elements and the header into fresh memory no one else sees.
fn init<T: Element>(map: &Mapping, kind: Kind, len: usize, initial: &[T]) -> io::Result<()> {
    let header: &TypedHeader =
        view(map, 0).ok_or_else(|| io::Error::other("typed segment smaller than its header"))?;
    let lock: &RawMutex =
        view(map, LOCK_OFFSET).ok_or_else(|| io::Error::other("typed segment too small"))?;
    lock.init()?;
    if !initial.is_empty() {
        let cells = cells::<T::Cell>(map, DATA_OFFSET, len)
            .ok_or_else(|| io::Error::other("typed segment too small for its elements"))?;
        for (cell, &v) in cells.iter().zip(initial) {
            T::store(cell, v, Ordering::Relaxed);
        }
    }
    header.version.store(LAYOUT_VERSION, Ordering::Relaxed);
    header.kind.store(kind as u32, Ordering::Relaxed);
    header.elem_tag.store(T::TAG, Ordering::Relaxed);
    header
        .elem_size
        .store(size_of::<T>() as u32, Ordering::Relaxed);
    header
        .data_offset
        .store(DATA_OFFSET as u32, Ordering::Relaxed);
    header.len.store(len as u64, Ordering::Relaxed);
    header.total_size.store(
        (DATA_OFFSET + len * size_of::<T>()) as u64,
        Ordering::Relaxed,
    );
    header.magic.store(MAGIC, Ordering::Release);
    Ok(())
}

/// Checks the header of a typed segment against what the caller expects: magic, layout
/// version, value or array, element type and size, data offset, length and total size.
/// Returns the number of elements.
fn check_header<T: Element>(
    map: &Mapping,
    kind: Kind,
    name: &str,
    want_len: Option<usize>,
) -> io::Result<usize> {
    let bad = |msg: fmt::Arguments<'_>| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("shm {} '{name}' of {}: {msg}", kind.name(), T::NAME),
        )
    };
    let header: &TypedHeader = match view(map, 0) {
        Some(h) if map.len() >= DATA_OFFSET => h,
        _ => {
            return Err(bad(format_args!(
                "the segment has {} bytes, less than the {DATA_OFFSET}-byte typed header",
                map.len()
            )))
        }
    };
    let magic = header.magic.load(Ordering::Acquire);
    if magic == 0 {
        return Err(bad(format_args!(
            "no magic number: not initialised (yet), or not an ipcbox typed segment"
        )));
    }
    if magic != MAGIC {
        return Err(bad(format_args!(
            "not an ipcbox typed segment (magic {magic:#010x}, expected {MAGIC:#010x})"
        )));
    }
    let version = header.version.load(Ordering::Relaxed);
    if version != LAYOUT_VERSION {
        return Err(bad(format_args!(
            "layout version {version}, expected {LAYOUT_VERSION}"
        )));
    }
    let found_kind = header.kind.load(Ordering::Relaxed);
    if found_kind != kind as u32 {
        let found = match Kind::from_raw(found_kind) {
            Some(k) => k.with_article().to_owned(),
            None => format!("an unknown kind ({found_kind})"),
        };
        return Err(bad(format_args!(
            "the segment holds {found}, opened as {}",
            kind.with_article()
        )));
    }
    let (tag, elem_size) = (
        header.elem_tag.load(Ordering::Relaxed),
        header.elem_size.load(Ordering::Relaxed),
    );
    if tag != T::TAG || elem_size as usize != size_of::<T>() {
        let found = match element_name(tag) {
            Some((found, _)) => found.to_owned(),
            None => format!("unknown element type {tag}"),
        };
        return Err(bad(format_args!(
            "it holds {found} ({elem_size} bytes), opened as {} ({} bytes)",
            T::NAME,
            size_of::<T>()
        )));
    }
    let data_offset = header.data_offset.load(Ordering::Relaxed);
    if data_offset as usize != DATA_OFFSET {
        return Err(bad(format_args!(
            "data offset {data_offset}, expected {DATA_OFFSET}"
        )));
    }
    let (len, total) = (
        header.len.load(Ordering::Relaxed),
        header.total_size.load(Ordering::Relaxed),
    );
    let need = usize::try_from(len).ok().and_then(total_size::<T>);
    match need {
        Some(need) if need as u64 == total && need <= map.len() => {}
        _ => {
            return Err(bad(format_args!(
                "the header says {len} elements in {total} bytes, the segment has {} bytes",
                map.len()
            )))
        }
    }
    let len = len as usize;
    let want_len = want_len.or((kind == Kind::Value).then_some(1));
    if let Some(want) = want_len {
        if want != len {
            return Err(bad(format_args!(
                "it holds {len} elements, expected {want}"
            )));
        }
    }
    Ok(len)
}

/// The part shared by [`Value`] and [`Array`]: memory, lock, cells.
struct Shared<T: Element> {
    placed: Placed<RawMutex, T::Cell>,
    /// The name of a named value or array, removed on drop if this handle created it.
    link: Option<Link>,
}

impl<T: Element> Shared<T> {
    fn new(map: Mapping, link: Option<Link>, len: usize) -> io::Result<Shared<T>> {
        let placed = Placed::new(map, LOCK_OFFSET, DATA_OFFSET, len)?;
        Ok(Shared { placed, link })
    }

    fn named(seg: Segment, len: usize) -> io::Result<Shared<T>> {
        let (link, map) = seg.into_parts();
        Shared::new(map, Some(link), len)
    }

    fn anonymous(kind: Kind, initial: &[T]) -> io::Result<Shared<T>> {
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
    fn placed(&self) -> &Placed<RawMutex, T::Cell> {
        &self.placed
    }

    fn name(&self) -> Option<String> {
        self.link.as_ref().map(Link::name)
    }

    fn detach(&mut self) {
        if let Some(link) = &mut self.link {
            link.detach();
        }
    }

    fn result<'a, G>(
        &'a self,
        got: io::Result<MutexLock>,
        busy: LockError<G>,
        guard: impl FnOnce(Held<'a, T>) -> G,
    ) -> LockResult<G> {
        lock_result(got, busy, || guard(Held::new(self)))
    }

    fn lock<'a, G>(&'a self, guard: impl FnOnce(Held<'a, T>) -> G) -> LockResult<G> {
        let raw = self.placed().lock();
        // A wake-up costs far more than a short wait for a holder about to unlock; the spin
        // only reads the lock word, and the lock then takes it (or sleeps).
        if raw.is_held() {
            crate::spin::spin_until(|| !raw.is_held());
        }
        self.result(raw.lock(), LockError::WouldBlock, guard)
    }

    fn try_lock<'a, G>(&'a self, guard: impl FnOnce(Held<'a, T>) -> G) -> LockResult<G> {
        self.result(
            self.placed().lock().try_lock(),
            LockError::WouldBlock,
            guard,
        )
    }

    fn lock_timeout<'a, G>(
        &'a self,
        timeout: Duration,
        guard: impl FnOnce(Held<'a, T>) -> G,
    ) -> LockResult<G> {
        self.result(
            self.placed().lock().lock_timeout(timeout),
            LockError::TimedOut,
            guard,
        )
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
struct Held<'a, T: Element> {
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
    fn cells(&self) -> &'a [T::Cell] {
        self.shared.placed().cells()
    }

    fn mark_consistent(&mut self) -> io::Result<()> {
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

/// One value of type `T` in shared memory, like Python's `multiprocessing.Value`, with its
/// lock (a robust process-shared mutex).
///
/// Every access to the value is one atomic instruction on its own cache line:
///
/// * [`get`] and [`set`] are an atomic load and store, and never tear;
/// * for integers, [`fetch_add`], [`fetch_sub`], [`swap`] and [`compare_exchange`] are atomic
///   read-modify-writes, so simple counters need no lock.
///
/// [`lock`] is for updates made of several steps (read, compute, write, or keeping the value in
/// step with other data): while one process holds the guard, every other process that also
/// goes through `lock` waits. `get` and `set` do not take the lock, so they see and may
/// overwrite the value between a holder's steps: a protocol that locks must lock on every side.
///
/// Named values (`/dev/shm/<name>`) have a header recording the layout version, the element
/// type and its size; [`open`](Value::open) checks it and fails with
/// [`io::ErrorKind::InvalidData`] naming what the segment holds and what was expected. The
/// creator removes the name on drop unless [`detach`](Value::detach)ed.
///
/// [`get`]: Value::get
/// [`set`]: Value::set
/// [`fetch_add`]: Value::fetch_add
/// [`fetch_sub`]: Value::fetch_sub
/// [`swap`]: Value::swap
/// [`compare_exchange`]: Value::compare_exchange
/// [`lock`]: Value::lock
///
/// # Layout
///
/// For peers in other languages, in native byte order: at offset 0 the ASCII magic `IPBT`,
/// then `u32`s layout version ([`LAYOUT_VERSION`]), kind (1 value, 2 array), element type
/// (1–4 `u8`–`u64`, 5–8 `i8`–`i64`, 9 `f32`, 10 `f64`, 11 `bool`), element size, data offset
/// (128); then `u64`s element count and total size. The lock sits at offset 64 (two `u32`s, as
/// described under Layout on [`sync::Mutex`](crate::sync::Mutex)), the elements from offset
/// 128, each naturally aligned.
///
/// # Trust
///
/// The data is shared with every process that can open the segment: one that writes it
/// without locking changes the value, never this process's memory safety. The header is
/// checked once, on open; what it says later is not read again. The lock has the limits
/// described on [`sync::Mutex`](crate::sync::Mutex), and a peer that shrinks the segment
/// (`ftruncate`) makes the next access raise `SIGBUS`, as with any POSIX shared memory.
///
/// # Examples
///
/// ```
/// use ipcbox::shm::Value;
///
/// # let name = format!("ipcbox-doc-value-{}", std::process::id());
/// let counter = Value::create(&name, 0u64)?;
/// counter.fetch_add(1); // lock-free
/// {
///     let mut guard = counter.lock()?; // several steps under the lock
///     let v = guard.get();
///     guard.set(v * 10);
/// }
/// assert_eq!(Value::<u64>::open(&name)?.get(), 10);
/// assert!(Value::<u32>::open(&name).is_err()); // wrong type: a clear error
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct Value<T: Element> {
    shared: Shared<T>,
}

impl<T: Element> Value<T> {
    /// Creates the value `name` (`/dev/shm/<name>`, owner-only) holding `initial`
    /// (`shm_open`, `mmap`).
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::AlreadyExists`] if the name exists, `InvalidInput` for an invalid name,
    /// and the errors of [`Options::open`](super::Options::open).
    #[doc(alias = "shm_open")]
    pub fn create(name: &str, initial: T) -> io::Result<Value<T>> {
        TypedOptions::new().open_value(name, initial)
    }

    /// Opens the existing value `name` and checks its header.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::NotFound`] if there is none; [`io::ErrorKind::InvalidData`] when the
    /// segment is not an ipcbox value of `T` (the message names what it holds: "shm value
    /// '/x' of u64: it holds u32 (4 bytes), opened as u64 (8 bytes)"), or its header is
    /// damaged.
    pub fn open(name: &str) -> io::Result<Value<T>> {
        let shared = TypedOptions::new().mode(CreationMode::Open).open_shared(
            name,
            Kind::Value,
            Some(1),
            &[],
        )?;
        Ok(Value { shared })
    }

    /// A value in anonymous shared memory, shared with the children forked afterwards.
    ///
    /// # Errors
    ///
    /// When the memory cannot be mapped or the lock initialised.
    #[doc(alias = "MAP_ANONYMOUS")]
    pub fn anonymous(initial: T) -> io::Result<Value<T>> {
        Ok(Value {
            shared: Shared::anonymous(Kind::Value, &[initial])?,
        })
    }

    /// The name ("/name") of a named value.
    pub fn name(&self) -> Option<String> {
        self.shared.name()
    }

    /// Keeps the name after this handle is dropped.
    pub fn detach(&mut self) {
        self.shared.detach();
    }

    #[inline]
    fn cell(&self) -> &T::Cell {
        self.shared.placed().first()
    }

    /// The value (an atomic load, acquire).
    #[inline]
    pub fn get(&self) -> T {
        T::load(self.cell(), Ordering::Acquire)
    }

    /// Replaces the value (an atomic store, release).
    #[inline]
    pub fn set(&self, value: T) {
        T::store(self.cell(), value, Ordering::Release);
    }

    /// Locks the value's mutex, sleeping while another process holds it
    /// (as `pthread_mutex_lock`).
    ///
    /// # Errors
    ///
    /// [`LockError::OwnerDied`] (locked, but the previous owner died: the guard's
    /// [`mark_consistent`](ValueGuard::mark_consistent) repairs the lock),
    /// [`LockError::NotRecoverable`], [`LockError::Io`] (`Deadlock` when this thread holds it).
    #[doc(alias = "get_lock")]
    pub fn lock(&self) -> LockResult<ValueGuard<'_, T>> {
        self.shared.lock(|held| ValueGuard { held })
    }

    /// Locks if nobody holds the lock (as `pthread_mutex_trylock`).
    ///
    /// # Errors
    ///
    /// [`LockError::WouldBlock`] when it is held, otherwise as [`lock`](Value::lock).
    pub fn try_lock(&self) -> LockResult<ValueGuard<'_, T>> {
        self.shared.try_lock(|held| ValueGuard { held })
    }

    /// Locks, waiting at most `timeout` (as `pthread_mutex_clocklock`).
    ///
    /// # Errors
    ///
    /// [`LockError::TimedOut`] when it stayed held, otherwise as [`lock`](Value::lock).
    pub fn lock_timeout(&self, timeout: Duration) -> LockResult<ValueGuard<'_, T>> {
        self.shared
            .lock_timeout(timeout, |held| ValueGuard { held })
    }
}

impl<T: IntElement> Value<T> {
    /// Adds `value` (wrapping) and returns the previous value: one atomic instruction
    /// (`lock xadd`), no lock.
    #[inline]
    pub fn fetch_add(&self, value: T) -> T {
        T::fetch_add(self.cell(), value, Ordering::AcqRel)
    }

    /// Subtracts `value` (wrapping) and returns the previous value; atomic, no lock.
    #[inline]
    pub fn fetch_sub(&self, value: T) -> T {
        T::fetch_sub(self.cell(), value, Ordering::AcqRel)
    }

    /// Stores `value` and returns the previous value; atomic, no lock.
    #[inline]
    pub fn swap(&self, value: T) -> T {
        T::swap(self.cell(), value, Ordering::AcqRel)
    }

    /// Stores `new` if the value is `current`; `Ok(previous)` if it was, `Err(actual)` if not.
    /// Atomic, no lock.
    ///
    /// # Errors
    ///
    /// `Err(actual)` when the value was not `current`.
    #[inline]
    pub fn compare_exchange(&self, current: T, new: T) -> Result<T, T> {
        T::compare_exchange(self.cell(), current, new)
    }
}

/// A [`Value`]'s lock, held: unlocks on drop. Stays on the thread that locked.
pub struct ValueGuard<'a, T: Element> {
    held: Held<'a, T>,
}

impl<T: Element> ValueGuard<'_, T> {
    /// The value.
    #[inline]
    pub fn get(&self) -> T {
        T::load(&self.held.cells()[0], Ordering::Relaxed)
    }

    /// Replaces the value.
    #[inline]
    pub fn set(&mut self, value: T) {
        T::store(&self.held.cells()[0], value, Ordering::Relaxed);
    }

    /// Replaces the value with `f(value)` and returns the new value.
    pub fn update(&mut self, f: impl FnOnce(T) -> T) -> T {
        let new = f(self.get());
        self.set(new);
        new
    }

    /// Declares the value repaired after [`LockError::OwnerDied`] (as `pthread_mutex_consistent`).
    ///
    /// # Errors
    ///
    /// `InvalidInput` when the lock was not inconsistent.
    #[doc(alias = "pthread_mutex_consistent")]
    pub fn mark_consistent(&mut self) -> io::Result<()> {
        self.held.mark_consistent()
    }
}

impl<T: Element> fmt::Debug for ValueGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ValueGuard")
            .field("value", &self.get())
            .finish()
    }
}

/// A fixed-length array of `T` in shared memory, like Python's `multiprocessing.Array`, with
/// its lock (a robust process-shared mutex).
///
/// Each element is accessed atomically ([`get`](Array::get), [`set`](Array::set), and for
/// integers [`fetch_add`](Array::fetch_add)), so single elements never tear; copies of many
/// elements ([`read_into`](Array::read_into), [`write_from`](Array::write_from)) are
/// consistent only under the [`lock`](Array::lock), when every writer locks. Indexes are
/// bounds-checked against the length checked on open; errors name the index and the length.
///
/// The header, the lock and the trust rules are those of [`Value`].
///
/// # Examples
///
/// ```
/// use ipcbox::shm::Array;
///
/// # let name = format!("ipcbox-doc-array-{}", std::process::id());
/// let a = Array::from_slice(&name, &[1.0f64, 2.0, 3.0])?;
/// let b = Array::<f64>::open(&name)?; // e.g. in another process
/// b.set(1, 20.0)?;
/// let mut guard = a.lock()?;
/// assert_eq!(guard.to_vec(), [1.0, 20.0, 3.0]);
/// assert!(guard.get(3).is_err()); // index 3 out of range for length 3
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct Array<T: Element> {
    shared: Shared<T>,
}

fn index_error(index: usize, len: usize) -> io::Error {
    crate::error::invalid_input(format_args!(
        "shm array index {index} out of range for length {len}"
    ))
}

fn length_error(what: &str, got: usize, len: usize) -> io::Error {
    crate::error::invalid_input(format_args!(
        "shm array {what}: slice of {got} elements for an array of length {len}"
    ))
}

fn copy_out<T: Element>(cells: &[T::Cell], buf: &mut [T], order: Ordering) -> io::Result<()> {
    if buf.len() != cells.len() {
        return Err(length_error("read_into", buf.len(), cells.len()));
    }
    for (dst, cell) in buf.iter_mut().zip(cells) {
        *dst = T::load(cell, order);
    }
    Ok(())
}

fn copy_in<T: Element>(cells: &[T::Cell], data: &[T], order: Ordering) -> io::Result<()> {
    if data.len() != cells.len() {
        return Err(length_error("write_from", data.len(), cells.len()));
    }
    for (cell, &v) in cells.iter().zip(data) {
        T::store(cell, v, order);
    }
    Ok(())
}

impl<T: Element> Array<T> {
    /// Creates the array `name` (`/dev/shm/<name>`, owner-only) of `len ≥ 1` zero elements.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for `len` 0 or too large, otherwise as [`Value::create`].
    #[doc(alias = "shm_open")]
    pub fn create(name: &str, len: usize) -> io::Result<Array<T>> {
        TypedOptions::new().open_array(name, len)
    }

    /// Creates the array `name` holding a copy of `data` (at least one element).
    ///
    /// # Errors
    ///
    /// As [`create`](Array::create).
    pub fn from_slice(name: &str, data: &[T]) -> io::Result<Array<T>> {
        TypedOptions::new().open_array_from(name, data)
    }

    /// Opens the existing array `name`, whatever its length, and checks its header.
    ///
    /// # Errors
    ///
    /// As [`Value::open`].
    pub fn open(name: &str) -> io::Result<Array<T>> {
        let shared = TypedOptions::new().mode(CreationMode::Open).open_shared(
            name,
            Kind::Array,
            None,
            &[],
        )?;
        Ok(Array { shared })
    }

    /// An array in anonymous shared memory holding a copy of `data`, shared with the children
    /// forked afterwards.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for an empty `data`, or when the memory cannot be mapped.
    #[doc(alias = "MAP_ANONYMOUS")]
    pub fn anonymous(data: &[T]) -> io::Result<Array<T>> {
        Ok(Array {
            shared: Shared::anonymous(Kind::Array, data)?,
        })
    }

    /// The name ("/name") of a named array.
    pub fn name(&self) -> Option<String> {
        self.shared.name()
    }

    /// Keeps the name after this handle is dropped.
    pub fn detach(&mut self) {
        self.shared.detach();
    }

    #[inline]
    fn cells(&self) -> &[T::Cell] {
        self.shared.placed().cells()
    }

    #[inline]
    fn cell(&self, index: usize) -> io::Result<&T::Cell> {
        let cells = self.cells();
        cells
            .get(index)
            .ok_or_else(|| index_error(index, cells.len()))
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.cells().len()
    }

    /// Always `false`: an array has at least one element.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Element `index` (an atomic load, acquire).
    ///
    /// # Errors
    ///
    /// `InvalidInput` naming the index and the length when `index` is out of range.
    #[inline]
    pub fn get(&self, index: usize) -> io::Result<T> {
        Ok(T::load(self.cell(index)?, Ordering::Acquire))
    }

    /// Replaces element `index` (an atomic store, release).
    ///
    /// # Errors
    ///
    /// As [`get`](Array::get).
    #[inline]
    pub fn set(&self, index: usize, value: T) -> io::Result<()> {
        T::store(self.cell(index)?, value, Ordering::Release);
        Ok(())
    }

    /// Copies all elements into `buf`, element by element without the lock (each element is
    /// whole, but the copy as a whole may mix old and new elements unless the caller holds
    /// the lock or no one writes).
    ///
    /// # Errors
    ///
    /// `InvalidInput` when `buf.len()` is not [`len`](Array::len).
    pub fn read_into(&self, buf: &mut [T]) -> io::Result<()> {
        copy_out::<T>(self.cells(), buf, Ordering::Acquire)
    }

    /// Copies `data` into all elements, element by element without the lock.
    ///
    /// # Errors
    ///
    /// `InvalidInput` when `data.len()` is not [`len`](Array::len).
    pub fn write_from(&self, data: &[T]) -> io::Result<()> {
        copy_in::<T>(self.cells(), data, Ordering::Release)
    }

    /// A copy of all elements (as [`read_into`](Array::read_into)).
    pub fn to_vec(&self) -> Vec<T> {
        self.cells()
            .iter()
            .map(|c| T::load(c, Ordering::Acquire))
            .collect()
    }

    /// Locks the array's mutex (as `pthread_mutex_lock`); see [`Value::lock`].
    ///
    /// # Errors
    ///
    /// As [`Value::lock`].
    #[doc(alias = "get_lock")]
    pub fn lock(&self) -> LockResult<ArrayGuard<'_, T>> {
        self.shared.lock(|held| ArrayGuard { held })
    }

    /// Locks if nobody holds the lock (as `pthread_mutex_trylock`).
    ///
    /// # Errors
    ///
    /// As [`Value::try_lock`].
    pub fn try_lock(&self) -> LockResult<ArrayGuard<'_, T>> {
        self.shared.try_lock(|held| ArrayGuard { held })
    }

    /// Locks, waiting at most `timeout` (as `pthread_mutex_clocklock`).
    ///
    /// # Errors
    ///
    /// As [`Value::lock_timeout`].
    pub fn lock_timeout(&self, timeout: Duration) -> LockResult<ArrayGuard<'_, T>> {
        self.shared
            .lock_timeout(timeout, |held| ArrayGuard { held })
    }
}

impl<T: IntElement> Array<T> {
    /// Adds `value` (wrapping) to element `index` and returns its previous value; atomic.
    ///
    /// # Errors
    ///
    /// As [`get`](Array::get).
    #[inline]
    pub fn fetch_add(&self, index: usize, value: T) -> io::Result<T> {
        Ok(T::fetch_add(self.cell(index)?, value, Ordering::AcqRel))
    }

    /// Subtracts `value` (wrapping) from element `index`, returns its previous value; atomic.
    ///
    /// # Errors
    ///
    /// As [`get`](Array::get).
    #[inline]
    pub fn fetch_sub(&self, index: usize, value: T) -> io::Result<T> {
        Ok(T::fetch_sub(self.cell(index)?, value, Ordering::AcqRel))
    }

    /// Stores `new` in element `index` if it is `current`: `Ok(Ok(previous))` if it was,
    /// `Ok(Err(actual))` if not.
    ///
    /// # Errors
    ///
    /// As [`get`](Array::get).
    #[inline]
    pub fn compare_exchange(&self, index: usize, current: T, new: T) -> io::Result<Result<T, T>> {
        Ok(T::compare_exchange(self.cell(index)?, current, new))
    }
}

/// An [`Array`]'s lock, held: unlocks on drop. Stays on the thread that locked.
pub struct ArrayGuard<'a, T: Element> {
    held: Held<'a, T>,
}

impl<T: Element> ArrayGuard<'_, T> {
    /// The number of elements.
    pub fn len(&self) -> usize {
        self.held.cells().len()
    }

    /// Always `false`: an array has at least one element.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Element `index`.
    ///
    /// # Errors
    ///
    /// `InvalidInput` naming the index and the length when `index` is out of range.
    pub fn get(&self, index: usize) -> io::Result<T> {
        let cells = self.held.cells();
        let cell = cells
            .get(index)
            .ok_or_else(|| index_error(index, cells.len()))?;
        Ok(T::load(cell, Ordering::Relaxed))
    }

    /// Replaces element `index`.
    ///
    /// # Errors
    ///
    /// As [`get`](ArrayGuard::get).
    pub fn set(&mut self, index: usize, value: T) -> io::Result<()> {
        let cells = self.held.cells();
        let cell = cells
            .get(index)
            .ok_or_else(|| index_error(index, cells.len()))?;
        T::store(cell, value, Ordering::Relaxed);
        Ok(())
    }

    /// Copies all elements into `buf`.
    ///
    /// # Errors
    ///
    /// `InvalidInput` when `buf.len()` is not the array's length.
    pub fn read_into(&self, buf: &mut [T]) -> io::Result<()> {
        copy_out::<T>(self.held.cells(), buf, Ordering::Relaxed)
    }

    /// Copies `data` into all elements.
    ///
    /// # Errors
    ///
    /// `InvalidInput` when `data.len()` is not the array's length.
    pub fn write_from(&mut self, data: &[T]) -> io::Result<()> {
        copy_in::<T>(self.held.cells(), data, Ordering::Relaxed)
    }

    /// A copy of all elements.
    pub fn to_vec(&self) -> Vec<T> {
        self.held
            .cells()
            .iter()
            .map(|c| T::load(c, Ordering::Relaxed))
            .collect()
    }

    /// Declares the array repaired after [`LockError::OwnerDied`] (as `pthread_mutex_consistent`).
    ///
    /// # Errors
    ///
    /// `InvalidInput` when the lock was not inconsistent.
    #[doc(alias = "pthread_mutex_consistent")]
    pub fn mark_consistent(&mut self) -> io::Result<()> {
        self.held.mark_consistent()
    }
}

impl<T: Element> fmt::Debug for ArrayGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArrayGuard")
            .field("len", &self.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn element_names_and_tags_are_distinct() {
        let mut tags = Vec::new();
        for tag in 0..20 {
            if let Some((name, size)) = element_name(tag) {
                assert!((1..=8).contains(&size), "{name}");
                tags.push(tag);
            }
        }
        assert_eq!(tags.len(), 11);
        assert_eq!(
            element_name(<u32 as sealed::Element>::TAG),
            Some(("u32", 4))
        );
        assert_eq!(
            element_name(<f64 as sealed::Element>::TAG),
            Some(("f64", 8))
        );
    }

    #[test]
    fn anonymous_value_and_array_work() {
        let v = Value::anonymous(-5i32).unwrap();
        assert_eq!(v.fetch_add(7), -5);
        assert_eq!(v.get(), 2);
        assert_eq!(v.compare_exchange(2, 9), Ok(2));
        assert_eq!(v.compare_exchange(2, 9), Err(9));
        let f = Value::anonymous(1.5f64).unwrap();
        f.lock().unwrap().update(|x| x * 2.0);
        assert_eq!(f.get(), 3.0);
        let b = Value::anonymous(true).unwrap();
        b.set(false);
        assert!(!b.get());
        let a = Array::anonymous(&[1u16, 2, 3]).unwrap();
        assert_eq!(a.fetch_add(2, 10).unwrap(), 3);
        assert_eq!(a.to_vec(), [1, 2, 13]);
        let err = a.get(3).unwrap_err();
        assert!(
            err.to_string()
                .contains("index 3 out of range for length 3"),
            "{err}"
        );
        assert!(Array::<u8>::anonymous(&[]).is_err());
    }

    #[test]
    fn relocking_from_the_holder_is_an_error_not_a_hang() {
        let v = Value::anonymous(0u8).unwrap();
        let _g = v.lock().unwrap();
        assert!(matches!(v.lock(), Err(LockError::Io(e)) if e.kind() == io::ErrorKind::Deadlock));
        std::thread::scope(|s| {
            s.spawn(|| assert!(matches!(v.try_lock(), Err(LockError::WouldBlock))));
        });
    }

    #[test]
    fn handles_can_be_shared_between_threads() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<Value<u64>>();
        send_sync::<Array<f32>>();
        send_sync::<LockError<()>>();
    }

    #[test]
    fn a_leaked_guard_keeps_the_memory_mapped_and_the_name_is_still_removed() {
        let name = format!("ipcbox-unit-typed-leak-{}", std::process::id());
        let value = Value::create(&name, 3u16).unwrap();
        std::mem::forget(value.lock().unwrap());
        drop(value);
        assert!(!std::path::Path::new("/dev/shm").join(&name).exists());
    }
}
