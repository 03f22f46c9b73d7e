//! How typed messages become bytes: `postcard` (compact, no schema on the wire). Kept behind
//! two functions so the crate's shared codec can replace it.

use std::io;

use serde::de::DeserializeOwned;
use serde::Serialize;

pub(crate) fn encode<T: Serialize>(msg: &T, buf: &mut Vec<u8>) -> io::Result<()> {
    buf.clear();
    let taken = std::mem::take(buf);
    *buf = postcard::to_extend(msg, taken).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("encode {} message: {e}", std::any::type_name::<T>()),
        )
    })?;
    Ok(())
}

pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> io::Result<T> {
    postcard::from_bytes(bytes).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "decode a {} byte message as {}: {e}",
                bytes.len(),
                std::any::type_name::<T>()
            ),
        )
    })
}
