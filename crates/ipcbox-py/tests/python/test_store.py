"""The object store: buffers in, read-only zero-copy memoryviews out, across processes."""

import array
import multiprocessing

import pytest

import ipcbox


def _put_squares(store, n):
    store.put(1, array.array("d", [i * i for i in range(n)]))


def test_objects_put_in_a_child_are_read_in_place(ctx):
    store = ipcbox.Store(1 << 20)
    p = ctx.Process(target=_put_squares, args=(store, 1000))
    p.start()
    view = store.get(1, timeout=60)
    p.join(60)
    assert view.readonly
    assert view.cast("d")[999] == 999 * 999
    with pytest.raises(TypeError):
        view[0] = 1


def test_a_view_holds_its_object_after_delete():
    store = ipcbox.Store(1 << 16)
    store.put(b"x" * 20, b"payload")
    view = store.get(b"x" * 20)
    store.delete(b"x" * 20)
    assert b"x" * 20 not in store
    assert bytes(view) == b"payload"
    with pytest.raises(KeyError):
        store.get(b"x" * 20, timeout=0)


def test_bad_input_is_reported_and_the_store_stays_usable():
    store = ipcbox.Store(4096)
    with pytest.raises(ValueError, match="20"):
        store.put(b"short id", b"x")
    with pytest.raises(TypeError):
        store.put(1.5, b"x")
    with pytest.raises(OSError):
        store.put(2, b"x" * (1 << 20))  # over the capacity
    with pytest.raises(ValueError, match="capacity"):
        ipcbox.Store(-1)
    with pytest.raises(FileNotFoundError):
        ipcbox.Store(name="ipcbox-py-no-such-store", create=False)
    store.put(3, b"fine")
    assert bytes(store.get(3)) == b"fine"
