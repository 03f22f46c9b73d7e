//! Child processes across real processes: spawning, waiting, statuses, usage, reaping,
//! pipelines, parent-death signals, subreapers, fork, exec and daemons.

mod util;

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{self, Read, Write};
use std::time::Duration;

use ipcbox::pipe;
use ipcbox::process::{
    self, Command, ExitStatus, Fork, Pid, Pipeline, Stdio, WaitOptions, WaitTarget,
};
use ipcbox::Signal;

const LIMIT: Duration = Duration::from_secs(60);

/// `util::role_command` as an ipcbox command, so that fds can be handed to the role.
fn role(test_fn: &str, role: &str, arg: &str) -> Command {
    let std = util::role_command(test_fn, role, arg);
    let mut cmd = Command::new(std.get_program());
    cmd.args(std.get_args());
    for (key, value) in std.get_envs() {
        if let Some(value) = value {
            cmd.env(key, value);
        }
    }
    cmd
}

/// Runs a role to completion and fails the test with its stderr if it failed.
fn run_role(mut cmd: Command) {
    let out = cmd.output().expect("run role");
    assert!(
        out.status.success(),
        "role failed with {}: {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A child blocked reading a pipe we hold: it exits (code 0) when we drop `child.stdin`.
fn blocked_cat() -> process::Child {
    Command::new("cat")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn cat")
}

/// Blocks until the child has exited (its pidfd is readable), without reaping it.
fn until_exited(child: &process::Child) {
    let mut pfd = [rustix::event::PollFd::new(
        child,
        rustix::event::PollFlags::IN,
    )];
    loop {
        match rustix::event::poll(&mut pfd, None) {
            Ok(_) => return,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => panic!("poll pidfd: {e}"),
        }
    }
}

/// Opens an fd this process inherited (e.g. 3 from `pass_fd`) as a File, without unsafe code.
fn inherited(fd: i32) -> File {
    std::fs::OpenOptions::new()
        .write(true)
        .open(format!("/proc/self/fd/{fd}"))
        .expect("open inherited fd")
}

fn read_all(mut r: pipe::Reader) -> String {
    let mut s = String::new();
    r.read_to_string(&mut s).expect("read pipe");
    s
}

#[test]
fn a_killed_child_reports_sigkill() {
    let _w = util::watchdog("a_killed_child_reports_sigkill", LIMIT);
    let mut child = blocked_cat();
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(Signal::KILL));
    assert_eq!(status.signal().map(Signal::as_raw), Some(9));
    assert_eq!(status.code(), None);
    assert!(!status.success());
    assert_eq!(status.to_string(), "killed by SIGKILL");
    assert_eq!(status.shell_code(), 137);
    // Reaped: waiting again gives the same status; kill is a no-op, signal an error.
    assert_eq!(child.wait().unwrap(), status);
    child.kill().unwrap();
    assert!(child.signal(Signal::TERM).is_err());
}

#[test]
fn try_wait_returns_at_once_for_a_running_child() {
    let _w = util::watchdog("try_wait_returns_at_once_for_a_running_child", LIMIT);
    let mut child = blocked_cat();
    // The child cannot exit before we close its stdin, so this must not block.
    assert_eq!(child.try_wait().unwrap(), None);
    assert_eq!(child.try_wait().unwrap(), None);
    drop(child.stdin.take());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    assert_eq!(child.try_wait().unwrap(), Some(status));
}

#[test]
fn wait_timeout_times_out_then_sees_the_exit() {
    let _w = util::watchdog("wait_timeout_times_out_then_sees_the_exit", LIMIT);
    let mut child = blocked_cat();
    assert_eq!(child.wait_timeout(Duration::from_millis(50)).unwrap(), None);
    assert_eq!(child.wait_timeout(Duration::ZERO).unwrap(), None);
    drop(child.stdin.take());
    let status = child.wait_timeout(LIMIT).unwrap();
    assert!(status.is_some_and(ExitStatus::success), "{status:?}");
}

#[test]
fn exit_codes_and_terminating_signals() {
    let _w = util::watchdog("exit_codes_and_terminating_signals", LIMIT);
    let status = Command::new("sh").args(["-c", "exit 7"]).status().unwrap();
    assert_eq!(status.code(), Some(7));
    assert_eq!(status.to_string(), "exit code 7");
    assert!(!status.core_dumped());

    let dir = util::TempDir::new("core");
    let status = Command::new("sh")
        .args(["-c", "ulimit -c unlimited 2>/dev/null; kill -SEGV $$"])
        .current_dir(dir.path())
        .status()
        .unwrap();
    assert_eq!(status.signal(), Some(Signal::SEGV), "{status}");
    // A core is only guaranteed when the kernel writes it to a file (not a pipe helper that
    // may refuse) in the child's directory, which we made writable.
    let pattern = std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap_or_default();
    let pattern = pattern.trim();
    if !pattern.starts_with('|') && !pattern.contains('/') && !pattern.is_empty() {
        assert!(status.core_dumped(), "{status}, core_pattern {pattern:?}");
        assert_eq!(status.to_string(), "killed by SIGSEGV (core dumped)");
        let files = std::fs::read_dir(dir.path()).unwrap().count();
        assert!(files > 0, "no core file in {}", dir.path().display());
    } else {
        eprintln!("core_pattern {pattern:?}: not asserting a core dump");
    }
}

#[test]
fn a_cpu_busy_child_shows_user_time() {
    let _w = util::watchdog("a_cpu_busy_child_shows_user_time", LIMIT);
    // The child spins until the kernel has charged it 300 ms of CPU time.
    let mut child = Command::new("python3")
        .args([
            "-c",
            "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass",
        ])
        .spawn()
        .unwrap();
    let (status, usage) = child.wait_with_usage().unwrap();
    assert!(status.success(), "{status}");
    assert!(usage.user_time() > Duration::ZERO, "{usage:?}");
    assert!(
        usage.user_time() + usage.system_time() >= Duration::from_millis(250),
        "{usage:?}"
    );
    assert!(usage.max_rss_kib() > 0, "{usage:?}");
}

#[test]
fn a_stopped_child_is_reported_stopped_then_continued() {
    let _w = util::watchdog("a_stopped_child_is_reported_stopped_then_continued", LIMIT);
    let mut child = blocked_cat();
    let mut opts = WaitOptions::new();
    opts.stopped(true).continued(true);
    assert_eq!(child.try_wait_with(&opts).unwrap(), None);

    child.signal(Signal::STOP).unwrap();
    let status = child.wait_with(&opts).unwrap();
    assert_eq!(status.stopped_signal(), Some(Signal::STOP), "{status}");
    assert!(!status.terminated());
    assert_eq!(status.to_string(), "stopped by SIGSTOP");

    child.signal(Signal::CONT).unwrap();
    let got = opts.wait(WaitTarget::Pid(child.pid())).unwrap();
    assert_eq!(got.pid, child.pid());
    assert!(got.status.continued(), "{}", got.status);
    assert_eq!(got.status.to_string(), "continued");

    // Termination-only waits never report stops.
    child.signal(Signal::STOP).unwrap();
    let stopped = child.wait_with(WaitOptions::new().stopped(true)).unwrap();
    assert!(stopped.stopped_signal().is_some());
    child.signal(Signal::CONT).unwrap();
    drop(child.stdin.take());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
}

#[test]
fn a_missing_program_is_named_in_the_error() {
    let _w = util::watchdog("a_missing_program_is_named_in_the_error", LIMIT);
    let err = Command::new("ipcbox-no-such-program-xyz")
        .spawn()
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotFound);
    assert!(
        err.to_string().contains("ipcbox-no-such-program-xyz"),
        "{err}"
    );

    let mut first = Command::new("echo");
    first.arg("x");
    let err = Pipeline::new()
        .stage(first)
        .stage(Command::new("ipcbox-missing-stage"))
        .output()
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotFound);
    let text = err.to_string();
    assert!(
        text.contains("stage 2") && text.contains("ipcbox-missing-stage"),
        "{text}"
    );
}

