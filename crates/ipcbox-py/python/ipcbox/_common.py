"""Names, lifetimes and pickling shared by every ipcbox object."""

import itertools
import os
import secrets

from multiprocessing import context as _context
from multiprocessing import util as _util

#: Every object the package creates without a given name is called PREFIX-kind-pid-n-token,
#: so that a test (or ``ipcbox ls``) can tell them apart.
PREFIX = "ipcbox-py"

_counter = itertools.count()


def new_name(kind):
    """A fresh POSIX name for an object of this kind."""
    return f"{PREFIX}-{kind}-{os.getpid()}-{next(_counter)}-{secrets.token_hex(4)}"


# Names this process created: the handles remove them when they are garbage-collected, and
# whatever is left when the process ends (interpreter shutdown does not always collect
# module globals) is removed then, in the process that created it only.
_created = {}


def created(name):
    """Records that this process created the object ``name``; returns ``name``."""
    _created[name] = os.getpid()
    return name


def _remove_created():
    me = os.getpid()
    for name, pid in list(_created.items()):
        if pid == me:
            try:
                os.unlink("/dev/shm/" + name)
            except FileNotFoundError:
                pass
            _created.pop(name, None)


# A multiprocessing finalizer runs at interpreter exit and when a multiprocessing child
# leaves through os._exit; atexit alone misses the latter.
_util.Finalize(None, _remove_created, exitpriority=-100)


def keep_for_child(obj):
    """Keeps ``obj`` alive for as long as the process being started with it.

    A child started by spawn or forkserver opens the objects in its arguments by name, some
    time after ``Process.start()`` returned; the parent may drop its own handle meanwhile, and
    its creator's handle removes the name when it goes. Holding a reference on the child's
    ``Popen`` closes that window, as ``multiprocessing`` keeps the descriptors it passes.
    """
    popen = _context.get_spawning_popen()
    if popen is not None:
        refs = popen.__dict__.setdefault("_ipcbox_refs", [])
        refs.append(obj)


def timeout_arg(timeout):
    """A timeout as the native layer takes it: None (for ever) or seconds as a float."""
    if timeout is None:
        return None
    try:
        return float(timeout)
    except (TypeError, ValueError):
        raise TypeError(
            f"timeout must be a number of seconds or None, not {type(timeout).__name__}"
        ) from None
