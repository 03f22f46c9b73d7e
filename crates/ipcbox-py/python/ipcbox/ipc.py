"""The operating system's queues and semaphores, as ``posix_ipc`` and ``sysv_ipc`` have them,
interoperable with those packages: ``PosixMessageQueue`` (priorities), ``SysVMessageQueue``
(types), ``NamedSemaphore`` (``sem_open``) and ``SysVSemaphore`` (a ``semget`` set).

The creating handle removes the object when it is garbage-collected (``unlink``/``remove``
do it at once); opening (``create=False``) never removes anything. Every blocking call takes
``block`` and ``timeout``, releases the GIL and is interruptible.
"""

from . import _ipcbox
from ._common import timeout_arg

__all__ = ["PosixMessageQueue", "SysVMessageQueue", "NamedSemaphore", "SysVSemaphore"]


class PosixMessageQueue:
    """A POSIX message queue ``/name``: ``send(bytes, priority)``; ``receive()`` returns
    ``(bytes, priority)``, highest priority first."""

    def __init__(self, name, create=False, max_messages=10, max_message_size=8192):
        self._raw = _ipcbox.RawPosixQueue(name, create, max_messages, max_message_size)
        self.name = self._raw.name

    def __reduce__(self):
        return (PosixMessageQueue, (self.name,))

    def send(self, message, priority=0, block=True, timeout=None):
        if not self._raw.send(bytes(message), priority, block, timeout_arg(timeout)):
            raise TimeoutError(f"message queue {self.name} stayed full")

    def receive(self, block=True, timeout=None):
        got = self._raw.receive(block, timeout_arg(timeout))
        if got is None:
            raise TimeoutError(f"message queue {self.name} stayed empty")
        return got

    @property
    def current_messages(self):
        return self._raw.current_messages()

    def unlink(self):
        _ipcbox.RawPosixQueue.unlink(self.name)


class SysVMessageQueue:
    """A System V message queue with ``key``: ``send(bytes, type)``; ``receive(type)`` with
    type 0 for the first message, > 0 for the first of that type, < 0 for the lowest type up
    to its absolute value; returns ``(bytes, type)``."""

    def __init__(self, key, create=False):
        self.key = key
        self._raw = _ipcbox.RawSysVQueue(key, create)

    def __reduce__(self):
        return (SysVMessageQueue, (self.key,))

    @property
    def id(self):
        return self._raw.id

    def send(self, message, type=1, block=True, timeout=None):
        if not self._raw.send(bytes(message), type, block, timeout_arg(timeout)):
            raise TimeoutError(f"System V message queue {self.key:#x} stayed full")

    def receive(self, type=0, block=True, timeout=None, max_size=65536):
        got = self._raw.receive(type, block, timeout_arg(timeout), max_size)
        if got is None:
            raise TimeoutError(f"System V message queue {self.key:#x} had no such message")
        return got

    def remove(self):
        self._raw.remove()


class NamedSemaphore:
    """A named POSIX semaphore (``sem_open``), the same object as ``posix_ipc.Semaphore``."""

    def __init__(self, name, create=False, initial_value=0):
        self._raw = _ipcbox.RawNamedSemaphore(name, create, initial_value)
        self.name = self._raw.name

    def __reduce__(self):
        return (NamedSemaphore, (self.name,))

    def acquire(self, block=True, timeout=None):
        return self._raw.acquire(block, timeout_arg(timeout))

    def release(self):
        self._raw.release()

    @property
    def value(self):
        return self._raw.value

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *args):
        self.release()

    def unlink(self):
        _ipcbox.RawNamedSemaphore.unlink(self.name)


class SysVSemaphore:
    """A System V semaphore set of ``nsems`` (``sysv_ipc.Semaphore`` is a set of one):
    ``op([(index, delta), ...])`` all at once, ``acquire``/``release`` on semaphore 0."""

    def __init__(self, key, create=False, nsems=1, initial_value=0):
        self.key = key
        self._raw = _ipcbox.RawSemaphoreSet(key, create, nsems)
        if create and initial_value:
            for i in range(nsems):
                self._raw.set(i, initial_value)

    def __reduce__(self):
        return (SysVSemaphore, (self.key,))

    @property
    def id(self):
        return self._raw.id

    def op(self, ops, undo=False, block=True, timeout=None):
        return self._raw.op(list(ops), undo, block, timeout_arg(timeout))

    def acquire(self, block=True, timeout=None, undo=False):
        return self.op([(0, -1)], undo, block, timeout)

    def release(self, undo=False):
        self.op([(0, 1)], undo)

    @property
    def value(self):
        return self._raw.get(0)

    def get(self, index):
        return self._raw.get(index)

    def set(self, index, value):
        self._raw.set(index, value)

    def remove(self):
        self._raw.remove()
