"""``Pipe``, ``Connection`` and ``wait``: ``multiprocessing.connection`` speaking ipcbox's wire
format (WIRE.md: a little-endian ``u32`` length, then the payload), so that the other end can
be a Rust ``ipcbox::frame::Connection`` as well as Python."""

import os
import socket
import struct
import time

from multiprocessing import connection as _mpc
from multiprocessing import reduction

__all__ = ["Pipe", "Connection", "wait"]

#: The longest payload the wire format carries.
WIRE_MAX = 0xFFFFFFFF


class Connection(_mpc.Connection):
    """``multiprocessing.connection.Connection`` with WIRE.md framing.

    A message longer than ``recv_bytes``'s ``maxlength`` raises ``OSError`` naming both sizes
    and stays unread, and the connection open: a later call with a larger ``maxlength`` gets
    it (``multiprocessing`` closes the connection instead).
    """

    _pending = None

    def _send_bytes(self, buf):
        n = len(buf)
        if n > WIRE_MAX:
            raise ValueError(
                f"message of {n} bytes is longer than the wire format's limit of {WIRE_MAX}")
        header = struct.pack("<I", n)
        if n > 16384:
            self._send(header)
            self._send(buf)
        else:
            self._send(header + buf)

    def _recv_bytes(self, maxsize=None):
        size = self._pending
        if size is None:
            (size,) = struct.unpack("<I", self._recv(4).getvalue())
        if maxsize is not None and size > maxsize:
            self._pending = size
            return None
        self._pending = None
        return self._recv(size)

    def recv_bytes(self, maxlength=None):
        """Receives one message as ``bytes``; ``EOFError`` when the other end is closed."""
        self._check_closed()
        self._check_readable()
        if maxlength is not None and maxlength < 0:
            raise ValueError(f"negative maxlength: {maxlength}")
        buf = self._recv_bytes(maxlength)
        if buf is None:
            raise OSError(
                f"message of {self._pending} bytes is longer than maxlength {maxlength}; "
                "it stays unread")
        return buf.getvalue()


def _reduce_connection(conn):
    df = reduction.DupFd(conn.fileno())
    return _rebuild_connection, (df, conn.readable, conn.writable)


def _rebuild_connection(df, readable, writable):
    return Connection(df.detach(), readable, writable)


reduction.register(Connection, _reduce_connection)


def Pipe(duplex=True):
    """A pair of connected ``Connection`` objects: both ends read and write
    (``duplex=True``, a Unix socket pair), or the first reads and the second writes (an
    OS pipe)."""
    if duplex:
        s1, s2 = socket.socketpair()
        s1.setblocking(True)
        s2.setblocking(True)
        return Connection(s1.detach()), Connection(s2.detach())
    r, w = os.pipe()
    return Connection(r, writable=False), Connection(w, readable=False)


def wait(object_list, timeout=None):
    """``multiprocessing.connection.wait`` that also takes ipcbox queues: returns the objects
    ready to read (a queue is ready when it is not empty).

    Queues have no descriptor to sleep on: while any is in the list, the wait polls them,
    sleeping at most 5 ms between looks.
    """
    from .queues import Queue
    queues = [o for o in object_list if isinstance(o, Queue)]
    others = [o for o in object_list if not isinstance(o, Queue)]
    if not queues:
        return _mpc.wait(others, timeout)
    deadline = None if timeout is None else time.monotonic() + max(timeout, 0)
    pause = 0.0002
    while True:
        ready = [q for q in queues if not q.empty()]
        if others:
            ready += _mpc.wait(others, 0)
        if ready:
            return ready
        now = time.monotonic()
        if deadline is not None and now >= deadline:
            return []
        step = pause if deadline is None else min(pause, deadline - now)
        if others:
            got = _mpc.wait(others, step)
            if got:
                return [q for q in queues if not q.empty()] + got
        else:
            time.sleep(step)
        pause = min(pause * 2, 0.005)
