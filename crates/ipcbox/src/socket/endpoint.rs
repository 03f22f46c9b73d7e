//! Socket addresses written as strings (`unix:/path`, `unix-abstract:name`, `tcp:host:port`,
//! …), and their conversion to and from the kernel's socket addresses.

use std::fmt;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::BorrowedFd;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use rustix::net::{self, AddressFamily, SocketAddrAny, SocketAddrUnix};

use crate::error::{invalid_input, ResultExt};

/// The longest Unix socket path or abstract name, in bytes (`sun_path` is 108 bytes and a path
/// needs its terminating NUL).
pub const MAX_UNIX_NAME: usize = 107;

/// The type of a Unix socket: which of `SOCK_STREAM`, `SOCK_SEQPACKET`, `SOCK_DGRAM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A reliable byte stream without message boundaries (`SOCK_STREAM`): [`Stream`](super::Stream).
    Stream,
    /// Reliable, ordered messages whose boundaries are kept (`SOCK_SEQPACKET`):
    /// [`SeqPacket`](super::SeqPacket).
    SeqPacket,
    /// Unconnected messages (`SOCK_DGRAM`); reliable and ordered for Unix sockets, not for UDP:
    /// [`Datagram`](super::Datagram).
    Datagram,
}

impl Kind {
    fn suffix(self) -> &'static str {
        match self {
            Kind::Stream => "",
            Kind::SeqPacket => "-seqpacket",
            Kind::Datagram => "-dgram",
        }
    }

    pub(crate) fn socket_type(self) -> rustix::net::SocketType {
        use rustix::net::SocketType;
        match self {
            Kind::Stream => SocketType::STREAM,
            Kind::SeqPacket => SocketType::SEQPACKET,
            Kind::Datagram => SocketType::DGRAM,
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Stream => "stream",
            Kind::SeqPacket => "seqpacket",
            Kind::Datagram => "datagram",
        })
    }
}

/// Where a socket listens or connects, parsed from and displayed as a string.
///
/// | string | endpoint |
/// |---|---|
/// | `unix:/run/app.sock` | Unix stream socket at a filesystem path |
/// | `unix-seqpacket:/path`, `unix-dgram:/path` | the same with `SOCK_SEQPACKET` / `SOCK_DGRAM` |
/// | `unix-abstract:name` | Linux abstract namespace (no file; gone when the last socket closes) |
/// | `unix-abstract-seqpacket:name`, `unix-abstract-dgram:name` | the same, other kinds |
/// | `tcp:127.0.0.1:8080`, `tcp:localhost:0`, `tcp:[::1]:80` | TCP; port 0 picks a free port |
/// | `udp:127.0.0.1:9000` | UDP |
///
/// The socket kind is part of the string, so one string says everything a peer needs to
/// connect. `Display` gives back the string `FromStr` accepts (paths are shown lossily if they
/// are not UTF-8). Parsing checks the syntax only; host names are resolved when a socket binds
/// or connects.
///
/// # Examples
///
/// ```
/// use ipcbox::socket::{Endpoint, Kind};
///
/// let ep: Endpoint = "unix-seqpacket:/tmp/app.sock".parse()?;
/// assert_eq!(ep, Endpoint::Unix { path: "/tmp/app.sock".into(), kind: Kind::SeqPacket });
/// assert_eq!(ep.to_string(), "unix-seqpacket:/tmp/app.sock");
///
/// let err = "tcp:nohost".parse::<Endpoint>().unwrap_err();
/// assert!(err.to_string().contains("\"tcp:nohost\""));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// A Unix socket at a filesystem path.
    Unix {
        /// The socket file.
        path: PathBuf,
        /// Stream, seqpacket or datagram.
        kind: Kind,
    },
    /// A Unix socket in the Linux abstract namespace (a name without a file).
    Abstract {
        /// The name (without the leading NUL byte the kernel uses). Names the kernel reports
        /// (a peer's address) that are not UTF-8 are converted lossily.
        name: String,
        /// Stream, seqpacket or datagram.
        kind: Kind,
    },
    /// A TCP address.
    Tcp {
        /// Host name or IP address (IPv6 without brackets).
        host: String,
        /// Port; 0 asks the kernel for a free one when binding.
        port: u16,
    },
    /// A UDP address.
    Udp {
        /// Host name or IP address (IPv6 without brackets).
        host: String,
        /// Port; 0 asks the kernel for a free one when binding.
        port: u16,
    },
}

