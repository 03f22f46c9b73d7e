"""Pipe and Connection: WIRE.md framing, limits, and wait over connections and queues."""

import socket
import struct

import pytest

import ipcbox


def test_the_wire_format_is_a_little_endian_length_then_the_payload():
    a, b = ipcbox.Pipe()
    raw = socket.socket(fileno=b.fileno())
    try:
        a.send_bytes(b"hello")
        assert raw.recv(9) == struct.pack("<I", 5) + b"hello"
        raw.sendall(struct.pack("<I", 3) + b"abc")
        assert a.recv_bytes() == b"abc"
    finally:
        raw.detach()


def test_a_message_over_maxlength_stays_unread_and_the_connection_open():
    a, b = ipcbox.Pipe()
    a.send_bytes(b"x" * 100)
    with pytest.raises(OSError, match="100 bytes is longer than maxlength 10"):
        b.recv_bytes(10)
    assert not b.closed
    assert b.recv_bytes() == b"x" * 100
    with pytest.raises(ValueError, match="negative"):
        b.recv_bytes(-1)


def test_simplex_pipes_have_one_direction():
    r, w = ipcbox.Pipe(duplex=False)
    w.send({"k": 1})
    assert r.recv() == {"k": 1}
    with pytest.raises(OSError):
        r.send(1)
    w.close()
    with pytest.raises(EOFError):
        r.recv()


def test_wait_takes_connections_and_queues():
    a, b = ipcbox.Pipe()
    q = ipcbox.Queue()
    assert ipcbox.wait([b, q], timeout=0.01) == []
    q.put(1)
    assert ipcbox.wait([b, q], timeout=5) == [q]
    q.get()
    a.send(2)
    assert ipcbox.wait([b, q], timeout=5) == [b]
    assert ipcbox.wait([b], timeout=5) == [b]
