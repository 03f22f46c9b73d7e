//! Arrays of plain numbers encoded as one block of little-endian bytes.
//!
//! A `Vec<u16>` or `Vec<f32>` field goes through `serde` one element at a time, and postcard
//! writes integers as varints. [`Block<T>`] (or `#[serde(with = "ipcbox::codec::block")]` on a
//! `Vec<T>` field) encodes the whole array as one serde byte string of its elements'
//! little-endian bytes: copied as one block, in any codec that has byte strings.
//!
//! * The bytes in postcard: the length **in bytes** as a varint, then each element's
//!   fixed-width little-endian bytes (`WIRE.md`, "Blocks").
//! * For `u8` that is exactly the encoding of a `Vec<u8>`, so `Block<u8>` is a drop-in; for
//!   wider types it is a different wire form from `Vec<T>`: both sides must use it.
//! * Decoding checks the length is a whole number of elements before it allocates, and
//!   allocates no more than the bytes received.
//!
//! ```
//! use ipcbox::codec::{Block, Codec, Postcard};
//!
//! #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
//! struct Frame {
//!     id: u32,
//!     #[serde(with = "ipcbox::codec::block")]
//!     samples: Vec<f32>,
//!     pixels: Block<u16>,
//! }
//!
//! let frame = Frame { id: 7, samples: vec![0.5; 4], pixels: Block(vec![1, 2, 3]) };
//! let mut payload = Vec::new();
//! Postcard.encode(&frame, &mut payload)?;
//! assert_eq!(payload.len(), 1 + 1 + 16 + 1 + 6);
//! assert_eq!(Codec::<Frame>::decode(&mut Postcard, &payload)?, frame);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::sys::cast;

/// The element types a [`Block`] can hold: `u8`, `i8`, `u16`, `i16`, `u32`, `i32`, `u64`,
/// `i64`, `u128`, `i128`, `f32`, `f64`. Sealed.
pub trait Plain: Copy + Default + fmt::Debug + PartialEq + 'static + private::Sealed {}

pub(super) mod private {
    /// What the codec needs of a [`Plain`](super::Plain) type; not for use outside ipcbox.
    pub trait Sealed: Sized {
        /// The little-endian bytes of `s`: borrowed on a little-endian machine.
        fn le_bytes(s: &[Self]) -> std::borrow::Cow<'_, [u8]>;
        /// The elements whose little-endian bytes are `b` (a whole number of them).
        fn from_le_bytes(b: &[u8]) -> Vec<Self>;
    }
}

macro_rules! plain {
    ($($t:ty)*) => ($(
        impl Plain for $t {}

        impl private::Sealed for $t {
            fn le_bytes(s: &[$t]) -> Cow<'_, [u8]> {
                if cfg!(target_endian = "little") {
                    Cow::Borrowed(cast::as_bytes(s))
                } else {
                    Cow::Owned(s.iter().flat_map(|x| x.to_le_bytes()).collect())
                }
            }

            fn from_le_bytes(b: &[u8]) -> Vec<$t> {
                if cfg!(target_endian = "little") {
                    cast::vec_from_bytes(b)
                } else {
                    b.chunks_exact(std::mem::size_of::<$t>())
                        .map(|c| <$t>::from_le_bytes(c.try_into().unwrap_or_default()))
                        .collect()
                }
            }
        }
    )*)
}

plain! { u8 i8 u16 i16 u32 i32 u64 i64 u128 i128 f32 f64 }

/// A `Vec<T>` of plain numbers that encodes as one block of little-endian bytes (see the
/// [module docs](self)); dereferences to the `Vec`.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Block<T: Plain>(pub Vec<T>);

impl<T: Plain> Block<T> {
    /// The `Vec` inside.
    pub fn into_inner(self) -> Vec<T> {
        self.0
    }
}

impl<T: Plain> From<Vec<T>> for Block<T> {
    fn from(v: Vec<T>) -> Block<T> {
        Block(v)
    }
}

impl<T: Plain> From<Block<T>> for Vec<T> {
    fn from(b: Block<T>) -> Vec<T> {
        b.0
    }
}

impl<T: Plain> Deref for Block<T> {
    type Target = Vec<T>;
    fn deref(&self) -> &Vec<T> {
        &self.0
    }
}

impl<T: Plain> DerefMut for Block<T> {
    fn deref_mut(&mut self) -> &mut Vec<T> {
        &mut self.0
    }
}

impl<T: Plain> Serialize for Block<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serialize(&self.0, s)
    }
}

impl<'de, T: Plain> Deserialize<'de> for Block<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Block<T>, D::Error> {
        deserialize(d).map(Block)
    }
}

/// Serializes a slice of plain numbers as one byte string of their little-endian bytes; with
/// [`deserialize`], for `#[serde(with = "ipcbox::codec::block")]` on a `Vec<T>` field.
///
/// # Errors
///
/// The serializer's.
pub fn serialize<T: Plain, S: Serializer>(v: &[T], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_bytes(&T::le_bytes(v))
}

/// Deserializes what [`serialize`] wrote.
///
/// # Errors
///
/// The deserializer's, and a byte string whose length is not a whole number of elements.
pub fn deserialize<'de, T: Plain, D: Deserializer<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    d.deserialize_byte_buf(BlockVisitor(PhantomData))
}

struct BlockVisitor<T>(PhantomData<T>);

impl<'de, T: Plain> Visitor<'de> for BlockVisitor<T> {
    type Value = Vec<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a byte string of {}-byte {} elements",
            std::mem::size_of::<T>(),
            std::any::type_name::<T>()
        )
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Vec<T>, E> {
        let size = std::mem::size_of::<T>();
        if v.len() % size != 0 {
            return Err(E::custom(format_args!(
                "a block of {} is {} bytes long, not a multiple of {size}",
                std::any::type_name::<T>(),
                v.len()
            )));
        }
        Ok(T::from_le_bytes(v))
    }

    // A format that hands out an owned buffer, or a sequence of byte values (JSON), still
    // decodes.
    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Vec<T>, E> {
        match cast::cast::<Vec<u8>, Vec<T>>(v) {
            Ok(same) => Ok(same),
            Err(v) => self.visit_bytes(&v),
        }
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
        // The length hint came from the input: never allocate for more than arrives.
        let mut bytes = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(b) = seq.next_element::<u8>()? {
            bytes.push(b);
        }
        self.visit_bytes(&bytes)
    }
}
