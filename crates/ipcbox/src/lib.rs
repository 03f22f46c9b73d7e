//! ipcbox: every classic inter-process communication mechanism behind one typed API.
//!
//! ipcbox wraps the operating system's own IPC objects — child processes, pipes, named pipes
//! (FIFOs), signals, files with advisory locks, sockets, shared memory, semaphores, message
//! queues — so that programs written in Python, C or the shell can take part, while Rust code
//! gets typed handles, explicit lifecycles and errors it can act on.
//!
//! # Which mechanism for which job
//!
//! | job | mechanism |
//! |---|---|
//! | start, watch and reap worker processes; shell pipelines (`ps aux \| grep x`); daemons | [`process`] |
//! | a byte stream from one process to a related one | [`pipe`] |
//! | typed messages over a pipe or socket, `multiprocessing.Pipe` (one wire format, `WIRE.md`) | [`frame`], [`codec`] |
//! | a byte stream between unrelated processes, shell peers (`echo > f`, `cat f`) | [`fifo`]: [`fifo::Fifo`], [`fifo::open_reader`], [`fifo::OpenOptions`] |
//! | synchronisation only, notification, timeouts for blocking calls | [`signal`]: [`signal::send`], [`signal::Signals`], [`signal::with_timeout`], [`signal::ChildExits`] |
//! | exchanging whole files, advisory locks | [`file`](mod@file): [`file::write_atomic`], [`file::Lock`] |
//! | connections by name or address, across hosts, fd passing, peer identity | [`socket`] |
//! | large data between processes without copying through the kernel (Python `shared_memory`, `posix_ipc`, `sysv_ipc` peers) | [`shm`] |
//! | a shared number or array of numbers with its lock, atomic counters (`multiprocessing.Value`/`Array`) | [`shm::Value`], [`shm::Array`] |
//! | locks that survive a dead owner, semaphores, events, barriers; `posix_ipc`/`sysv_ipc` semaphores | [`sync`] |
//! | typed messages among many producers and consumers, crash-safe; one-to-one at memory speed | [`queue`] |
//! | large messages written and read in place (no copy) or copied once into the caller's buffer | [`queue`]: [`queue::ByteQueue::put_with`], [`queue::channel::Sender::send_with`] ([Large messages](queue#large-messages)) |
//! | messages with priorities or types between unrelated processes, `posix_ipc` / `sysv_ipc` peers | [`mq`] |
//! | large immutable objects (arrays, tensors) published once and read in place by any process, like Plasma | [`shm::Store`] |
//! | waiting on several connections, queues, channels, message queues and children at once (`multiprocessing.connection.wait`) | [`wait()`]; every one of them is also `AsFd` for epoll or mio |
//! | the same mechanisms in async code on tokio (feature `tokio`) | `tokio`: async forms, tokio-util codecs, the queue without a thread per waiter |
//! | the Queue and typed messages across hosts, on NATS JetStream (feature `nats`) | `nats`: `nats::Queue`, `nats::Client` |
//! | finding objects left by crashed processes and removing those nobody uses (`ipcbox ls`, `ipcbox clean`) | [`objects`]: [`objects::list`], [`objects::Object::remove_if_unused`] |
//!
//! # A taste
//!
//! A worker process and its parent over a crash-safe queue in shared memory, created before
//! `fork` and inherited (a named queue works the same between unrelated processes):
//!
//! ```
//! use ipcbox::process::{self, Fork};
//! use ipcbox::Queue;
//!
//! let jobs: Queue<(u32, String)> = Queue::new(16)?;
//! // SAFETY: the child only uses the queue and then leaves with `exit_immediately`.
//! # #[allow(unsafe_code)]
//! match unsafe { process::fork()? } {
//!     Fork::Child => {
//!         let ok = jobs.put(&(7, "from the child".to_owned())).is_ok();
//!         process::exit_immediately(if ok { 0 } else { 1 });
//!     }
//!     Fork::Parent(mut child) => {
//!         assert_eq!(jobs.get().unwrap(), (7, "from the child".to_owned()));
//!         assert!(child.wait()?.success());
//!     }
//! }
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! `multiprocessing.Pipe()`: a duplex typed connection; the other end can go to a spawned
//! child ([`Connection::pass_to_child`]) or through `fork`:
//!
//! ```
//! let (mut a, mut b) = ipcbox::frame::duplex::<Vec<u32>>()?;
//! a.send(&vec![1, 2, 3]).unwrap();
//! assert_eq!(b.recv().unwrap(), [1, 2, 3]);
//! drop(a);
//! assert!(b.recv().is_err()); // Disconnected, the analogue of EOFError
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! `ps aux | grep python` as an API, with every stage's exit status:
//!
//! ```
//! use ipcbox::process::{Command, Pipeline};
//!
//! let mut printf = Command::new("printf");
//! printf.arg("a\\npython x\\nb\\n");
//! let mut grep = Command::new("grep");
//! grep.arg("python");
//! let out = Pipeline::new().stage(printf).stage(grep).output()?;
//! assert_eq!(out.stdout, b"python x\n");
//! assert!(out.statuses.iter().all(|s| s.success()));
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Outcomes
//!
//! Every call that may block has three forms: blocking (`recv`), `try_` (do not wait) and
//! `_timeout` (wait at most this long); the queue, the channel and [`Connection`] also have
//! `_deadline` (wait until this instant). One rule for what they return:
//!
//! * The `try_`, `_timeout` and `_deadline` forms return what the blocking form returns, with
//!   "not now" (empty, full, would block, timed out) as a value: `Ok(None)` where the blocking
//!   form returns a value, `Ok(false)` where it returns nothing, a count of 0 for a batch.
//! * Their error type is the blocking form's. An `Err` is always a failure: a closed or dead
//!   peer, bad input, a corrupted object, an OS error. So `?` never turns a timeout into one.
//! * Each error enum converts into [`std::io::Error`], its kind chosen by the variant.
//!
//! ```
//! use std::time::Duration;
//!
//! let q: ipcbox::Queue<u32> = ipcbox::Queue::new(1)?;
//! assert!(q.try_put(&1)?); // sent
//! assert!(!q.try_put(&2)?); // full: not now
//! assert_eq!(q.get_timeout(Duration::from_millis(1))?, Some(1));
//! assert_eq!(q.try_get()?, None); // empty: not now
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Named objects
//!
//! Shared-memory segments and everything built on them (stores, queues, channels, typed
//! values, named primitives), POSIX and System V semaphores and message queues, FIFOs and
//! socket files follow one rule:
//!
//! * **Creation mode.** An `Options::new()` with a creation mode starts at
//!   [`CreationMode::CreateExclusive`], as each type's `create` does: an existing name is an
//!   `AlreadyExists` error, never someone else's object taken for a new one. Each type's `open`
//!   opens an existing object; [`CreationMode::OpenOrCreate`] does either. (A socket has no
//!   creation mode: binding replaces only a dead listener's file, see
//!   [Socket files](socket#socket-files).)
//! * **Permissions.** The nine `rwx` bits for owner, group and others (higher bits are
//!   ignored), `0o600` (owner only) by default, set exactly as given: the umask does not
//!   narrow them (where the creating call applies it, ipcbox sets them again with `fchmod`).
//! * **Removal.** The creator removes the name when its handle is dropped, unless it detaches
//!   the handle, and only while the name still refers to the object it created: an object
//!   someone else has put under the name since is left alone.
//!
//! # Shared memory
//!
//! Every object ipcbox keeps in shared memory (locks, primitives, typed values, the store, the
//! queue, the channel) is laid out as `LAYOUT.md` in the repository describes, byte by byte, so
//! that peers in other languages can share it. Memory shared with another process is untrusted:
//! every offset, length and index read from it is checked before use.
//!
//! # Safety and unsafe code
//!
//! The crate denies `unsafe_code`. `unsafe` blocks live only in the private `sys` layer, which
//! makes the raw system calls that `rustix` does not cover; every block there states why it
//! holds. A public `unsafe fn` ([`process::fork`], [`process::daemonize`]) states its contract
//! in a `# Safety` section and calls straight into that layer.
//!
//! # Limitations
//!
//! * Linux only (it relies on `pipe2`, `pidfd`, `prctl`, `/proc`, futexes).
//! * `fork` in a multi-threaded program is only safe when the child restricts itself to
//!   async-signal-safe work; see [`process::fork`].
//! * Every lock ipcbox keeps in shared memory ([`sync::Mutex`], the locks of [`shm::Value`],
//!   [`shm::Array`], [`Queue`] and the object store) holds only its owner's thread or process
//!   ID and a tag of its start time, no pointers: a peer that overwrites one can break mutual
//!   exclusion or make operations wait or fail, never make ipcbox read or write outside a
//!   mapping. Owners are recognised through pidfds and `/proc`, so all peers must share a PID
//!   namespace. A new process or thread given a dead owner's ID passes for it when its start
//!   time equals the owner's modulo 511 clock ticks: always if it started in the same tick
//!   (10 ms), about once in 511 times otherwise (`LAYOUT.md`, "Lock words"). The lock then
//!   waits for it as for a live owner. Share locks only with trusted processes
//!   (owner-only permissions are the default). A program that `exec`s holding one of these
//!   locks (a [`sync::Mutex`] held by its main thread) keeps holding it until the new program
//!   exits: unlike glibc's robust mutexes, the kernel does not release them at `exec`.
//! * A peer that truncates a shared segment under a live mapping can make the next access
//!   raise `SIGBUS`; sizes are checked when a segment is opened, not on every access.
//! * System V message queues have no timed receive in the kernel: their `_timeout` forms poll
//!   with a short back-off (see [`mq::SysVQueue`]).

#![deny(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod deadline;
mod error;
mod ipc_key;
mod layout;
mod liveness;
mod mode;
mod name;
mod pid;
mod pid_lock;
mod robust;
mod signum;
mod spin;
mod sys;

pub mod codec;
pub mod fifo;
pub mod file;
pub mod frame;
pub mod mq;
#[cfg(feature = "nats")]
#[cfg_attr(docsrs, doc(cfg(feature = "nats")))]
pub mod nats;
pub mod objects;
pub mod pipe;
pub mod process;
pub mod queue;
pub mod shm;
pub mod signal;
pub mod socket;
pub mod store;
pub mod sync;
#[cfg(feature = "tokio")]
pub mod tokio;
pub mod wait;

pub use frame::Connection;
pub use ipc_key::IpcKey;
pub use mode::CreationMode;
pub use pid::Pid;
pub use queue::Queue;
pub use signum::Signal;
pub use wait::wait;

// The README's examples compile and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeDoctests;
