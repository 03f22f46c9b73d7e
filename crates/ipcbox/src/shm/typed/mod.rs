//! Typed shared data: one value ([`Value`]) or an array ([`Array`]) of plain numbers in shared
//! memory, with a robust lock, atomic fast paths for integers, and a header checked on open.

mod array;
mod element;
mod header;
mod shared;
mod value;

use std::io;

use crate::mode::CreationMode;
pub use crate::robust::{LockError, LockResult, TryLockResult};

pub use crate::layout::typed::LAYOUT_VERSION;
pub use array::{Array, ArrayGuard};
pub use element::{Element, IntElement};
use header::{check_header, init, total_size};
use shared::Shared;
pub use value::{Value, ValueGuard};

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

    /// Permission bits of a segment this call creates, `0o600` by default, set exactly (see
    /// [Named objects](crate#named-objects)).
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

    /// Creates or opens.
    ///
    /// * `len` is required to create, and checked against an existing segment.
    /// * `initial` (empty or `len` elements) is written into a created segment.
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
                let seg = super::Options::new()
                    .mode(CreationMode::Open)
                    .open(name)
                    .map_err(|_| e)?;
                let found = check_header::<T>(seg.mapping(), kind, &seg.name(), len)?;
                return Shared::named(seg, found);
            }
            r => r?,
        };
        let found = check_header::<T>(seg.mapping(), kind, &seg.name(), len)?;
        Shared::named(seg, found)
    }
}

#[cfg(test)]
mod tests {
    use super::element::{element_name, sealed};
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
            s.spawn(|| assert!(matches!(v.try_lock(), Ok(None))));
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
