"""CPython's own multiprocessing tests, run against ipcbox.

The interpreter's ``test/_test_multiprocessing.py`` test classes for the parts ipcbox
replaces, with the mixin's factories (``self.Queue``, ``self.Lock``, ``self.Pipe``, ...) and
the module's ``shared_memory`` pointed at ipcbox, once per start method. Only tests of the
stdlib's internals are skipped; ``SKIPPED`` lists every one with why.
"""

import os
import types
import unittest

import multiprocessing
from multiprocessing import shared_memory as stdlib_shared_memory

import pytest

T = pytest.importorskip("test._test_multiprocessing")

import ipcbox  # noqa: E402

CLASSES = [
    "_TestQueue", "_TestLock", "_TestSemaphore", "_TestCondition", "_TestEvent",
    "_TestValue", "_TestArray", "_TestConnection", "_TestBarrier", "_TestSharedMemory",
]

FD_TRANSFER = ("passes descriptors with multiprocessing.reduction.send_handle, a stdlib "
               "internal that ipcbox does not replace")

#: (class, test) -> why it is skipped.
SKIPPED = {
    ("_TestQueue", "test_queue_feeder_donot_stop_onexc"):
        "tests the feeder thread (bpo-30414): ipcbox has none; it pickles in put(), which "
        "raises for an unpicklable object (tests/python/test_queue.py)",
    ("_TestConnection", "test_fd_transfer"): FD_TRANSFER,
    ("_TestConnection", "test_large_fd_transfer"): FD_TRANSFER,
    ("_TestConnection", "test_missing_fd_transfer"): FD_TRANSFER,
}

START_METHODS = os.environ.get("IPCBOX_CPYTHON_START_METHODS", "fork,spawn,forkserver").split(",")

# The test module's `shared_memory`: the stdlib's, with ipcbox's SharedMemory.
SHARED_MEMORY = types.ModuleType("ipcbox_shared_memory")
SHARED_MEMORY.__dict__.update(vars(stdlib_shared_memory))
SHARED_MEMORY.SharedMemory = ipcbox.SharedMemory


def _mixin(method):
    ctx = multiprocessing.get_context(method)

    class IpcboxMixin(T.BaseMixin):
        TYPE = "processes"
        Process = ctx.Process
        connection = multiprocessing.connection
        current_process = staticmethod(multiprocessing.current_process)
        parent_process = staticmethod(multiprocessing.parent_process)
        active_children = staticmethod(multiprocessing.active_children)
        Pipe = staticmethod(ipcbox.Pipe)
        Queue = staticmethod(ipcbox.Queue)
        JoinableQueue = staticmethod(ipcbox.JoinableQueue)
        Lock = staticmethod(ipcbox.Lock)
        RLock = staticmethod(ipcbox.RLock)
        Semaphore = staticmethod(ipcbox.Semaphore)
        BoundedSemaphore = staticmethod(ipcbox.BoundedSemaphore)
        Condition = staticmethod(ipcbox.Condition)
        Event = staticmethod(ipcbox.Event)
        Barrier = staticmethod(ipcbox.Barrier)
        Value = staticmethod(ipcbox.Value)
        Array = staticmethod(ipcbox.Array)
        RawValue = staticmethod(ipcbox.RawValue)
        RawArray = staticmethod(ipcbox.RawArray)

        @classmethod
        def setUpClass(cls):
            super().setUpClass()
            cls._saved_shared_memory = T.shared_memory
            T.shared_memory = SHARED_MEMORY
            # The tests' own helpers (_DummyList, Bunch) make stdlib objects in the default
            # context, as CPython's suite does after setting the start method.
            cls._saved_method = multiprocessing.get_start_method(allow_none=True)
            multiprocessing.set_start_method(method, force=True)

        @classmethod
        def tearDownClass(cls):
            T.shared_memory = cls._saved_shared_memory
            multiprocessing.set_start_method(cls._saved_method, force=True)
            super().tearDownClass()

    return IpcboxMixin


def _skip(reason):
    def skipped(self):
        self.skipTest(reason)
    return skipped


for _method in START_METHODS:
    _Mixin = _mixin(_method)
    for _name in CLASSES:
        _base = getattr(T, _name)
        _skips = {test: _skip(why) for (cls, test), why in SKIPPED.items() if cls == _name}
        _newname = f"TestIpcbox{_method.capitalize()}{_name[1:]}"
        _cls = type(_newname, (_base, _Mixin, unittest.TestCase), _skips)
        _cls.__qualname__ = _newname
        _cls.__module__ = __name__
        globals()[_newname] = _cls
del _cls, _base, _Mixin
