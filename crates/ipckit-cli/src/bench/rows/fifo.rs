//! Named pipes through ipckit: `ipckit::fifo::Fifo::create` (removed on drop),
//! `ipckit::fifo::open_reader` / `open_writer`, then the pipe ends' `Read`/`Write`.
//!
//! Same rendezvous and same directory as the `fifo raw` row in `fifo_raw.rs`.

use std::io;

use ipckit::fifo::Fifo;
use ipckit::pipe::{Reader, Writer};
use ipckit::CreationMode;

use crate::bench::row::{forked, Info, Kind, Link, Row};
use crate::bench::rows::common::IoStream;
use crate::bench::rows::fifo_raw::FifoPaths;

/// The ipckit FIFO row.
pub fn rows() -> Vec<Box<dyn Row>> {
    vec![forked(Info::new("fifo", "fifo", Kind::Ipckit), FifoApi)]
}

#[derive(Debug)]
struct FifoApi;

/// The paths and the two FIFOs, which remove their names when the parent drops them.
#[derive(Debug)]
struct Fifos {
    paths: FifoPaths,
    to_child: Fifo,
    to_parent: Fifo,
}

impl Link for FifoApi {
    type Shared = Fifos;
    type Parent = IoStream<Reader, Writer>;
    type Child = IoStream<Reader, Writer>;

    fn prepare(&self, _max_message: usize) -> io::Result<Fifos> {
        let paths = FifoPaths::new()?;
        let to_child = Fifo::create(&paths.to_child, CreationMode::CreateExclusive)?;
        let to_parent = Fifo::create(&paths.to_parent, CreationMode::CreateExclusive)?;
        Ok(Fifos {
            paths,
            to_child,
            to_parent,
        })
    }

    // Both sides open `to_child` first, then `to_parent` (each open blocks until the other
    // side's). The parent's `Fifo`s remove the names when this returns.
    fn parent(&self, fifos: Fifos) -> io::Result<Self::Parent> {
        let tx = ipckit::fifo::open_writer(&fifos.paths.to_child)?;
        let rx = ipckit::fifo::open_reader(&fifos.paths.to_parent)?;
        Ok(IoStream::new(rx, tx))
    }

    fn child(&self, fifos: Fifos) -> io::Result<Self::Child> {
        let Fifos {
            paths,
            to_child,
            to_parent,
        } = fifos;
        // The names belong to the parent, which created them: the child's copies must not
        // remove them.
        std::mem::forget(to_child);
        std::mem::forget(to_parent);
        let rx = ipckit::fifo::open_reader(&paths.to_child)?;
        let tx = ipckit::fifo::open_writer(&paths.to_parent)?;
        Ok(IoStream::new(rx, tx))
    }
}
