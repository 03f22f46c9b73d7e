//! Shell habits: completion scripts and man pages, both generated from the command's
//! definition, so they never drift from `--help`.

use std::path::PathBuf;

use anyhow::Context;
use clap_complete::Shell;

/// Options of `ipcbox completions`.
#[derive(clap::Args)]
#[command(after_help = "\
Examples:
  ipcbox completions bash > ~/.local/share/bash-completion/completions/ipcbox
  ipcbox completions zsh > ~/.zfunc/_ipcbox
  ipcbox completions fish > ~/.config/fish/completions/ipcbox.fish")]
pub(crate) struct CompletionArgs {
    /// The shell.
    #[arg(value_enum, value_name = "SHELL")]
    shell: Shell,
}

/// Options of `ipcbox man`.
#[derive(clap::Args)]
#[command(after_help = "\
Examples:
  ipcbox man | man -l -                  read ipcbox(1) now
  ipcbox man --dir /usr/local/share/man/man1
                                         install ipcbox.1, ipcbox-send.1, ...")]
pub(crate) struct ManArgs {
    /// Write ipcbox.1 and a page per subcommand (ipcbox-send.1, ...) into DIR, which must
    /// exist, instead of printing ipcbox.1 on stdout.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

/// Runs `ipcbox completions`.
pub(crate) fn completions(args: CompletionArgs, mut cmd: clap::Command) -> anyhow::Result<()> {
    clap_complete::generate(args.shell, &mut cmd, "ipcbox", &mut std::io::stdout());
    Ok(())
}

/// Runs `ipcbox man`.
pub(crate) fn man(args: ManArgs, cmd: clap::Command) -> anyhow::Result<()> {
    let cmd = cmd.version(env!("CARGO_PKG_VERSION"));
    let Some(dir) = args.dir else {
        let mut out = Vec::new();
        clap_mangen::Man::new(cmd).render(&mut out)?;
        std::io::Write::write_all(&mut std::io::stdout(), &out)?;
        return Ok(());
    };
    if !dir.is_dir() {
        anyhow::bail!("{} is not a directory", dir.display());
    }
    // Render every page before writing any, so a failure leaves no partial set.
    let mut pages = vec![page("ipcbox", cmd.clone())?];
    for sub in cmd.get_subcommands() {
        let name = format!("ipcbox-{}", sub.get_name());
        let sub = sub
            .clone()
            .display_name(name.clone())
            .bin_name(format!("ipcbox {}", sub.get_name()));
        pages.push(page(&name, sub)?);
    }
    for (name, text) in pages {
        let path = dir.join(format!("{name}.1"));
        std::fs::write(&path, text).with_context(|| format!("write {}", path.display()))?;
        println!("{}", path.display());
    }
    Ok(())
}

fn page(name: &str, cmd: clap::Command) -> anyhow::Result<(String, Vec<u8>)> {
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd)
        .render(&mut out)
        .with_context(|| format!("render the man page {name}(1)"))?;
    Ok((name.to_owned(), out))
}
