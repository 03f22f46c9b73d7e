"""Crash tests: producers, consumers and lock holders SIGKILLed at arbitrary moments (more
than 100 kills in all). Nothing hangs (the watchdog in conftest.py), nothing committed is
lost, nothing is delivered twice."""

import multiprocessing
import os
import queue
import random
import signal
import time

import ipcbox

ROUNDS = 40
ctx = multiprocessing.get_context("fork")


def _wait_until(pred, what):
    # Polls shared state the child updates; the watchdog bounds it.
    while not pred():
        time.sleep(0.0005)


def _producer(q, committed, start, batch):
    i = start
    while True:
        if batch:
            q.put_many(range(i, i + 8))
            i += 8
        else:
            q.put(i)
            i += 1
        committed.value = i


def _consumer(q, taken, count):
    while True:
        n = q.get()
        taken[n] = 1
        count.value += 1


def _lock_holder(lock, a, b, count):
    while True:
        with lock:
            a.value += 1
            b.value += 1
        count.value += 1


def test_killed_producers_lose_nothing_they_committed():
    rng = random.Random(12)
    q = ipcbox.Queue(maxsize=64)
    committed = ipcbox.RawValue("q", 0)
    expected = 0
    for r in range(ROUNDS):
        start = committed.value
        p = ctx.Process(target=_producer, args=(q, committed, start, r % 2 == 1))
        p.start()
        target = start + rng.randrange(1, 200)
        while committed.value < target:
            # Drain so the producer keeps going.
            try:
                n = q.get(timeout=0.01)
            except queue.Empty:
                continue
            assert n == expected, f"round {r}: got {n}, expected {expected}"
            expected += 1
        os.kill(p.pid, signal.SIGKILL)
        p.join()
        # Everything it committed is there, in order, nothing twice; a put it did not get to
        # report may be there too (whole, or a prefix of its batch).
        while True:
            try:
                n = q.get(block=False)
            except queue.Empty:
                break
            assert n == expected, f"round {r}: got {n}, expected {expected}"
            expected += 1
        assert expected >= committed.value
        committed.value = expected


def test_killed_consumers_lose_at_most_the_message_in_their_hands():
    rng = random.Random(34)
    total = 0
    lost = 0
    for r in range(ROUNDS):
        q = ipcbox.Queue(maxsize=1024)
        n_msgs = 300
        taken = ipcbox.RawArray("b", n_msgs)
        count = ipcbox.RawValue("q", 0)
        q.put_many(range(n_msgs))
        p = ctx.Process(target=_consumer, args=(q, taken, count))
        p.start()
        stop_at = rng.randrange(1, n_msgs - 1)
        _wait_until(lambda: count.value >= stop_at, "consumer progress")
        os.kill(p.pid, signal.SIGKILL)
        p.join()
        rest = []
        while True:
            try:
                rest.append(q.get(block=False))
            except queue.Empty:
                break
        seen = [i for i in range(n_msgs) if taken[i]]
        assert not set(seen) & set(rest), "a message was delivered twice"
        missing = n_msgs - len(seen) - len(rest)
        assert 0 <= missing <= 1, f"round {r}: {missing} messages lost"
        assert rest == sorted(rest)
        lost += missing
        total += n_msgs
    assert lost <= ROUNDS


def test_killed_lock_holders_never_strand_the_lock():
    rng = random.Random(56)
    lock = ipcbox.Lock()
    a = ipcbox.RawValue("q", 0)
    b = ipcbox.RawValue("q", 0)
    count = ipcbox.RawValue("q", 0)
    deaths = 0
    for r in range(ROUNDS):
        count.value = 0
        p = ctx.Process(target=_lock_holder, args=(lock, a, b, count))
        p.start()
        stop_at = rng.randrange(1, 300)
        _wait_until(lambda: count.value >= stop_at, "holder progress")
        os.kill(p.pid, signal.SIGKILL)
        p.join()
        assert lock.acquire(timeout=60), f"round {r}: the lock stayed held by a dead process"
        if lock.owner_died:
            deaths += 1
            b.value = a.value  # repair what the dead owner left half-done
        assert a.value == b.value, f"round {r}: the invariant broke without owner_died"
        lock.release()
    # Half the time or so the holder dies inside the lock; it must have been seen at least once.
    assert deaths >= 1


def test_a_killed_holder_is_reported_to_the_next_acquirer():
    from helpers import hold_lock_and_die
    for method in ("fork", "spawn"):
        lock = ipcbox.Lock()
        held = ipcbox.Event()
        p = multiprocessing.get_context(method).Process(target=hold_lock_and_die,
                                                        args=(lock, held))
        p.start()
        assert held.wait(60)
        p.join(60)
        assert p.exitcode == -signal.SIGKILL
        assert lock.acquire(timeout=60)
        assert lock.owner_died
        lock.release()
        assert lock.acquire(timeout=60)
        assert not lock.owner_died
        lock.release()
