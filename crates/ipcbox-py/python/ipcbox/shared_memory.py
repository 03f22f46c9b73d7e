"""``SharedMemory``: ``multiprocessing.shared_memory.SharedMemory`` without the resource
tracker.

The same POSIX segments (``/dev/shm/<name>``), so a stdlib ``SharedMemory`` attaches to one
created here and the other way round. The lifecycle:

* ``unlink()`` removes the name, as in the stdlib; only the creating handle is expected to.
* A process that attaches never removes anything (the stdlib's tracker removes a segment when
  an attaching process exits, under the feet of the others: cpython#82300).
* The creating process, at exit, removes a segment it created and did not unlink, unless
  another process still maps it. ``track=False`` leaves it to ``unlink()`` alone.
"""

import atexit
import mmap
import os
import secrets

import _posixshmem
from multiprocessing import shared_memory as _stdlib_shm

__all__ = ["SharedMemory"]

_O_CREX = os.O_CREAT | os.O_EXCL
_owned = {}


def _in_use_elsewhere(name):
    path = "/dev/shm" + name
    me = str(os.getpid())
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or pid == me:
            continue
        try:
            with open(f"/proc/{pid}/maps", "rb") as f:
                if path.encode() in f.read():
                    return True
        except OSError:
            continue
    return False


@atexit.register
def _remove_owned():
    for name, pid in list(_owned.items()):
        if pid == os.getpid() and not _in_use_elsewhere(name):
            try:
                _posixshmem.shm_unlink(name)
            except FileNotFoundError:
                pass


class SharedMemory:
    """A named POSIX shared-memory segment: ``SharedMemory(name=None, create=False, size=0)``
    as in the stdlib, plus ``track`` (see the module docs)."""

    # The attributes and their meaning follow the stdlib class, so that code (and tests) that
    # subclass it or look at them keep working.
    _name = None
    _mmap = None
    _buf = None
    _flags = os.O_RDWR
    _mode = 0o600
    _prepend_leading_slash = True

    def __init__(self, name=None, create=False, size=0, *, track=True):
        if not size >= 0:
            raise ValueError(f"'size' must be a positive integer, not {size}")
        if create:
            self._flags = _O_CREX | os.O_RDWR
            if size == 0:
                raise ValueError("'size' must be a positive number different from zero")
        if name is None and not self._flags & os.O_EXCL:
            raise ValueError("'name' can only be None if create=True")
        if name is None:
            while True:
                # The stdlib's names ("/psm_" and random hex), looked up at call time.
                name = _stdlib_shm._make_filename()
                try:
                    fd = _posixshmem.shm_open(name, self._flags, mode=self._mode)
                except FileExistsError:
                    continue
                break
        else:
            if self._prepend_leading_slash and not name.startswith("/"):
                name = "/" + name
            fd = _posixshmem.shm_open(name, self._flags, mode=self._mode)
        self._name = name
        try:
            if create and size:
                os.ftruncate(fd, size)
            size = os.fstat(fd).st_size
            if size == 0:
                raise ValueError(f"shared memory segment {name!r} is empty")
            self._mmap = mmap.mmap(fd, size)
        except BaseException:
            if create:
                _posixshmem.shm_unlink(name)
            raise
        finally:
            os.close(fd)
        self._size = size
        self._buf = memoryview(self._mmap)
        if create and track:
            _owned[name] = os.getpid()

    def __del__(self):
        try:
            self.close()
        except OSError:
            pass

    def __reduce__(self):
        return (self.__class__, (self.name, False, self.size))

    def __repr__(self):
        return f"{self.__class__.__name__}({self.name!r}, size={self.size})"

    @property
    def buf(self):
        """A memoryview of the segment's bytes."""
        return self._buf

    @property
    def name(self):
        """The segment's name, without the leading slash (as the stdlib's)."""
        if self._prepend_leading_slash and self._name.startswith("/"):
            return self._name[1:]
        return self._name

    @property
    def size(self):
        return self._size

    def close(self):
        """Unmaps the segment from this process (the name stays)."""
        if self._buf is not None:
            self._buf.release()
            self._buf = None
        if self._mmap is not None:
            self._mmap.close()
            self._mmap = None

    def unlink(self):
        """Removes the name; processes that map the segment keep it until they close it."""
        _owned.pop(self._name, None)
        _posixshmem.shm_unlink(self._name)
