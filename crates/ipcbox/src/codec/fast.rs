//! The default codec's block paths.
//!
//! serde hands a `Vec<u8>` to a serializer one element at a time, and builds one on decoding
//! one element at a time: about a byte per nanosecond, a tenth of what a copy does. A message
//! that *is* a `Vec` of bytes or of fixed-width numbers (`u8`, `i8`, `f32`, `f64`, whose
//! postcard elements are their little-endian bytes) is recognised by its type and copied as
//! one block, giving exactly the bytes postcard writes: `WIRE.md` does not change.
//! Integer types wider than a byte are varints in postcard, so they keep the general path.

use std::mem;

use postcard::ser_flavors::Flavor;

use super::block::Plain;
use crate::sys::cast;

/// postcard's output, appended to the caller's `Vec` one `push` or `extend_from_slice` per
/// piece (postcard's `to_extend` goes through `Extend` for every piece, a byte string too).
pub(super) struct Append<'a>(pub(super) &'a mut Vec<u8>);

impl Flavor for Append<'_> {
    type Output = ();

    #[inline(always)]
    fn try_push(&mut self, byte: u8) -> postcard::Result<()> {
        // `extend` of one byte, as postcard's own flavor does: element-by-element encoding
        // (a Vec<u8> field) ran 1.2-1.4x slower through `push`.
        self.0.extend([byte]);
        Ok(())
    }

    #[inline(always)]
    fn try_extend(&mut self, bytes: &[u8]) -> postcard::Result<()> {
        self.0.extend_from_slice(bytes);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

/// Appends the encoding of `msg` if it is a `Vec` the block path knows; `false` otherwise.
pub(super) fn encode<M: ?Sized>(msg: &M, out: &mut Vec<u8>) -> bool {
    if mem::size_of_val(msg) != mem::size_of::<Vec<u8>>() {
        return false;
    }
    encode_vec::<M, u8>(msg, out)
        || encode_vec::<M, i8>(msg, out)
        || encode_vec::<M, f32>(msg, out)
        || encode_vec::<M, f64>(msg, out)
}

fn encode_vec<M: ?Sized, T: Plain + cast::Pod>(msg: &M, out: &mut Vec<u8>) -> bool {
    let Some(v) = cast::downcast_ref::<M, Vec<T>>(msg) else {
        return false;
    };
    let bytes = T::le_bytes(v);
    out.reserve(10 + bytes.len());
    push_varint(out, v.len() as u64);
    out.extend_from_slice(&bytes);
    true
}

/// [`encode`] without the copy: appends the length to `out` and returns the elements' own
/// bytes (on a little-endian machine, where they are the wire's); `None` otherwise.
pub(super) fn encode_split<'m, M: ?Sized>(msg: &'m M, out: &mut Vec<u8>) -> Option<&'m [u8]> {
    split_vec::<M, u8>(msg, out)
        .or_else(|| split_vec::<M, i8>(msg, out))
        .or_else(|| split_vec::<M, f32>(msg, out))
        .or_else(|| split_vec::<M, f64>(msg, out))
}

fn split_vec<'m, M: ?Sized, T: Plain + cast::Pod>(
    msg: &'m M,
    out: &mut Vec<u8>,
) -> Option<&'m [u8]> {
    if !cfg!(target_endian = "little") {
        return None;
    }
    let v = cast::downcast_ref::<M, Vec<T>>(msg)?;
    push_varint(out, v.len() as u64);
    Some(cast::as_bytes(v))
}

/// The message in `payload` if `M` is a `Vec` the block path knows and `payload` is a
/// well-formed one; `None` sends it down the general path, which also words every error.
pub(super) fn decode<M>(payload: &[u8]) -> Option<M> {
    // Settled at compile time for every message type that is not the size of a Vec.
    if mem::size_of::<M>() != mem::size_of::<Vec<u8>>() {
        return None;
    }
    decode_vec::<M, u8>(payload)
        .or_else(|| decode_vec::<M, i8>(payload))
        .or_else(|| decode_vec::<M, f32>(payload))
        .or_else(|| decode_vec::<M, f64>(payload))
}

fn decode_vec<M, T: Plain + cast::Pod>(payload: &[u8]) -> Option<M> {
    if !cast::is::<M, Vec<T>>() {
        return None;
    }
    let (count, used) = read_varint(payload)?;
    let body = &payload[used..];
    // The count is checked against the bytes that are there before anything is allocated.
    if usize::try_from(count)
        .ok()?
        .checked_mul(mem::size_of::<T>())?
        != body.len()
    {
        return None;
    }
    cast::cast::<Vec<T>, M>(T::from_le_bytes(body)).ok()
}

/// The length of a payload's head when `M` is a `Vec` of bytes (`u8`, `i8`) and the payload
/// of `len` bytes is its length then exactly that many bytes: the rest can be received
/// straight into the vector's memory. `None` otherwise.
pub(super) fn split_head<M>(head: &[u8], len: usize) -> Option<usize> {
    if !cast::is::<M, Vec<u8>>() && !cast::is::<M, Vec<i8>>() {
        return None;
    }
    let (count, used) = read_varint(head)?;
    (usize::try_from(count).ok()? == len.checked_sub(used)?).then_some(used)
}

