"""Locks, semaphores, events and values beyond what CPython's tests check."""

import threading

import pytest

import ipcbox


def test_a_lock_belongs_to_the_thread_that_took_it():
    lock = ipcbox.Lock()
    assert lock.acquire()
    assert not lock.acquire(False)
    assert not lock.acquire(timeout=0.05)
    with pytest.raises(RuntimeError, match="deadlock"):
        lock.acquire()
    errors = []

    def other():
        try:
            lock.release()
        except ValueError as e:
            errors.append(e)
    t = threading.Thread(target=other)
    t.start()
    t.join()
    assert errors and "does not hold" in str(errors[0])
    lock.release()
    with pytest.raises(ValueError):
        lock.release()


def test_rlock_counts_and_refuses_strangers():
    rlock = ipcbox.RLock()
    with rlock:
        with rlock:
            assert rlock._count == 2
    with pytest.raises(RuntimeError):
        rlock.release()


def test_semaphores_check_their_values():
    with pytest.raises(ValueError, match="-1"):
        ipcbox.Semaphore(-1)
    with pytest.raises(ValueError, match="not 4294967296"):
        ipcbox.Semaphore(1 << 32)
    b = ipcbox.BoundedSemaphore(1)
    with pytest.raises(ValueError, match="too many"):
        b.release()
    assert b.acquire()
    b.release()
    s = ipcbox.Semaphore(0)
    assert not s.acquire(timeout=0.01)
    s.release()
    assert s.get_value() == 1


def test_a_name_that_does_not_exist_is_file_not_found():
    for cls in (ipcbox.Lock, ipcbox.Event):
        with pytest.raises(FileNotFoundError, match="ipcbox-py-nothing-here"):
            cls(name="ipcbox-py-nothing-here", create=False)


@pytest.mark.parametrize("code, value, other", [
    ("i", 4343, -3), ("d", 3.625, -4.25), ("c", b"x", b"y"), ("?", True, False),
    ("Q", 2 ** 63, 7), ("f", 1.5, 2.5), ("u", "z", "y"),
])
def test_values_take_every_ctypes_code(code, value, other):
    v = ipcbox.Value(code, value)
    assert v.value == value
    v.value = other
    assert v.value == other
    with v.get_lock():
        v.get_obj().value = value
    assert v.value == value


def test_value_and_array_arguments_are_checked():
    with pytest.raises(ValueError, match="-2"):
        ipcbox.RawArray("i", -2)
    with pytest.raises(AttributeError, match="acquire"):
        ipcbox.Value("i", lock="not a lock")
    with pytest.raises((KeyError, TypeError, AttributeError)):
        ipcbox.Value("no such code")
    a = ipcbox.Array("c", b"hello")
    assert a.value == b"hello"
    a.value = b"HI"
    assert a.raw[:3] == b"HI\x00"
