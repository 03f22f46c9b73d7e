"""A foreign peer for ipcbox's wire format (WIRE.md), using only the standard library.

Usage: frame_peer.py MODE, with the connection's socket named by the environment variable
IPCBOX_FRAME_CONN ("fd:dev:ino", as Connection::pass_to_child sets it).

  echo  receive frames until b"quit", answer each with b"py:" + payload; then send
        struct-packed u32 0, 1, 2, the postcard encoding of a short string, and close
        (the Rust side must then see Disconnected).
  torn  send a header announcing 1000 bytes and 10 bytes of it, then SIGKILL itself.
"""

import os
import signal
import socket
import struct
import sys


def send(sock, payload):
    sock.sendall(struct.pack("<I", len(payload)) + payload)


def recv_exact(sock, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            if not buf:
                raise EOFError
            raise ConnectionError(f"torn frame: {len(buf)} of {n} bytes")
        buf += chunk
    return bytes(buf)


def recv(sock, max_len=64 << 20):
    (n,) = struct.unpack("<I", recv_exact(sock, 4))
    if n > max_len:
        raise ValueError(f"frame of {n} bytes is longer than the limit of {max_len} bytes")
    return recv_exact(sock, n) if n else b""


def main():
    fd = int(os.environ["IPCBOX_FRAME_CONN"].split(":")[0])
    sock = socket.socket(fileno=fd)
    mode = sys.argv[1]
    if mode == "echo":
        while True:
            payload = recv(sock)
            if payload == b"quit":
                break
            send(sock, b"py:" + payload)
        for i in range(3):
            send(sock, struct.pack("<I", i))
        text = "hello from python".encode()
        send(sock, bytes([len(text)]) + text)  # postcard String: varint length, UTF-8
        sock.close()
    elif mode == "torn":
        sock.sendall(struct.pack("<I", 1000) + b"x" * 10)
        os.kill(os.getpid(), signal.SIGKILL)
    else:
        sys.exit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main()
