//! Anonymous one-way pipes (`pipe2`).
//!
//! [`new`] returns a [`Reader`] and a [`Writer`]. Bytes written to the writer come out of the
//! reader in order. When every writer (in every process) is closed the reader sees end of file
//! (`read` returns `Ok(0)`); when every reader is closed a write fails with
//! [`io::ErrorKind::BrokenPipe`] (`EPIPE`) and never kills the process with `SIGPIPE`.
//!
//! Either end can be handed to a child process: as its standard input or output (both ends
//! convert into [`std::process::Stdio`]) or through `fork`.
//!
//! ```
//! use std::io::{Read, Write};
//!
//! let (mut reader, mut writer) = ipcbox::pipe::new()?;
//! writer.write_all(b"hello")?;
//! drop(writer); // the last writer closes: the reader sees EOF after the data
//! let mut text = String::new();
//! reader.read_to_string(&mut text)?;
//! assert_eq!(text, "hello");
//! # Ok::<(), std::io::Error>(())
//! ```

use std::io::{self, IoSlice, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, IntoRawFd, OwnedFd, RawFd};

use rustix::pipe::{fcntl_getpipe_size, fcntl_setpipe_size, pipe_with, PipeFlags};

use crate::error::ResultExt;
use crate::sys;

/// Creates a pipe with the default [`Options`]: blocking, close-on-exec.
///
/// Wraps [`pipe2(2)`](https://man7.org/linux/man-pages/man2/pipe.2.html) with `O_CLOEXEC`.
///
/// # Errors
///
/// The OS error when the process or the system is out of file descriptors (`EMFILE`, `ENFILE`).
#[doc(alias = "pipe2")]
pub fn new() -> io::Result<(Reader, Writer)> {
    Options::new().create()
}

/// Options for a new pipe, like the flags of `pipe2`.
#[derive(Debug, Clone)]
pub struct Options {
    nonblocking: bool,
    cloexec: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options::new()
    }
}

impl Options {
    /// Blocking, close-on-exec: what [`new`] uses.
    pub fn new() -> Options {
        Options {
            nonblocking: false,
            cloexec: true,
        }
    }

    /// Opens both ends with `O_NONBLOCK`: reading an empty pipe or writing a full one fails
    /// with [`io::ErrorKind::WouldBlock`] instead of waiting.
    pub fn nonblocking(&mut self, on: bool) -> &mut Options {
        self.nonblocking = on;
        self
    }

    /// Opens both ends with `O_CLOEXEC` (the default): `exec` in a child closes them, so only
    /// the ends handed over on purpose reach a new program.
    pub fn cloexec(&mut self, on: bool) -> &mut Options {
        self.cloexec = on;
        self
    }

    /// Creates the pipe.
    ///
    /// # Errors
    ///
    /// The OS error when the process or the system is out of file descriptors.
    pub fn create(&self) -> io::Result<(Reader, Writer)> {
        let mut flags = PipeFlags::empty();
        if self.nonblocking {
            flags |= PipeFlags::NONBLOCK;
        }
        if self.cloexec {
            flags |= PipeFlags::CLOEXEC;
        }
        sys::signal::ignore_sigpipe_if_default()?;
        let (r, w) = pipe_with(flags).context_with(|| "create pipe")?;
        Ok((Reader(r), Writer(w)))
    }
}

/// The reading end of a pipe.
#[derive(Debug)]
pub struct Reader(OwnedFd);

/// The writing end of a pipe.
#[derive(Debug)]
pub struct Writer(OwnedFd);

macro_rules! pipe_end_common {
    ($ty:ident) => {
        impl $ty {
            /// The pipe's capacity in bytes (`F_GETPIPE_SZ`).
            ///
            /// # Errors
            ///
            /// The OS error from `fcntl`.
            pub fn capacity(&self) -> io::Result<usize> {
                fcntl_getpipe_size(&self.0).context_with(|| "query pipe capacity")
            }

            /// Resizes the pipe's buffer to at least `bytes` (`F_SETPIPE_SZ`) and returns the
            /// capacity the kernel chose (a power-of-two number of pages).
            ///
            /// # Errors
            ///
            /// [`io::ErrorKind::ResourceBusy`] if the pipe holds more data than `bytes`, and
            /// a permission error above `/proc/sys/fs/pipe-max-size` for an unprivileged
            /// process; the message names the size asked for.
            pub fn set_capacity(&self, bytes: usize) -> io::Result<usize> {
                fcntl_setpipe_size(&self.0, bytes)
                    .context_with(|| format!("resize pipe to {bytes} bytes"))
            }

            /// Switches `O_NONBLOCK` on or off for this end (shared with every duplicate of it).
            ///
            /// # Errors
            ///
            /// The OS error from `fcntl`.
            pub fn set_nonblocking(&self, on: bool) -> io::Result<()> {
                use rustix::fs::{fcntl_getfl, fcntl_setfl, OFlags};
                let mut flags = fcntl_getfl(&self.0)?;
                flags.set(OFlags::NONBLOCK, on);
                fcntl_setfl(&self.0, flags)?;
                Ok(())
            }

            /// Duplicates this end (`dup` with close-on-exec).
            ///
            /// # Errors
            ///
            /// The OS error when out of file descriptors.
            pub fn try_clone(&self) -> io::Result<$ty> {
                Ok($ty(self.0.try_clone()?))
            }
        }

        impl AsFd for $ty {
            fn as_fd(&self) -> BorrowedFd<'_> {
                self.0.as_fd()
            }
        }

        impl AsRawFd for $ty {
            fn as_raw_fd(&self) -> RawFd {
                self.0.as_raw_fd()
            }
        }

        impl IntoRawFd for $ty {
            fn into_raw_fd(self) -> RawFd {
                self.0.into_raw_fd()
            }
        }

        impl From<OwnedFd> for $ty {
            fn from(fd: OwnedFd) -> $ty {
                $ty(fd)
            }
        }

        impl From<$ty> for OwnedFd {
            fn from(end: $ty) -> OwnedFd {
                end.0
            }
        }

        impl From<$ty> for std::process::Stdio {
            fn from(end: $ty) -> std::process::Stdio {
                std::process::Stdio::from(end.0)
            }
        }
    };
}

pipe_end_common!(Reader);
pipe_end_common!(Writer);

impl Read for &Reader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        Ok(rustix::io::read(&self.0, buf)?)
    }
}

impl Read for Reader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }
}

impl Write for &Writer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(rustix::io::write(&self.0, buf)?)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        Ok(rustix::io::writev(&self.0, bufs)?)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Write for Writer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        (&*self).write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
