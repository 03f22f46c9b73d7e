"""``Store``: ipcbox's zero-copy object store for large immutable objects (like pyarrow's
Plasma): put bytes or any buffer (a numpy array, ...) once, get a read-only ``memoryview`` of
it in place from any process."""

import ctypes

from . import _ipcbox
from ._common import created, keep_for_child, new_name, timeout_arg

__all__ = ["Store"]


class Store:
    """A named store of ``capacity`` bytes (``create=True``), or an existing one.

    Object ids are ints (0 to 2**64-1) or 20-byte ``bytes``. ``put`` copies the buffer in
    once and seals it; ``get`` returns a read-only ``memoryview`` of the object in the shared
    segment, without a copy, and holds the object's space until every view of it is gone
    (``delete`` only removes it from view). ``evict=True`` makes a full store drop the least
    recently sealed objects nobody holds.
    """

    def __init__(self, capacity=64 << 20, *, name=None, create=True, evict=False):
        if create and capacity <= 0:
            raise ValueError(f"capacity must be positive, not {capacity}")
        self._name = name if name is not None else new_name("store")
        self._raw = _ipcbox.RawStore(self._name, create, capacity if create else 0, evict)
        if create:
            created(self._name)

    def __reduce__(self):
        keep_for_child(self._raw)
        return (_open_store, (self._name,))

    @property
    def name(self):
        return self._name

    @property
    def capacity(self):
        return self._raw.capacity

    def put(self, id, data):
        """Stores a copy of ``data`` (bytes or any buffer) as object ``id``, sealed."""
        src = memoryview(data).cast("B")
        buf = self._raw.create_object(id, src.nbytes)
        try:
            if src.nbytes:
                dst = (ctypes.c_char * src.nbytes).from_address(buf.address())
                memoryview(dst).cast("B")[:] = src
        except BaseException:
            buf.abort()
            raise
        buf.seal()

    def get(self, id, timeout=None):
        """A read-only, zero-copy ``memoryview`` of object ``id``, waiting until it is sealed;
        ``KeyError`` if it is not there in time (``timeout=0``: now)."""
        block = timeout is None or timeout > 0
        obj = self._raw.get(id, block, timeout_arg(timeout))
        if obj is None:
            raise KeyError(id)
        n = len(obj)
        if n == 0:
            return memoryview(b"")
        view = (ctypes.c_char * n).from_address(obj.address())
        view._hold = obj  # the view's memory stays while any memoryview of it lives
        return memoryview(view).cast("B").toreadonly()

    def delete(self, id):
        self._raw.delete(id)

    def __contains__(self, id):
        return self._raw.contains(id)


def _open_store(name):
    return Store(name=name, create=False)
