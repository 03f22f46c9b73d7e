//! Anonymous pipes: two of them, one each way, made before `fork`.

use std::io;
use std::os::fd::OwnedFd;

use ipcbox::pipe::{Reader, Writer};

use crate::row::{forked, Info, Kind, Link, Row};
use crate::rows::common::{FdStream, IoStream};

/// The pipe rows.
pub fn rows() -> Vec<Box<dyn Row>> {
    vec![
        forked(Info::new("pipe", "pipe", Kind::Ipcbox), PipeApi),
        forked(Info::new("pipe raw", "pipe", Kind::Raw), PipeRaw),
    ]
}

/// `ipcbox::pipe::new`, `Write::write_all`, `Read::read_exact`.
#[derive(Debug)]
struct PipeApi;

/// Both pipes: (to the child, to the parent).
type ApiPipes = ((Reader, Writer), (Reader, Writer));

impl Link for PipeApi {
    type Shared = ApiPipes;
    type Parent = IoStream<Reader, Writer>;
    type Child = IoStream<Reader, Writer>;

    fn prepare(&self, _max_message: usize) -> io::Result<ApiPipes> {
        Ok((ipcbox::pipe::new()?, ipcbox::pipe::new()?))
    }

    fn parent(&self, ((_, to_child), (from_child, _)): ApiPipes) -> io::Result<Self::Parent> {
        Ok(IoStream::new(from_child, to_child))
    }

    fn child(&self, ((from_parent, _), (_, to_parent)): ApiPipes) -> io::Result<Self::Child> {
        Ok(IoStream::new(from_parent, to_parent))
    }
}

/// `pipe2(O_CLOEXEC)`, `read(2)`, `write(2)` through rustix.
#[derive(Debug)]
struct PipeRaw;

type RawPipes = ((OwnedFd, OwnedFd), (OwnedFd, OwnedFd));

fn raw_pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    Ok(rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?)
}

impl Link for PipeRaw {
    type Shared = RawPipes;
    type Parent = FdStream;
    type Child = FdStream;

    fn prepare(&self, _max_message: usize) -> io::Result<RawPipes> {
        Ok((raw_pipe()?, raw_pipe()?))
    }

    fn parent(&self, ((_, to_child), (from_child, _)): RawPipes) -> io::Result<FdStream> {
        Ok(FdStream::new(from_child, to_child))
    }

    fn child(&self, ((from_parent, _), (_, to_parent)): RawPipes) -> io::Result<FdStream> {
        Ok(FdStream::new(from_parent, to_parent))
    }
}
