"""``Value``, ``Array``, ``RawValue`` and ``RawArray``: ctypes objects in named shared memory.

Each object is one segment in the layout of ipcbox's typed values and arrays (LAYOUT.md,
"Typed values and arrays"): a Rust peer opens a value or array of a plain type with
``shm::Value::open`` / ``shm::Array::open`` and reads and writes the same numbers.
"""

import ctypes
import mmap
import os
import weakref

from multiprocessing import reduction

from . import _ipcbox
from ._common import created, keep_for_child, new_name
from .synchronize import RLock

__all__ = ["Value", "Array", "RawValue", "RawArray", "synchronized"]

typecode_to_type = {
    "c": ctypes.c_char, "u": ctypes.c_wchar,
    "b": ctypes.c_byte, "B": ctypes.c_ubyte,
    "h": ctypes.c_short, "H": ctypes.c_ushort,
    "i": ctypes.c_int, "I": ctypes.c_uint,
    "l": ctypes.c_long, "L": ctypes.c_ulong,
    "q": ctypes.c_longlong, "Q": ctypes.c_ulonglong,
    "f": ctypes.c_float, "d": ctypes.c_double,
    "?": ctypes.c_bool,
}

# The element type the segment's header names, for the ctypes types that have one; any other
# type (a Structure, say) is stored as an array of bytes.
_ELEMENTS = {}
for _t in (ctypes.c_byte, ctypes.c_short, ctypes.c_int, ctypes.c_long, ctypes.c_longlong):
    _ELEMENTS[_t] = f"i{ctypes.sizeof(_t) * 8}"
for _t in (ctypes.c_ubyte, ctypes.c_ushort, ctypes.c_uint, ctypes.c_ulong, ctypes.c_ulonglong):
    _ELEMENTS[_t] = f"u{ctypes.sizeof(_t) * 8}"
_ELEMENTS.update({
    ctypes.c_char: "u8", ctypes.c_wchar: f"u{ctypes.sizeof(ctypes.c_wchar) * 8}",
    ctypes.c_float: "f32", ctypes.c_double: "f64", ctypes.c_bool: "bool",
})

#: Where the elements start in the segment (LAYOUT.md).
DATA_OFFSET = 128


def _unlink(name, pid):
    if os.getpid() == pid:
        try:
            os.unlink("/dev/shm/" + name)
        except FileNotFoundError:
            pass


class _Segment:
    """One typed segment, mapped; the creating process removes the name when the last
    object using it here is gone."""

    def __init__(self, base, length, name=None, create=True):
        self.base = base
        self.length = length
        self.name = name if name is not None else new_name("ctypes")
        if create:
            element = _ELEMENTS.get(base)
            count = 1 if length is None else length
            fallback = element is None
            if fallback:
                element, count = "u8", ctypes.sizeof(base) * count
            is_value = length is None and not fallback
            _ipcbox.create_typed(created(self.name), element, max(count, 1), is_value)
            self._finalizer = weakref.finalize(self, _unlink, self.name, os.getpid())
        fd = os.open("/dev/shm/" + self.name, os.O_RDWR)
        try:
            size = os.fstat(fd).st_size
            need = DATA_OFFSET + ctypes.sizeof(self.ctype())
            if size < need:
                raise ValueError(
                    f"shared object {self.name!r} has {size} bytes, {need} are needed")
            self.map = mmap.mmap(fd, size)
        finally:
            os.close(fd)

    def ctype(self):
        return self.base if self.length is None else self.base * self.length

    def new_object(self):
        obj = self.ctype().from_buffer(self.map, DATA_OFFSET)
        obj._ipcbox_segment = self
        reduction.ForkingPickler.register(type(obj), _reduce_ctype)
        return obj

    def __reduce__(self):
        keep_for_child(self)
        return (_Segment, (self.base, self.length, self.name, False))


def _reduce_ctype(obj):
    seg = getattr(obj, "_ipcbox_segment", None)
    if seg is None:
        # One of multiprocessing.sharedctypes' own objects of the same ctypes type.
        from multiprocessing import sharedctypes
        return sharedctypes.reduce_ctype(obj)
    return (_Segment.new_object, (seg,))


