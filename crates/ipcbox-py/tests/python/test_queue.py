"""Queue, JoinableQueue and SimpleQueue: multiprocessing's behaviour and what ipcbox adds."""

import json
import os
import pickle
import queue
import signal
import subprocess
import sys
import threading

import pytest

import ipcbox
from helpers import put_numbers, put_one_and_leave


def test_exceptions_are_multiprocessings():
    q = ipcbox.Queue(maxsize=2)
    q.put(1)
    q.put_nowait(2)
    assert q.full() and q.qsize() == 2
    with pytest.raises(queue.Full):
        q.put(3, block=False)
    with pytest.raises(queue.Full):
        q.put(3, timeout=0.01)
    assert [q.get(), q.get_nowait()] == [1, 2]
    with pytest.raises(queue.Empty):
        q.get(block=False)
    with pytest.raises(queue.Empty):
        q.get(timeout=0.01)
    q.close()
    with pytest.raises(ValueError, match="is closed"):
        q.put(1)
    with pytest.raises(ValueError, match="is closed"):
        q.get()
    q.join_thread()
    q.cancel_join_thread()


def test_close_closes_this_handle_only(ctx):
    q = ipcbox.Queue()
    other = pickle.loads(pickle.dumps(q))
    q.close()
    other.put("still open")
    assert other.get() == "still open"


def test_an_unpicklable_object_raises_at_put_and_the_queue_stays_usable():
    q = ipcbox.Queue()
    with pytest.raises((pickle.PicklingError, AttributeError, TypeError)):
        q.put(lambda: None)
    q.put("fine")
    assert q.get(timeout=5) == "fine"
    assert q.empty()


def test_a_message_over_the_limit_is_a_value_error_and_the_queue_stays_usable():
    q = ipcbox.Queue(maxbytes=1024)
    with pytest.raises(ValueError, match="1024"):
        q.put_bytes(b"x" * 2000)
    with pytest.raises(ValueError):
        q.put(b"y" * 5000)
    q.put_bytes(b"small")
    assert q.get_bytes(timeout=5) == b"small"


