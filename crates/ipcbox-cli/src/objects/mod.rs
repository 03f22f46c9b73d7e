//! `ipcbox ls` and `ipcbox clean`: find IPC objects left behind by crashed processes and remove
//! those nobody uses, over `ipcbox::objects`.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use ipcbox::objects::{Format, Kind, Object};

pub(crate) mod clean;
pub(crate) mod ls;

/// An object named on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Selector {
    /// A POSIX name, without its leading `/` (also matches the file name, `sem.NAME`).
    Name(String),
    /// A System V key.
    Key(i32),
    /// A System V identifier of one kind.
    Id(Kind, i32),
}

impl FromStr for Selector {
    type Err = String;

    fn from_str(s: &str) -> Result<Selector, String> {
        let ids = [
            ("shmid:", Kind::SysVShm),
            ("semid:", Kind::SysVSemaphores),
            ("msqid:", Kind::SysVQueue),
        ];
        for (prefix, kind) in ids {
            if let Some(id) = s.strip_prefix(prefix) {
                return id
                    .parse::<i32>()
                    .ok()
                    .filter(|&id| id >= 0)
                    .map(|id| Selector::Id(kind, id))
                    .ok_or_else(|| format!("invalid System V id {id:?} in {s:?}: expected a number such as {prefix}32768"));
            }
        }
        if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
            return u32::from_str_radix(hex, 16)
                .ok()
                .filter(|&k| k != 0)
                .map(|k| Selector::Key(k as i32))
                .ok_or_else(|| {
                    format!("invalid System V key {s:?}: expected 1 to 8 hex digits, not 0 (IPC_PRIVATE objects are named by id)")
                });
        }
        let bare = s.strip_prefix('/').unwrap_or(s);
        if bare.is_empty() || bare.contains('/') || bare == "." || bare == ".." {
            return Err(format!(
                "invalid object name {s:?}: expected a POSIX name (/name), a System V key \
                 (0x1234abcd) or id (shmid:N, semid:N, msqid:N)"
            ));
        }
        Ok(Selector::Name(bare.to_owned()))
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Selector::Name(name) => write!(f, "/{name}"),
            Selector::Key(key) => write!(f, "{key:#010x}"),
            Selector::Id(Kind::SysVShm, id) => write!(f, "shmid:{id}"),
            Selector::Id(Kind::SysVSemaphores, id) => write!(f, "semid:{id}"),
            Selector::Id(_, id) => write!(f, "msqid:{id}"),
        }
    }
}

impl Selector {
    fn matches(&self, obj: &Object) -> bool {
        match self {
            Selector::Name(name) => {
                obj.name.as_deref().and_then(|n| n.strip_prefix('/')) == Some(name.as_str())
                    || obj
                        .path
                        .as_deref()
                        .and_then(|p| p.file_name())
                        .is_some_and(|f| f == name.as_str())
            }
            Selector::Key(key) => obj.key.is_some_and(|k| k.as_raw() == *key),
            Selector::Id(kind, id) => obj.kind == *kind && obj.id == Some(*id),
        }
    }
}

/// A kind of object asked for with `--kind`: an IPC kind or an ipcbox layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KindFilter {
    Kind(Kind),
    Format(Format),
}

impl FromStr for KindFilter {
    type Err = String;

    fn from_str(s: &str) -> Result<KindFilter, String> {
        let kinds = [
            Kind::PosixShm,
            Kind::PosixSemaphore,
            Kind::PosixQueue,
            Kind::SysVShm,
            Kind::SysVSemaphores,
            Kind::SysVQueue,
        ];
        let formats = [
            Format::Queue,
            Format::Channel,
            Format::Store,
            Format::Sync,
            Format::Typed,
        ];
        if let Some(k) = kinds.into_iter().find(|k| k.name() == s) {
            return Ok(KindFilter::Kind(k));
        }
        if let Some(f) = formats.into_iter().find(|f| f.name() == s) {
            return Ok(KindFilter::Format(f));
        }
        let names: Vec<&str> = kinds
            .iter()
            .map(|k| k.name())
            .chain(formats.iter().map(|f| f.name()))
            .collect();
        Err(format!(
            "unknown kind \"{s}\" (expected one of {})",
            names.join(", ")
        ))
    }
}