impl Endpoint {
    /// A Unix stream socket at `path`.
    pub fn unix(path: impl Into<PathBuf>) -> Endpoint {
        Endpoint::Unix {
            path: path.into(),
            kind: Kind::Stream,
        }
    }

    /// A Unix stream socket named `name` in the abstract namespace.
    pub fn unix_abstract(name: impl Into<String>) -> Endpoint {
        Endpoint::Abstract {
            name: name.into(),
            kind: Kind::Stream,
        }
    }

    /// A TCP endpoint.
    pub fn tcp(host: impl Into<String>, port: u16) -> Endpoint {
        Endpoint::Tcp {
            host: host.into(),
            port,
        }
    }

    /// A UDP endpoint.
    pub fn udp(host: impl Into<String>, port: u16) -> Endpoint {
        Endpoint::Udp {
            host: host.into(),
            port,
        }
    }

    /// The socket kind: TCP is [`Kind::Stream`], UDP [`Kind::Datagram`].
    pub fn kind(&self) -> Kind {
        match self {
            Endpoint::Unix { kind, .. } | Endpoint::Abstract { kind, .. } => *kind,
            Endpoint::Tcp { .. } => Kind::Stream,
            Endpoint::Udp { .. } => Kind::Datagram,
        }
    }

    /// The same endpoint with another kind (Unix endpoints only; TCP and UDP are returned as
    /// they are).
    pub fn with_kind(mut self, new: Kind) -> Endpoint {
        if let Endpoint::Unix { kind, .. } | Endpoint::Abstract { kind, .. } = &mut self {
            *kind = new;
        }
        self
    }

    /// The port of a TCP or UDP endpoint.
    pub fn port(&self) -> Option<u16> {
        match self {
            Endpoint::Tcp { port, .. } | Endpoint::Udp { port, .. } => Some(*port),
            _ => None,
        }
    }

    /// The socket file of a filesystem Unix endpoint.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Endpoint::Unix { path, .. } => Some(path),
            _ => None,
        }
    }

    /// Resolves the host of a TCP or UDP endpoint (`getaddrinfo` unless it is an IP literal).
    pub(crate) fn resolve(&self) -> io::Result<Vec<SocketAddr>> {
        let (host, port) = match self {
            Endpoint::Tcp { host, port } | Endpoint::Udp { host, port } => (host, *port),
            _ => {
                return Err(invalid_input(format_args!(
                    "{self:?} is not an IP endpoint"
                )))
            }
        };
        let addrs: Vec<SocketAddr> = (host.as_str(), port)
            .to_socket_addrs()
            .map_err(|e| crate::error::context(e, format_args!("resolve \"{self}\"")))?
            .collect();
        if addrs.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("resolve \"{self}\": no address found"),
            ));
        }
        Ok(addrs)
    }

    /// The endpoint of an IP socket address.
    pub(crate) fn from_ip(addr: SocketAddr, kind: Kind) -> Endpoint {
        let host = addr.ip().to_string();
        let port = addr.port();
        match kind {
            Kind::Datagram => Endpoint::Udp { host, port },
            _ => Endpoint::Tcp { host, port },
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Unix { path, kind } => {
                write!(f, "unix{}:{}", kind.suffix(), path.display())
            }
            Endpoint::Abstract { name, kind } => {
                write!(f, "unix-abstract{}:{name}", kind.suffix())
            }
            Endpoint::Tcp { host, port } | Endpoint::Udp { host, port } => {
                let scheme = if matches!(self, Endpoint::Tcp { .. }) {
                    "tcp"
                } else {
                    "udp"
                };
                if host.contains(':') {
                    write!(f, "{scheme}:[{host}]:{port}")
                } else {
                    write!(f, "{scheme}:{host}:{port}")
                }
            }
        }
    }
}