@pytest.mark.parametrize("make, exc, match", [
    (lambda: ipcbox.Queue(maxbytes=-1), ValueError, "maxbytes must be positive, not -1"),
    (lambda: ipcbox.Queue(maxsize=1 << 40), ValueError, "capacity"),
    (lambda: ipcbox.Queue(name="ipcbox-py-no-such-queue", create=False), FileNotFoundError,
     "ipcbox-py-no-such-queue"),
    (lambda: ipcbox.Queue(name="bad/name"), ValueError, "bad/name"),
])
def test_bad_construction_raises_the_matching_exception(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


def test_bad_arguments_raise_and_the_queue_stays_usable():
    q = ipcbox.Queue()
    with pytest.raises(TypeError):
        q.put_bytes("not bytes")
    with pytest.raises(TypeError, match="timeout"):
        q.get(timeout="soon")
    with pytest.raises(ValueError, match="NaN"):
        q.get(timeout=float("nan"))
    with pytest.raises(ValueError, match="max must be at least 1"):
        q.get_many(max_messages_to_get=0)
    q.put(1)
    assert q.get() == 1


def test_the_bytes_fast_path_moves_bytes_as_they_are():
    q = ipcbox.Queue()
    q.put_bytes(b"\x00raw")
    q.put_bytes(bytearray(b"from a buffer"))
    q.put_bytes(memoryview(b"view"))
    assert [q.get_bytes(), q.get_bytes(), q.get_bytes()] == [
        b"\x00raw", b"from a buffer", b"view"]


def test_dumps_and_loads_are_per_queue_and_pickle_protocol_5_is_the_default():
    q = ipcbox.Queue(dumps=lambda o: json.dumps(o).encode(), loads=json.loads)
    q.put({"a": [1, 2]})
    assert q.get_bytes() == b'{"a": [1, 2]}'
    p = ipcbox.Queue()
    p.put("x")
    assert p.get_bytes()[:2] == b"\x80\x05"


def test_put_many_and_get_many_keep_order_and_say_how_many_fit():
    q = ipcbox.Queue(maxsize=5)
    q.put_many(range(3))
    with pytest.raises(queue.Full) as full:
        q.put_many(range(3, 8), block=False)
    assert full.value.sent == 2
    assert q.get_many(max_messages_to_get=10) == [0, 1, 2, 3, 4]
    with pytest.raises(queue.Empty):
        q.get_many(block=False)
    q.put_many_bytes([b"a", b"b"])
    assert q.get_many_bytes() == [b"a", b"b"]


def test_the_byte_limit_bounds_the_queue():
    q = ipcbox.Queue(maxbytes=100)
    q.put_bytes(b"x" * 60)
    with pytest.raises(queue.Full):
        q.put_bytes(b"y" * 60, block=False)
    assert q.get_bytes() == b"x" * 60
    q.put_bytes(b"y" * 60, block=False)


def test_messages_cross_processes_in_order(ctx):
    q = ipcbox.Queue(maxsize=16)
    p = ctx.Process(target=put_numbers, args=(q, 2000))
    p.start()
    assert [q.get(timeout=60) for _ in range(2000)] == list(range(2000))
    p.join(60)
    assert p.exitcode == 0


def test_a_large_message_crosses(ctx):
    q = ipcbox.Queue()
    big = os.urandom(4 << 20)
    q.put_bytes(big)
    assert q.get_bytes() == big


def test_a_blocking_get_after_every_producer_died_raises_instead_of_hanging(ctx):
    q = ipcbox.Queue()
    p = ctx.Process(target=put_one_and_leave, args=(q,))
    p.start()
    p.join(60)
    assert q.get(timeout=60) == "last words"
    with pytest.raises(ipcbox.Disconnected):
        q.get()
    with pytest.raises(queue.Empty):
        q.get(timeout=1)


def test_joinable_queue_counts_tasks():
    q = ipcbox.JoinableQueue()
    q.put(1)
    q.put(2)
    done = threading.Thread(target=q.join)
    q.get()
    q.task_done()
    done.start()
    q.get()
    q.task_done()
    done.join(60)
    assert not done.is_alive()
    with pytest.raises(ValueError, match="too many times"):
        q.task_done()


def test_simple_queue():
    q = ipcbox.SimpleQueue()
    assert q.empty()
    q.put([1])
    assert q.get() == [1]
    q.close()


def test_other_threads_run_while_one_blocks():
    q = ipcbox.Queue()
    got = []
    t = threading.Thread(target=lambda: got.append(q.get()))
    t.start()
    # The main thread runs Python while the other is blocked in get: the GIL is released.
    total = sum(range(100000))
    q.put(total)
    t.join(60)
    assert got == [total]


BLOCKED = """
import sys, ipcbox
kind = sys.argv[1]
q = ipcbox.Queue(); lock = ipcbox.Lock(); sem = ipcbox.Semaphore(0); ev = ipcbox.Event()
r, w = ipcbox.Pipe()
import threading
forever = threading.Event()
def holder():
    lock2.acquire()
    held.set()
    forever.wait()
lock2 = ipcbox.Lock()
held = threading.Event()
threading.Thread(target=holder, daemon=True).start()
held.wait()
calls = {"get": q.get, "acquire": lock2.acquire, "semaphore": sem.acquire, "event": ev.wait,
         "recv": r.recv, "get_many": q.get_many, "join": ipcbox.JoinableQueue().join}
try:
    print("ready", flush=True)
    if kind == "join":
        jq = ipcbox.JoinableQueue(); jq.put(1); jq.join()
    else:
        calls[kind]()
except KeyboardInterrupt:
    sys.exit(42)
sys.exit(1)
"""


@pytest.mark.parametrize("kind", ["get", "get_many", "acquire", "semaphore", "event", "recv",
                                  "join"])
def test_sigint_interrupts_a_blocked_call(kind):
    p = subprocess.Popen([sys.executable, "-c", BLOCKED, kind], stdout=subprocess.PIPE)
    try:
        assert p.stdout.readline() == b"ready\n"
        p.send_signal(signal.SIGINT)
        assert p.wait(60) == 42
    finally:
        p.kill()
        p.wait()
