"""Watchdogs and clean-up checks for every test of the suite."""

import faulthandler
import gc
import os
import subprocess
import sys

import pytest

#: No test may take longer: past this the whole run stops with every thread's traceback.
WATCHDOG_SECONDS = 180


@pytest.fixture(autouse=True)
def watchdog():
    faulthandler.dump_traceback_later(WATCHDOG_SECONDS, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


def _ours():
    return {n for n in os.listdir("/dev/shm") if n.startswith("ipcbox-py-")}


def _sysv_keys():
    out = subprocess.run(["ipcs"], capture_output=True, text=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.startswith("0x")}


@pytest.fixture(scope="session", autouse=True)
def nothing_left_behind():
    """After the suite, no object it made is left in /dev/shm or in ipcs."""
    before, sysv_before = _ours(), _sysv_keys()
    yield
    import multiprocessing
    import time
    multiprocessing.active_children()  # reaps what has ended
    gc.collect()
    # Children and helper processes (the forkserver) remove their own objects as they exit,
    # which may be a moment after the last test.
    deadline = time.monotonic() + 30
    while True:
        left = _ours() - before
        sysv_left = _sysv_keys() - sysv_before
        if not (left or sysv_left) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert not left, f"left in /dev/shm: {sorted(left)}"
    assert not sysv_left, f"left in ipcs: {sorted(sysv_left)}"


START_METHODS = ["fork", "spawn", "forkserver"]


@pytest.fixture(params=START_METHODS)
def ctx(request):
    import multiprocessing
    return multiprocessing.get_context(request.param)


def run_python(code, *args, **kwargs):
    """Runs ``code`` in a fresh interpreter of this virtualenv."""
    return subprocess.Popen([sys.executable, "-c", code, *args], **kwargs)
