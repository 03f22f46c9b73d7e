"""The postcard codec's Block shape: the bytes of WIRE.md ("Blocks"), every element type, the
buffer fast path and the errors. Across processes with the Rust peer: test_rust_peers.py."""

import array
import ctypes
import math
import re
import struct

import pytest

from ipcbox.postcard import Block, Codec

# elem -> (struct code or None, min, max)
ELEMS = {
    "u8": ("B", 0, 2**8 - 1),
    "u16": ("H", 0, 2**16 - 1),
    "u32": ("I", 0, 2**32 - 1),
    "u64": ("Q", 0, 2**64 - 1),
    "u128": (None, 0, 2**128 - 1),
    "i8": ("b", -(2**7), 2**7 - 1),
    "i16": ("h", -(2**15), 2**15 - 1),
    "i32": ("i", -(2**31), 2**31 - 1),
    "i64": ("q", -(2**63), 2**63 - 1),
    "i128": (None, -(2**127), 2**127 - 1),
}


def f32(bits):
    return struct.unpack("<f", struct.pack("<I", bits))[0]


def f64(bits):
    return struct.unpack("<d", struct.pack("<Q", bits))[0]


def test_the_documented_bytes():
    assert Codec(Block("u16")).dumps([1, 300]) == bytes.fromhex("04 01 00 2c 01")
    assert Codec(Block("f32")).dumps([1.5, -0.0]) == bytes.fromhex("08 00 00 c0 3f 00 00 00 80")
    assert Codec(Block("u8")).dumps([7]) == bytes.fromhex("01 07")
    # The same bytes as a Vec<u8>.
    assert Codec(Block("u8")).dumps([7]) == Codec(bytes).dumps(b"\x07")
    assert Codec(Block("u16")).loads(bytes.fromhex("04 01 00 2c 01")) == array.array("H", [1, 300])
    # The length counts bytes, and is a varint: 200 u16 are 400 bytes, "90 03".
    assert Codec(Block("u16")).dumps([0] * 200)[:2] == b"\x90\x03"


@pytest.mark.parametrize("elem", sorted(ELEMS))
def test_integers_round_trip_with_their_extremes(elem):
    code, lo, hi = ELEMS[elem]
    values = [lo, hi, 0, 1, lo + 1, hi - 1]
    c = Codec(Block(elem))
    data = c.dumps(values)
    size = struct.calcsize("<" + code) if code else 16
    if code:
        wire = struct.pack(f"<{len(values)}{code}", *values)
    else:
        wire = b"".join(v.to_bytes(16, "little", signed=lo < 0) for v in values)
    assert data == bytes([len(values) * size]) + wire
    got = c.loads(data)
    assert list(got) == values
    if code:
        assert isinstance(got, array.array) and got.itemsize == size
        assert got.typecode == (got.typecode.lower() if lo < 0 else got.typecode.upper())
    else:
        assert isinstance(got, list)
    assert c.loads(c.dumps([])) == ([] if code is None else array.array(got.typecode))


