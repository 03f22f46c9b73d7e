//! Object ids.

use std::fmt;
use std::io;
use std::str::FromStr;

use crate::error::invalid_input;

/// The length of an [`ObjectId`] in bytes.
pub const ID_LEN: usize = 20;

/// A 20-byte object id, as Plasma's `ObjectID` (room for a SHA-1 digest or a random id; a
/// fixed size keeps table entries fixed).
///
/// Written and parsed as 40 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectId([u8; ID_LEN]);

impl ObjectId {
    /// The id with these bytes.
    pub const fn new(bytes: [u8; ID_LEN]) -> ObjectId {
        ObjectId(bytes)
    }

    /// An id from a number: its 8 little-endian bytes, then zeros.
    pub fn from_u64(n: u64) -> ObjectId {
        let mut bytes = [0; ID_LEN];
        bytes[..8].copy_from_slice(&n.to_le_bytes());
        ObjectId(bytes)
    }

    /// An id from exactly 20 bytes.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::InvalidInput`] for any other length; the message names it.
    pub fn from_slice(bytes: &[u8]) -> io::Result<ObjectId> {
        <[u8; ID_LEN]>::try_from(bytes).map(ObjectId).map_err(|_| {
            invalid_input(format_args!(
                "invalid object id: {} bytes, an id has exactly {ID_LEN}",
                bytes.len()
            ))
        })
    }

    /// The id's bytes.
    pub fn as_bytes(&self) -> &[u8; ID_LEN] {
        &self.0
    }

    pub(super) fn words(&self) -> [u32; 5] {
        let mut w = [0; 5];
        for (i, chunk) in self.0.chunks_exact(4).enumerate() {
            w[i] = u32::from_ne_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        }
        w
    }

    pub(super) fn from_words(w: [u32; 5]) -> ObjectId {
        let mut bytes = [0; ID_LEN];
        for (i, word) in w.iter().enumerate() {
            bytes[i * 4..i * 4 + 4].copy_from_slice(&word.to_ne_bytes());
        }
        ObjectId(bytes)
    }

    /// Where the table search for this id starts.
    pub(super) fn home(&self, entries: usize) -> usize {
        let h = self.0.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        (h % entries as u64) as usize
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in &self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectId({self})")
    }
}

impl FromStr for ObjectId {
    type Err = io::Error;

    /// Parses 40 hex digits.
    fn from_str(s: &str) -> io::Result<ObjectId> {
        let bad = |why: &str| invalid_input(format_args!("invalid object id {s:?}: {why}"));
        if s.len() != 2 * ID_LEN {
            return Err(bad("an id is 40 hex digits"));
        }
        let mut bytes = [0; ID_LEN];
        for (i, b) in bytes.iter_mut().enumerate() {
            let pair = s.get(2 * i..2 * i + 2).ok_or_else(|| bad("not ASCII"))?;
            *b = u8::from_str_radix(pair, 16).map_err(|_| bad("not a hex digit"))?;
        }
        Ok(ObjectId(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_and_print() {
        let id = ObjectId::from_u64(0x0102);
        let s = id.to_string();
        assert_eq!(s.len(), 40);
        assert!(s.starts_with("0201"));
        assert_eq!(s.parse::<ObjectId>().unwrap(), id);
        for bad in ["", "12", &"g".repeat(40), &"0".repeat(41)] {
            let e = bad.parse::<ObjectId>().unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        }
        let e = ObjectId::from_slice(&[1; 19]).unwrap_err();
        assert!(e.to_string().contains("19 bytes"), "{e}");
        assert_eq!(
            ObjectId::from_slice(&[1; 20]).unwrap(),
            ObjectId::new([1; 20])
        );
        assert_eq!(ObjectId::from_words(id.words()), id);
    }
}
