"""A foreign peer for ipcbox's postcard payloads (WIRE.md, "Postcard encoding").

Usage: postcard_peer.py, with the connection's socket named by IPCBOX_POSTCARD_CONN
("fd:dev:ino", as Connection::pass_to_child sets it). Frames as in WIRE.md (frame_peer.py).

For every value of every case below (the same table as the Rust test, in the same order):
  1. The Rust side sends b"NAME#I" and the value's encoding. The peer decodes it along the
     case's schema, checks it is the expected value, encodes it again, checks the bytes are the
     ones received, and sends them back (the Rust side decodes and compares).
  2. On b"emit", the peer sends b"NAME#I" and its own encoding of each value, then b"end"
     (the Rust side decodes each one and compares it with its own value and encoding).
Any mismatch ends the peer with an error on stderr and exit status 1.
"""

import os
import socket
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from frame_peer import recv, send  # noqa: E402
from postcard import (  # noqa: E402
    BOOL, BYTES, CHAR, Block, F32, F64, I8, I16, I32, I64, I128, ISIZE, STR, U8, U16, U32, U64, U128,
    UNIT, UNIT_VARIANT, USIZE, Enum, Map, Newtype, Option, Seq, Some, Struct, Tuple, Variant,
    decode, encode, same,
)


def f32(bits):
    return struct.unpack("<f", struct.pack("<I", bits))[0]


INF, NAN = float("inf"), float("nan")


class AllUnit:
    """The variants of an enum whose every one of 2^32 variants is a unit variant."""

    def __len__(self):
        return 1 << 32

    def __getitem__(self, i):
        return UNIT_VARIANT


WIDE = Enum()
WIDE.variants = AllUnit()

SHAPE = Enum(
    UNIT_VARIANT,  # Empty
    U32,  # Circle(u32)
    Tuple(U16, U16),  # Rect(u16, u16)
    Struct(("id", U8), ("label", STR)),  # Named { id: u8, label: String }
)
SHAPES = [
    Variant(0),
    Variant(1, 300),
    Variant(2, (1, 65535)),
    Variant(3, {"id": 255, "label": "é"}),
]
RECORD = Struct(
    ("id", U32),
    ("name", STR),
    ("score", F32),
    ("tags", Seq(STR)),
    ("parent", Option(U64)),
    ("extra", Map(STR, I16)),
    ("shape", SHAPE),
    ("pair", Tuple(I8, CHAR)),
)

