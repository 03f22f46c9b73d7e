//! What `send`, `recv` and `watch` talk to, written as one string: the library's socket
//! endpoint strings (`unix:/path`, `tcp:host:port`, …) and the same `kind:address` style for
//! every other mechanism with a name.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use ipcbox::socket::Endpoint;
use ipcbox::store::ObjectId;
use ipcbox::IpcKey;

/// The endpoint syntax, for `--help` and the man page (a macro, for `concat!`).
macro_rules! endpoint_syntax {
    () => {
        "\
Endpoints:
  fifo:PATH                   a named pipe (FIFO) that exists
  unix:PATH                   Unix stream socket; unix-seqpacket:PATH, unix-dgram:PATH
  unix-abstract:NAME          the same in the abstract namespace (also -seqpacket, -dgram)
  tcp:HOST:PORT, udp:HOST:PORT
                              IP sockets; [::1] for IPv6; port 0 picks a free one (recv)
  mq:/NAME                    POSIX message queue
  sysv-mq:KEY                 System V message queue by key (0x1234abcd or decimal)
  queue:NAME                  ipcbox Queue, raw bytes per message
  shm:NAME                    POSIX shared-memory segment (a byte range of it)
  sysv-shm:KEY                System V shared-memory segment
  store:NAME/ID               object ID in the ipcbox object store NAME; ID is 40 hex
                              digits or a decimal number (its little-endian bytes)
The socket forms are the library's endpoint strings (ipcbox::socket::Endpoint)."
    };
}

/// A mechanism and its name or address, as the command line writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// A socket endpoint, in the library's syntax.
    Socket(Endpoint),
    /// A FIFO's path.
    Fifo(PathBuf),
    /// A POSIX message queue's name.
    PosixMq(String),
    /// A System V message queue's key.
    SysVMq(IpcKey),
    /// An ipcbox queue's name.
    Queue(String),
    /// A POSIX shared-memory segment's name.
    Shm(String),
    /// A System V shared-memory segment's key.
    SysVShm(IpcKey),
    /// An object in an ipcbox object store.
    Store {
        /// The store's name.
        name: String,
        /// The object.
        id: ObjectId,
    },
}

/// The kinds that are not sockets, for messages.
const KINDS: &str = "fifo, unix, unix-seqpacket, unix-dgram, unix-abstract, \
                     unix-abstract-seqpacket, unix-abstract-dgram, tcp, udp, mq, sysv-mq, queue, \
                     shm, sysv-shm, store";

fn bad(s: &str, why: impl fmt::Display) -> String {
    format!("invalid endpoint \"{s}\": {why}")
}

/// Parses a System V key: `0x` and 1 to 8 hex digits, or a decimal number; not 0.
pub(crate) fn parse_key(text: &str) -> Result<IpcKey, String> {
    let value = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) if !hex.is_empty() && hex.len() <= 8 => u32::from_str_radix(hex, 16).ok(),
        Some(_) => None,
        None => text
            .parse::<i64>()
            .ok()
            .filter(|&k| i64::from(i32::MIN) <= k && k <= i64::from(u32::MAX))
            .map(|k| k as u32),
    };
    match value {
        Some(0) => Err(format!(
            "key {text} is IPC_PRIVATE, which names no object: use the key the object was \
             created with"
        )),
        Some(key) => Ok(IpcKey::from_raw(key as i32)),
        None => Err(format!(
            "key \"{text}\" is not 0x and 1 to 8 hex digits or a decimal number"
        )),
    }
}

fn parse_id(text: &str) -> Result<ObjectId, String> {
    if text.len() == 40 {
        return text.parse::<ObjectId>().map_err(|e| e.to_string());
    }
    text.parse::<u64>()
        .map(ObjectId::from_u64)
        .map_err(|_| format!("object id \"{text}\" is neither 40 hex digits nor a decimal number"))
}

impl FromStr for Target {
    type Err = String;

