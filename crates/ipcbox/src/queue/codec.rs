//! How typed messages become bytes: the crate's default codec, [`Postcard`] (compact, no
//! schema on the wire, strict about trailing bytes), with its errors as `io::Error`s.

use std::io;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::codec::Postcard;

pub(crate) fn encode<T: Serialize>(msg: &T, buf: &mut Vec<u8>) -> io::Result<()> {
    buf.clear();
    Postcard::encode_to(msg, buf).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "encode {} message: {}",
                std::any::type_name::<T>(),
                e.into_inner()
            ),
        )
    })
}

pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> io::Result<T> {
    Postcard::decode_from(bytes).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "decode a {} byte message as {}: {}",
                bytes.len(),
                std::any::type_name::<T>(),
                e.into_inner()
            ),
        )
    })
}
