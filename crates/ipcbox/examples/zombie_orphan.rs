//! Zombies and orphans, the two classic lifecycle states of `os.fork()` tutorials, shown live:
//!
//! 1. a child that has exited but is not yet reaped is a *zombie*: `/proc/<pid>/stat` shows
//!    state `Z` until the parent waits for it, and then the process is gone;
//! 2. a child whose parent exits first is an *orphan*: it is re-parented, here to this program,
//!    which made itself a child subreaper and so gets to reap it.
//!
//! Run with `cargo run --example zombie_orphan`.

use std::io;

use ipcbox::pipe;
use ipcbox::process::{self, Command, Pid, Stdio};

/// Field `n` (1-based, as in proc(5): 3 = state, 4 = ppid) of `/proc/<pid>/stat`.
fn stat_field(pid: Pid, n: usize) -> io::Result<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after_name = stat
        .rfind(')')
        .map(|i| &stat[i + 2..])
        .ok_or_else(|| io::Error::other("unexpected /proc stat format"))?;
    after_name
        .split(' ')
        .nth(n - 3)
        .map(str::to_owned)
        .ok_or_else(|| io::Error::other("short /proc stat line"))
}

/// Blocks until `child` has exited, without reaping it: its pidfd becomes readable.
fn until_exited(child: &process::Child) -> io::Result<()> {
    let mut pfd = [rustix::event::PollFd::new(
        child,
        rustix::event::PollFlags::IN,
    )];
    loop {
        match rustix::event::poll(&mut pfd, None) {
            Ok(_) => return Ok(()),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

fn main() -> io::Result<()> {
    println!("== zombie ==");
    let mut child = Command::new("sh").args(["-c", "exit 3"]).spawn()?;
    let pid = child.pid();
    until_exited(&child)?;
    println!(
        "child {pid} has exited but is not reaped: /proc/{pid}/stat state = {}",
        stat_field(pid, 3)?
    );
    let status = child.wait()?;
    println!("reaped it: {status}");
    println!(
        "/proc/{pid} exists afterwards: {}",
        std::path::Path::new(&format!("/proc/{pid}")).exists()
    );

    println!("\n== orphan ==");
    process::set_child_subreaper(true)?;
    println!("this process ({}) is now a child subreaper", Pid::this());
    // The middle shell starts a background job that waits on fd 3, prints its pid and exits,
    // leaving the job an orphan.
    let (gate_r, gate_w) = pipe::new()?;
    let mut middle = Command::new("sh");
    middle
        .args(["-c", "(read x <&3; exit 4) >/dev/null 2>&1 & echo $!"])
        .pass_fd(gate_r, 3)
        .stdin(Stdio::null());
    let out = middle.output()?;
    let orphan = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse::<i32>()
        .map_err(io::Error::other)
        .and_then(Pid::from_raw)?;
    println!(
        "the middle shell exited ({}), leaving job {orphan} behind",
        out.status
    );
    println!(
        "orphan {orphan}'s parent is now {} (us: {})",
        stat_field(orphan, 4)?,
        Pid::this()
    );
    drop(gate_w); // let the orphan finish
    while let Some(reaped) = process::wait_any()? {
        println!("the subreaper reaped {}: {}", reaped.pid, reaped.status);
    }
    println!("nothing left to reap: {:?}", process::reap_all()?);
    Ok(())
}
