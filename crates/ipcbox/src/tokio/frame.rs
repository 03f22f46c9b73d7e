//! The wire format ([WIRE.md](https://example.invalid/ipcbox/WIRE.md)) as tokio-util codecs:
//! [`FrameCodec`] for payload bytes and [`MessageCodec`] for typed messages, for
//! `tokio_util::codec::Framed` (a `Stream` of received frames and a `Sink` of frames to send).

use std::io;
use std::marker::PhantomData;
use std::os::fd::OwnedFd;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use crate::codec::{Codec, Postcard};
use crate::frame::{RecvError, SendError, DEFAULT_MAX_FRAME_LEN, HEADER_LEN};

/// tokio-util's `Framed` over tokio's own `UnixStream`, speaking ipcbox's wire format with
/// typed messages (`Out` sent, `In` received). See [`framed`].
pub type Framed<Out, In = Out, C = Postcard> =
    tokio_util::codec::Framed<tokio::net::UnixStream, MessageCodec<Out, In, C>>;

/// Turns a [`crate::Connection`] over a Unix stream into tokio-util's `Framed`, a `Stream` and
/// a `Sink` that speak the same frames to the same peer (with a fresh codec `C` and the same
/// frame limit). [`Connection`](super::Connection) keeps the sync API's shape instead.
///
/// Receiving is a `Stream` of `Result<M, RecvError>`: the peer closing between frames ends the
/// stream (the sync API's `Disconnected`); a stream ending inside a frame yields
/// [`RecvError::Torn`] first. Sending is a `Sink` of `M` (or `&M`) with [`SendError`].
/// Both are tokio-util's `Framed`: `next()` is cancel-safe (a frame is taken only when it is
/// returned); a `send` future dropped before it finished may have buffered its message or not.
///
/// # Errors
///
/// Not inside a tokio runtime with I/O enabled; bytes already received and not returned as
/// frames, or pending bytes that could not be sent ([`crate::Connection::into_transport`]).
///
/// # Examples
///
/// ```
/// use futures_util::{SinkExt, StreamExt};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let (a, b) = ipcbox::frame::duplex::<String>()?;
/// let (mut a, mut b) = (ipcbox::tokio::framed(a)?, ipcbox::tokio::framed(b)?);
/// a.send("hi".to_owned()).await?;
/// assert_eq!(b.next().await.transpose()?, Some("hi".to_owned()));
/// # Ok(()) }
/// ```
pub fn framed<Out, In, C: Default>(
    conn: crate::Connection<Out, In, crate::socket::Stream, C>,
) -> io::Result<Framed<Out, In, C>> {
    let max = conn.max_frame_len();
    let stream = std::os::unix::net::UnixStream::from(OwnedFd::from(conn.into_transport()?));
    stream.set_nonblocking(true)?;
    let stream = tokio::net::UnixStream::from_std(stream)?;
    let mut codec = MessageCodec::with_codec(C::default());
    codec.set_max_frame_len(max);
    Ok(tokio_util::codec::Framed::new(stream, codec))
}

/// Frames of raw payload bytes: a 4-byte little-endian length, then the payload.
///
/// Decoding refuses a header announcing more than the limit (default 64 MiB) with
/// [`RecvError::TooLarge`], without allocating for it; the stream ending inside a frame is
/// [`RecvError::Torn`]. Encoding refuses a payload over the limit with [`SendError::TooLarge`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameCodec {
    max: usize,
}

impl Default for FrameCodec {
    fn default() -> FrameCodec {
        FrameCodec::new()
    }
}

impl FrameCodec {
    /// A codec with the default frame limit.
    pub fn new() -> FrameCodec {
        FrameCodec {
            max: DEFAULT_MAX_FRAME_LEN,
        }
    }

    /// The largest payload accepted either way.
    pub fn max_frame_len(&self) -> usize {
        self.max
    }

    /// Sets the largest payload accepted either way.
    pub fn set_max_frame_len(&mut self, max: usize) -> &mut FrameCodec {
        self.max = max.min(u32::MAX as usize);
        self
    }

    fn header(&self, len: usize) -> Result<[u8; HEADER_LEN], SendError> {
        if len > self.max {
            return Err(SendError::TooLarge { len, max: self.max });
        }
        Ok((len as u32).to_le_bytes())
    }
}

