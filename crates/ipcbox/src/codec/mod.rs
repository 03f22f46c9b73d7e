//! Codecs: how a typed message becomes the payload of a frame, and back.
//!
//! A [`frame::Connection`](crate::frame::Connection) moves frames (see `WIRE.md`); the codec
//! decides what the bytes inside a frame mean. [`Postcard`] (the default) encodes any
//! `serde` type in the compact [postcard](https://postcard.jamesmunns.com/wire-format) format,
//! described byte by byte for peers in other languages in `WIRE.md` ("Postcard encoding");
//! [`Raw`] passes `Vec<u8>` payloads through untouched. Implement [`Codec`] for your own format
//! (JSON, a hand-written struct layout a C peer understands, …).
//!
//! Bulk data is copied as one block rather than element by element:
//! * by [`Postcard`], a message that is a whole `Vec` of `u8`, `i8`, `f32` or `f64`, with the
//!   bytes postcard always wrote; a connection sends such a `Vec` from its own memory, and
//!   receives a large `Vec<u8>` or `Vec<i8>` straight into the new one's
//!   ([`Codec::encode_vectored`], [`Codec::split_payload`]);
//! * in any `serde` codec, arrays of plain numbers anywhere in a message, as a [`Block`] (or
//!   with `#[serde(with = "ipcbox::codec::block")]` on a `Vec` field): a byte array of their
//!   little-endian bytes (`WIRE.md`, "Blocks"). A plain `Vec<u8>` field inside a struct is
//!   still encoded byte by byte: make it a `Block<u8>`, whose bytes are the same.
//!
//! ```
//! use ipcbox::codec::{Codec, Postcard};
//!
//! let mut codec = Postcard;
//! let mut payload = Vec::new();
//! codec.encode(&(7u32, "seven".to_string()), &mut payload)?;
//! let back: (u32, String) = codec.decode(&payload)?;
//! assert_eq!(back, (7, "seven".to_string()));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::error::Error;
use std::fmt;

pub mod block;
mod explain;
mod fast;

pub use block::{Block, Plain};

use serde::de::DeserializeOwned;
use serde::Serialize;

/// Turns messages of type `M` into frame payloads and back.
///
/// `decode` gets exactly one frame's payload, which came from another process: it must treat it
/// as untrusted input (fail with [`DecodeError`] on anything malformed, never panic).
pub trait Codec<M> {
    /// Appends the encoding of `msg` to `out` (which may already hold bytes: keep them).
    ///
    /// # Errors
    ///
    /// [`EncodeError`] when the message cannot be represented (a `serde` error, say).
    fn encode(&mut self, msg: &M, out: &mut Vec<u8>) -> Result<(), EncodeError>;

    /// Appends the start of the encoding of `msg` to `out` and returns the rest, borrowed
    /// from `msg` itself: the encoding is `out`'s new bytes followed by the returned block.
    /// A [`frame::Connection`](crate::frame::Connection) sends the block after `out` without
    /// copying it (one `writev`).
    ///
    /// The default encodes everything into `out` and returns an empty block; override it
    /// when a message holds its bulk data as it goes on the wire.
    ///
    /// # Errors
    ///
    /// As [`encode`](Self::encode).
    fn encode_vectored<'m>(
        &mut self,
        msg: &'m M,
        out: &mut Vec<u8>,
    ) -> Result<&'m [u8], EncodeError> {
        self.encode(msg, out)?;
        Ok(&[])
    }

    /// Decodes one message from one frame's whole payload.
    ///
    /// # Errors
    ///
    /// [`DecodeError`] when the payload is not a valid encoding of an `M`.
    fn decode(&mut self, payload: &[u8]) -> Result<M, DecodeError>;

    /// The receiving side of [`encode_vectored`](Self::encode_vectored): `Some(n)` when a
    /// payload of `len` bytes that starts with `head` is `n` bytes of description followed by
    /// the message's own memory as a `Vec<u8>` would hold it. A
    /// [`frame::Connection`](crate::frame::Connection) then receives the rest of the payload
    /// straight into a new `Vec` and hands it to [`decode_vectored`](Self::decode_vectored),
    /// saving a copy of a large message.
    ///
    /// `head` is the payload's first `min(len, SPLIT_HEAD_MAX)` bytes, from another process:
    /// untrusted. The default returns `None` (the payload goes to [`decode`](Self::decode)
    /// whole); so should an override for anything it would not decode.
    fn split_payload(&mut self, head: &[u8], len: usize) -> Option<usize> {
        let _ = (head, len);
        None
    }

    /// Decodes a message from the `head` bytes [`split_payload`](Self::split_payload)
    /// counted and the rest of the payload, received into `body`.
    ///
    /// The default decodes the two joined.
    ///
    /// # Errors
    ///
    /// As [`decode`](Self::decode).
    fn decode_vectored(&mut self, head: &[u8], body: Vec<u8>) -> Result<M, DecodeError> {
        let mut payload = Vec::with_capacity(head.len() + body.len());
        payload.extend_from_slice(head);
        payload.extend_from_slice(&body);
        self.decode(&payload)
    }
}

