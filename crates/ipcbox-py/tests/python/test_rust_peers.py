"""A Rust program and Python share the same named objects: a queue (bytes, and typed messages
in postcard, blocks of numbers included), a value, a semaphore and the object store."""

import array
import os
import subprocess

import ipcbox
from ipcbox.postcard import Block, Codec, Option

PEER = os.environ["IPCBOX_PY_PEER"]  # built by tests/run.sh


def peer(*args):
    out = subprocess.run([PEER, *map(str, args)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_a_rust_producer_and_a_python_consumer_share_a_byte_queue():
    q = ipcbox.Queue()
    peer("queue-put-bytes", q.name, 3)
    assert [q.get_bytes(timeout=10) for _ in range(3)] == [b"rust 0", b"rust 1", b"rust 2"]


def test_typed_messages_cross_in_postcard_both_ways():
    codec = Codec(("u32", str))
    q = ipcbox.Queue(dumps=codec.dumps, loads=codec.loads)
    peer("queue-put-typed", q.name, 2)
    assert [q.get(timeout=10) for _ in range(2)] == [(0, "item 0"), (1, "item 1")]
    q.put((300, "from Python é"))
    assert peer("queue-get-typed", q.name, 1) == "300 from Python é\n"


# The peer's `Blocks` message, (u32, Block<f32>, Block<u16>, Block<i128>), and its sample
# values: message i holds the first i of each. The f32s by their bits: 1.5, -0.0, the largest
# f32, the smallest subnormal, infinity, NaN.
BLOCKS = Codec(("u32", Block("f32"), Block("u16"), Block("i128")))
F32_BITS = [0x3FC00000, 0x80000000, 0x7F7FFFFF, 0x00000001, 0x7F800000, 0x7FC00000]
U16S = [0, 1, 300, 65535]
I128S = [-(2**127), -1, 0, 2**127 - 1]


def f32s(bits):
    a = array.array("f")
    a.frombytes(array.array("I", bits).tobytes())
    return a


def peer_line(n, bits, u16s, i128s):
    """What the peer's queue-get-block prints for a message."""
    return f"{n};{','.join(f'{b:08x}' for b in bits)};{','.join(map(str, u16s))};" \
        f"{','.join(map(str, i128s))}\n"


def test_messages_holding_blocks_cross_a_queue_both_ways():
    q = ipcbox.Queue(dumps=BLOCKS.dumps, loads=BLOCKS.loads)
    peer("queue-put-block", q.name, 7)
    for i in range(7):
        n, f, u, w = q.get(timeout=10)
        assert n == i
        assert f.tobytes() == f32s(F32_BITS[:i]).tobytes()  # NaN compares by bytes
        assert (u.tolist(), w) == (U16S[:i], I128S[:i])
    # Back: the buffer path (array.array) and the element path (lists, tuples).
    q.put((40, f32s(F32_BITS), array.array("H", U16S), I128S))
    q.put((41, [1.5, -0.0, float("inf")], U16S[1:], tuple(I128S[:2])))
    q.put((42, [], [], []))
    assert peer("queue-get-block", q.name, 3) == (
        peer_line(40, F32_BITS, U16S, I128S)
        + peer_line(41, [0x3FC00000, 0x80000000, 0x7F800000], U16S[1:], I128S[:2])
        + peer_line(42, [], [], []))


def test_the_postcard_codec_matches_the_documented_encoding():
    assert Codec("u32").dumps(300) == b"\xac\x02"
    assert Codec("i32").dumps(-1) == b"\x01"
    assert Codec((str, bool)).dumps(("hi", True)) == b"\x02hi\x01"
    c = Codec((["i64"], Option("f64"), bytes))
    v = ([-5, 1 << 40], None, b"\x00")
    assert c.loads(c.dumps(v)) == v
    import pytest
    with pytest.raises(ValueError, match="left after"):
        Codec("u8").loads(b"\x01\x02")
    with pytest.raises(ValueError, match="does not fit"):
        Codec("u32").dumps(-1)


def test_a_value_is_shared_with_rust():
    v = ipcbox.Value("q", 5)
    assert peer("value-get", v.get_obj()._ipcbox_segment.name) == "5\n"
    peer("value-set", v.get_obj()._ipcbox_segment.name, 42)
    assert v.value == 42


def test_a_semaphore_is_shared_with_rust():
    s = ipcbox.Semaphore(0)
    peer("sem-release", s.name, 3)
    assert all(s.acquire(timeout=10) for _ in range(3))
    assert not s.acquire(False)


def test_the_store_is_shared_with_rust():
    store = ipcbox.Store(1 << 16)
    peer("store-put", store.name, 7, "from rust")
    assert bytes(store.get(7, timeout=10)) == b"from rust"
    store.put(8, b"from python")
    assert peer("store-get", store.name, 8) == "from python\n"
