"""Targets for child processes: importable by name under spawn and forkserver."""

import os
import signal


def use_everything(objs, done):
    """Uses every object it was handed and reports through them."""
    (q, jq, sq, lock, rlock, sem, bsem, event, cond, barrier, value, array, rawvalue,
     rawarray, shm, conn) = objs
    q.put(("queue", os.getpid()))
    jq.put("joinable")
    sq.put("simple")
    with lock:
        with rlock:
            with rlock:
                value.value += 1
    sem.release()
    bsem.acquire()
    barrier.wait(timeout=30)
    with cond:
        cond.notify()
    array[0] = 7.5
    rawvalue.value = 9
    rawarray[1] = 11
    shm.buf[:5] = b"hello"
    conn.send(("pipe", os.getpid()))
    event.set()
    done.put("done")


def put_numbers(q, n):
    for i in range(n):
        q.put(i)


def hold_lock_and_die(lock, held):
    lock.acquire()
    held.set()
    os.kill(os.getpid(), signal.SIGKILL)


def put_one_and_leave(q):
    q.put("last words")
