//! The header of a typed segment: written on creation, checked on open.

use std::fmt;
use std::io;
use std::sync::atomic::Ordering;

use super::{Element, Kind};
use crate::layout::sync::RawMutex;
use crate::layout::typed::{TypedHeader, DATA_OFFSET, LAYOUT_VERSION, LOCK_OFFSET, MAGIC};
use crate::sys::mmap::view;
use crate::sys::mmap::{cells, Mapping};

use super::element::element_name;

/// Bytes a segment of `len ≥ 1` elements of `T` needs.
pub(super) fn total_size<T: Element>(len: usize) -> Option<usize> {
    if len == 0 {
        return None;
    }
    len.checked_mul(size_of::<T>())?
        .checked_add(DATA_OFFSET)
        .filter(|&n| n <= crate::shm::SIZE_MAX)
}

/// Writes the lock, the initial elements and the header into fresh memory no one else sees.
pub(super) fn init<T: Element>(
    map: &Mapping,
    kind: Kind,
    len: usize,
    initial: &[T],
) -> io::Result<()> {
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
pub(super) fn check_header<T: Element>(
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
