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
//! A [`Child`] reaps its own process with `wait4` on its pid. [`wait_any`], [`reap_all`] and
//! [`WaitOptions`] with [`WaitTarget::Any`] or a group reap whichever child of the *whole
//! process* finished, including children a [`Child`] (or `std::process::Child`, or another
//! library) is waiting for; that `Child`'s own wait then fails with `ECHILD`. Use them in
//! programs that own all their children. Signals are sent through a pidfd, so a child reaped
//! behind a [`Child`]'s back is never confused with a new process that reused its pid.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::process::{pidfd_open, PidfdFlags};

use crate::error::{context, invalid_input, ResultExt};
use crate::pipe;
use crate::signal::Signal;
use crate::sys;
use crate::sys::process::ChildSetup;

/// A process ID (a positive `pid_t`), or a process group ID where a function says so.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Pid(i32);

impl Pid {
    /// The process ID `raw`.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::InvalidInput`] when `raw` is not positive: 0 and negative numbers
    /// mean "my process group" and "a process group" to `kill(2)` and `waitpid(2)`, and ipcbox
    /// spells those out instead.
    pub fn from_raw(raw: i32) -> io::Result<Pid> {
        if raw > 0 {
            Ok(Pid(raw))
        } else {
            Err(invalid_input(format_args!(
                "invalid process ID {raw}: must be positive"
            )))
        }
    }

    /// The ID of the calling process (`getpid`).
    #[doc(alias = "getpid")]
    pub fn this() -> Pid {
        Pid(rustix::process::getpid().as_raw_nonzero().get())
    }

    /// The ID of the calling process's parent (`getppid`); `None` if it has none in this PID
    /// namespace.
    #[doc(alias = "getppid")]
    pub fn parent() -> Option<Pid> {
        rustix::process::getppid().map(|p| Pid(p.as_raw_nonzero().get()))
    }

    /// The number.
    pub const fn as_raw(self) -> i32 {
        self.0
    }
}

impl fmt::Debug for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pid({})", self.0)
    }
}

impl fmt::Display for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

// ---------------------------------------------------------------------------------------------
// Standard streams

/// What a child's stdin, stdout or stderr is connected to.
///
/// Converts from a [`pipe::Reader`] or [`pipe::Writer`], a [`File`] or any [`OwnedFd`]. The
/// [`Command`] hands such an fd to the child at the next spawn and then closes its own copy,
/// so a reader in the parent sees end of file when the child (the only writer left) exits.
#[derive(Debug)]
pub struct Stdio(StdioKind);

#[derive(Debug)]
enum StdioKind {
    Inherit,
    Null,
    Piped,
    Fd(OwnedFd),
    HandedOver,
}

impl Stdio {
    /// The child shares the parent's stream (the default of [`Command::spawn`]).
    pub fn inherit() -> Stdio {
        Stdio(StdioKind::Inherit)
    }

    /// The child's stream is `/dev/null`: reads see end of file, writes are discarded.
    pub fn null() -> Stdio {
        Stdio(StdioKind::Null)
    }

    /// A new pipe whose other end appears in [`Child::stdin`], [`Child::stdout`] or
    /// [`Child::stderr`].
    pub fn piped() -> Stdio {
        Stdio(StdioKind::Piped)
    }
}

impl From<OwnedFd> for Stdio {
    fn from(fd: OwnedFd) -> Stdio {
        Stdio(StdioKind::Fd(fd))
    }
}

impl From<File> for Stdio {
    fn from(file: File) -> Stdio {
        Stdio::from(OwnedFd::from(file))
    }
}

impl From<pipe::Reader> for Stdio {
    fn from(end: pipe::Reader) -> Stdio {
        Stdio::from(OwnedFd::from(end))
    }
}

impl From<pipe::Writer> for Stdio {
    fn from(end: pipe::Writer) -> Stdio {
        Stdio::from(OwnedFd::from(end))
    }
}

/// The stream setting used when a [`Command`] leaves one unset.
#[derive(Clone, Copy)]
enum Fallback {
    Inherit,
    Null,
    Piped,
}

// ---------------------------------------------------------------------------------------------
// Command

/// A program to start, with its arguments, environment and setup — like
/// [`std::process::Command`], which it uses for `fork`/`exec`, the `PATH` search and reporting
/// an `exec` failure back to the parent.
///
/// Wraps [`fork(2)`](https://man7.org/linux/man-pages/man2/fork.2.html) and
/// [`execvp(3)`](https://man7.org/linux/man-pages/man3/exec.3.html).
///
/// ```
/// use std::io::Read;
/// use ipcbox::process::{Command, Stdio};
///
/// let mut child = Command::new("echo").arg("hello").stdout(Stdio::piped()).spawn()?;
/// let mut text = String::new();
/// child.stdout.take().unwrap().read_to_string(&mut text)?;
/// assert!(child.wait()?.success());
/// assert_eq!(text, "hello\n");
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct Command {
    program: OsString,
    args: Vec<OsString>,
    env_clear: bool,
    envs: Vec<(OsString, Option<OsString>)>,
    cwd: Option<PathBuf>,
    stdin: Option<Stdio>,
    stdout: Option<Stdio>,
    stderr: Option<Stdio>,
    process_group: Option<i32>,
    new_session: bool,
    death_signal: Option<Signal>,
    kill_on_drop: bool,
    fds: Vec<(OwnedFd, RawFd)>,
    fds_handed_over: bool,
}

impl Command {
    /// A command that runs `program`: a path if it contains a `/`, else a name looked up in
    /// `PATH`.
    pub fn new(program: impl AsRef<OsStr>) -> Command {
        Command {
            program: program.as_ref().to_owned(),
            args: Vec::new(),
            env_clear: false,
            envs: Vec::new(),
            cwd: None,
            stdin: None,
            stdout: None,
            stderr: None,
            process_group: None,
            new_session: false,
            death_signal: None,
            kill_on_drop: false,
            fds: Vec::new(),
            fds_handed_over: false,
        }
    }