CASES = [
    ("bool", BOOL, [False, True]),
    ("u8", U8, [0, 1, 127, 128, 255]),
    ("i8", I8, [0, 1, -1, 127, -128]),
    ("u16", U16, [0, 127, 128, 255, 256, 16383, 16384, 65535]),
    ("i16", I16, [0, -1, 1, 63, -64, 64, -65, 32767, -32768]),
    ("u32", U32, [0, 127, 128, 255, 300, 2097151, 2097152, 4294967295]),
    ("i32", I32, [0, -1, 1, -65, 2147483647, -2147483648]),
    ("u64", U64, [0, 127, 128, 1 << 63, (1 << 64) - 1]),
    ("i64", I64, [0, -1, 1, (1 << 63) - 1, -(1 << 63)]),
    ("u128", U128, [0, 127, 128, 1 << 64, (1 << 128) - 1]),
    ("i128", I128, [0, -1, 1, (1 << 127) - 1, -(1 << 127)]),
    ("usize", USIZE, [0, 300, (1 << 64) - 1]),
    ("isize", ISIZE, [0, -2, (1 << 63) - 1, -(1 << 63)]),
    ("f32", F32, [0.0, -0.0, 1.5, -2.25, f32(0x00800000), f32(1), f32(0x7F7FFFFF),
                  -f32(0x7F7FFFFF), INF, -INF, NAN]),
    ("f64", F64, [0.0, -0.0, 1.5, 0.1, 2.2250738585072014e-308, 5e-324,
                  1.7976931348623157e308, -1.7976931348623157e308, INF, -INF, NAN]),
    ("char", CHAR, ["a", "\0", "é", "€", "🦀", "\U0010ffff"]),
    ("string", STR, ["", "a", "héllo", "日本語", "🦀", "x" * 200]),
    ("bytes", BYTES, [b"", b"\x00\xff", bytes(range(256))]),
    ("unit", UNIT, [()]),
    ("unit_struct", UNIT, [()]),
    ("newtype_struct", Newtype(U32), [0, 300]),
    ("option_u8", Option(U8), [None, Some(0), Some(255)]),
    ("option_option_u8", Option(Option(U8)), [None, Some(None), Some(Some(7))]),
    ("option_string", Option(STR), [None, Some(""), Some("é")]),
    ("seq_u16", Seq(U16), [[], [1, 2, 300]]),
    ("seq_u8", Seq(U8), [[], [0, 200, 255]]),
    ("seq_string", Seq(STR), [[], ["", "a"]]),
    ("seq_seq_u8", Seq(Seq(U8)), [[], [[], [1]]]),
    ("tuple", Tuple(U8, U16, STR), [(1, 300, "x")]),
    ("tuple_struct", Tuple(U8, STR), [(1, "a")]),
    ("array_u16_3", Tuple(U16, U16, U16), [(1, 2, 300)]),
    ("map_string_u32", Map(STR, U32), [[], [("a", 1), ("b", 300)]]),
    ("map_u8_seq_i8", Map(U8, Seq(I8)), [[(0, []), (200, [-1, 1])]]),
    ("struct", Struct(("x", I32), ("y", I32)), [{"x": 1, "y": -1}]),
    ("enum", SHAPE, SHAPES),
    ("seq_enum", Seq(SHAPE), [[], SHAPES]),
    ("enum_wide_index", WIDE, [Variant(i) for i in (0, 127, 128, 300, (1 << 32) - 1)]),
    ("record", RECORD, [
        {"id": 0, "name": "", "score": 0.0, "tags": [], "parent": None, "extra": [],
         "shape": Variant(0), "pair": (0, "a")},
        {"id": 4294967295, "name": "naïve", "score": -1.5, "tags": ["x", ""],
         "parent": Some((1 << 64) - 1), "extra": [("a", -32768), ("b", 32767)],
         "shape": Variant(3, {"id": 1, "label": "🦀"}), "pair": (-128, "€")},
    ]),
    # Whole messages the codec copies as one block: the same bytes as any sequence.
    ("seq_u8_long", Seq(U8), [[i % 251 for i in range(70000)]]),
    ("seq_i8", Seq(I8), [[], [-128, 0, 127]]),
    ("seq_f32", Seq(F32), [[], [1.5, -0.0, NAN, INF]]),
    ("seq_f64", Seq(F64), [[], [0.1, -INF, NAN]]),
    # codec::Block<T>, alone and as a field.
    ("block_u8", Block("B"), [[], [0, 255]]),
    ("block_u16", Block("H"), [[], [1, 300, 65535]]),
    ("block_i32", Block("i"), [[-1, -2147483648, 2147483647]]),
    ("block_u64", Block("Q"), [[0, (1 << 64) - 1]]),
    ("block_i128", Block("i128"), [[-1, -(1 << 127)]]),
    ("block_f32", Block("f"), [[1.5, -0.0, NAN]]),
    ("block_f64", Block("d"), [[0.1, -INF]]),
    ("struct_block_field", Struct(("id", U32), ("samples", Block("f")), ("pixels", Block("H"))),
     [{"id": 300, "samples": [0.5, -1.0], "pixels": [7, 65535]}]),
]


def fail(why):
    sys.exit(f"postcard_peer: {why}")


def main():
    fd = int(os.environ["IPCBOX_POSTCARD_CONN"].split(":")[0])
    sock = socket.socket(fileno=fd)
    table = {}
    for name, schema, values in CASES:
        for i, value in enumerate(values):
            table[f"{name}#{i}"] = (schema, value)
    while True:
        label = recv(sock).decode()
        if label == "emit":
            break
        if label not in table:
            fail(f"unknown case {label}")
        schema, want = table[label]
        payload = recv(sock)
        try:
            got = decode(schema, payload)
        except ValueError as e:
            fail(f"{label}: cannot decode {payload.hex(' ')}: {e}")
        if not same(got, want):
            fail(f"{label}: decoded {got!r} from {payload.hex(' ')}, expected {want!r}")
        again = encode(schema, got)
        if again != payload:
            fail(f"{label}: re-encoded {again.hex(' ')}, received {payload.hex(' ')}")
        send(sock, again)
    for label, (schema, value) in table.items():
        send(sock, label.encode())
        send(sock, encode(schema, value))
    send(sock, b"end")
    try:
        recv(sock)
    except EOFError:
        return
    fail("expected the end of the connection")


if __name__ == "__main__":
    main()
