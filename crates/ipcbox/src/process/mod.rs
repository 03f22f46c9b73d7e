//! Child processes: spawning, waiting, reaping, exit statuses, pipelines.
//!
//! * [`Command`] starts a program (`fork` + `exec`, with the `PATH` search of `execvp`) with its
//!   standard streams redirected ([`Stdio`]: inherited, `/dev/null`, a new pipe, a file, an
//!   ipcbox pipe end), any other fd handed over at a chosen number ([`Command::pass_fd`]), a
//!   parent-death signal, its own process group or session, and kill-on-drop.
//! * [`Child`] waits for it: [`wait`](Child::wait), [`try_wait`](Child::try_wait) (`WNOHANG`,
//!   returns at once), [`wait_timeout`](Child::wait_timeout) (a `pidfd` and `poll`, no sleep
//!   loop), and [`wait_with_usage`](Child::wait_with_usage) (`wait4`: CPU time, peak memory).
//! * [`ExitStatus`] tells an exit code, a terminating signal and core dump, a stop or a
//!   continue, and prints itself like a shell would.
//! * [`WaitOptions`] waits for any child, a process group, or one child, including stops and
//!   continues (`WUNTRACED`, `WCONTINUED`); [`reap_all`] collects every finished child.
//! * [`Pipeline`] runs `ps aux | grep python` and reports every stage's status.
//! * [`fork`], [`exit_immediately`], [`daemonize`], [`set_child_subreaper`].
//!
//! ```
//! use ipcbox::process::{Command, Stdio};
//!
//! let out = Command::new("sh").args(["-c", "echo hi; exit 3"]).output()?;
//! assert_eq!(out.stdout, b"hi\n");
//! assert_eq!(out.status.code(), Some(3));
//! assert_eq!(out.status.to_string(), "exit code 3");
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Who reaps whom
//!
//! * A [`Child`] reaps only its own process, with `wait4` on its pid.
//! * [`wait_any`], [`reap_all`] and [`WaitOptions`] with [`WaitTarget::Any`] or a group reap
//!   whichever child of the *whole process* finished. That includes children a [`Child`] (or
//!   `std::process::Child`, or another library) is waiting for, whose own wait then fails
//!   with `ECHILD`. Use them in programs that own all their children.
//! * A [`Child`] sends signals through a pidfd, so a child reaped behind its back is never
//!   confused with a new process that reused its pid.
//!
//! # Limitations
//!
//! * Linux 5.3 or later: every [`Child`] holds a pidfd (`pidfd_open`).
//! * [`fork`] and [`daemonize`] are `unsafe`: in a multi-threaded process the child may only
//!   do async-signal-safe work (see their `# Safety` sections).
//! * A wait for any child or a process group ([`WaitOptions`]) has no timeout form: Linux has
//!   no pollable handle for them. [`Child::wait_timeout`] bounds the wait for one child.

mod child;
mod command;
mod fork;
mod pipeline;
mod status;
mod stdio;
mod wait;

pub use crate::pid::Pid;
pub use child::Child;
pub use command::{Command, Output};
pub use fork::{daemonize, exit_immediately, fork, Fork};
pub use pipeline::{Pipeline, PipelineOutput, RunningPipeline};
pub use status::{ExitStatus, ResourceUsage};
pub use stdio::Stdio;
pub use wait::{
    is_child_subreaper, reap_all, set_child_subreaper, wait_any, WaitOptions, WaitTarget, Waited,
};