    /// Adds one argument.
    pub fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut Command {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    /// Adds arguments.
    pub fn args<I, S>(&mut self, args: I) -> &mut Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Sets an environment variable for the child.
    pub fn env(&mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> &mut Command {
        self.envs
            .push((key.as_ref().to_owned(), Some(value.as_ref().to_owned())));
        self
    }

    /// Removes an environment variable from the child's environment.
    pub fn env_remove(&mut self, key: impl AsRef<OsStr>) -> &mut Command {
        self.envs.push((key.as_ref().to_owned(), None));
        self
    }

    /// Starts the child with an empty environment (plus what [`env`](Command::env) adds).
    pub fn env_clear(&mut self) -> &mut Command {
        self.env_clear = true;
        self.envs.clear();
        self
    }

    /// The child's working directory (`chdir` before `exec`).
    pub fn current_dir(&mut self, dir: impl AsRef<Path>) -> &mut Command {
        self.cwd = Some(dir.as_ref().to_owned());
        self
    }

    /// The child's standard input.
    pub fn stdin(&mut self, stdio: impl Into<Stdio>) -> &mut Command {
        self.stdin = Some(stdio.into());
        self
    }

    /// The child's standard output.
    pub fn stdout(&mut self, stdio: impl Into<Stdio>) -> &mut Command {
        self.stdout = Some(stdio.into());
        self
    }

    /// The child's standard error.
    pub fn stderr(&mut self, stdio: impl Into<Stdio>) -> &mut Command {
        self.stderr = Some(stdio.into());
        self
    }

    /// Puts the child in a new process group whose ID is its own pid (`setpgid(0, 0)`), as a
    /// shell does for a job; wait for the group with [`WaitTarget::Group`], signal it with
    /// `kill(-pgid)`.
    #[doc(alias = "setpgid")]
    pub fn new_process_group(&mut self, on: bool) -> &mut Command {
        self.process_group = on.then_some(0);
        self
    }

    /// Puts the child in the existing process group `pgid` (`setpgid(0, pgid)`).
    pub fn join_process_group(&mut self, pgid: Pid) -> &mut Command {
        self.process_group = Some(pgid.as_raw());
        self
    }

    /// Starts the child in a new session (`setsid`), detached from the controlling terminal.
    /// It then also leads a new process group of its own, so
    /// [`new_process_group`](Command::new_process_group) changes nothing, and
    /// [`join_process_group`](Command::join_process_group) makes spawning fail.
    #[doc(alias = "setsid")]
    pub fn new_session(&mut self, on: bool) -> &mut Command {
        self.new_session = on;
        self
    }

    /// Asks the kernel to send `signal` to the child when its parent dies
    /// (`prctl(PR_SET_PDEATHSIG)`), so a worker does not outlive a crashed supervisor.
    ///
    /// "Parent" is the *thread* that spawned the child: spawn from a thread that lives as long
    /// as the process. The setting is cleared when the child execs a set-user-ID program. If
    /// the parent has already died when the child sets it up, the child signals itself.
    #[doc(alias = "PR_SET_PDEATHSIG")]
    pub fn parent_death_signal(&mut self, signal: Signal) -> &mut Command {
        self.death_signal = Some(signal);
        self
    }

    /// Kills (`SIGKILL`) and reaps the child when its [`Child`] is dropped without having been
    /// waited for. Off by default: a dropped `Child` keeps running (and stays a zombie after it
    /// exits until this process reaps it or exits).
    pub fn kill_on_drop(&mut self, on: bool) -> &mut Command {
        self.kill_on_drop = on;
        self
    }

    /// Hands `fd` to the child as its file descriptor number `child_fd` (`dup2` between fork
    /// and exec), for a pipe end, a socket or a file the child expects at a known number.
    /// Setting 0, 1 or 2 overrides [`stdin`](Command::stdin) and the others. Passing another
    /// fd at the same `child_fd` replaces the earlier one, which is closed.
    ///
    /// The next [`spawn`](Command::spawn) hands the fd over and closes the command's copy (so
    /// a reader sees end of file when the child is done); pass it again to spawn again.
    ///
    /// ```
    /// use std::io::Read;
    /// use ipcbox::{pipe, process::Command};
    ///
    /// let (mut reader, writer) = pipe::new()?;
    /// let mut child = Command::new("sh").args(["-c", "echo via fd 5 >&5"]).pass_fd(writer, 5).spawn()?;
    /// let mut text = String::new();
    /// reader.read_to_string(&mut text)?; // EOF: the child was the last writer
    /// child.wait()?;
    /// assert_eq!(text, "via fd 5\n");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[doc(alias = "dup2")]
    pub fn pass_fd(&mut self, fd: impl Into<OwnedFd>, child_fd: RawFd) -> &mut Command {
        self.fds.retain(|(_, dst)| *dst != child_fd);
        self.fds.push((fd.into(), child_fd));
        self.fds_handed_over = false;
        self
    }

    /// The program as given to [`new`](Command::new).
    pub fn program(&self) -> &OsStr {
        &self.program
    }

    fn name(&self) -> String {
        format!("{:?}", self.program)
    }

    /// Builds the std command for one spawn or exec. `overrides` replace the command's own
    /// streams for this spawn only (a pipeline's links); `defaults` apply to unset ones.
    fn build(
        &self,
        defaults: [Fallback; 3],
        mut overrides: [Option<OwnedFd>; 3],
        for_exec: bool,
    ) -> io::Result<std::process::Command> {
        if self.fds_handed_over {
            return Err(invalid_input(format_args!(
                "{}: the file descriptors given to pass_fd were handed to an earlier spawn; pass them again",
                self.name()
            )));
        }
        let mut cmd = std::process::Command::new(&self.program);
        cmd.args(&self.args);
        if self.env_clear {
            cmd.env_clear();
        }
        for (key, value) in &self.envs {
            match value {
                Some(value) => cmd.env(key, value),
                None => cmd.env_remove(key),
            };
        }
        if let Some(dir) = &self.cwd {
            cmd.current_dir(dir);
        }
        let streams = [&self.stdin, &self.stdout, &self.stderr];
        let names = ["stdin", "stdout", "stderr"];
        for i in 0..3 {
            if let Some(fd) = overrides[i].take() {
                let stdio = std::process::Stdio::from(fd);
                match i {
                    0 => cmd.stdin(stdio),
                    1 => cmd.stdout(stdio),
                    _ => cmd.stderr(stdio),
                };
                continue;
            }
            let stdio = match streams[i].as_ref().map(|s| &s.0) {
                None => match defaults[i] {
                    Fallback::Inherit => std::process::Stdio::inherit(),
                    Fallback::Null => std::process::Stdio::null(),
                    Fallback::Piped => std::process::Stdio::piped(),
                },
                Some(StdioKind::Inherit) => std::process::Stdio::inherit(),
                Some(StdioKind::Null) => std::process::Stdio::null(),
                Some(StdioKind::Piped) => std::process::Stdio::piped(),
                Some(StdioKind::Fd(fd)) => std::process::Stdio::from(
                    fd.try_clone()
                        .context_with(|| format!("duplicate {} for {}", names[i], self.name()))?,
                ),
                Some(StdioKind::HandedOver) => {
                    return Err(invalid_input(format_args!(
                        "{}: its {} was handed to an earlier spawn; set it again",
                        self.name(),
                        names[i]
                    )))
                }
            };
            match i {
                0 => cmd.stdin(stdio),
                1 => cmd.stdout(stdio),
                _ => cmd.stderr(stdio),
            };
        }
        let process_group = match (self.new_session, self.process_group) {
            // `setsid` makes the child the leader of a new group of its own anyway, and a
            // `setpgid` before it (std runs it first) would make it fail with EPERM.
            (true, Some(0)) => None,
            (true, Some(pgid)) => {
                return Err(invalid_input(format_args!(
                    "{}: cannot both start a new session and join process group {pgid}",
                    self.name()
                )))
            }
            (_, group) => group,
        };
        if let Some(pgid) = process_group {
            std::os::unix::process::CommandExt::process_group(&mut cmd, pgid);
        }
        if let Some((_, bad)) = self.fds.iter().find(|(_, dst)| *dst < 0) {
            return Err(invalid_input(format_args!(
                "{}: cannot pass a file descriptor as number {bad}",
                self.name()
            )));
        }
        // Numbers at or above RLIMIT_NOFILE cannot be opened (dup2 fails with EBADF in the
        // child), and the temporary copies go above the highest number: say so here.
        let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile)
            .current
            .map_or(i32::MAX, |l| i32::try_from(l).unwrap_or(i32::MAX));
        if let Some((_, bad)) = self.fds.iter().find(|(_, dst)| *dst >= limit - 1) {
            return Err(invalid_input(format_args!(
                "{}: cannot pass a file descriptor as number {bad}: the limit of open files \
                 (RLIMIT_NOFILE) is {limit}",
                self.name()
            )));
        }
        let fds: Vec<(RawFd, RawFd)> = self
            .fds
            .iter()
            .map(|(fd, dst)| (fd.as_raw_fd(), *dst))
            .collect();
        let scratch_base = fds
            .iter()
            .flat_map(|&(a, b)| [a, b])
            .max()
            .map_or(3, |m| m.saturating_add(1).max(3));
        ChildSetup {
            // After an exec, "the parent" is this process's parent.
            death_signal: self.death_signal.map(|s| {
                let parent = if for_exec {
                    Pid::parent().map_or(0, Pid::as_raw)
                } else {
                    Pid::this().as_raw()
                };
                (s.as_raw(), parent)
            }),
            fds,
            scratch_base,
            new_session: self.new_session,
        }
        .install(&mut cmd);
        Ok(cmd)
    }

    fn spawn_with(
        &mut self,
        defaults: [Fallback; 3],
        overrides: [Option<OwnedFd>; 3],
    ) -> io::Result<Child> {
        let mut cmd = self.build(defaults, overrides, false)?;
        let mut std_child = cmd
            .spawn()
            .context_with(|| format!("spawn {}", self.name()))?;
        // The std command holds duplicates of the fds handed over; close them now.
        drop(cmd);
        for stream in [&mut self.stdin, &mut self.stdout, &mut self.stderr] {
            if let Some(Stdio(kind @ StdioKind::Fd(_))) = stream {
                *kind = StdioKind::HandedOver;
            }
        }
        if !self.fds.is_empty() {
            self.fds.clear();
            self.fds_handed_over = true;
        }
        let stdin = std_child
            .stdin
            .take()
            .map(|s| pipe::Writer::from(OwnedFd::from(s)));
        let stdout = std_child
            .stdout
            .take()
            .map(|s| pipe::Reader::from(OwnedFd::from(s)));
        let stderr = std_child
            .stderr
            .take()
            .map(|s| pipe::Reader::from(OwnedFd::from(s)));
        let raw = i32::try_from(std_child.id())
            .map_err(|_| io::Error::other("spawned child has an out-of-range pid"))?;
        // std's Child is dropped without waiting; we reap the pid ourselves.
        drop(std_child);
        let mut child = Child::adopt(Pid::from_raw(raw)?, self.kill_on_drop)?;
        child.stdin = stdin;
        child.stdout = stdout;
        child.stderr = stderr;
        Ok(child)
    }

    /// Starts the child. Unset streams are inherited.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::NotFound`] when the program does not exist (the message names it),
    /// [`io::ErrorKind::PermissionDenied`] when it is not executable, and any error of the
    /// setup in the child (`chdir`, `setpgid`, `prctl`, `dup2`), reported before `spawn`
    /// returns.
    #[doc(alias = "fork")]
    #[doc(alias = "execvp")]
    pub fn spawn(&mut self) -> io::Result<Child> {
        self.spawn_with([Fallback::Inherit; 3], [None, None, None])
    }

    /// Runs the child to completion and collects its stdout and stderr. Unset streams: stdin
    /// is `/dev/null`, stdout and stderr are captured.
    ///
    /// # Errors
    ///
    /// As for [`spawn`](Command::spawn), and read or wait errors.
    pub fn output(&mut self) -> io::Result<Output> {
        let mut child = self.spawn_with(
            [Fallback::Null, Fallback::Piped, Fallback::Piped],
            [None, None, None],
        )?;
        drop(child.stdin.take());
        let (stdout, stderr) = match read_both(child.stdout.take(), child.stderr.take()) {
            Ok(both) => both,
            Err(e) => {
                // Leave no child running or unreaped behind the error.
                let _ = child.kill();
                let _ = child.wait();
                return Err(context(
                    e,
                    format_args!("read the output of {}", self.name()),
                ));
            }
        };
        let status = child.wait()?;
        Ok(Output {
            status,
            stdout,
            stderr,
        })
    }

    /// Runs the child to completion with inherited streams and returns its status.
    ///
    /// # Errors
    ///
    /// As for [`spawn`](Command::spawn) and [`Child::wait`].
    pub fn status(&mut self) -> io::Result<ExitStatus> {
        self.spawn()?.wait()
    }

    /// Replaces this process's image with the program (`execvp`), after the same setup a
    /// child would get. Returns only on failure. Other threads vanish with the old image.
    ///
    /// A parent-death signal set here applies to this process. If the exec fails, part of the
    /// setup may already have been applied to this process: streams redirected, the working
    /// directory changed, and (by std) the signal mask cleared and `SIGPIPE` reset to its
    /// default.
    ///
    /// # Errors
    ///
    /// The returned error names the program: [`io::ErrorKind::NotFound`] when it is not
    /// found in `PATH`, or the error of a setup step.
    #[doc(alias = "execvp")]
    #[doc(alias = "execlp")]
    pub fn exec(&mut self) -> io::Error {
        match self.build([Fallback::Inherit; 3], [None, None, None], true) {
            Ok(mut cmd) => context(
                sys::process::exec(&mut cmd),
                format_args!("exec {}", self.name()),
            ),
            Err(e) => e,
        }
    }
}

/// Reads two pipes to end of file at the same time (`poll`), so a child that fills one while
/// the parent reads the other cannot deadlock.
fn read_both(
    out: Option<pipe::Reader>,
    err: Option<pipe::Reader>,
) -> io::Result<(Vec<u8>, Vec<u8>)> {
    let mut bufs = (Vec::new(), Vec::new());
    let mut ends = [out, err];
    for end in ends.iter().flatten() {
        end.set_nonblocking(true)?;
    }
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let open: Vec<usize> = (0..2).filter(|&i| ends[i].is_some()).collect();
        if open.is_empty() {
            return Ok(bufs);
        }
        let mut pfds: Vec<PollFd<'_>> = open
            .iter()
            .filter_map(|&i| ends[i].as_ref())
            .map(|e| PollFd::new(e, PollFlags::IN))
            .collect();
        match poll(&mut pfds, None) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
        let ready: Vec<bool> = pfds.iter().map(|p| !p.revents().is_empty()).collect();
        drop(pfds);
        for (k, &i) in open.iter().enumerate() {
            if !ready[k] {
                continue;
            }
            let Some(end) = ends[i].as_mut() else {
                continue;
            };
            match end.read(&mut chunk) {
                Ok(0) => ends[i] = None,
                Ok(n) => {
                    let buf = if i == 0 { &mut bufs.0 } else { &mut bufs.1 };
                    buf.extend_from_slice(&chunk[..n]);
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// A finished child's status and everything it wrote to stdout and stderr.
#[derive(Debug, Clone)]
pub struct Output {
    /// How it ended.
    pub status: ExitStatus,
    /// Its standard output.
    pub stdout: Vec<u8>,
    /// Its standard error.
    pub stderr: Vec<u8>,
}

// ---------------------------------------------------------------------------------------------
// Child

/// A child process of this process, which this handle reaps.
///
/// Holds a pidfd (`pidfd_open`) for signals and timed waits; it is also what
/// [`AsFd`] gives, for an event loop (readable when the child has exited).
#[derive(Debug)]
pub struct Child {
    pid: Pid,
    pidfd: OwnedFd,
    reaped: Option<(ExitStatus, ResourceUsage)>,
    kill_on_drop: bool,
    /// The writing end of the child's stdin, if it was [`Stdio::piped`].
    pub stdin: Option<pipe::Writer>,
    /// The reading end of the child's stdout, if it was [`Stdio::piped`].
    pub stdout: Option<pipe::Reader>,
    /// The reading end of the child's stderr, if it was [`Stdio::piped`].
    pub stderr: Option<pipe::Reader>,
}

impl Child {
    /// Takes charge of `pid`, an unreaped child of this process.
    pub(crate) fn adopt(pid: Pid, kill_on_drop: bool) -> io::Result<Child> {
        let rpid =
            rustix::process::Pid::from_raw(pid.as_raw()).ok_or_else(|| invalid_input("pid 0"))?;
        let pidfd = match pidfd_open(rpid, PidfdFlags::empty()) {
            Ok(fd) => fd,
            Err(e) => {
                // Still our unreaped child, so the pid cannot have been reused.
                let _ = sys::process::kill(pid.as_raw(), libc::SIGKILL);
                let _ = sys::process::wait4(pid.as_raw(), 0);
                return Err(context(e, format_args!("pidfd_open for child {pid}")));
            }
        };
        Ok(Child {
            pid,
            pidfd,
            reaped: None,
            kill_on_drop,
            stdin: None,
            stdout: None,
            stderr: None,
        })
    }

    /// The child's process ID.
    pub fn pid(&self) -> Pid {
        self.pid
    }

    fn wait_raw(&mut self, options: i32) -> io::Result<Option<(ExitStatus, ResourceUsage)>> {
        if let Some(done) = self.reaped {
            return Ok(Some(done));
        }
        let got = sys::process::wait4(self.pid.as_raw(), options)
            .context_with(|| format!("wait for child {}", self.pid))?;
        Ok(got.map(|r| {
            let done = (ExitStatus(r.status), ResourceUsage::from_raw(&r.usage));
            if done.0.terminated() {
                self.reaped = Some(done);
            }
            done
        }))
    }

    /// Waits until the child terminates and reaps it (`wait4(pid, 0)`). Closes nothing: drop
    /// [`stdin`](Child::stdin) first if the child reads it to the end. Once reaped, every wait
    /// returns the same status.
    ///
    /// # Errors
    ///
    /// `ECHILD` if the child was reaped by someone else (e.g. [`reap_all`]).
    #[doc(alias = "waitpid")]
    pub fn wait(&mut self) -> io::Result<ExitStatus> {
        Ok(self.wait_with_usage()?.0)
    }

    /// Like [`wait`](Child::wait), and also returns the child's resource usage (`wait4`).
    ///
    /// # Errors
    ///
    /// As for [`wait`](Child::wait).
    #[doc(alias = "wait4")]
    pub fn wait_with_usage(&mut self) -> io::Result<(ExitStatus, ResourceUsage)> {
        loop {
            if let Some(done) = self.wait_raw(0)? {
                return Ok(done);
            }
        }
    }

    /// Reaps the child if it has terminated, else returns `Ok(None)` at once (`WNOHANG`).
    ///
    /// # Errors
    ///
    /// As for [`wait`](Child::wait).
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        Ok(self.wait_raw(libc::WNOHANG)?.map(|d| d.0))
    }

    /// Waits at most `timeout` for the child to terminate: `Ok(None)` if it is still running
    /// then. Sleeps in `poll` on the child's pidfd (woken by its exit), never in a loop.
    ///
    /// # Errors
    ///
    /// As for [`wait`](Child::wait).
    pub fn wait_timeout(&mut self, timeout: Duration) -> io::Result<Option<ExitStatus>> {
        let Some(deadline) = Instant::now().checked_add(timeout) else {
            return self.wait().map(Some);
        };
        loop {
            if let Some(status) = self.try_wait()? {
                return Ok(Some(status));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            let ts = Timespec {
                tv_sec: left.as_secs().try_into().unwrap_or(i64::MAX),
                tv_nsec: left.subsec_nanos().into(),
            };
            let mut pfd = [PollFd::new(&self.pidfd, PollFlags::IN)];
            match poll(&mut pfd, Some(&ts)) {
                Ok(_) | Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(context(e, format_args!("poll pidfd of child {}", self.pid))),
            }
        }
    }

    /// Waits for a state change [`WaitOptions`] asks about: termination, and a stop or a
    /// continue if enabled. A termination reaps the child.
    ///
    /// # Errors
    ///
    /// As for [`wait`](Child::wait).
    pub fn wait_with(&mut self, options: &WaitOptions) -> io::Result<ExitStatus> {
        loop {
            if let Some(done) = self.wait_raw(options.flags())? {
                return Ok(done.0);
            }
        }
    }

    /// Like [`wait_with`](Child::wait_with) but returns `Ok(None)` at once if nothing changed.
    ///
    /// # Errors
    ///
    /// As for [`wait`](Child::wait).
    pub fn try_wait_with(&mut self, options: &WaitOptions) -> io::Result<Option<ExitStatus>> {
        Ok(self.wait_raw(options.flags() | libc::WNOHANG)?.map(|d| d.0))
    }

    /// Sends `signal` to the child (`pidfd_send_signal`).
    ///
    /// # Errors
    ///
    /// An error naming the pid when the child has already been reaped or the signal cannot be
    /// sent.
    #[doc(alias = "kill")]
    #[doc(alias = "pidfd_send_signal")]
    pub fn signal(&self, signal: Signal) -> io::Result<()> {
        if self.reaped.is_some() {
            return Err(invalid_input(format_args!(
                "cannot send {signal} to child {}: it was already reaped",
                self.pid
            )));
        }
        sys::process::pidfd_send_signal(&self.pidfd, signal.as_raw())
            .context_with(|| format!("send {signal} to child {}", self.pid))
    }

    /// Kills the child with `SIGKILL`; does nothing if it has already exited. Does not reap:
    /// call [`wait`](Child::wait) afterwards.
    ///
    /// # Errors
    ///
    /// When the signal cannot be sent.
    pub fn kill(&self) -> io::Result<()> {
        if self.reaped.is_some() {
            return Ok(());
        }
        match sys::process::pidfd_send_signal(&self.pidfd, libc::SIGKILL) {
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(()),
            r => r.context_with(|| format!("kill child {}", self.pid)),
        }
    }
}

impl AsFd for Child {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.pidfd.as_fd()
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if self.kill_on_drop && self.reaped.is_none() {
            let _ = self.kill();
            let _ = self.wait();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Statuses and usage

/// How a child ended, or changed state: the raw status word of `waitpid(2)`.
///
/// Displays like a shell reports it: `exit code 3`, `killed by SIGKILL`,
/// `killed by SIGSEGV (core dumped)`, `stopped by SIGSTOP`, `continued`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ExitStatus(i32);

impl ExitStatus {
    /// The status from a raw `waitpid` status word.
    pub const fn from_raw(raw: i32) -> ExitStatus {
        ExitStatus(raw)
    }

    /// The raw status word.
    pub const fn raw(self) -> i32 {
        self.0
    }

    /// The exit code, if the child exited (`WIFEXITED`, `WEXITSTATUS`).
    pub fn code(self) -> Option<i32> {
        libc::WIFEXITED(self.0).then(|| libc::WEXITSTATUS(self.0))
    }

    /// Exited with code 0.
    pub fn success(self) -> bool {
        self.code() == Some(0)
    }

    /// The signal that terminated the child (`WIFSIGNALED`, `WTERMSIG`).
    pub fn signal(self) -> Option<Signal> {
        libc::WIFSIGNALED(self.0)
            .then(|| Signal::from_raw(libc::WTERMSIG(self.0)).ok())
            .flatten()
    }

    /// The child was terminated by a signal and dumped core (`WCOREDUMP`). False when core
    /// dumps are disabled (`RLIMIT_CORE` of 0, an unwritable directory).
    pub fn core_dumped(self) -> bool {
        libc::WIFSIGNALED(self.0) && libc::WCOREDUMP(self.0)
    }

    /// The signal that stopped the child (`WIFSTOPPED`, `WSTOPSIG`); reported only to waits
    /// with [`WaitOptions::stopped`].
    pub fn stopped_signal(self) -> Option<Signal> {
        libc::WIFSTOPPED(self.0)
            .then(|| Signal::from_raw(libc::WSTOPSIG(self.0)).ok())
            .flatten()
    }

    /// The child was resumed by `SIGCONT` (`WIFCONTINUED`); reported only to waits with
    /// [`WaitOptions::continued`].
    pub fn continued(self) -> bool {
        libc::WIFCONTINUED(self.0)
    }

    /// The child exited or was killed (as opposed to stopped or continued).
    pub fn terminated(self) -> bool {
        libc::WIFEXITED(self.0) || libc::WIFSIGNALED(self.0)
    }

    /// The number a shell's `$?` shows: the exit code, or 128 + the signal number.
    pub fn shell_code(self) -> i32 {
        if libc::WIFSIGNALED(self.0) {
            128 + libc::WTERMSIG(self.0)
        } else {
            libc::WEXITSTATUS(self.0)
        }
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = *self;
        if let Some(code) = s.code() {
            write!(f, "exit code {code}")
        } else if libc::WIFSIGNALED(s.0) {
            match s.signal() {
                Some(sig) => write!(f, "killed by {sig}")?,
                None => write!(f, "killed by signal {}", libc::WTERMSIG(s.0))?,
            }
            if s.core_dumped() {
                write!(f, " (core dumped)")?;
            }
            Ok(())
        } else if libc::WIFSTOPPED(s.0) {
            match s.stopped_signal() {
                Some(sig) => write!(f, "stopped by {sig}"),
                None => write!(f, "stopped by signal {}", libc::WSTOPSIG(s.0)),
            }
        } else if s.continued() {
            write!(f, "continued")
        } else {
            write!(f, "unknown wait status {:#x}", s.0)
        }
    }
}

impl fmt::Debug for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ExitStatus({self})")
    }
}

/// Resources a child used, as `wait4(2)` reports them (`struct rusage`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResourceUsage {
    user_time: Duration,
    system_time: Duration,
    max_rss_kib: u64,
    minor_faults: u64,
    major_faults: u64,
    voluntary_switches: u64,
    involuntary_switches: u64,
}

fn timeval(tv: libc::timeval) -> Duration {
    Duration::new(
        u64::try_from(tv.tv_sec).unwrap_or(0),
        u32::try_from(tv.tv_usec).unwrap_or(0).min(999_999) * 1000,
    )
}

impl ResourceUsage {
    fn from_raw(ru: &libc::rusage) -> ResourceUsage {
        let n = |v: libc::c_long| u64::try_from(v).unwrap_or(0);
        ResourceUsage {
            user_time: timeval(ru.ru_utime),
            system_time: timeval(ru.ru_stime),
            max_rss_kib: n(ru.ru_maxrss),
            minor_faults: n(ru.ru_minflt),
            major_faults: n(ru.ru_majflt),
            voluntary_switches: n(ru.ru_nvcsw),
            involuntary_switches: n(ru.ru_nivcsw),
        }
    }

    /// CPU time spent in user mode (`ru_utime`).
    pub fn user_time(&self) -> Duration {
        self.user_time
    }

    /// CPU time spent in the kernel (`ru_stime`).
    pub fn system_time(&self) -> Duration {
        self.system_time
    }

    /// Peak resident set size in KiB (`ru_maxrss`).
    pub fn max_rss_kib(&self) -> u64 {
        self.max_rss_kib
    }

    /// Page faults served without I/O (`ru_minflt`).
    pub fn minor_faults(&self) -> u64 {
        self.minor_faults
    }

    /// Page faults that needed I/O (`ru_majflt`).
    pub fn major_faults(&self) -> u64 {
        self.major_faults
    }

    /// Times the child gave up the CPU to wait (`ru_nvcsw`).
    pub fn voluntary_context_switches(&self) -> u64 {
        self.voluntary_switches
    }

    /// Times the child was preempted (`ru_nivcsw`).
    pub fn involuntary_context_switches(&self) -> u64 {
        self.involuntary_switches
    }
}

// ---------------------------------------------------------------------------------------------
// Waiting for any child or a group

/// Which children a wait is about (the `pid` argument of `waitpid(2)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitTarget {
    /// Any child (`-1`).
    Any,
    /// This one child.
    Pid(Pid),
    /// Any child in the caller's process group (`0`).
    SameGroup,
    /// Any child in process group `pgid` (`-pgid`).
    Group(Pid),
}

impl WaitTarget {
    fn raw(self) -> i32 {
        match self {
            WaitTarget::Any => -1,
            WaitTarget::Pid(p) => p.as_raw(),
            WaitTarget::SameGroup => 0,
            WaitTarget::Group(g) => -g.as_raw(),
        }
    }
}

impl fmt::Display for WaitTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WaitTarget::Any => write!(f, "any child"),
            WaitTarget::Pid(p) => write!(f, "child {p}"),
            WaitTarget::SameGroup => write!(f, "a child in our process group"),
            WaitTarget::Group(g) => write!(f, "a child in process group {g}"),
        }
    }
}