#[test]
fn kill_on_drop_kills_and_the_default_keeps_running() {
    let _w = util::watchdog("kill_on_drop_kills_and_the_default_keeps_running", LIMIT);
    // `sleep` holds the only writer of the pipe: EOF proves it died.
    let (reader, writer) = pipe::new().unwrap();
    let child = Command::new("sleep")
        .arg("1000")
        .stdout(writer)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    drop(child);
    assert_eq!(read_all(reader), "");

    // Without kill-on-drop the child outlives its handle: `cat` still echoes.
    let (mut out_r, out_w) = pipe::new().unwrap();
    let mut child = Command::new("cat")
        .stdin(Stdio::piped())
        .stdout(out_w)
        .spawn()
        .unwrap();
    let pid = child.pid();
    let mut stdin = child.stdin.take().unwrap();
    drop(child);
    stdin.write_all(b"alive\n").unwrap();
    let mut buf = [0u8; 6];
    out_r.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"alive\n");
    drop(stdin);
    let got = WaitOptions::new().wait(WaitTarget::Pid(pid)).unwrap();
    assert!(got.status.success(), "{}", got.status);
}

#[test]
fn waiting_for_a_process_group_collects_only_its_members() {
    let _w = util::watchdog(
        "waiting_for_a_process_group_collects_only_its_members",
        LIMIT,
    );
    // Three members that exit with 1, 2, 3 when we close their common stdin, and an outsider.
    let (gate_r, gate_w) = pipe::new().unwrap();
    let mut members = Vec::new();
    for code in 1..=3 {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", &format!("cat >/dev/null; exit {code}")])
            .stdin(gate_r.try_clone().unwrap());
        match members.first() {
            None => cmd.new_process_group(true),
            Some(leader) => cmd.join_process_group(*leader),
        };
        members.push(cmd.spawn().unwrap().pid());
    }
    drop(gate_r);
    let mut outsider = blocked_cat();
    let pgid = members[0];
    drop(gate_w);
    let mut seen = BTreeSet::new();
    let mut codes = BTreeSet::new();
    for _ in 0..3 {
        let got = WaitOptions::new().wait(WaitTarget::Group(pgid)).unwrap();
        seen.insert(got.pid);
        codes.insert(got.status.code().unwrap());
    }
    assert_eq!(seen, members.iter().copied().collect());
    assert_eq!(codes, [1, 2, 3].into_iter().collect());
    let err = WaitOptions::new()
        .try_wait(WaitTarget::Group(pgid))
        .unwrap_err();
    assert!(
        err.to_string().contains(&format!("process group {pgid}")),
        "{err}"
    );
    // The outsider was not touched.
    assert_eq!(outsider.try_wait().unwrap(), None);
    drop(outsider.stdin.take());
    assert!(outsider.wait().unwrap().success());
}

