//! Shell habits: every subcommand's help has examples, completion scripts load in their shell,
//! and the man pages generated from the command's definition render with `man -l`.

mod util;

use std::process::Command;

use util::{ipcbox, run, TempDir};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

const SUBCOMMANDS: [&str; 7] = ["send", "recv", "watch", "ls", "clean", "completions", "man"];

#[test]
fn every_subcommand_has_examples_and_the_top_help_the_rest() {
    for sub in SUBCOMMANDS {
        let out = ipcbox(&[sub, "--help"]);
        assert!(out.status.success(), "{sub}: {out:?}");
        let help = text(&out.stdout);
        assert!(
            help.contains("Examples:"),
            "ipcbox {sub} --help has no examples:\n{help}"
        );
        assert!(help.contains(&format!("ipcbox {sub}")), "{sub}:\n{help}");
    }
    let top = text(&ipcbox(&["--help"]).stdout);
    for part in [
        "Examples:",
        "Endpoints:",
        "Exit status:",
        "sysv-mq:KEY",
        "store:NAME/ID",
    ] {
        assert!(
            top.contains(part),
            "{part} missing from ipcbox --help:\n{top}"
        );
    }
    for sub in ["send", "recv"] {
        let help = text(&ipcbox(&[sub, "--help"]).stdout);
        assert!(help.contains("Endpoints:"), "{sub}:\n{help}");
    }
}

#[test]
fn completion_scripts_load() {
    let out = ipcbox(&["completions", "bash"]);
    let script = text(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    for word in ["send", "recv", "watch", "--follow", "--priority"] {
        assert!(script.contains(word), "{word} not completed:\n{script}");
    }
    // The script defines its function when bash reads it.
    let out = run(Command::new("bash").arg("-c").arg(format!(
        "{script}\ndeclare -F _ipcbox >/dev/null && echo defined"
    )));
    assert_eq!(text(&out.stdout).trim(), "defined", "{out:?}");
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let out = ipcbox(&["completions", shell]);
        assert!(
            out.status.success() && !out.stdout.is_empty(),
            "{shell}: {out:?}"
        );
    }
    let out = ipcbox(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

/// `man` itself, installed (from Debian's man-db) if this machine has none.
fn man() -> Command {
    let found = Command::new("sh")
        .args(["-c", "command -v man"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        let status = Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends", "man-db"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .expect("run apt-get to install man-db (no `man` on this machine)");
        assert!(status.success(), "apt-get install man-db failed: {status}");
    }
    let mut cmd = Command::new("man");
    // Plain text on a pipe, no pager, a fixed width.
    cmd.env("MANPAGER", "cat")
        .env("PAGER", "cat")
        .env("MANWIDTH", "100")
        .env("MAN_KEEP_FORMATTING", "0");
    cmd
}

#[test]
fn man_pages_render() {
    let dir = TempDir::new("man");
    let out = ipcbox(&["man", "--dir", dir.0.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let written = text(&out.stdout);
    for page in [
        "ipcbox.1",
        "ipcbox-send.1",
        "ipcbox-recv.1",
        "ipcbox-watch.1",
        "ipcbox-ls.1",
    ] {
        assert!(written.contains(page), "{page} not written: {written}");
    }
    let out = run(man().arg("-l").arg(dir.join("ipcbox-send.1")));
    let page = text(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    for part in ["ipcbox-send", "--priority", "Examples:", "fifo:PATH"] {
        assert!(
            page.contains(part),
            "{part} not in the rendered page:\n{page}"
        );
    }
    let out = run(man().arg("-l").arg(dir.join("ipcbox.1")));
    let page = text(&out.stdout);
    assert!(
        page.contains("Exit status:") && page.contains("watch"),
        "{page}"
    );

    // Without --dir, ipcbox(1) on stdout; a missing directory is an error that writes nothing.
    let out = ipcbox(&["man"]);
    assert!(text(&out.stdout).starts_with(".ie"), "{out:?}");
    let missing = dir.join("missing");
    let out = ipcbox(&["man", "--dir", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(!missing.exists());
}