/// A child that changed state, as [`WaitOptions::wait`] reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Waited {
    /// Which child.
    pub pid: Pid,
    /// What happened to it.
    pub status: ExitStatus,
    /// Its resource usage (so far, for a stop or continue).
    pub usage: ResourceUsage,
}

impl Waited {
    fn from_raw(r: sys::process::WaitResult) -> io::Result<Waited> {
        Ok(Waited {
            pid: Pid::from_raw(r.pid)?,
            status: ExitStatus(r.status),
            usage: ResourceUsage::from_raw(&r.usage),
        })
    }
}

/// Which state changes a wait reports, besides termination: the flags of `waitpid(2)`.
///
/// ```
/// use ipcbox::process::{Command, WaitOptions, WaitTarget};
///
/// let child = Command::new("true").spawn()?;
/// let got = WaitOptions::new().wait(WaitTarget::Pid(child.pid()))?;
/// assert_eq!(got.pid, child.pid());
/// assert!(got.status.success());
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct WaitOptions {
    stopped: bool,
    continued: bool,
}

impl WaitOptions {
    /// Termination only.
    pub fn new() -> WaitOptions {
        WaitOptions::default()
    }

    /// Also report children stopped by a signal (`WUNTRACED`).
    #[doc(alias = "WUNTRACED")]
    pub fn stopped(&mut self, on: bool) -> &mut WaitOptions {
        self.stopped = on;
        self
    }