def _base(typecode_or_type):
    return typecode_to_type.get(typecode_or_type, typecode_or_type)


def RawValue(typecode_or_type, *args):
    """A ctypes object in shared memory, without a lock."""
    obj = _Segment(_base(typecode_or_type), None).new_object()
    if args:
        obj.__init__(*args)
    return obj


def RawArray(typecode_or_type, size_or_initializer):
    """A ctypes array in shared memory, without a lock."""
    base = _base(typecode_or_type)
    if isinstance(size_or_initializer, int):
        if size_or_initializer < 0:
            raise ValueError(f"array size must be >= 0, not {size_or_initializer}")
        return _Segment(base, size_or_initializer).new_object()
    init = list(size_or_initializer) if not isinstance(
        size_or_initializer, (bytes, str, list, tuple)) else size_or_initializer
    obj = _Segment(base, len(init)).new_object()
    obj.__init__(*init)
    return obj


def _lock_for(lock):
    if lock in (True, None):
        return RLock()
    if not hasattr(lock, "acquire"):
        raise AttributeError(f"{lock!r} has no method 'acquire'")
    return lock


def Value(typecode_or_type, *args, lock=True, ctx=None):
    """A synchronized ctypes object in shared memory (``lock=False``: a raw one)."""
    obj = RawValue(typecode_or_type, *args)
    if lock is False:
        return obj
    return synchronized(obj, _lock_for(lock))


def Array(typecode_or_type, size_or_initializer, *, lock=True, ctx=None):
    """A synchronized ctypes array in shared memory (``lock=False``: a raw one)."""
    obj = RawArray(typecode_or_type, size_or_initializer)
    if lock is False:
        return obj
    return synchronized(obj, _lock_for(lock))


def synchronized(obj, lock=None, ctx=None):
    """Wraps a shared ctypes object with a lock."""
    lock = _lock_for(lock)
    if isinstance(obj, ctypes._SimpleCData):
        return Synchronized(obj, lock)
    if isinstance(obj, ctypes.Array):
        if obj._type_ is ctypes.c_char:
            return SynchronizedString(obj, lock)
        return SynchronizedArray(obj, lock)
    return SynchronizedBase(obj, lock)


def _rebuild_synchronized(cls, seg, lock):
    return cls(seg.new_object(), lock)


class SynchronizedBase:
    def __init__(self, obj, lock=None, ctx=None):
        self._obj = obj
        self._lock = _lock_for(lock)
        self.acquire = self._lock.acquire
        self.release = self._lock.release

    def __enter__(self):
        return self._lock.__enter__()

    def __exit__(self, *args):
        return self._lock.__exit__(*args)

    # Pickled by name, through any pickler.
    def __reduce__(self):
        return (_rebuild_synchronized, (type(self), self._obj._ipcbox_segment, self._lock))

    def get_obj(self):
        return self._obj

    def get_lock(self):
        return self._lock

    def __repr__(self):
        return f"<{type(self).__name__} wrapper for {self._obj}>"


class Synchronized(SynchronizedBase):
    @property
    def value(self):
        with self._lock:
            return self._obj.value

    @value.setter
    def value(self, value):
        with self._lock:
            self._obj.value = value


class SynchronizedArray(SynchronizedBase):
    def __len__(self):
        return len(self._obj)

    def __getitem__(self, i):
        with self._lock:
            return self._obj[i]

    def __setitem__(self, i, value):
        with self._lock:
            self._obj[i] = value

    def __getslice__(self, start, stop):
        with self._lock:
            return self._obj[start:stop]

    def __setslice__(self, start, stop, values):
        with self._lock:
            self._obj[start:stop] = values


class SynchronizedString(SynchronizedArray):
    @property
    def value(self):
        with self._lock:
            return self._obj.value

    @value.setter
    def value(self, value):
        with self._lock:
            self._obj.value = value

    @property
    def raw(self):
        with self._lock:
            return self._obj.raw

    @raw.setter
    def raw(self, value):
        with self._lock:
            self._obj.raw = value
