//! `Command`: a program to start as a child, or to replace this process with.

use std::ffi::{OsStr, OsString};
use std::io::{self, Read};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use rustix::event::{poll, PollFd, PollFlags};

use super::stdio::{Fallback, StdioKind};
use super::{Child, ExitStatus, Pid, Stdio};
use crate::error::{context, invalid_input, ResultExt};
use crate::pipe;
use crate::signum::Signal;
use crate::sys;
use crate::sys::process::ChildSetup;

#[cfg(doc)]
use super::WaitTarget;

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
    pub(super) stderr: Option<Stdio>,
    pub(super) process_group: Option<i32>,
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

    pub(super) fn spawn_with(
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
pub(super) fn read_both(
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

#[cfg(test)]
mod tests {
    use super::*;

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