    /// Also report stopped children resumed by `SIGCONT` (`WCONTINUED`).
    #[doc(alias = "WCONTINUED")]
    pub fn continued(&mut self, on: bool) -> &mut WaitOptions {
        self.continued = on;
        self
    }

    fn flags(&self) -> i32 {
        let mut flags = 0;
        if self.stopped {
            flags |= libc::WUNTRACED;
        }
        if self.continued {
            flags |= libc::WCONTINUED;
        }
        flags
    }

    /// Waits until a child of `target` changes state (`wait4`); a terminated child is reaped.
    ///
    /// There is no timeout form for [`WaitTarget::Any`] and groups: Linux has no pollable
    /// handle for "any child". Use [`Child::wait_timeout`] for one child.
    ///
    /// # Errors
    ///
    /// `ECHILD` (the message names the target) when there is no such child.
    #[doc(alias = "waitpid")]
    #[doc(alias = "wait4")]
    pub fn wait(&self, target: WaitTarget) -> io::Result<Waited> {
        loop {
            if let Some(w) = self.wait_flags(target, self.flags())? {
                return Ok(w);
            }
        }
    }

    /// Like [`wait`](WaitOptions::wait) but returns `Ok(None)` at once if no child of
    /// `target` has changed state (`WNOHANG`).
    ///
    /// # Errors
    ///
    /// As for [`wait`](WaitOptions::wait).
    pub fn try_wait(&self, target: WaitTarget) -> io::Result<Option<Waited>> {
        self.wait_flags(target, self.flags() | libc::WNOHANG)
    }