/// The most bytes of a payload's start [`Codec::split_payload`] is shown (enough for a
/// postcard length, which takes at most 10).
pub const SPLIT_HEAD_MAX: usize = 16;

/// The default codec: [postcard](https://docs.rs/postcard), a compact, stable binary `serde`
/// format with no type tags or field names. `WIRE.md` ("Postcard encoding") gives the bytes of
/// every serde type, enough for a peer in another language.
///
/// Decoding is strict: a payload with bytes left over after the message is an error, so that a
/// frame of the wrong type is less likely to decode silently.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Postcard;

impl Postcard {
    /// [`Codec::encode`] for any `Serialize` type: for users that only send (`queue`).
    pub(crate) fn encode_to<M: Serialize + ?Sized>(
        msg: &M,
        out: &mut Vec<u8>,
    ) -> Result<(), EncodeError> {
        if fast::encode(msg, out) {
            return Ok(());
        }
        let start = out.len();
        postcard::serialize_with_flavor(msg, fast::Append(out)).map_err(|e| {
            // What a failed message had written so far is not left behind.
            out.truncate(start);
            EncodeError::new(e)
        })
    }

    /// [`Codec::decode`] for any `DeserializeOwned` type: for users that only receive.
    pub(crate) fn decode_from<M: DeserializeOwned>(payload: &[u8]) -> Result<M, DecodeError> {
        if let Some(msg) = fast::decode(payload) {
            return Ok(msg);
        }
        let (msg, rest) = postcard::take_from_bytes(payload).map_err(|e| {
            DecodeError::new(explain::explain::<M>(payload).unwrap_or_else(|| e.to_string()))
        })?;
        if rest.is_empty() {
            Ok(msg)
        } else {
            let (n, used) = (rest.len(), payload.len() - rest.len());
            Err(DecodeError::new(format!(
                "{n} trailing byte{} after a message of {used} byte{}",
                plural(n),
                plural(used)
            )))
        }
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

impl<M: Serialize + DeserializeOwned> Codec<M> for Postcard {
    fn encode(&mut self, msg: &M, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        Postcard::encode_to(msg, out)
    }

    /// A whole `Vec` of `u8`, `i8`, `f32` or `f64` is its length in `out`, then its own
    /// memory as the block; anything else is all in `out`.
    fn encode_vectored<'m>(
        &mut self,
        msg: &'m M,
        out: &mut Vec<u8>,
    ) -> Result<&'m [u8], EncodeError> {
        match fast::encode_split(msg, out) {
            Some(block) => Ok(block),
            None => Postcard::encode_to(msg, out).map(|()| &[][..]),
        }
    }

    fn decode(&mut self, payload: &[u8]) -> Result<M, DecodeError> {
        Postcard::decode_from(payload)
    }

    /// A whole `Vec` of `u8` or `i8`: its length, then its bytes.
    fn split_payload(&mut self, head: &[u8], len: usize) -> Option<usize> {
        fast::split_head::<M>(head, len)
    }

    fn decode_vectored(&mut self, head: &[u8], body: Vec<u8>) -> Result<M, DecodeError> {
        match fast::decode_split(head, body) {
            Ok(msg) => Ok(msg),
            Err(body) => {
                let mut payload = head.to_vec();
                payload.extend_from_slice(&body);
                Postcard::decode_from(&payload)
            }
        }
    }
}

/// The identity codec for `Vec<u8>` messages: the payload is the message.
///
/// Useful to give a bytes-only connection the typed `send`/`recv` API; the
/// [`send_bytes`](crate::frame::Connection::send_bytes) family does the same without the
/// `Vec` allocation per received message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Raw;

impl Codec<Vec<u8>> for Raw {
    fn encode(&mut self, msg: &Vec<u8>, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        out.extend_from_slice(msg);
        Ok(())
    }

