//! Python peers for the interoperability tests.
//!
//! [`python`] returns a `python3` command whose import path holds the packages the library's
//! tests pin in `crates/ipcbox/tests/requirements.txt` (posix_ipc, sysv_ipc), installed by pip
//! into `target/tmp/pydeps` the first time a test needs them; several test binaries may ask at
//! once, so the install runs under an exclusive lock. The CLI's tests include this file too.

use std::fs::File;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

fn pydeps() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("pydeps");
        // Through crates/ipcbox, so that the CLI's tests (a sibling crate) find the same file.
        let requirements = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../ipcbox/tests/requirements.txt"
        );
        let stamp = dir.join(".installed");
        let wanted = std::fs::read_to_string(requirements)
            .expect("read crates/ipcbox/tests/requirements.txt");
        std::fs::create_dir_all(&dir).expect("create target/tmp/pydeps");
        let lock = File::create(dir.with_extension("lock")).expect("create pydeps lock");
        rustix::fs::flock(lock.as_fd(), rustix::fs::FlockOperation::LockExclusive)
            .expect("lock pydeps");
        if std::fs::read_to_string(&stamp).ok().as_deref() != Some(wanted.as_str()) {
            let status = Command::new("python3")
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                ])
                .args(["--upgrade", "--target"])
                .arg(&dir)
                .args(["-r", requirements])
                .status()
                .expect("run python3 -m pip (is python3 installed?)");
            assert!(
                status.success(),
                "pip install -r {requirements} failed: {status}"
            );
            std::fs::write(&stamp, &wanted).expect("write pydeps stamp");
        }
        dir
    })
}

/// `python3 -c script` with the test requirements importable.
pub fn python(script: &str) -> Command {
    let mut cmd = Command::new("python3");
    cmd.env("PYTHONPATH", pydeps()).arg("-c").arg(script);
    cmd
}

/// Runs `cmd` (from [`python`], perhaps with arguments) to completion, asserts that it
/// succeeded (showing its stderr otherwise) and returns its stdout without surrounding
/// whitespace.
pub fn output(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run python3");
    assert!(
        out.status.success(),
        "python peer failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}