    fn from_str(s: &str) -> Result<Target, String> {
        let Some((kind, rest)) = s.split_once(':') else {
            return Err(bad(
                s,
                format_args!("expected KIND:ADDRESS, KIND one of {KINDS}"),
            ));
        };
        let name = |what: &str| {
            if rest.is_empty() {
                Err(bad(s, format_args!("empty {what}")))
            } else {
                Ok(rest.to_owned())
            }
        };
        match kind {
            "fifo" => name("path").map(|p| Target::Fifo(PathBuf::from(p))),
            "mq" => name("queue name").map(Target::PosixMq),
            "queue" => name("queue name").map(Target::Queue),
            "shm" => name("segment name").map(Target::Shm),
            "sysv-mq" => parse_key(rest)
                .map(Target::SysVMq)
                .map_err(|why| bad(s, why)),
            "sysv-shm" => parse_key(rest)
                .map(Target::SysVShm)
                .map_err(|why| bad(s, why)),
            "store" => {
                let Some((store, id)) = rest.rsplit_once('/').filter(|(n, _)| !n.is_empty()) else {
                    return Err(bad(s, "expected store:NAME/ID"));
                };
                let id = parse_id(id).map_err(|why| bad(s, why))?;
                Ok(Target::Store {
                    name: store.to_owned(),
                    id,
                })
            }
            _ if kind.starts_with("unix") || kind == "tcp" || kind == "udp" => s
                .parse::<Endpoint>()
                .map(Target::Socket)
                .map_err(|e| e.to_string()),
            other => Err(bad(
                s,
                format_args!("unknown kind \"{other}\" (expected one of {KINDS})"),
            )),
        }
    }
}

/// An object id as the command line writes it: the decimal number of an id made from one
/// (its last 12 bytes zero), else 40 hex digits. Both parse back to the same id.
pub(crate) fn show_id(id: &ObjectId) -> String {
    let bytes = id.as_bytes();
    if bytes[8..].iter().all(|&b| b == 0) {
        let mut low = [0; 8];
        low.copy_from_slice(&bytes[..8]);
        u64::from_le_bytes(low).to_string()
    } else {
        id.to_string()
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = |k: &IpcKey| format!("{:#010x}", k.as_raw());
        match self {
            Target::Socket(ep) => write!(f, "{ep}"),
            Target::Fifo(path) => write!(f, "fifo:{}", path.display()),
            Target::PosixMq(name) => write!(f, "mq:{name}"),
            Target::SysVMq(k) => write!(f, "sysv-mq:{}", key(k)),
            Target::Queue(name) => write!(f, "queue:{name}"),
            Target::Shm(name) => write!(f, "shm:{name}"),
            Target::SysVShm(k) => write!(f, "sysv-shm:{}", key(k)),
            Target::Store { name, id } => write!(f, "store:{name}/{}", show_id(id)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_parses_and_prints_back() {
        for s in [
            "fifo:/tmp/f",
            "unix:/tmp/s.sock",
            "unix-seqpacket:/tmp/s",
            "unix-abstract-dgram:x",
            "tcp:127.0.0.1:80",
            "udp:[::1]:53",
            "mq:/jobs",
            "sysv-mq:0x0000abcd",
            "queue:work",
            "shm:/seg",
            "sysv-shm:0x12345678",
        ] {
            let t: Target = s.parse().unwrap();
            assert_eq!(t.to_string(), s);
        }
        let t: Target = "store:/objs/7".parse().unwrap();
        assert_eq!(
            t,
            Target::Store {
                name: "/objs".into(),
                id: ObjectId::from_u64(7)
            }
        );
        assert_eq!(t.to_string(), "store:/objs/7");
        let hex = ObjectId::new([0xab; 20]).to_string();
        let s = format!("store:objs/{hex}");
        assert_eq!(s.parse::<Target>().unwrap().to_string(), s);
        let zeros = format!("store:objs/{}", ObjectId::from_u64(9));
        assert_eq!(zeros.parse::<Target>().unwrap().to_string(), "store:objs/9");
        assert_eq!(
            "sysv-mq:43981".parse::<Target>().unwrap(),
            Target::SysVMq(IpcKey::from_raw(0xabcd))
        );
        assert_eq!(
            "sysv-mq:0xffffffff".parse::<Target>().unwrap(),
            Target::SysVMq(IpcKey::from_raw(-1))
        );
    }

    #[test]
    fn errors_quote_the_string_and_say_why() {
        for (s, why) in [
            ("nothing", "KIND:ADDRESS"),
            ("bogus:x", "unknown kind \"bogus\""),
            ("fifo:", "empty path"),
            ("mq:", "empty queue name"),
            ("sysv-mq:0", "IPC_PRIVATE"),
            ("sysv-mq:0x", "hex digits"),
            ("sysv-shm:zz", "hex digits"),
            ("store:name", "store:NAME/ID"),
            ("store:/7", "store:NAME/ID"),
            ("store:s/x1", "neither 40 hex digits"),
            ("tcp:nohost", "host:port"),
            ("unix:", "empty path"),
        ] {
            let err = s.parse::<Target>().unwrap_err();
            assert!(err.contains(&format!("\"{s}\"")), "{err}");
            assert!(err.contains(why), "{s}: {err}");
            assert!(!err.contains('\n'), "{err}");
        }
    }
}
