//! Named pipes through ipcbox: `ipcbox::fifo::Fifo::create` (the creator removes the name on
//! drop), `ipcbox::fifo::open_reader` / `open_writer`, then the pipe ends' `Read`/`Write`.
//!
//! Same rendezvous and same directory as the `fifo raw` row in `fifo_raw.rs`.

use std::io;

use ipcbox::fifo::Fifo;
use ipcbox::pipe::{Reader, Writer};
use ipcbox::CreationMode;

use crate::row::{forked, Info, Kind, Link, Row};
use crate::rows::common::IoStream;
use crate::rows::fifo_raw::FifoPaths;

/// The ipcbox FIFO row.
pub fn rows() -> Vec<Box<dyn Row>> {
    vec![forked(Info::new("fifo", "fifo", Kind::Ipcbox), FifoApi)]
}

#[derive(Debug)]
struct FifoApi;

/// The two FIFOs (removed when the parent drops them) and their directory.
#[derive(Debug)]
struct Fifos {
    to_child: Fifo,
    to_parent: Fifo,
    _paths: FifoPaths,
}

impl Link for FifoApi {
    type Shared = Fifos;
    type Parent = IoStream<Reader, Writer>;
    type Child = IoStream<Reader, Writer>;

    fn prepare(&self, _max_message: usize) -> io::Result<Fifos> {
        let paths = FifoPaths::new()?;
        Ok(Fifos {
            to_child: Fifo::create(&paths.to_child, CreationMode::CreateExclusive)?,
            to_parent: Fifo::create(&paths.to_parent, CreationMode::CreateExclusive)?,
            _paths: paths,
        })
    }

    // Both sides open `to_child` first, then `to_parent` (each open waits for the other
    // side's). The parent's `Fifo`s remove the names when this returns; both ends are open
    // by then.
    fn parent(&self, fifos: Fifos) -> io::Result<Self::Parent> {
        let tx = fifos.to_child.open_writer()?;
        let rx = fifos.to_parent.open_reader()?;
        Ok(IoStream::new(rx, tx))
    }

    fn child(&self, fifos: Fifos) -> io::Result<Self::Child> {
        // The names belong to the parent, which created them: the child's copies let go.
        let to_child = fifos.to_child.detach();
        let to_parent = fifos.to_parent.detach();
        let rx = ipcbox::fifo::open_reader(&to_child)?;
        let tx = ipcbox::fifo::open_writer(&to_parent)?;
        Ok(IoStream::new(rx, tx))
    }
}