@pytest.mark.parametrize("elem,code,bits", [
    ("f32", "f", [0x3FC00000, 0x80000000, 0x7F7FFFFF, 0xFF7FFFFF, 0x00000001, 0x7F800000,
                  0xFF800000, 0x7FC00000, 0xFFC00001, 0x7F800001]),
    ("f64", "d", [0x3FF8000000000000, 0x8000000000000000, 0x7FEFFFFFFFFFFFFF, 0x1,
                  0x7FF0000000000000, 0xFFF0000000000000, 0x7FF8000000000000,
                  0xFFF8000000000123]),
])
def test_floats_round_trip_by_their_bits(elem, code, bits):
    # -0.0, extremes, the smallest subnormal, infinities and NaNs with sign and payload.
    wire = struct.pack(f"<{len(bits)}{'I' if code == 'f' else 'Q'}", *bits)
    c = Codec(Block(elem))
    got = c.loads(bytes([len(wire)]) + wire)
    assert isinstance(got, array.array) and got.typecode == code
    assert got.tobytes() == wire  # this host is little-endian: NaNs compare by bytes
    # The buffer path copies bytes: the signalling NaN 0x7F800001 would come out quietened
    # (0x7FC00001) had it gone element by element through a double.
    assert c.dumps(got) == bytes([len(wire)]) + wire
    assert math.isnan(got[-1]) and math.copysign(1, got[1]) == -1
    # Element by element, through Python floats, every value but NaN keeps its bytes (the
    # NaNs, listed last, may be quietened on the way through a double).
    plain = [x for x in got if not math.isnan(x)]
    kept = b"".join(x.to_bytes(len(wire) // len(bits), "little") for x in bits[:len(plain)])
    assert c.dumps(plain) == bytes([len(kept)]) + kept
    assert math.isnan(c.loads(c.dumps([float("nan")]))[0])


def test_floats_are_rounded_to_f32_and_ints_are_numbers():
    c = Codec(Block("f32"))
    assert c.loads(c.dumps([0.1, 3, True]))[0] == f32(0x3DCCCCCD)
    assert c.loads(c.dumps([0.1, 3, True])).tolist()[1:] == [3.0, 1.0]
    assert Codec(Block("f64")).loads(Codec(Block("f64")).dumps([0.1]))[0] == 0.1


def test_any_sequence_of_numbers_encodes_alike():
    c = Codec(Block("i32"))
    want = c.dumps([1, -2, 3])
    assert c.dumps((1, -2, 3)) == want
    assert c.dumps(x for x in [1, -2, 3]) == want
    assert c.dumps(range(1, 4)) == Codec(Block("i32")).dumps([1, 2, 3])
    # A buffer of another kind or width goes element by element, converting as a list would.
    assert c.dumps(array.array("b", [1, -2, 3])) == want
    assert c.dumps(array.array("q", [1, -2, 3])) == want
    assert Codec(Block("f64")).dumps(array.array("f", [1.5])) == Codec(Block("f64")).dumps([1.5])
    assert Codec(Block("u16")).dumps(b"\x01\x02") == Codec(Block("u16")).dumps([1, 2])


def test_buffers_of_the_element_are_taken_whole():
    values = [1.5, -2.25, 1e30]
    want = Codec(Block("f32")).dumps(values)
    a = array.array("f", values)
    assert Codec(Block("f32")).dumps(a) == want
    assert Codec(Block("f32")).dumps(memoryview(a)) == want
    assert Codec(Block("f32")).dumps(memoryview(a.tobytes()).cast("f")) == want
    # Strided: copied in order.
    wide = array.array("f", [1.5, 0, -2.25, 0, 1e30])
    assert Codec(Block("f32")).dumps(memoryview(wide)[::2]) == want
    # ctypes arrays state their byte order ('<f', '>f', '<q' for an 8-byte long).
    assert Codec(Block("f32")).dumps((ctypes.c_float * 3)(*values)) == want
    assert Codec(Block("f32")).dumps((ctypes.c_float.__ctype_be__ * 3)(*values)) == want
    ints = [-1, 2**40, 7]
    assert Codec(Block("i64")).dumps((ctypes.c_long * 3)(*ints)) == Codec(Block("i64")).dumps(ints)
    be = (ctypes.c_uint16.__ctype_be__ * 2)(1, 300)
    assert Codec(Block("u16")).dumps(be) == bytes.fromhex("04 01 00 2c 01")
    # A typed tuple with a block inside, and a bytearray stays resizable afterwards.
    buf = bytearray(b"\x01\x02")
    assert Codec(("u32", Block("u8"))).dumps((5, buf)) == b"\x05\x02\x01\x02"
    buf.append(3)


def test_a_block_inside_other_shapes():
    c = Codec(("u32", Block("f32"), [Block("i128")]))
    v = (9, [0.5, -1.0], [[-(2**127)], []])
    got = c.loads(c.dumps(v))
    assert got[0] == 9 and got[1].tolist() == [0.5, -1.0] and got[2] == [[-(2**127)], []]


def test_an_unknown_element_is_named():
    for elem in ["f16", "u256", "bool", "U8"]:
        with pytest.raises(ValueError, match=f"'{elem}' is not a Block element"):
            Block(elem)
    with pytest.raises(ValueError, match="is not a Block element"):
        Block(float)
    assert repr(Block("u8")) == "Block('u8')"


@pytest.mark.parametrize("elem,value", [
    ("u8", 256), ("u8", -1), ("i8", 128), ("i8", -129), ("u16", 65536), ("i16", -32769),
    ("u32", 2**32), ("i32", 2**31), ("u64", 2**64), ("u64", -1), ("i64", -(2**63) - 1),
    ("u128", 2**128), ("u128", -1), ("i128", 2**127), ("i128", -(2**127) - 1),
    ("f32", 1e39), ("f32", 2**200),
])
def test_a_value_out_of_range_is_named_with_the_element(elem, value):
    want = f"^{re.escape(repr(value))} does not fit a Block of {elem}$"
    with pytest.raises(ValueError, match=want):
        Codec(Block(elem)).dumps([0, value, 1])


@pytest.mark.parametrize("elem,value", [
    ("u32", 1.5), ("i64", "7"), ("u128", 2.0), ("i128", None), ("f64", "1.5"), ("f32", [1]),
])
def test_a_value_that_is_not_a_number_is_named(elem, value):
    with pytest.raises(TypeError, match=f"is not (a number|an integer), in a Block of {elem}"):
        Codec(Block(elem)).dumps([0, value])


def test_a_length_that_is_not_whole_elements_is_named():
    with pytest.raises(ValueError, match="a Block of u32 has 6 bytes, not a multiple of 4"):
        Codec(Block("u32")).loads(b"\x06" + bytes(6))
    with pytest.raises(ValueError, match="a Block of i128 has 17 bytes, not a multiple of 16"):
        Codec(Block("i128")).loads(b"\x11" + bytes(17))


def test_a_length_beyond_the_payload_fails_before_allocating():
    # A length of 2**63 - 1 bytes: an allocation would fail or exhaust memory.
    huge = b"\xff" * 8 + b"\x7f"
    for elem in ["u8", "f64", "u128"]:
        with pytest.raises(ValueError, match="ended early"):
            Codec(Block(elem)).loads(huge + bytes(8))
    with pytest.raises(ValueError, match="ended early"):
        Codec(Block("f32")).loads(b"\x08" + bytes(7))
    with pytest.raises(ValueError, match="left after"):
        Codec(Block("f32")).loads(b"\x04" + bytes(5))