/// The message [`split_head`] accepted: `head` is its length, `body` its bytes. `Err(body)`
/// when `M` or the length does not match (the general path then words the error).
pub(super) fn decode_split<M>(head: &[u8], body: Vec<u8>) -> Result<M, Vec<u8>> {
    match read_varint(head) {
        Some((count, used)) if used == head.len() && usize::try_from(count) == Ok(body.len()) => {}
        _ => return Err(body),
    }
    if cast::is::<M, Vec<i8>>() {
        return cast::cast::<Vec<i8>, M>(cast::bytes_into_i8(body))
            .map_err(|_| unreachable!("M is Vec<i8>"));
    }
    cast::cast::<Vec<u8>, M>(body)
}

fn push_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// A postcard `usize` length (a varint of at most 10 bytes, the last one at most `0x01`) and
/// the bytes it took; `None` for anything else.
fn read_varint(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut n = 0u64;
    for (i, &b) in bytes.iter().enumerate().take(10) {
        if i == 9 && b > 0x01 {
            return None;
        }
        n |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((n, i + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn general<M: serde::Serialize + ?Sized>(msg: &M) -> Vec<u8> {
        postcard::to_stdvec(msg).unwrap()
    }

    fn fast<M: ?Sized>(msg: &M) -> Vec<u8> {
        let mut out = Vec::new();
        assert!(encode(msg, &mut out));
        out
    }

    #[test]
    fn block_path_writes_postcards_bytes() {
        for len in [0, 1, 127, 128, 300, 70_000] {
            let bytes: Vec<u8> = (0..len).map(|i| i as u8).collect();
            assert_eq!(fast(&bytes), general(&bytes), "{len} bytes");
            let signed: Vec<i8> = bytes.iter().map(|&b| b as i8).collect();
            assert_eq!(fast(&signed), general(&signed));
            let floats: Vec<f32> = (0..len).map(|i| i as f32 - 0.5).collect();
            assert_eq!(fast(&floats), general(&floats));
            let doubles = vec![f64::NAN, -0.0, f64::INFINITY, 1e300];
            assert_eq!(fast(&doubles), general(&doubles));
            assert_eq!(decode::<Vec<u8>>(&general(&bytes)), Some(bytes));
            assert_eq!(decode::<Vec<f32>>(&general(&floats)), Some(floats));
        }
        assert!(!encode(&vec![1u16], &mut Vec::new()));
        assert!(!encode("text", &mut Vec::new()));
        assert!(!encode(&[1u8, 2][..], &mut Vec::new()));
        // Split: the length, then the vector's own memory.
        let floats = vec![1.5f32; 1000];
        let mut head = vec![9];
        let block = encode_split(&floats, &mut head).unwrap();
        assert_eq!(block.as_ptr(), floats.as_ptr().cast::<u8>());
        assert_eq!([&head[1..], block].concat(), general(&floats));
        assert!(encode_split(&vec![1u32], &mut head).is_none());
    }

    #[test]
    fn split_payloads_are_byte_vectors_whose_length_matches() {
        let bytes: Vec<u8> = (0..300).map(|i| i as u8).collect();
        let wire = general(&bytes);
        let used = split_head::<Vec<u8>>(&wire[..16], wire.len()).unwrap();
        assert_eq!(used, 2);
        let back: Vec<u8> = decode_split(&wire[..used], wire[used..].to_vec()).unwrap();
        assert_eq!(back, bytes);
        let signed: Vec<i8> = decode_split(&wire[..used], wire[used..].to_vec()).unwrap();
        assert_eq!(signed, general_back::<Vec<i8>>(&wire));
        // A length that disagrees with the payload's, another type, a short body: no.
        assert_eq!(split_head::<Vec<u8>>(&wire[..16], wire.len() + 1), None);
        assert_eq!(split_head::<Vec<f32>>(&wire[..16], wire.len()), None);
        assert_eq!(split_head::<String>(&wire[..16], wire.len()), None);
        assert_eq!(split_head::<Vec<u8>>(&[0x80; 16], 1 << 20), None);
        let short = wire[used + 1..].to_vec();
        assert_eq!(
            decode_split::<Vec<u8>>(&wire[..used], short.clone()),
            Err(short)
        );
        assert!(decode_split::<String>(&wire[..used], wire[used..].to_vec()).is_err());
    }

    fn general_back<M: serde::de::DeserializeOwned>(wire: &[u8]) -> M {
        postcard::from_bytes(wire).unwrap()
    }

    #[test]
    fn block_path_leaves_malformed_payloads_to_the_general_one() {
        // Short, long, an overlong varint, a count that overflows the element size.
        for bad in [
            &[3u8, 1, 2][..],
            &[1, 1, 2],
            &[],
            &[0x80; 11],
            &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
        ] {
            assert_eq!(decode::<Vec<u8>>(bad), None, "{bad:?}");
            assert_eq!(decode::<Vec<f64>>(bad), None, "{bad:?}");
        }
        assert_eq!(decode::<Vec<f32>>(&[1, 0, 0, 0]), None);
        assert_eq!(decode::<String>(&[1, b'a']), None);
        // A padded varint postcard accepts: the block path does too.
        assert_eq!(decode::<Vec<u8>>(&[0x81, 0x00, 7]), Some(vec![7]));
    }
}
