"""Every object pickles by name and reattaches in a child under fork, spawn and forkserver."""

import os

import ipcbox
from helpers import use_everything


def test_every_object_reattaches_in_the_child(ctx):
    objs = (
        ipcbox.Queue(), ipcbox.JoinableQueue(), ipcbox.SimpleQueue(), ipcbox.Lock(),
        ipcbox.RLock(), ipcbox.Semaphore(0), ipcbox.BoundedSemaphore(1), ipcbox.Event(),
        ipcbox.Condition(), ipcbox.Barrier(2), ipcbox.Value("i", 0), ipcbox.Array("d", 3),
        ipcbox.RawValue("q", 0), ipcbox.RawArray("i", 4), ipcbox.SharedMemory(create=True, size=64),
    )
    parent_conn, child_conn = ipcbox.Pipe()
    done = ipcbox.Queue()
    (q, jq, sq, lock, rlock, sem, bsem, event, cond, barrier, value, array, rawvalue, rawarray,
     shm) = objs
    bsem.acquire()  # the child's acquire waits for the release below
    p = ctx.Process(target=use_everything, args=(objs + (child_conn,), done))
    p.start()
    try:
        assert q.get(timeout=60)[0] == "queue"
        assert jq.get(timeout=60) == "joinable"
        assert sq.get() == "simple"
        bsem.release()
        assert sem.acquire(timeout=60)
        barrier.wait(timeout=60)
        assert parent_conn.recv() == ("pipe", p.pid)
        assert event.wait(60)
        assert done.get(timeout=60) == "done"
        p.join(60)
        assert p.exitcode == 0
        assert value.value == 1
        assert array[0] == 7.5
        assert rawvalue.value == 9
        assert rawarray[1] == 11
        assert bytes(shm.buf[:5]) == b"hello"
    finally:
        p.join(60)
        shm.unlink()


def test_objects_travel_through_a_queue(ctx):
    # Pickled by name outside Process.start too: a lock sent through a queue is the same lock.
    q = ipcbox.Queue()
    lock = ipcbox.Lock()
    q.put(lock)
    same = q.get(timeout=10)
    assert same == lock
    assert lock.acquire()
    assert not same.acquire(False)
    lock.release()
    assert same.acquire(False)
    same.release()
    assert os.path.exists("/dev/shm/" + lock.name)
