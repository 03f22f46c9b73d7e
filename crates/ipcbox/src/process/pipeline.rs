//! `Pipeline`: commands joined stdout to stdin, as a shell runs `a | b`.

use std::io;
use std::os::fd::OwnedFd;

use super::command::read_both;
use super::stdio::Fallback;
use super::{Child, Command, ExitStatus, Pid};
use crate::error::{context, invalid_input};
use crate::pipe;

#[cfg(doc)]
use super::Stdio;

/// Commands whose stdout feeds the next one's stdin, like `ps aux | grep python` in a shell,
/// reporting every stage's status.
///
/// Each link is a pipe (`pipe2`) put in place with `dup2` in the two children. The parent
/// keeps no copy of a link once both its stages run, so every stage sees end of file (or
/// `SIGPIPE`) exactly as in a shell.
///
/// * The first stage's stdin, the last stage's stdout and every stage's stderr come from the
///   stages' own settings.
/// * The links replace every other stdin and stdout, whatever the stages set.
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