    fn wait_flags(&self, target: WaitTarget, flags: i32) -> io::Result<Option<Waited>> {
        sys::process::wait4(target.raw(), flags)
            .context_with(|| format!("wait for {target}"))?
            .map(Waited::from_raw)
            .transpose()
    }
}

/// Waits for any child of this process to terminate and reaps it (`wait4(-1)`); `Ok(None)`
/// when this process has no children left (`ECHILD`), so that
/// `while let Some(done) = process::wait_any()? { .. }` reaps every child. See
/// [Who reaps whom](self#who-reaps-whom).
///
/// # Errors
///
/// A wait error other than `ECHILD`.
#[doc(alias = "wait")]
pub fn wait_any() -> io::Result<Option<Waited>> {
    match sys::process::wait4(-1, 0) {
        Ok(got) => got.map(Waited::from_raw).transpose(),
        Err(e) if e.raw_os_error() == Some(libc::ECHILD) => Ok(None),
        Err(e) => Err(context(e, "wait for any child")),
    }
}

/// Reaps every child that has terminated, without blocking (`wait4(-1, WNOHANG)` until
/// nothing is left); an empty list when none has. See [Who reaps whom](self#who-reaps-whom).
///
/// # Errors
///
/// A wait error other than `ECHILD` (which just means there are no children).
pub fn reap_all() -> io::Result<Vec<Waited>> {
    let mut all = Vec::new();
    loop {
        match sys::process::wait4(-1, libc::WNOHANG) {
            Ok(Some(got)) => all.push(Waited::from_raw(got)?),
            Ok(None) => return Ok(all),
            Err(e) if e.raw_os_error() == Some(libc::ECHILD) => return Ok(all),
            Err(e) => return Err(context(e, "reap finished children")),
        }
    }
}