#[test]
fn a_new_session_may_also_ask_for_a_new_process_group() {
    let _w = util::watchdog("a_new_session_may_also_ask_for_a_new_process_group", LIMIT);
    let mut child = Command::new("cat")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .new_session(true)
        .new_process_group(true)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", child.pid())).unwrap();
    let [_, _, pgrp, sid] = stat_fields(&stat);
    assert_eq!((pgrp, sid), (child.pid().as_raw(), child.pid().as_raw()));
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());

    // A session leader cannot join another group: refused before anything runs.
    let err = Command::new("true")
        .new_session(true)
        .join_process_group(Pid::this())
        .spawn()
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
    assert!(err.to_string().contains("new session"), "{err}");
}

#[test]
fn reap_all_and_wait_any_collect_every_child() {
    let _w = util::watchdog("reap_all_and_wait_any_collect_every_child", LIMIT);
    // They reap whatever child of the process has finished, so run them in a process of their own.
    run_role(role("role_reaper", "reaper", ""));
}

#[test]
fn role_reaper() {
    if util::role_arg("reaper").is_none() {
        return;
    }
    assert!(process::reap_all().unwrap().is_empty());
    let children: Vec<process::Child> = (0..5)
        .map(|code| {
            Command::new("sh")
                .args(["-c", &format!("exit {code}")])
                .spawn()
                .unwrap()
        })
        .collect();
    for child in &children {
        until_exited(child);
    }
    let reaped = process::reap_all().unwrap();
    assert_eq!(reaped.len(), 5, "{reaped:?}");
    let pids: BTreeSet<Pid> = reaped.iter().map(|w| w.pid).collect();
    assert_eq!(pids, children.iter().map(|c| c.pid()).collect());
    for w in &reaped {
        let child = children.iter().position(|c| c.pid() == w.pid).unwrap();
        assert_eq!(w.status.code(), Some(child as i32));
    }
    assert!(process::reap_all().unwrap().is_empty());

    // wait_any blocks for the next child, whichever it is; SameGroup sees ours too.
    let mut a = blocked_cat();
    let b = Command::new("true").spawn().unwrap();
    let first = process::wait_any().unwrap().expect("a child");
    assert_eq!(first.pid, b.pid());
    drop(a.stdin.take());
    let second = WaitOptions::new().wait(WaitTarget::SameGroup).unwrap();
    assert_eq!(second.pid, a.pid());
    // No children left: None, so `while let Some(..) = wait_any()?` ends.
    assert_eq!(process::wait_any().unwrap(), None);
    let err = WaitOptions::new().try_wait(WaitTarget::Any).unwrap_err();
    assert!(err.to_string().contains("any child"), "{err}");
    // The reaped children's own handles see ECHILD.
    let mut c = b;
    assert!(c.wait().is_err());
}

