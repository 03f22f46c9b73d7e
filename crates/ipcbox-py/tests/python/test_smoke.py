import ipcbox


def test_queue_round_trip():
    q = ipcbox.Queue()
    q.put({"a": 1})
    assert q.get() == {"a": 1}