/// Makes this process a child subreaper (`prctl(PR_SET_CHILD_SUBREAPER)`): orphaned
/// descendants are re-parented to it instead of to init, so it can reap them (with
/// [`wait_any`] or [`reap_all`]). Process-wide.
///
/// # Errors
///
/// The OS error from `prctl`.
#[doc(alias = "PR_SET_CHILD_SUBREAPER")]
pub fn set_child_subreaper(on: bool) -> io::Result<()> {
    let arg = on.then(rustix::process::getpid);
    rustix::process::set_child_subreaper(arg).context_with(|| "set child subreaper")
}

/// Whether this process is a child subreaper (`prctl(PR_GET_CHILD_SUBREAPER)`).
///
/// # Errors
///
/// The OS error from `prctl`.
pub fn is_child_subreaper() -> io::Result<bool> {
    Ok(rustix::process::child_subreaper()
        .context_with(|| "query child subreaper")?
        .is_some())
}

// ---------------------------------------------------------------------------------------------
// fork, exit, daemonize

/// Where [`fork`] returned.
#[derive(Debug)]
pub enum Fork {
    /// In the parent, with a handle on the new child.
    Parent(Child),
    /// In the child.
    Child,
}

pub use crate::sys::process::fork;

/// Ends this process at once with `code` (`_exit(2)`): no destructors, no `atexit` handlers,
/// no flushing of stdio buffers. The way for a forked child to end.
#[doc(alias = "_exit")]
pub fn exit_immediately(code: i32) -> ! {
    sys::process::exit_immediately(code)
}