#[test]
fn pipelines_match_the_shell() {
    let _w = util::watchdog("pipelines_match_the_shell", LIMIT);
    let cases: [&[&[&str]]; 4] = [
        &[&["printf", "a\\npython x\\nb\\n"], &["grep", "python"]],
        &[&["printf", "a\\nb\\n"], &["grep", "python"]],
        &[
            &["printf", "a\\npython\\n"],
            &["sh", "-c", "cat >/dev/null; echo oops >&2; exit 3"],
            &["cat"],
        ],
        &[&["yes"], &["head", "-n", "2"]],
    ];
    for stages in cases {
        let mut pipeline = Pipeline::new();
        for argv in stages {
            let mut cmd = Command::new(argv[0]);
            cmd.args(&argv[1..]);
            pipeline.stage(cmd);
        }
        let out = pipeline.output().unwrap();
        // A pipeline can run again: the links are made per run.
        let again = pipeline.output().unwrap();
        assert_eq!(again.stdout, out.stdout);

        let script = stages
            .iter()
            .map(|argv| {
                argv.iter()
                    .map(|a| format!("'{a}'"))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect::<Vec<_>>()
            .join(" | ");
        let shell = Command::new("bash")
            .args([
                "-c",
                &format!("{script}; echo \"status ${{PIPESTATUS[*]}}\" >&2"),
            ])
            .output()
            .unwrap();
        let shell_err = String::from_utf8_lossy(&shell.stderr).into_owned();
        let (shell_err, pipestatus) = shell_err.rsplit_once("status ").unwrap();
        let ours: Vec<String> = out
            .statuses
            .iter()
            .map(|s| s.shell_code().to_string())
            .collect();
        assert_eq!(ours.join(" "), pipestatus.trim(), "{script}");
        assert_eq!(out.stdout, shell.stdout, "{script}");
        assert_eq!(String::from_utf8_lossy(&out.stderr), shell_err, "{script}");
        let last = out.status().map(|s| s.shell_code().to_string());
        assert_eq!(
            last.as_deref(),
            pipestatus.split_whitespace().last(),
            "{script}"
        );
    }
}

#[test]
fn a_spawned_pipeline_streams_through_every_stage() {
    let _w = util::watchdog("a_spawned_pipeline_streams_through_every_stage", LIMIT);
    let mut first = Command::new("cat");
    first.stdin(Stdio::piped());
    let mut last = Command::new("grep");
    last.arg("python").stdout(Stdio::piped());
    let mut running = Pipeline::new()
        .stage(first)
        .stage(Command::new("sort"))
        .stage(last)
        .new_process_group(true)
        .spawn()
        .unwrap();
    let pgid = running.process_group().unwrap();
    assert_eq!(pgid, running.children()[0].pid());
    let mut stdin = running.stdin.take().unwrap();
    stdin.write_all(b"python 2\nruby\npython 1\n").unwrap();
    drop(stdin);
    let text = read_all(running.stdout.take().unwrap());
    assert_eq!(text, "python 1\npython 2\n");
    let statuses = running.wait().unwrap();
    assert_eq!(statuses.len(), 3);
    assert!(statuses.iter().all(|s| s.success()), "{statuses:?}");
}

#[test]
fn pass_fd_hands_a_pipe_end_at_a_chosen_number() {
    let _w = util::watchdog("pass_fd_hands_a_pipe_end_at_a_chosen_number", LIMIT);
    let (r1, w1) = pipe::new().unwrap();
    let (r2, w2) = pipe::new().unwrap();
    let mut child = Command::new("sh")
        .args(["-c", "echo one >&7; echo two >&8"])
        .pass_fd(w1, 7)
        .pass_fd(w2, 8)
        .spawn()
        .unwrap();
    assert_eq!(read_all(r1), "one\n");
    assert_eq!(read_all(r2), "two\n");
    assert!(child.wait().unwrap().success());
}

#[test]
fn the_parent_death_signal_arrives_when_the_parent_dies() {
    let _w = util::watchdog(
        "the_parent_death_signal_arrives_when_the_parent_dies",
        LIMIT,
    );
    let (reader, writer) = pipe::new().unwrap();
    let mut middle = role("role_pdeath_middle", "pdeath_middle", "");
    middle.pass_fd(writer, 3);
    run_role(middle);
    // The grandchild (`sleep 1000`) holds the last writer: EOF means it was killed when the
    // middle process died.
    let text = read_all(reader);
    let pid: i32 = text.trim().parse().expect("grandchild pid");
    assert!(pid > 0);
}

#[test]
fn role_pdeath_middle() {
    if util::role_arg("pdeath_middle").is_none() {
        return;
    }
    let grandchild = Command::new("sleep")
        .arg("1000")
        .parent_death_signal(Signal::TERM)
        .spawn()
        .unwrap();
    writeln!(inherited(3), "{}", grandchild.pid()).unwrap();
}

#[test]
fn a_subreaper_adopts_and_reaps_an_orphan() {
    let _w = util::watchdog("a_subreaper_adopts_and_reaps_an_orphan", LIMIT);
    run_role(role("role_subreaper", "subreaper", ""));
}

#[test]
fn role_subreaper() {
    if util::role_arg("subreaper").is_none() {
        return;
    }
    process::set_child_subreaper(true).unwrap();
    assert!(process::is_child_subreaper().unwrap());
    // The middle shell starts a background job blocked on fd 3, prints its pid and exits.
    let (gate_r, gate_w) = pipe::new().unwrap();
    let mut middle = Command::new("sh");
    middle
        .args(["-c", "(read x <&3; exit 5) >/dev/null 2>&1 & echo $!"])
        .pass_fd(gate_r, 3);
    let out = middle.output().unwrap();
    assert!(out.status.success());
    let orphan =
        Pid::from_raw(String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()).unwrap();
    // The middle is reaped, so the orphan has been re-parented: to us, so we can wait for it.
    assert_eq!(
        WaitOptions::new()
            .try_wait(WaitTarget::Pid(orphan))
            .unwrap(),
        None
    );
    drop(gate_w);
    let got = process::wait_any().unwrap().expect("the orphan");
    assert_eq!(got.pid, orphan);
    assert_eq!(got.status.code(), Some(5));
    process::set_child_subreaper(false).unwrap();
    assert!(!process::is_child_subreaper().unwrap());
}

#[test]
fn fork_runs_the_child_and_the_parent_reaps_it() {
    let _w = util::watchdog("fork_runs_the_child_and_the_parent_reaps_it", LIMIT);
    let (mut reader, writer) = pipe::new().unwrap();
    #[allow(unsafe_code)]
    // SAFETY: the child of this multi-threaded test process only calls `write` and `_exit`.
    let forked = unsafe { process::fork() }.unwrap();
    match forked {
        Fork::Child => {
            let code = match (&writer).write(b"from the child") {
                Ok(_) => 7,
                Err(_) => 1,
            };
            process::exit_immediately(code);
        }
        Fork::Parent(mut child) => {
            drop(writer);
            let mut text = String::new();
            reader.read_to_string(&mut text).unwrap();
            assert_eq!(text, "from the child");
            let status = child.wait_timeout(LIMIT).unwrap().expect("child exited");
            assert_eq!(status.code(), Some(7));
        }
    }
}

#[test]
fn exec_replaces_the_process_image() {
    let _w = util::watchdog("exec_replaces_the_process_image", LIMIT);
    let status = role("role_exec", "exec", "sh")
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(42), "{status}");
    let status = role("role_exec", "exec", "ipcbox-no-such-exec")
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(43), "{status}");
}