    fn decode(&mut self, payload: &[u8]) -> Result<Vec<u8>, DecodeError> {
        Ok(payload.to_vec())
    }

    /// The whole payload is the message's memory.
    fn split_payload(&mut self, _head: &[u8], _len: usize) -> Option<usize> {
        Some(0)
    }

    fn decode_vectored(&mut self, head: &[u8], mut body: Vec<u8>) -> Result<Vec<u8>, DecodeError> {
        if !head.is_empty() {
            body.splice(0..0, head.iter().copied());
        }
        Ok(body)
    }
}

type BoxError = Box<dyn Error + Send + Sync + 'static>;

macro_rules! codec_error {
    ($name:ident, $what:literal) => {
        #[doc = concat!("A message could not be ", $what, "; wraps the codec's own error.")]
        #[derive(Debug)]
        pub struct $name(BoxError);

        impl $name {
            /// Wraps a codec's error (anything that converts into a boxed error, a `String` too).
            pub fn new(err: impl Into<BoxError>) -> $name {
                $name(err.into())
            }

            /// The codec's own error.
            pub fn into_inner(self) -> BoxError {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!("message could not be ", $what, ": {}"), self.0)
            }
        }

        impl Error for $name {
            fn source(&self) -> Option<&(dyn Error + 'static)> {
                Some(&*self.0)
            }
        }
    };
}

codec_error!(EncodeError, "encoded");
codec_error!(DecodeError, "decoded");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postcard_round_trip_and_strictness() {
        let mut c = Postcard;
        let mut out = vec![0xAA];
        Codec::<Vec<u32>>::encode(&mut c, &vec![1, 300, 70000], &mut out).unwrap();
        assert_eq!(out[0], 0xAA, "encode appends");
        let back: Vec<u32> = c.decode(&out[1..]).unwrap();
        assert_eq!(back, [1, 300, 70000]);
        let err = Codec::<u8>::decode(&mut c, &[1, 2]).unwrap_err();
        assert!(
            err.to_string()
                .ends_with("1 trailing byte after a message of 1 byte"),
            "{err}"
        );
        let err = Codec::<u8>::decode(&mut c, &[1, 2, 3]).unwrap_err();
        assert!(
            err.to_string()
                .ends_with("2 trailing bytes after a message of 1 byte"),
            "{err}"
        );
        assert!(Codec::<String>::decode(&mut c, &[5, b'a']).is_err());
    }

    #[derive(Debug, serde::Serialize, serde::Deserialize)]
    enum Shape {
        Empty,
        Circle(u32),
    }

    #[derive(Debug, serde::Serialize, serde::Deserialize)]
    struct Drawing {
        id: u32,
        shapes: Vec<Option<Shape>>,
        ok: bool,
    }

    fn why<M: Serialize + DeserializeOwned + fmt::Debug>(payload: &[u8]) -> String {
        Codec::<M>::decode(&mut Postcard, payload)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn decode_errors_name_the_type_and_what_was_wrong() {
        assert_eq!(
            why::<Shape>(&[7]),
            "message could not be decoded: Shape: unknown variant index 7 of enum Shape, \
             which has 2 variants"
        );
        // Deep inside: the path names each named type on the way.
        assert_eq!(
            why::<Drawing>(&[1, 2, 1, 0, 1, 0x85, 0x01]),
            "message could not be decoded: Drawing > Shape: unknown variant index 133 of \
             enum Shape, which has 2 variants"
        );
        // postcard's own errors get the path too.
        assert_eq!(
            why::<Drawing>(&[1, 0, 2]),
            "message could not be decoded: Drawing: Found a bool that wasn't 0 or 1"
        );
        // A check in a Deserialize impl keeps its message.
        let err = why::<std::num::NonZeroU32>(&[0]);
        assert!(err.contains("nonzero"), "{err}");
    }

    #[test]
    fn a_failed_encoding_leaves_the_buffer_as_it_was() {
        // A sequence of unknown length cannot be postcard: it fails after its first element.
        struct Unsized;
        impl Serialize for Unsized {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_seq(std::iter::from_fn(|| Some(1u8)).take(3).filter(|_| true))
            }
        }
        let mut out = vec![7];
        Postcard::encode_to(&(5u8, Unsized), &mut out).unwrap_err();
        assert_eq!(out, [7]);
    }

    #[test]
    fn raw_is_identity() {
        let mut out = Vec::new();
        Raw.encode(&b"abc".to_vec(), &mut out).unwrap();
        assert_eq!(Raw.decode(&out).unwrap(), b"abc");
    }
}