fn bad(s: &str, why: impl fmt::Display) -> io::Error {
    invalid_input(format_args!("invalid socket endpoint \"{s}\": {why}"))
}

fn unix_name<'a>(s: &str, what: &str, name: &'a str) -> io::Result<&'a str> {
    if name.is_empty() {
        return Err(bad(s, format_args!("empty {what}")));
    }
    if name.contains('\0') {
        return Err(bad(s, format_args!("{what} contains a NUL byte")));
    }
    if name.len() > MAX_UNIX_NAME {
        return Err(bad(
            s,
            format_args!(
                "{what} is {} bytes long, the limit is {MAX_UNIX_NAME}",
                name.len()
            ),
        ));
    }
    Ok(name)
}

fn host_port(s: &str, rest: &str) -> io::Result<(String, u16)> {
    let Some((host, port)) = rest.rsplit_once(':') else {
        return Err(bad(s, "expected host:port"));
    };
    let host = if let Some(inner) = host.strip_prefix('[') {
        match inner.strip_suffix(']') {
            Some(v6) if v6.contains(':') => v6,
            _ => return Err(bad(s, "unbalanced brackets around the IPv6 address")),
        }
    } else if host.contains(':') {
        return Err(bad(
            s,
            "IPv6 addresses must be written in brackets: [::1]:port",
        ));
    } else {
        host
    };
    if host.is_empty() {
        return Err(bad(s, "empty host"));
    }
    if port.is_empty() {
        return Err(bad(s, "empty port"));
    }
    if !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad(s, format_args!("port \"{port}\" is not a number")));
    }
    let port: u16 = port
        .parse()
        .map_err(|_| bad(s, format_args!("port {port} is out of range (0 to 65535)")))?;
    Ok((host.to_owned(), port))
}

impl FromStr for Endpoint {
    type Err = io::Error;