#[test]
fn role_exec() {
    let Some(program) = util::role_arg("exec") else {
        return;
    };
    // PATH search, and `exec` returns only on failure, with an error naming the program.
    // A parent-death signal set before exec refers to our parent (alive), so it must not fire.
    let err = Command::new(&program)
        .args(["-c", "exit 42"])
        .parent_death_signal(Signal::TERM)
        .exec();
    let code = if err.kind() == io::ErrorKind::NotFound && err.to_string().contains(&program) {
        43
    } else {
        eprintln!("{err}");
        44
    };
    process::exit_immediately(code);
}

#[test]
fn daemonize_detaches_into_a_new_session() {
    let _w = util::watchdog("daemonize_detaches_into_a_new_session", LIMIT);
    let (reader, writer) = pipe::new().unwrap();
    let mut original = role("role_daemon", "daemon", "");
    original.pass_fd(writer, 3).stdout(Stdio::null());
    let mut original = original.spawn().unwrap();
    let original_pid = original.pid();
    // The original exits 0 once the daemon is set up.
    assert!(original.wait().unwrap().success());
    let report = read_all(reader);
    let fields: Vec<&str> = report.split_whitespace().collect();
    assert_eq!(fields.len(), 8, "{report:?}");
    let [pid, ppid, pgrp, sid] = [0, 1, 2, 3].map(|i| fields[i].parse::<i32>().unwrap());
    assert_ne!(pid, original_pid.as_raw());
    assert_ne!(
        ppid,
        original_pid.as_raw(),
        "re-parented away from the original"
    );
    assert_ne!(
        sid, pid,
        "not a session leader: it can never acquire a terminal"
    );
    assert_eq!(pgrp, sid, "in the session the middle process created");
    assert_ne!(sid, process_session(Pid::this()), "a new session");
    assert_eq!(fields[4], "/");
    assert_eq!(&fields[5..], ["/dev/null"; 3]);
}