pub use crate::sys::process::daemonize;

// ---------------------------------------------------------------------------------------------
// Pipelines

/// Commands whose stdout feeds the next one's stdin, like `ps aux | grep python` in a shell,
/// reporting every stage's status.
///
/// Each link is a pipe (`pipe2`) that std connects with `dup2` in the child; the parent closes
/// its copies as soon as both sides run, so every stage sees end of file (or `SIGPIPE`) exactly
/// as in a shell. The first stage's stdin, the last stage's stdout and every stage's stderr
/// come from the stages' own settings; the links replace the rest.
///
/// ```
/// use ipcbox::process::{Command, Pipeline};
///
/// let mut first = Command::new("printf");
/// first.arg("a\npython x\nb\n");
/// let mut second = Command::new("grep");
/// second.arg("python");
/// let out = Pipeline::new().stage(first).stage(second).output()?;
/// assert_eq!(out.stdout, b"python x\n");
/// assert!(out.statuses.iter().all(|s| s.success()));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Default)]
pub struct Pipeline {
    stages: Vec<Command>,
    new_group: bool,
}

impl Pipeline {
    /// An empty pipeline.
    pub fn new() -> Pipeline {
        Pipeline::default()
    }

    /// Appends a stage.
    pub fn stage(&mut self, command: Command) -> &mut Pipeline {
        self.stages.push(command);
        self
    }

    /// Runs every stage in one new process group, led by the first stage, as a shell runs a
    /// job; [`RunningPipeline::process_group`] gives its ID.
    pub fn new_process_group(&mut self, on: bool) -> &mut Pipeline {
        self.new_group = on;
        self
    }

    fn spawn_with(
        &mut self,
        first_in: Fallback,
        last_out: Fallback,
        stderr: Option<&pipe::Writer>,
    ) -> io::Result<RunningPipeline> {
        if self.stages.is_empty() {
            return Err(invalid_input("cannot run an empty pipeline"));
        }
        let n = self.stages.len();
        let mut children: Vec<Child> = Vec::with_capacity(n);
        let mut stdin = None;
        let mut stdout = None;
        let mut next_in: Option<pipe::Reader> = None;
        let result = (|| {
            for (i, cmd) in self.stages.iter_mut().enumerate() {
                let mut overrides: [Option<OwnedFd>; 3] =
                    [next_in.take().map(OwnedFd::from), None, None];
                let link = if i + 1 < n {
                    let (r, w) = pipe::new()?;
                    overrides[1] = Some(w.into());
                    Some(r)
                } else {
                    None
                };
                if let (Some(err), None) = (stderr, &cmd.stderr) {
                    overrides[2] = Some(err.try_clone()?.into());
                }
                let saved_group = cmd.process_group;
                if self.new_group {
                    match children.first() {
                        None => cmd.new_process_group(true),
                        Some(leader) => cmd.join_process_group(leader.pid()),
                    };
                }
                let first = if i == 0 { first_in } else { Fallback::Inherit };
                let last = if i + 1 == n {
                    last_out
                } else {
                    Fallback::Inherit
                };
                let spawned = cmd.spawn_with([first, last, Fallback::Inherit], overrides);
                cmd.process_group = saved_group;
                let mut child =
                    spawned.map_err(|e| context(e, format_args!("pipeline stage {}", i + 1)))?;
                if i == 0 {
                    stdin = child.stdin.take();
                }
                if i + 1 == n {
                    stdout = child.stdout.take();
                }
                children.push(child);
                next_in = link;
            }
            Ok(())
        })();
        if let Err(e) = result {
            for child in &mut children {
                let _ = child.kill();
                let _ = child.wait();
            }
            return Err(e);
        }
        Ok(RunningPipeline {
            stdin,
            stdout,
            pgid: if self.new_group {
                children.first().map(Child::pid)
            } else {
                None
            },
            children,
        })
    }

