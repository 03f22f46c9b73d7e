"""POSIX and System V queues and semaphores, shared with posix_ipc and sysv_ipc."""

import os
import random

import posix_ipc
import pytest
import sysv_ipc

import ipcbox


def _name(kind):
    return f"/ipcbox-py-{kind}-{os.getpid()}-{random.getrandbits(32):x}"


def _free_key():
    while True:
        key = random.randrange(1 << 20, 1 << 30)
        try:
            sysv_ipc.MessageQueue(key)
        except sysv_ipc.ExistentialError:
            try:
                sysv_ipc.Semaphore(key)
            except sysv_ipc.ExistentialError:
                return key


def test_posix_message_queue_with_posix_ipc():
    name = _name("mq")
    q = ipcbox.PosixMessageQueue(name, create=True, max_messages=4, max_message_size=64)
    try:
        theirs = posix_ipc.MessageQueue(name)
        q.send(b"low", 1)
        q.send(b"high", 5)
        assert theirs.receive() == (b"high", 5)
        theirs.send(b"from posix_ipc", priority=3)
        assert q.receive() == (b"from posix_ipc", 3)
        assert q.receive() == (b"low", 1)
        with pytest.raises(TimeoutError):
            q.receive(timeout=0.01)
        with pytest.raises(ValueError, match="65 bytes"):
            q.send(b"x" * 65)  # over the message size
        q.send(b"still usable")
        assert q.receive()[0] == b"still usable"
        theirs.close()
    finally:
        q.unlink()


def test_sysv_message_queue_with_sysv_ipc():
    key = _free_key()
    q = ipcbox.SysVMessageQueue(key, create=True)
    try:
        theirs = sysv_ipc.MessageQueue(key)
        q.send(b"type 3", type=3)
        q.send(b"type 1", type=1)
        assert theirs.receive(type=3) == (b"type 3", 3)
        theirs.send(b"from sysv_ipc", type=2)
        assert q.receive(type=-5) == (b"type 1", 1)
        assert q.receive() == (b"from sysv_ipc", 2)
        with pytest.raises(TimeoutError):
            q.receive(timeout=0.01)
    finally:
        q.remove()


def test_named_semaphore_with_posix_ipc():
    name = _name("nsem")
    s = ipcbox.NamedSemaphore(name, create=True, initial_value=1)
    try:
        theirs = posix_ipc.Semaphore(name)
        assert s.acquire()
        assert not s.acquire(timeout=0.01)
        theirs.release()
        assert s.value == 1
        with s:
            assert theirs.value == 0
        theirs.close()
    finally:
        s.unlink()


def test_sysv_semaphore_with_sysv_ipc():
    key = _free_key()
    s = ipcbox.SysVSemaphore(key, create=True, initial_value=1)
    try:
        theirs = sysv_ipc.Semaphore(key)
        assert s.acquire()
        assert not s.acquire(block=False)
        theirs.release()
        assert s.value == 1
        assert s.op([(0, -1)], undo=True)
        assert theirs.value == 0
    finally:
        s.remove()


def test_bad_keys_and_names():
    with pytest.raises(ValueError, match="32-bit"):
        ipcbox.SysVMessageQueue(1 << 40)
    with pytest.raises(FileNotFoundError):
        ipcbox.NamedSemaphore("/ipcbox-py-no-such-sem")
    with pytest.raises(ValueError):
        ipcbox.PosixMessageQueue("bad/name", create=True)