impl Decoder for FrameCodec {
    type Item = BytesMut;
    type Error = RecvError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<BytesMut>, RecvError> {
        let Some(header) = src.first_chunk::<HEADER_LEN>() else {
            return Ok(None);
        };
        let len = u32::from_le_bytes(*header) as usize;
        if len > self.max {
            // Left unread, as the sync receiver leaves it.
            return Err(RecvError::TooLarge { len, max: self.max });
        }
        if src.len() < HEADER_LEN + len {
            // Room for what has arrived and a bit more, never what the header claims.
            src.reserve((HEADER_LEN + len - src.len()).min(64 << 10));
            return Ok(None);
        }
        src.advance(HEADER_LEN);
        Ok(Some(src.split_to(len)))
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<BytesMut>, RecvError> {
        match self.decode(src)? {
            Some(frame) => Ok(Some(frame)),
            None if src.is_empty() => Ok(None),
            None => {
                let expected = match src.first_chunk::<HEADER_LEN>() {
                    Some(h) => HEADER_LEN + u32::from_le_bytes(*h) as usize,
                    None => HEADER_LEN,
                };
                let received = src.len();
                src.clear();
                Err(RecvError::Torn { expected, received })
            }
        }
    }
}

impl Encoder<&[u8]> for FrameCodec {
    type Error = SendError;

    fn encode(&mut self, payload: &[u8], dst: &mut BytesMut) -> Result<(), SendError> {
        let header = self.header(payload.len())?;
        dst.reserve(HEADER_LEN + payload.len());
        dst.put_slice(&header);
        dst.put_slice(payload);
        Ok(())
    }
}

impl Encoder<Bytes> for FrameCodec {
    type Error = SendError;

    fn encode(&mut self, payload: Bytes, dst: &mut BytesMut) -> Result<(), SendError> {
        self.encode(&payload[..], dst)
    }
}

impl Encoder<Vec<u8>> for FrameCodec {
    type Error = SendError;

    fn encode(&mut self, payload: Vec<u8>, dst: &mut BytesMut) -> Result<(), SendError> {
        self.encode(&payload[..], dst)
    }
}

/// Typed messages in frames, `Out` encoded and `In` decoded: each payload is one message in the
/// codec `C` (default [`Postcard`]), as a [`crate::Connection`] sends them. A frame that does
/// not decode is [`RecvError::Decode`] and is consumed; the stream goes on.
#[derive(Debug, Clone, Copy)]
pub struct MessageCodec<Out, In = Out, C = Postcard> {
    frames: FrameCodec,
    codec: C,
    _marker: PhantomData<fn(Out) -> In>,
}

impl<Out, In, C: Default> Default for MessageCodec<Out, In, C> {
    fn default() -> MessageCodec<Out, In, C> {
        MessageCodec::with_codec(C::default())
    }
}

impl<Out, In> MessageCodec<Out, In> {
    /// A codec of postcard messages with the default frame limit.
    pub fn new() -> MessageCodec<Out, In> {
        MessageCodec::default()
    }
}

impl<Out, In, C> MessageCodec<Out, In, C> {
    /// A codec of messages in `codec` with the default frame limit.
    pub fn with_codec(codec: C) -> MessageCodec<Out, In, C> {
        MessageCodec {
            frames: FrameCodec::new(),
            codec,
            _marker: PhantomData,
        }
    }

    /// The largest payload accepted either way.
    pub fn max_frame_len(&self) -> usize {
        self.frames.max_frame_len()
    }

    /// Sets the largest payload accepted either way.
    pub fn set_max_frame_len(&mut self, max: usize) -> &mut Self {
        self.frames.set_max_frame_len(max);
        self
    }
}

impl<Out, In, C: Codec<In>> Decoder for MessageCodec<Out, In, C> {
    type Item = In;
    type Error = RecvError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<In>, RecvError> {
        match self.frames.decode(src)? {
            Some(frame) => self
                .codec
                .decode(&frame)
                .map(Some)
                .map_err(RecvError::Decode),
            None => Ok(None),
        }
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<In>, RecvError> {
        match self.frames.decode_eof(src)? {
            Some(frame) => self
                .codec
                .decode(&frame)
                .map(Some)
                .map_err(RecvError::Decode),
            None => Ok(None),
        }
    }
}

impl<Out, In, C: Codec<Out>> Encoder<Out> for MessageCodec<Out, In, C> {
    type Error = SendError;

    fn encode(&mut self, msg: Out, dst: &mut BytesMut) -> Result<(), SendError> {
        self.encode(&msg, dst)
    }
}

impl<Out, In, C: Codec<Out>> Encoder<&Out> for MessageCodec<Out, In, C> {
    type Error = SendError;

    fn encode(&mut self, msg: &Out, dst: &mut BytesMut) -> Result<(), SendError> {
        let mut payload = Vec::new();
        self.codec
            .encode(msg, &mut payload)
            .map_err(SendError::Encode)?;
        self.frames.encode(&payload[..], dst)
    }
}

/// A transport error while a `Framed` stream reads (tokio-util's decoders need it).
impl From<io::Error> for RecvError {
    fn from(e: io::Error) -> RecvError {
        RecvError::Io(e)
    }
}

/// A transport error while a `Framed` sink writes; a closed peer is `Disconnected`, as in
/// the sync API.
impl From<io::Error> for SendError {
    fn from(e: io::Error) -> SendError {
        match e.kind() {
            io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset => SendError::Disconnected,
            _ => SendError::Io(e),
        }
    }
}