impl KindFilter {
    pub(crate) fn matches(&self, obj: &Object) -> bool {
        match self {
            KindFilter::Kind(k) => obj.kind == *k,
            KindFilter::Format(f) => obj.format == Some(*f),
        }
    }
}

/// A user asked for with `--owner`: a uid, or a name looked up in `/etc/passwd`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Owner {
    pub(crate) uid: u32,
}

impl FromStr for Owner {
    type Err = String;

    fn from_str(s: &str) -> Result<Owner, String> {
        if let Ok(uid) = s.parse::<u32>() {
            return Ok(Owner { uid });
        }
        let passwd = std::fs::read_to_string("/etc/passwd")
            .map_err(|e| format!("look up user \"{s}\": read /etc/passwd: {e}"))?;
        passwd
            .lines()
            .filter_map(|l| {
                let mut f = l.split(':');
                Some((f.next()?, f.nth(1)?))
            })
            .find(|(name, _)| *name == s)
            .and_then(|(_, uid)| uid.parse().ok())
            .map(|uid| Owner { uid })
            .ok_or_else(|| format!("no user \"{s}\" in /etc/passwd (give a uid or a user name)"))
    }
}

/// The objects a command works on: those named, or else every object (`all`) or ipcbox's;
/// and the names that matched nothing.
pub(crate) fn select(
    objects: Vec<Object>,
    names: &[Selector],
    all: bool,
) -> (Vec<Object>, Vec<Selector>) {
    if names.is_empty() {
        let chosen = objects
            .into_iter()
            .filter(|o| all || o.is_ipcbox())
            .collect();
        return (chosen, Vec::new());
    }
    let unmatched = names
        .iter()
        .filter(|n| !objects.iter().any(|o| n.matches(o)))
        .cloned()
        .collect();
    let chosen = objects
        .into_iter()
        .filter(|o| names.iter().any(|n| n.matches(o)))
        .collect();
    (chosen, unmatched)
}

/// Parses `500ms`, `30s`, `5m`, `2h`, `1d` (a whole number and a unit), or `0`.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || {
        format!("invalid duration {s:?}: expected a whole number and a unit (ms, s, m, h, d), e.g. 30s or 2h, or 0")
    };
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let digits = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (n, unit) = s.split_at(digits);
    let n: u64 = n.parse().map_err(|_| bad())?;
    let secs = match unit {
        "ms" => return Ok(Duration::from_millis(n)),
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return Err(bad()),
    };
    n.checked_mul(secs).map(Duration::from_secs).ok_or_else(bad)
}

/// A duration in its largest whole unit: `42s`, `5m`, `3h`, `2d`.
pub(crate) fn short(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86400)));
        for bad in [
            "",
            "10",
            "s",
            "1.5h",
            "-3s",
            "3 s",
            "5y",
            "99999999999999999999d",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn kinds_and_owners() {
        assert_eq!("sysv-msg".parse(), Ok(KindFilter::Kind(Kind::SysVQueue)));
        assert_eq!("store".parse(), Ok(KindFilter::Format(Format::Store)));
        let err = "pipes".parse::<KindFilter>().unwrap_err();
        assert!(
            err.contains("\"pipes\"") && err.contains("posix-shm"),
            "{err}"
        );
        assert_eq!("1000".parse(), Ok(Owner { uid: 1000 }));
        assert_eq!("root".parse(), Ok(Owner { uid: 0 }));
        let err = "no-such-user-here".parse::<Owner>().unwrap_err();
        assert!(err.contains("no user \"no-such-user-here\""), "{err}");
    }

    #[test]
    fn selectors() {
        assert_eq!("/x".parse(), Ok(Selector::Name("x".into())));
        assert_eq!("x".parse(), Ok(Selector::Name("x".into())));
        assert_eq!("0x1F".parse(), Ok(Selector::Key(0x1f)));
        assert_eq!("0xffffffff".parse(), Ok(Selector::Key(-1)));
        assert_eq!("semid:7".parse(), Ok(Selector::Id(Kind::SysVSemaphores, 7)));
        for bad in [
            "", "/", "a/b", "0x", "0x0", "0xzz", "shmid:", "msqid:-1", "..",
        ] {
            assert!(bad.parse::<Selector>().is_err(), "{bad:?}");
        }
    }
}
