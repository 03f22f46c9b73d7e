"""Locks, semaphores, events, conditions and barriers in shared memory, with
``multiprocessing.synchronize``'s API. Every lock is robust: when its holder dies, the next
``acquire`` gets it and sets ``owner_died``."""

import os
import sys
import threading

from . import _ipcbox
from ._common import created, keep_for_child, new_name, timeout_arg

__all__ = ["Lock", "RLock", "Semaphore", "BoundedSemaphore", "Event", "Condition", "Barrier"]


# A lock's record of its owning thread from before a fork names nobody in the child.
os.register_at_fork(after_in_child=_ipcbox.after_fork_in_child)


class Lock(_ipcbox.RawLock):
    """A non-recursive lock shared by processes, owned by the thread that acquired it.

    Unlike ``multiprocessing.Lock`` only that thread may release it (``ValueError``
    otherwise). When the holder dies, the next ``acquire`` succeeds and sets ``owner_died``
    to ``True`` (until the next ``acquire``): what the lock protected may be half-updated.
    ``acquire``, ``release``, ``with`` and ``owner_died`` are native.
    """

    _kind = "lock"
    _recursive = False

    def __new__(cls, *, ctx=None, name=None, create=True):
        if name is None:
            name = new_name(cls._kind)
        self = super().__new__(cls, name, create, cls._recursive)
        if create:
            created(name)
        return self

    def __reduce__(self):
        keep_for_child(self)
        return (_rebuild_lock, (type(self), self.name))

    def __eq__(self, other):
        return isinstance(other, _ipcbox.RawLock) and other.name == self.name

    def __hash__(self):
        return hash(self.name)

    def __repr__(self):
        state = "mine" if self._is_mine() else ("locked" if self.locked() else "unlocked")
        return f"<{type(self).__name__}({self.name!r}, {state})>"


class RLock(Lock):
    """A recursive ``Lock``: the owning thread may acquire it again, and must release it as
    many times (``RuntimeError`` from a thread that does not hold it)."""

    _kind = "rlock"
    _recursive = True


def _rebuild_lock(cls, name):
    return cls(name=name, create=False)


class Semaphore:
    """A counting semaphore shared by processes (any thread or process may release)."""

    def __init__(self, value=1, *, ctx=None, name=None, create=True):
        if value < 0:
            raise ValueError(f"semaphore initial value must be >= 0, not {value}")
        self._name = name if name is not None else new_name("sem")
        self._raw = _ipcbox.RawSemaphore(self._name, create, value)
        if create:
            created(self._name)
        self._maxvalue = value

    def __reduce__(self):
        keep_for_child(self._raw)
        return (_rebuild, (type(self), self._name, self._maxvalue))

    def _attach(self, name, maxvalue):
        self._name = name
        self._raw = _ipcbox.RawSemaphore(name, False)
        self._maxvalue = maxvalue

    def acquire(self, block=True, timeout=None):
        return self._raw.acquire(block, timeout_arg(timeout))

    def release(self):
        self._raw.release(1)

    def get_value(self):
        return self._raw.get_value()

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *args):
        self.release()

    @property
    def name(self):
        return self._name

    def __repr__(self):
        return f"<{type(self).__name__}(value={self.get_value()})>"


class BoundedSemaphore(Semaphore):
    """A ``Semaphore`` that refuses to be released above its initial value (``ValueError``)."""

    def release(self):
        if self._raw.get_value() >= self._maxvalue:
            raise ValueError("semaphore or lock released too many times")
        self._raw.release(1)

    def __repr__(self):
        return f"<BoundedSemaphore(value={self.get_value()}, maxvalue={self._maxvalue})>"


class Event:
    """A flag shared by processes that they can wait on."""

    def __init__(self, *, ctx=None, name=None, create=True):
        self._name = name if name is not None else new_name("event")
        self._raw = _ipcbox.RawEvent(self._name, create)
        if create:
            created(self._name)

    def __reduce__(self):
        keep_for_child(self._raw)
        return (_rebuild, (type(self), self._name))

    def _attach(self, name):
        self._name = name
        self._raw = _ipcbox.RawEvent(name, False)

    def is_set(self):
        return self._raw.is_set()

    def set(self):
        self._raw.set()

    def clear(self):
        self._raw.clear()

    def wait(self, timeout=None):
        """Waits until the flag is set; returns whether it is."""
        return self._raw.wait(timeout_arg(timeout))

    def __repr__(self):
        return f"<{type(self).__qualname__} at {id(self):#x} {'set' if self.is_set() else 'unset'}>"


