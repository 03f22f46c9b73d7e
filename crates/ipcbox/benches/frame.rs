//! Criterion benchmarks of `ipcbox::frame::Connection`'s bytes API against the bare system
//! calls on the same kind of socket, in one process: a 64-byte message sent and received back
//! on a socket pair.
//!
//! * Unix stream pair: `send_bytes` + `recv_bytes_into` (one `sendmsg` of header and payload,
//!   one `read`) against `write(2)` + `read(2)` of the bare 64 bytes.
//! * Unix seqpacket pair: the same calls (one `sendmsg`, one `recv` per frame) against
//!   `send(2)` + `recv(2)`.
//!
//! `cargo bench -p ipcbox --bench frame`. For two pinned processes and every transport, see
//! `ipcbox bench --filter socketpair --filter seqpacket` (and the other socket groups).

use std::hint::black_box;
use std::os::fd::{AsFd, OwnedFd};

use criterion::Criterion;
use ipcbox::frame::ByteConnection;
use ipcbox::socket::{SeqPacket, Stream};
use rustix::net::{RecvFlags, SendFlags};

const SIZE: usize = 64;

fn stream_pair(c: &mut Criterion) {
    let mut group = c.benchmark_group("frame 64 B send+recv, Unix stream pair, one process");
    let msg = [0xa5u8; SIZE];
    let mut buf = [0u8; SIZE];

    let (a, b) = Stream::pair().expect("socketpair");
    let mut a = ByteConnection::new(a).expect("connection");
    let mut b = ByteConnection::new(b).expect("connection");
    group.bench_function("ipcbox bytes", |bench| {
        bench.iter(|| {
            a.send_bytes(black_box(&msg)).expect("send");
            let n = b.recv_bytes_into(black_box(&mut buf)).expect("recv");
            assert_eq!(n, SIZE);
        })
    });

    let (a, b): (OwnedFd, OwnedFd) = {
        let (a, b) = Stream::pair().expect("socketpair");
        (a.into(), b.into())
    };
    group.bench_function("raw", |bench| {
        bench.iter(|| {
            let n = rustix::io::write(a.as_fd(), black_box(&msg)).expect("write");
            assert_eq!(n, SIZE);
            let n = rustix::io::read(b.as_fd(), black_box(&mut buf)).expect("read");
            assert_eq!(n, SIZE);
        })
    });
    group.finish();
}

fn seqpacket_pair(c: &mut Criterion) {
    let mut group = c.benchmark_group("frame 64 B send+recv, Unix seqpacket pair, one process");
    let msg = [0xa5u8; SIZE];
    let mut buf = [0u8; SIZE];

    let (a, b) = SeqPacket::pair().expect("socketpair");
    let mut a = ByteConnection::new(a).expect("connection");
    let mut b = ByteConnection::new(b).expect("connection");
    group.bench_function("ipcbox bytes", |bench| {
        bench.iter(|| {
            a.send_bytes(black_box(&msg)).expect("send");
            let n = b.recv_bytes_into(black_box(&mut buf)).expect("recv");
            assert_eq!(n, SIZE);
        })
    });

    let (a, b): (OwnedFd, OwnedFd) = {
        let (a, b) = SeqPacket::pair().expect("socketpair");
        (a.into(), b.into())
    };
    group.bench_function("raw", |bench| {
        bench.iter(|| {
            let n =
                rustix::net::send(a.as_fd(), black_box(&msg), SendFlags::NOSIGNAL).expect("send");
            assert_eq!(n, SIZE);
            let (_, n) =
                rustix::net::recv(b.as_fd(), black_box(&mut buf), RecvFlags::TRUNC).expect("recv");
            assert_eq!(n, SIZE);
        })
    });
    group.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    stream_pair(&mut c);
    seqpacket_pair(&mut c);
    c.final_summary();
}
