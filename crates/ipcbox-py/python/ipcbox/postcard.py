"""The typed encoding shared with Rust: postcard, the library's default codec for typed
messages (WIRE.md, "Payloads"), for the shapes a Rust ``Queue<T>`` of plain types uses.

postcard is not self-describing, so a ``Codec`` is made from the Rust type's shape::

    codec = Codec(("u32", str))              # Rust: (u32, String)
    q = ipcbox.Queue(name=..., create=False, dumps=codec.dumps, loads=codec.loads)

Shapes: ``"u8"``..``"u64"``, ``"i8"``..``"i64"``, ``"f32"``, ``"f64"``, ``bool``, ``str``
(``String``), ``bytes`` (``Vec<u8>``), a tuple of shapes (a tuple or a struct, fields in
order), ``[shape]`` (``Vec<T>``) and ``Option(shape)``. Integers other than ``u8``/``i8``
are LEB128 varints, signed ones zigzag-encoded; floats are little-endian.
"""

import struct

__all__ = ["Codec", "Option"]


class Option:
    """The shape of a Rust ``Option<T>``: ``None`` or a value of ``shape``."""

    def __init__(self, shape):
        self.shape = shape


_BITS = {"u16": 16, "u32": 32, "u64": 64, "i16": 16, "i32": 32, "i64": 64}


def _varint(n, out):
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return


def _encode(shape, v, out):
    if shape == "u8":
        out.append(v)
    elif shape == "i8":
        out += struct.pack("<b", v)
    elif isinstance(shape, str) and shape in _BITS:
        bits = _BITS[shape]
        if shape[0] == "u":
            if not 0 <= v < 1 << bits:
                raise ValueError(f"{v} does not fit a {shape}")
            _varint(v, out)
        else:
            if not -(1 << bits - 1) <= v < 1 << bits - 1:
                raise ValueError(f"{v} does not fit an {shape}")
            _varint((v << 1) ^ (v >> (bits - 1)), out)
    elif shape == "f32":
        out += struct.pack("<f", v)
    elif shape == "f64":
        out += struct.pack("<d", v)
    elif shape is bool:
        out.append(1 if v else 0)
    elif shape is str:
        data = v.encode()
        _varint(len(data), out)
        out += data
    elif shape is bytes:
        _varint(len(v), out)
        out += v
    elif isinstance(shape, tuple):
        if len(v) != len(shape):
            raise ValueError(f"{v!r} has {len(v)} fields, the shape {len(shape)}")
        for s, x in zip(shape, v):
            _encode(s, x, out)
    elif isinstance(shape, list):
        _varint(len(v), out)
        for x in v:
            _encode(shape[0], x, out)
    elif isinstance(shape, Option):
        if v is None:
            out.append(0)
        else:
            out.append(1)
            _encode(shape.shape, v, out)
    else:
        raise TypeError(f"unknown shape {shape!r}")


class _Reader:
    def __init__(self, data):
        self.data = memoryview(data)
        self.pos = 0

    def take(self, n):
        if self.pos + n > len(self.data):
            raise ValueError("postcard: the message ended early")
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def varint(self, bits):
        n = shift = 0
        while True:
            b = self.take(1)[0]
            n |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
            if shift > bits + 7:
                raise ValueError("postcard: a varint is too long")
        if n >> bits:
            raise ValueError(f"postcard: {n} does not fit {bits} bits")
        return n


def _decode(shape, r):
    if shape == "u8":
        return r.take(1)[0]
    if shape == "i8":
        return struct.unpack("<b", r.take(1))[0]
    if isinstance(shape, str) and shape in _BITS:
        n = r.varint(_BITS[shape])
        return n if shape[0] == "u" else (n >> 1) ^ -(n & 1)
    if shape == "f32":
        return struct.unpack("<f", r.take(4))[0]
    if shape == "f64":
        return struct.unpack("<d", r.take(8))[0]
    if shape is bool:
        b = r.take(1)[0]
        if b > 1:
            raise ValueError(f"postcard: {b} is not a bool")
        return b == 1
    if shape is str:
        return bytes(r.take(r.varint(64))).decode()
    if shape is bytes:
        return bytes(r.take(r.varint(64)))
    if isinstance(shape, tuple):
        return tuple(_decode(s, r) for s in shape)
    if isinstance(shape, list):
        return [_decode(shape[0], r) for _ in range(r.varint(64))]
    if isinstance(shape, Option):
        tag = r.take(1)[0]
        if tag > 1:
            raise ValueError(f"postcard: {tag} is not an Option tag")
        return _decode(shape.shape, r) if tag else None
    raise TypeError(f"unknown shape {shape!r}")


class Codec:
    """``dumps``/``loads`` of one Rust type's postcard encoding (see the module docs)."""

    def __init__(self, shape):
        self.shape = shape

    def dumps(self, value):
        out = bytearray()
        _encode(self.shape, value, out)
        return bytes(out)

    def loads(self, data):
        r = _Reader(data)
        value = _decode(self.shape, r)
        if r.pos != len(r.data):
            raise ValueError(f"postcard: {len(r.data) - r.pos} bytes left after the message")
        return value