/// The session ID of `pid`, from `/proc/<pid>/stat`.
fn process_session(pid: Pid) -> i32 {
    stat_fields(&std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap())[3]
}

/// ppid, pgrp, session from a `/proc/<pid>/stat` line (after the command name).
fn stat_fields(stat: &str) -> [i32; 4] {
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    [
        0,
        f[1].parse().unwrap(),
        f[2].parse().unwrap(),
        f[3].parse().unwrap(),
    ]
}

#[test]
fn role_daemon() {
    if util::role_arg("daemon").is_none() {
        return;
    }
    // Open the report pipe before daemonizing, so a failure to report is not silent.
    let mut report = inherited(3);
    #[allow(unsafe_code)]
    // SAFETY: libtest runs this role alone (--test-threads=1), but on a thread of its own: the
    // process is not single-threaded. Its only other thread is libtest's main thread, parked
    // waiting for this test's result and holding no lock (allocator, stdio) the daemon needs;
    // the daemon (which has only this thread) does plain file I/O and then returns, ending the
    // process.
    unsafe { process::daemonize() }.unwrap();
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let [_, ppid, pgrp, sid] = stat_fields(&stat);
    let cwd = std::env::current_dir().unwrap();
    let fd = |n: i32| std::fs::read_link(format!("/proc/self/fd/{n}")).unwrap();
    writeln!(
        report,
        "{} {ppid} {pgrp} {sid} {} {} {} {}",
        Pid::this(),
        cwd.display(),
        fd(0).display(),
        fd(1).display(),
        fd(2).display()
    )
    .unwrap();
}