    /// Parses the forms listed on [`Endpoint`].
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::InvalidInput`] with a message that quotes the whole string and says
    /// what is wrong: unknown scheme, empty path or name, a name longer than
    /// [`MAX_UNIX_NAME`], missing host or port, port out of range.
    fn from_str(s: &str) -> io::Result<Endpoint> {
        let Some((scheme, rest)) = s.split_once(':') else {
            return Err(bad(
                s,
                "expected scheme:address (unix:, unix-abstract:, tcp:, udp:)",
            ));
        };
        let unix = |kind| -> io::Result<Endpoint> {
            Ok(Endpoint::Unix {
                path: PathBuf::from(unix_name(s, "path", rest)?),
                kind,
            })
        };
        let abs = |kind| -> io::Result<Endpoint> {
            Ok(Endpoint::Abstract {
                name: unix_name(s, "abstract name", rest)?.to_owned(),
                kind,
            })
        };
        match scheme {
            "unix" => unix(Kind::Stream),
            "unix-seqpacket" => unix(Kind::SeqPacket),
            "unix-dgram" => unix(Kind::Datagram),
            "unix-abstract" => abs(Kind::Stream),
            "unix-abstract-seqpacket" => abs(Kind::SeqPacket),
            "unix-abstract-dgram" => abs(Kind::Datagram),
            "tcp" => host_port(s, rest).map(|(host, port)| Endpoint::Tcp { host, port }),
            "udp" => host_port(s, rest).map(|(host, port)| Endpoint::Udp { host, port }),
            other => Err(bad(
                s,
                format_args!(
                    "unknown scheme \"{other}\" (expected unix, unix-seqpacket, unix-dgram, \
                     unix-abstract, unix-abstract-seqpacket, unix-abstract-dgram, tcp, udp)"
                ),
            )),
        }
    }
}

impl TryFrom<&str> for Endpoint {
    type Error = io::Error;

    fn try_from(s: &str) -> io::Result<Endpoint> {
        s.parse()
    }
}

/// The `sockaddr_un` of a Unix endpoint.
pub(super) fn unix_addr(ep: &Endpoint) -> io::Result<SocketAddrUnix> {
    match ep {
        Endpoint::Unix { path, .. } => {
            SocketAddrUnix::new(path.as_path()).context_with(|| format!("socket path of \"{ep}\""))
        }
        Endpoint::Abstract { name, .. } => SocketAddrUnix::new_abstract_name(name.as_bytes())
            .context_with(|| format!("abstract name of \"{ep}\"")),
        _ => Err(invalid_input(format_args!(
            "\"{ep}\" is not a Unix endpoint"
        ))),
    }
}

/// The endpoint of an address the kernel reported; `None` for an unnamed Unix socket.
pub(super) fn endpoint_of(addr: SocketAddrAny, kind: Kind) -> Option<Endpoint> {
    match addr.address_family() {
        AddressFamily::UNIX => {
            let unix = SocketAddrUnix::try_from(addr).ok()?;
            if let Some(path) = unix.path_bytes() {
                use std::os::unix::ffi::OsStrExt;
                let path = PathBuf::from(std::ffi::OsStr::from_bytes(path));
                Some(Endpoint::Unix { path, kind })
            } else {
                unix.abstract_name().map(|name| Endpoint::Abstract {
                    name: String::from_utf8_lossy(name).into_owned(),
                    kind,
                })
            }
        }
        AddressFamily::INET | AddressFamily::INET6 => SocketAddr::try_from(addr)
            .ok()
            .map(|a| Endpoint::from_ip(a, kind)),
        _ => None,
    }
}

/// `getsockname(2)` as an endpoint.
pub(super) fn local_endpoint(fd: BorrowedFd<'_>, kind: Kind) -> io::Result<Option<Endpoint>> {
    Ok(endpoint_of(
        net::getsockname(fd).context_with(|| "getsockname")?,
        kind,
    ))
}

/// `getpeername(2)` as an endpoint.
pub(super) fn peer_endpoint(fd: BorrowedFd<'_>, kind: Kind) -> io::Result<Option<Endpoint>> {
    Ok(net::getpeername(fd)
        .context_with(|| "getpeername")?
        .and_then(|a| endpoint_of(a, kind)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for s in [
            "unix:/tmp/a.sock",
            "unix-seqpacket:/tmp/a",
            "unix-dgram:rel/path",
            "unix-abstract:name with spaces",
            "unix-abstract-seqpacket:x",
            "unix-abstract-dgram:y",
            "tcp:127.0.0.1:0",
            "tcp:localhost:65535",
            "tcp:[::1]:80",
            "udp:example.org:53",
        ] {
            let ep: Endpoint = s.parse().unwrap();
            assert_eq!(ep.to_string(), s);
            assert_eq!(ep.to_string().parse::<Endpoint>().unwrap(), ep);
        }
    }

    #[test]
    fn errors_quote_the_string() {
        for (s, why) in [
            ("tcp:nohost", "host:port"),
            ("unix:", "empty path"),
            ("bogus:x", "unknown scheme"),
            ("nothing", "scheme:address"),
            ("tcp:h:70000", "out of range"),
            ("udp:h:-1", "not a number"),
            ("tcp::80", "empty host"),
            ("tcp:h:", "empty port"),
            ("tcp:::1:80", "brackets"),
            ("unix-abstract:", "empty abstract name"),
        ] {
            let err = s.parse::<Endpoint>().unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
            let text = err.to_string();
            assert!(text.contains(&format!("\"{s}\"")), "{text}");
            assert!(text.contains(why), "{text}");
        }
        let long = format!("unix:/{}", "x".repeat(200));
        assert!(long
            .parse::<Endpoint>()
            .unwrap_err()
            .to_string()
            .contains("limit is 107"));
    }
}
