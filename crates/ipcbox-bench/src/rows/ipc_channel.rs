//! ipc-channel (Servo's multi-process channels), the comparison rows of the `unix stream`
//! group. ipc-channel is a dependency of this benchmark only, never of the ipcbox library.
//!
//! On Linux an ipc-channel is a Unix `SOCK_SEQPACKET` socket pair; a message too large for
//! one packet goes in fragments through a second socket pair it creates for the message and
//! passes along. Two channels (one each way) are created before `fork`; each process drops the
//! ends it does not use.
//!
//! * `unix stream ipc-channel`: `IpcSender<Blob>` / `IpcReceiver<Blob>`, serialised with
//!   Postcard by ipc-channel. A [`Blob`] is serialised as one byte string (a `Vec<u8>`, as the
//!   ipcbox typed rows send, would go through ipc-channel byte by byte), with the bytes
//!   postcard gives a `Vec<u8>`. `send` takes the message by value: the row copies each
//!   message into a new `Blob` (its `Vec`) first.
//! * `unix stream ipc-channel bytes`: `IpcBytesSender::send(&[u8])` /
//!   `IpcBytesReceiver::recv() -> Vec<u8>` (no serialisation), copied into the row's buffer
//!   (in the throughput loop, checked and dropped).

use std::io;

use ipc_channel::ipc::{self, IpcBytesReceiver, IpcBytesSender, IpcReceiver, IpcSender};

use crate::row::{forked, Endpoint, Info, Kind, Link, Row};
use crate::rows::socket::Blob;

/// The ipc-channel rows, in the group `group`.
pub fn rows(group: &'static str) -> Vec<Box<dyn Row>> {
    vec![
        forked(
            Info::new("unix stream ipc-channel", group, Kind::Competitor),
            Typed,
        ),
        forked(
            Info::new("unix stream ipc-channel bytes", group, Kind::Competitor),
            Bytes,
        ),
    ]
}

fn other(err: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("ipc-channel: {err}"))
}

fn check_len(got: usize, want: usize) -> io::Result<()> {
    if got == want {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("received a {got}-byte message, expected {want} bytes"),
        ))
    }
}

/// `ipc::channel::<Blob>()`, one each way.
#[derive(Debug)]
struct Typed;

/// One side: its sender and its receiver.
#[derive(Debug)]
struct TypedEnd {
    tx: IpcSender<Blob>,
    rx: IpcReceiver<Blob>,
}

type TypedChannels = (
    (IpcSender<Blob>, IpcReceiver<Blob>),
    (IpcSender<Blob>, IpcReceiver<Blob>),
);

impl Link for Typed {
    type Shared = TypedChannels;
    type Parent = TypedEnd;
    type Child = TypedEnd;

    fn prepare(&self, _max_message: usize) -> io::Result<TypedChannels> {
        Ok((ipc::channel()?, ipc::channel()?))
    }
    fn parent(&self, ((tx, _), (_, rx)): TypedChannels) -> io::Result<TypedEnd> {
        Ok(TypedEnd { tx, rx })
    }
    fn child(&self, ((_, rx), (tx, _)): TypedChannels) -> io::Result<TypedEnd> {
        Ok(TypedEnd { tx, rx })
    }
}

impl Endpoint for TypedEnd {
    fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        self.tx.send(Blob(msg.to_vec())).map_err(other)
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<()> {
        let Blob(got) = self.rx.recv().map_err(other)?;
        check_len(got.len(), buf.len())?;
        buf.copy_from_slice(&got);
        Ok(())
    }

    fn recv_unread(&mut self, buf: &mut [u8]) -> io::Result<()> {
        let Blob(got) = self.rx.recv().map_err(other)?;
        check_len(got.len(), buf.len())
    }
}

/// `ipc::bytes_channel()`, one each way.
#[derive(Debug)]
struct Bytes;

/// One side: its sender and its receiver.
#[derive(Debug)]
struct BytesEnd {
    tx: IpcBytesSender,
    rx: IpcBytesReceiver,
}

type BytesChannels = (
    (IpcBytesSender, IpcBytesReceiver),
    (IpcBytesSender, IpcBytesReceiver),
);

impl Link for Bytes {
    type Shared = BytesChannels;
    type Parent = BytesEnd;
    type Child = BytesEnd;

    fn prepare(&self, _max_message: usize) -> io::Result<BytesChannels> {
        Ok((ipc::bytes_channel()?, ipc::bytes_channel()?))
    }
    fn parent(&self, ((tx, _), (_, rx)): BytesChannels) -> io::Result<BytesEnd> {
        Ok(BytesEnd { tx, rx })
    }
    fn child(&self, ((_, rx), (tx, _)): BytesChannels) -> io::Result<BytesEnd> {
        Ok(BytesEnd { tx, rx })
    }
}

impl Endpoint for BytesEnd {
    fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        self.tx.send(msg).map_err(other)
    }

    fn recv_unread(&mut self, buf: &mut [u8]) -> io::Result<()> {
        let got = self.rx.recv().map_err(other)?;
        check_len(got.len(), buf.len())
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<()> {
        let got = self.rx.recv().map_err(other)?;
        check_len(got.len(), buf.len())?;
        buf.copy_from_slice(&got);
        Ok(())
    }
}
