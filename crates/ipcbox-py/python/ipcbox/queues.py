"""``Queue``, ``JoinableQueue`` and ``SimpleQueue``: multiprocessing's queues on the ipcbox
queue in shared memory."""

import functools
import pickle
from queue import Empty, Full

from . import _ipcbox
from ._common import created, keep_for_child, new_name, timeout_arg

__all__ = ["Queue", "JoinableQueue", "SimpleQueue", "Empty", "Full", "Disconnected"]

Disconnected = _ipcbox.Disconnected

#: Messages a queue created with ``maxsize <= 0`` holds at most (it is bounded in bytes too).
UNBOUNDED_MESSAGES = 1 << 16
#: Default payload bytes a queue holds at most (``maxbytes``). The queue's memory is
#: reserved when it is created (about maxbytes + 16 bytes per message of capacity), so that
#: a full /dev/shm shows then, not as a crash in the middle of a put.
DEFAULT_MAXBYTES = 8 << 20


_dumps = functools.partial(pickle.dumps, protocol=5)


class Queue:
    """``multiprocessing.Queue`` in shared memory: no feeder thread, crash-safe.

    The object is pickled in the calling thread (an unpicklable object raises at ``put``) with
    ``dumps`` (default ``pickle.dumps`` with protocol 5) and unpickled with ``loads``. The queue
    is bounded by ``maxsize`` messages (``<= 0``: a large number) and by ``maxbytes`` bytes of
    pickled payload; ``put`` blocks while either is full. A message larger than
    ``max_message`` (default ``maxbytes``) raises ``ValueError``.

    ``close()`` closes this handle only, as in ``multiprocessing``. A blocking ``get`` on an
    empty queue whose other processes have all died raises ``Disconnected`` (an ``EOFError``)
    instead of hanging; the non-blocking and timed forms raise ``queue.Empty`` then.
    """

    def __init__(self, maxsize=0, *, ctx=None, maxbytes=None, max_message=None,
                 dumps=None, loads=None, name=None, create=True):
        if maxbytes is None:
            maxbytes = DEFAULT_MAXBYTES
        if maxbytes <= 0:
            raise ValueError(f"maxbytes must be positive, not {maxbytes}")
        self._maxsize = maxsize
        capacity = maxsize if maxsize > 0 else UNBOUNDED_MESSAGES
        self._name = name if name is not None else new_name("queue")
        self._dumps = dumps if dumps is not None else _dumps
        self._loads = loads if loads is not None else pickle.loads
        self._raw = raw = _ipcbox.RawQueue(self._name, create, capacity, maxbytes,
                                           max_message or 0, self._dumps, self._loads)
        if create:
            created(self._name)
        # The hot paths are the native methods themselves, without a Python frame; they raise
        # queue.Full, queue.Empty and ValueError (after close) as the methods below say.
        self._bind(raw)

    def _bind(self, raw):
        if type(self).put is Queue.put:
            self.put = raw.put_obj
        if type(self).get is Queue.get:
            self.get = raw.get_obj
        self.put_bytes = raw.put_bytes
        self.get_bytes = raw.get_bytes

    # Pickled by name: the receiving process opens the same queue.
    def __reduce__(self):
        keep_for_child(self._raw)
        return (_rebuild_queue,
                (type(self), self._name, self._maxsize, self._dumps_arg(), self._loads_arg()))

    def _dumps_arg(self):
        return None if self._dumps is _dumps else self._dumps

    def _loads_arg(self):
        return None if self._loads is pickle.loads else self._loads

    def __repr__(self):
        return f"<{type(self).__module__}.{type(self).__qualname__} name={self._name!r}>"

    @property
    def name(self):
        """The queue's name in ``/dev/shm``; ``Queue(name=..., create=False)`` opens it."""
        return self._name

    def _check_closed(self):
        if self._raw.closed:
            raise ValueError(f"Queue {self._name} is closed")

    # The four methods below are replaced per instance by their native versions (_bind); they
    # say what those do.
    def put(self, obj, block=True, timeout=None):
        """Puts ``obj``, pickled now; ``queue.Full`` if there is no room in time."""
        self._raw.put_obj(obj, block, timeout_arg(timeout))

    def get(self, block=True, timeout=None):
        """Takes the oldest object; ``queue.Empty`` if none comes in time; ``Disconnected``
        from a blocking ``get()`` when every other process attached has died."""
        return self._raw.get_obj(block, timeout_arg(timeout))

    def put_bytes(self, data, block=True, timeout=None):
        """Puts the bytes of ``data`` (any buffer) as they are, without pickling."""
        self._raw.put_bytes(data, block, timeout_arg(timeout))

    def get_bytes(self, block=True, timeout=None):
        """Takes the oldest message as ``bytes``, without unpickling."""
        return self._raw.get_bytes(block, timeout_arg(timeout))

    def put_nowait(self, obj):
        return self.put(obj, False)

    def get_nowait(self):
        return self.get(False)

    def put_many(self, objs, block=True, timeout=None):
        """Puts every object of ``objs``, in order, many per lock hold.

        ``queue.Full`` if they did not all fit in time; its ``sent`` attribute says how many
        (a prefix of ``objs``) were put.
        """
        self._check_closed()
        dumps = self._dumps
        msgs = [dumps(o) for o in objs]
        self._put_many_raw(msgs, block, timeout)

    def put_many_bytes(self, msgs, block=True, timeout=None):
        """``put_many`` for byte messages, without pickling."""
        self._check_closed()
        self._put_many_raw(list(msgs), block, timeout)

    def _put_many_raw(self, msgs, block, timeout):
        sent = self._raw.put_many(msgs, block, timeout_arg(timeout))
        if sent < len(msgs):
            full = Full(f"{sent} of the {len(msgs)} messages were put")
            full.sent = sent
            raise full

    def get_many(self, block=True, timeout=None, max_messages_to_get=1000):
        """Takes up to ``max_messages_to_get`` objects (at least one, in one lock hold);
        ``queue.Empty`` if none comes in time."""
        loads = self._loads
        return [loads(m) for m in self.get_many_bytes(block, timeout, max_messages_to_get)]

    def get_many_bytes(self, block=True, timeout=None, max_messages_to_get=1000):
        """``get_many`` for byte messages, without unpickling."""
        self._check_closed()
        try:
            msgs = self._raw.get_many(max_messages_to_get, block, timeout_arg(timeout))
        except Disconnected:
            if block and timeout is None:
                raise
            raise Empty from None
        if not msgs:
            raise Empty
        return msgs

    def qsize(self):
        """Messages in the queue (approximate)."""
        return self._raw.qsize()

    def empty(self):
        return self._raw.qsize() == 0

    def full(self):
        return self._raw.qsize() >= self._raw.capacity

    @property
    def maxbytes(self):
        """Most bytes of pickled payload the queue holds."""
        return self._raw.byte_capacity

    def close(self):
        """Closes this handle: later calls on it raise ``ValueError``. Other handles, here
        and in other processes, keep working."""
        self._raw.close()

    def join_thread(self):
        # There is no feeder thread: everything put is in the queue when put returns.
        if not self._raw.closed:
            raise ValueError(f"Queue {self!r} not closed")

    def cancel_join_thread(self):
        pass


class JoinableQueue(Queue):
    """``multiprocessing.JoinableQueue``: ``task_done`` and ``join`` over every process."""

    def task_done(self):
        self._check_closed()
        try:
            self._raw.task_done()
        except ValueError:
            raise ValueError("task_done() called too many times") from None

    def join(self):
        """Waits until every object put has been taken and marked done."""
        self._check_closed()
        self._raw.join(None)


class SimpleQueue(Queue):
    """``multiprocessing.SimpleQueue``: ``put``, ``get``, ``empty`` and ``close``."""

    def __init__(self, *, ctx=None, **kwargs):
        super().__init__(0, **kwargs)

    def put(self, obj):
        super().put(obj)

    def get(self):
        return super().get()


def _rebuild_queue(cls, name, maxsize, dumps, loads):
    q = cls.__new__(cls)
    Queue.__init__(q, maxsize, name=name, create=False, dumps=dumps, loads=loads)
    return q
