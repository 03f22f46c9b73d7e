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

__all__ = ["SharedMemory"]

_O_CREX = os.O_CREAT | os.O_EXCL
_owned = {}


def _in_use_elsewhere(name):
    path = "/dev/shm/" + name
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
                _posixshmem.shm_unlink("/" + name)
            except FileNotFoundError:
                pass


class SharedMemory:
    """A named POSIX shared-memory segment: ``SharedMemory(name=None, create=False, size=0)``
    as in the stdlib, plus ``track`` (see the module docs)."""

    _buf = None
    _mmap = None

    def __init__(self, name=None, create=False, size=0, *, track=True):
        if not size >= 0:
            raise ValueError(f"'size' must be a positive integer, not {size}")
        if create and size == 0:
            raise ValueError("'size' must be a positive number different from zero")
        if name is None and not create:
            raise ValueError("'name' can only be None if create=True")
        flags = _O_CREX if create else os.O_RDWR
        if create:
            flags |= os.O_RDWR
        while True:
            bare = name if name is not None else "psm_" + secrets.token_hex(4)
            bare = bare.lstrip("/")
            try:
                fd = _posixshmem.shm_open("/" + bare, flags, mode=0o600)
            except FileExistsError:
                if name is not None:
                    raise
                continue
            break
        self._name = bare
        try:
            if create and size:
                os.ftruncate(fd, size)
            stats = os.fstat(fd)
            size = stats.st_size
            if size == 0:
                raise ValueError(f"shared memory segment {bare!r} is empty")
            self._mmap = mmap.mmap(fd, size)
        except BaseException:
            os.close(fd)
            if create:
                _posixshmem.shm_unlink("/" + bare)
            raise
        os.close(fd)
        self._size = size
        self._buf = memoryview(self._mmap)
        self._track = create and track
        if self._track:
            _owned[bare] = os.getpid()

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
        _posixshmem.shm_unlink("/" + self._name)