    /// Starts every stage. Unset streams are inherited.
    ///
    /// # Errors
    ///
    /// An empty pipeline, or a stage that cannot be spawned (the message names the stage and
    /// program); the stages already started are then killed and reaped.
    pub fn spawn(&mut self) -> io::Result<RunningPipeline> {
        self.spawn_with(Fallback::Inherit, Fallback::Inherit, None)
    }

    /// Runs the pipeline to completion, capturing the last stage's stdout and the stderr of
    /// every stage that did not set its own (into one buffer, interleaved as written). The
    /// first stage's stdin is `/dev/null` unless set.
    ///
    /// # Errors
    ///
    /// As for [`spawn`](Pipeline::spawn), and read or wait errors.
    pub fn output(&mut self) -> io::Result<PipelineOutput> {
        let (err_r, err_w) = pipe::new()?;
        let mut running = self.spawn_with(Fallback::Null, Fallback::Piped, Some(&err_w))?;
        drop(err_w);
        drop(running.stdin.take());
        let (stdout, stderr) = match read_both(running.stdout.take(), Some(err_r)) {
            Ok(both) => both,
            Err(e) => {
                // Leave no stage running or unreaped behind the error.
                let _ = running.kill();
                let _ = running.wait();
                return Err(context(e, "read the output of a pipeline"));
            }
        };
        let statuses = running.wait()?;
        Ok(PipelineOutput {
            stdout,
            stderr,
            statuses,
        })
    }

    /// Runs the pipeline to completion with inherited streams and returns every stage's
    /// status, in order.
    ///
    /// # Errors
    ///
    /// As for [`spawn`](Pipeline::spawn).
    pub fn status(&mut self) -> io::Result<Vec<ExitStatus>> {
        self.spawn()?.wait()
    }
}

/// A started [`Pipeline`].
#[derive(Debug)]
pub struct RunningPipeline {
    /// The first stage's stdin, if it was [`Stdio::piped`].
    pub stdin: Option<pipe::Writer>,
    /// The last stage's stdout, if it was [`Stdio::piped`].
    pub stdout: Option<pipe::Reader>,
    children: Vec<Child>,
    pgid: Option<Pid>,
}

impl RunningPipeline {
    /// The stages' processes, in order.
    pub fn children(&mut self) -> &mut [Child] {
        &mut self.children
    }

    /// The process group of every stage, if [`Pipeline::new_process_group`] was set.
    pub fn process_group(&self) -> Option<Pid> {
        self.pgid
    }

    /// Waits for every stage and returns their statuses in order (as bash's `PIPESTATUS`).
    ///
    /// # Errors
    ///
    /// As for [`Child::wait`]: the first stage whose wait failed; every other stage is still
    /// waited for, so none is left unreaped.
    pub fn wait(&mut self) -> io::Result<Vec<ExitStatus>> {
        drop(self.stdin.take());
        let results: Vec<io::Result<ExitStatus>> =
            self.children.iter_mut().map(Child::wait).collect();
        results.into_iter().collect()
    }

    /// Kills every stage that is still running (`SIGKILL`); [`wait`](RunningPipeline::wait)
    /// reaps them.
    ///
    /// # Errors
    ///
    /// The first signal that could not be sent.
    pub fn kill(&mut self) -> io::Result<()> {
        self.children.iter().try_for_each(Child::kill)
    }
}

/// A finished pipeline's output and every stage's status.
#[derive(Debug, Clone)]
pub struct PipelineOutput {
    /// The last stage's standard output.
    pub stdout: Vec<u8>,
    /// The standard error of the stages that did not set their own.
    pub stderr: Vec<u8>,
    /// Every stage's status, in order (as bash's `PIPESTATUS`).
    pub statuses: Vec<ExitStatus>,
}

impl PipelineOutput {
    /// The pipeline's status as `sh` reports it: the last stage's.
    pub fn status(&self) -> Option<ExitStatus> {
        self.statuses.last().copied()
    }

    /// Every stage succeeded (what `set -o pipefail` checks).
    pub fn success(&self) -> bool {
        self.statuses.iter().all(|s| s.success())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pid_rejects_non_positive_numbers() {
        assert!(Pid::from_raw(0).unwrap_err().to_string().contains('0'));
        assert!(Pid::from_raw(-5).unwrap_err().to_string().contains("-5"));
        assert_eq!(Pid::this().as_raw(), std::process::id() as i32);
        assert!(Pid::parent().is_some());
    }

    #[test]
    fn exit_status_reads_and_prints_like_a_shell() {
        let exited = ExitStatus::from_raw(3 << 8);
        assert_eq!(exited.code(), Some(3));
        assert_eq!(exited.to_string(), "exit code 3");
        assert_eq!(exited.shell_code(), 3);
        assert!(!exited.success());
        let killed = ExitStatus::from_raw(libc::SIGKILL);
        assert_eq!(killed.signal(), Some(Signal::KILL));
        assert_eq!(killed.to_string(), "killed by SIGKILL");
        assert_eq!(killed.shell_code(), 137);
        let cored = ExitStatus::from_raw(libc::SIGSEGV | 0x80);
        assert!(cored.core_dumped());
        assert_eq!(cored.to_string(), "killed by SIGSEGV (core dumped)");
        let stopped = ExitStatus::from_raw((libc::SIGSTOP << 8) | 0x7f);
        assert_eq!(stopped.stopped_signal(), Some(Signal::STOP));
        assert!(!stopped.terminated());
        assert_eq!(stopped.to_string(), "stopped by SIGSTOP");
        let cont = ExitStatus::from_raw(0xffff);
        assert!(cont.continued());
        assert_eq!(cont.to_string(), "continued");
    }

    #[test]
    fn an_fd_number_past_the_open_file_limit_is_refused_by_name() {
        for number in [i32::MAX, 1 << 30] {
            let (_reader, writer) = crate::pipe::new().unwrap();
            let err = Command::new("true")
                .pass_fd(writer, number)
                .spawn()
                .unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
            assert!(err.to_string().contains(&number.to_string()), "{err}");
        }
    }

    #[test]
    fn a_missing_program_is_named() {
        let err = Command::new("ipcbox-no-such-program").spawn().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(err.to_string().contains("ipcbox-no-such-program"), "{err}");
    }
}
