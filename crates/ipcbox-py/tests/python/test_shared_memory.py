"""SharedMemory: the stdlib's segments both ways, and no tracker removing a segment in use."""

import subprocess
import sys
from multiprocessing import shared_memory as stdlib

import pytest

import ipcbox


def test_a_stdlib_peer_attaches_to_ipcbox_and_the_other_way_round():
    mine = ipcbox.SharedMemory(create=True, size=64)
    try:
        mine.buf[:3] = b"abc"
        code = ("import sys; from multiprocessing import shared_memory as s\n"
                "m = s.SharedMemory(sys.argv[1]); print(bytes(m.buf[:3]).decode())\n"
                "m.buf[:3] = b'xyz'; m.close()\n"
                "from multiprocessing import resource_tracker as r\n"
                "r.unregister('/' + sys.argv[1], 'shared_memory')")
        out = subprocess.run([sys.executable, "-c", code, mine.name], capture_output=True,
                             text=True, check=True).stdout
        assert out.strip() == "abc"
        assert bytes(mine.buf[:3]) == b"xyz"
    finally:
        mine.close()
        mine.unlink()
    theirs = stdlib.SharedMemory(create=True, size=32)
    try:
        theirs.buf[:2] = b"hi"
        seen = ipcbox.SharedMemory(theirs.name)
        assert bytes(seen.buf[:2]) == b"hi"
        seen.close()
    finally:
        theirs.close()
        theirs.unlink()


ATTACH_AND_EXIT = "import sys, ipcbox; m = ipcbox.SharedMemory(sys.argv[1]); m.buf[0] = 7"


def test_a_process_that_attaches_and_exits_removes_nothing():
    shm = ipcbox.SharedMemory(create=True, size=16)
    try:
        subprocess.run([sys.executable, "-c", ATTACH_AND_EXIT, shm.name], check=True)
        again = ipcbox.SharedMemory(shm.name)
        assert again.buf[0] == 7
        again.close()
    finally:
        shm.close()
        shm.unlink()


CREATE_AND_EXIT = """
import sys, ipcbox
m = ipcbox.SharedMemory(create=True, size=16, name=sys.argv[1])
print("created", flush=True)
sys.stdin.readline()
"""


def test_the_creator_removes_its_segment_at_exit_unless_someone_maps_it():
    name = "ipcbox-py-shm-exit-test"
    p = subprocess.Popen([sys.executable, "-c", CREATE_AND_EXIT, name],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert p.stdout.readline() == b"created\n"
    p.communicate(b"\n", timeout=60)
    with pytest.raises(FileNotFoundError):
        ipcbox.SharedMemory(name)

    p = subprocess.Popen([sys.executable, "-c", CREATE_AND_EXIT, name],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert p.stdout.readline() == b"created\n"
    user = ipcbox.SharedMemory(name)
    try:
        p.communicate(b"\n", timeout=60)
        still = ipcbox.SharedMemory(name)  # in use here: the creator left it
        still.close()
    finally:
        user.close()
        user.unlink()


def test_bad_sizes_and_names():
    with pytest.raises(ValueError):
        ipcbox.SharedMemory(create=True, size=-1)
    with pytest.raises(ValueError):
        ipcbox.SharedMemory(create=True, size=0)
    with pytest.raises(ValueError):
        ipcbox.SharedMemory()
    with pytest.raises(FileNotFoundError):
        ipcbox.SharedMemory("ipcbox-py-no-such-segment")