class Condition:
    """A condition variable shared by processes, over a ``Lock`` or ``RLock`` (default).

    Built as ``multiprocessing``'s is, from three semaphores, so that ``notify(n)`` wakes
    exactly ``n`` sleepers whatever mix of threads and processes they are.
    """

    def __init__(self, lock=None, *, ctx=None):
        self._lock = lock if lock is not None else RLock()
        self._sleeping_count = Semaphore(0)
        self._woken_count = Semaphore(0)
        self._wait_semaphore = Semaphore(0)
        self._make_methods()

    def __getstate__(self):
        return (self._lock, self._sleeping_count, self._woken_count, self._wait_semaphore)

    def __setstate__(self, state):
        (self._lock, self._sleeping_count, self._woken_count, self._wait_semaphore) = state
        self._make_methods()

    def _make_methods(self):
        self.acquire = self._lock.acquire
        self.release = self._lock.release

    def __enter__(self):
        return self._lock.__enter__()

    def __exit__(self, *args):
        return self._lock.__exit__(*args)

    def __repr__(self):
        sleepers = self._sleeping_count.get_value() - self._woken_count.get_value()
        return f"<Condition({self._lock!r}, {sleepers})>"

    def _check_owned(self, what):
        if not self._lock._is_mine():
            raise RuntimeError(f"must acquire() condition before using {what}()")

    def wait(self, timeout=None):
        self._check_owned("wait")
        # Count ourselves a sleeper, release the lock however many times it is held, sleep,
        # say we woke, take the lock back.
        self._sleeping_count.release()
        count = self._lock._release_all()
        try:
            return self._wait_semaphore.acquire(True, timeout)
        finally:
            self._woken_count.release()
            self._lock._acquire_restore(count)

    def notify(self, n=1):
        self._check_owned("notify")
        if self._wait_semaphore.acquire(False):
            raise RuntimeError("notify: a wake-up of an earlier notify was not taken")
        # Sleepers that timed out since the last notify have said they woke: forget them.
        while self._woken_count.acquire(False):
            self._sleeping_count.acquire(False)
        sleepers = 0
        while sleepers < n and self._sleeping_count.acquire(False):
            self._wait_semaphore.release()
            sleepers += 1
        if sleepers:
            for _ in range(sleepers):
                self._woken_count.acquire()
            # Wake-ups that no sleeper took (it timed out meanwhile) are taken back.
            while self._wait_semaphore.acquire(False):
                pass

    def notify_all(self):
        self.notify(n=sys.maxsize)

    def wait_for(self, predicate, timeout=None):
        result = predicate()
        if result:
            return result
        if timeout is not None:
            endtime = _monotonic() + timeout
        else:
            endtime = None
            waittime = None
        while not result:
            if endtime is not None:
                waittime = endtime - _monotonic()
                if waittime <= 0:
                    break
            self.wait(waittime)
            result = predicate()
        return result


def _monotonic():
    import time
    return time.monotonic()


class Barrier(threading.Barrier):
    """``threading.Barrier`` for processes: its state lives in shared memory and its
    condition is an ipcbox ``Condition``."""

    def __init__(self, parties, action=None, timeout=None, *, ctx=None):
        from .sharedctypes import RawArray
        state = RawArray("i", 2)
        self.__setstate__((parties, action, timeout, Condition(), state._ipcbox_segment))
        self._state = 0
        self._count = 0

    def __setstate__(self, state):
        (self._parties, self._action, self._timeout, self._cond, self._segment) = state
        self._array = self._segment.new_object()

    def __getstate__(self):
        return (self._parties, self._action, self._timeout, self._cond, self._segment)

    def __reduce__(self):
        return (_rebuild_barrier, (self.__getstate__(),))

    @property
    def _state(self):
        return self._array[0]

    @_state.setter
    def _state(self, value):
        self._array[0] = value

    @property
    def _count(self):
        return self._array[1]

    @_count.setter
    def _count(self, value):
        self._array[1] = value


def _rebuild(cls, *args):
    obj = cls.__new__(cls)
    obj._attach(*args)
    return obj


def _rebuild_barrier(state):
    b = Barrier.__new__(Barrier)
    b.__setstate__(state)
    return b
