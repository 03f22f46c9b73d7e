"""ipcbox for Python: drop-in, crash-safe replacements for the parts of ``multiprocessing``
that move data and synchronise processes, on ipcbox's objects in shared memory.

``import ipcbox as mp`` works for ``Queue``, ``JoinableQueue``, ``SimpleQueue``, ``Pipe``,
``Lock``, ``RLock``, ``Semaphore``, ``BoundedSemaphore``, ``Event``, ``Condition``,
``Barrier``, ``Value``, ``Array``, ``RawValue``, ``RawArray`` and ``SharedMemory``; the rest
of ``multiprocessing`` that the tutorials use (``Process``, ``current_process``,
``set_start_method``, ...) is re-exported unchanged. Every object pickles by name, so it
works with the fork, spawn and forkserver start methods.
"""

from multiprocessing import (  # noqa: F401  re-exported: the processes are the stdlib's
    Process, active_children, cpu_count, current_process, freeze_support, get_all_start_methods,
    get_context, get_start_method, parent_process, set_start_method,
)
from multiprocessing import ProcessError, TimeoutError, AuthenticationError  # noqa: F401
from queue import Empty, Full  # noqa: F401

from ._ipcbox import Disconnected, SEMAPHORE_MAX  # noqa: F401
from .connection import Connection, Pipe, wait  # noqa: F401
from .queues import JoinableQueue, Queue, SimpleQueue  # noqa: F401
from .ipc import NamedSemaphore, PosixMessageQueue, SysVMessageQueue, SysVSemaphore  # noqa: F401
from .shared_memory import SharedMemory  # noqa: F401
from .store import Store  # noqa: F401
from .sharedctypes import Array, RawArray, RawValue, Value  # noqa: F401
from .synchronize import (  # noqa: F401
    Barrier, BoundedSemaphore, Condition, Event, Lock, RLock, Semaphore,
)

__all__ = [
    "Queue", "JoinableQueue", "SimpleQueue", "Empty", "Full", "Disconnected",
    "Pipe", "Connection", "wait",
    "Lock", "RLock", "Semaphore", "BoundedSemaphore", "Event", "Condition", "Barrier",
    "Value", "Array", "RawValue", "RawArray", "SharedMemory", "Store",
    "PosixMessageQueue", "SysVMessageQueue", "NamedSemaphore", "SysVSemaphore",
    "Process", "current_process", "active_children", "parent_process", "cpu_count",
    "freeze_support", "get_context", "get_start_method", "set_start_method",
    "get_all_start_methods", "ProcessError", "TimeoutError", "AuthenticationError",
]
