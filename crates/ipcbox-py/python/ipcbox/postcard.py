"""The typed encoding shared with Rust: postcard, the library's default codec for typed
messages (WIRE.md, "Payloads"), for the shapes a Rust ``Queue<T>`` of plain types uses.

postcard is not self-describing, so a ``Codec`` is made from the Rust type's shape::

    codec = Codec(("u32", str))              # Rust: (u32, String)
    q = ipcbox.Queue(name=..., create=False, dumps=codec.dumps, loads=codec.loads)

Shapes: ``"u8"``..``"u64"``, ``"i8"``..``"i64"``, ``"f32"``, ``"f64"``, ``bool``, ``str``
(``String``), ``bytes`` (``Vec<u8>``), a tuple of shapes (a tuple or a struct, fields in
order), ``[shape]`` (``Vec<T>``), ``Option(shape)`` and ``Block(elem)`` (``codec::Block<T>``).
Integers other than ``u8``/``i8`` are LEB128 varints, signed ones zigzag-encoded; floats are
little-endian.

``Block(elem)`` is an array of plain numbers carried as one byte array (WIRE.md, "Blocks"):

* ``elem`` is ``"u8"``..``"u128"``, ``"i8"``..``"i128"``, ``"f32"`` or ``"f64"``.
* Encoding takes any sequence of numbers. A 1-D buffer of the element's kind and width
  (``array.array``, ``memoryview``, a numpy array) is copied as a whole, with no work per
  element; the bytes are the same either way.
* Decoding gives an ``array.array`` of the element (a list of ints for ``u128``/``i128``).
"""

import array
import operator
import struct
import sys

__all__ = ["Block", "Codec", "Option"]


class Option:
    """The shape of a Rust ``Option<T>``: ``None`` or a value of ``shape``."""

    def __init__(self, shape):
        self.shape = shape


class Block:
    """The shape of ipcbox's ``codec::Block<T>``: an array of ``elem`` numbers carried as one
    block of little-endian bytes (see the module docs)."""

    def __init__(self, elem):
        if not isinstance(elem, str) or elem not in _ELEMS:
            raise ValueError(f"{elem!r} is not a Block element: one of {', '.join(_ELEMS)}")
        self.elem = elem
        self._kind, self._size, self._code, self._typecode = _ELEMS[elem]

    def __repr__(self):
        return f"Block({self.elem!r})"


def _typecode(kind, size):
    # array's typecodes have platform sizes ('l' is 4 or 8 bytes); b/B, h/H, q/Q, f and d
    # are fixed, and every Linux ABI has a 4-byte 'i'. No typecode holds 16 bytes.
    for tc in {"u": "BHIQL", "i": "bhiql", "f": "fd"}[kind]:
        if array.array(tc).itemsize == size:
            return tc
    return None


# elem -> (kind, bytes per element, struct code or None, array typecode or None)
_ELEMS = {
    f"{kind}{bits}": (kind, bits // 8, code, _typecode(kind, bits // 8))
    for kind, bits, code in [
        ("u", 8, "B"), ("u", 16, "H"), ("u", 32, "I"), ("u", 64, "Q"), ("u", 128, None),
        ("i", 8, "b"), ("i", 16, "h"), ("i", 32, "i"), ("i", 64, "q"), ("i", 128, None),
        ("f", 32, "f"), ("f", 64, "d"),
    ]
}

# A buffer's struct format letter -> the kind of number it holds.
_BUFFER_KINDS = {**dict.fromkeys("bhilqn", "i"), **dict.fromkeys("BHILQN", "u"), "f": "f",
                 "d": "f"}
_LITTLE = sys.byteorder == "little"


def _encode_buffer(block, v, out):
    """Encodes ``v`` as a whole if it is a 1-D buffer of the block's elements; False if not."""
    try:
        mv = memoryview(v)
    except TypeError:
        return False
    with mv:
        fmt = mv.format
        order, letter = (fmt[0], fmt[1:]) if fmt[:1] in ("@", "=", "<", ">", "!") else ("@", fmt)
        # The itemsize, not the letter, gives the width: '<l' is 8 bytes from ctypes or numpy.
        if mv.ndim != 1 or _BUFFER_KINDS.get(letter) != block._kind or mv.itemsize != block._size:
            return False
        _varint(mv.nbytes, out)
        if order == "<" or (order in "@=" and _LITTLE):
            out += mv if mv.c_contiguous else mv.tobytes()
        else:
            a = array.array(block._typecode)
            a.frombytes(mv.tobytes())
            a.byteswap()
            out += a
    return True


def _encode_block(block, v, out):
    if _encode_buffer(block, v, out):
        return
    items = v if isinstance(v, (list, tuple)) else list(v)
    if block._code is None:
        signed = block._kind == "i"
        _varint(16 * len(items), out)
        for x in items:
            try:
                out += operator.index(x).to_bytes(16, "little", signed=signed)
            except TypeError:
                raise TypeError(f"{x!r} is not an integer, in a Block of {block.elem}") from None
            except OverflowError:
                raise ValueError(f"{x!r} does not fit a Block of {block.elem}") from None
        return
    try:
        data = struct.pack(f"<{len(items)}{block._code}", *items)
    except (struct.error, OverflowError):
        raise _bad_element(block, items) from None
    _varint(len(data), out)
    out += data


def _bad_element(block, items):
    """The error naming the first of ``items`` that struct cannot pack as the element."""
    for x in items:
        try:
            struct.pack("<" + block._code, x)
        except (struct.error, OverflowError):
            # struct says "not an integer" or "out of range" without the value: tell them apart
            # by whether x is a number at all.
            t = type(x)
            if block._kind == "f":
                number, what = hasattr(t, "__float__") or hasattr(t, "__index__"), "a number"
            else:
                number, what = hasattr(t, "__index__"), "an integer"
            if not number:
                return TypeError(f"{x!r} is not {what}, in a Block of {block.elem}")
            return ValueError(f"{x!r} does not fit a Block of {block.elem}")
    # Not reached: struct packs a sequence exactly when it packs each element.
    return ValueError(f"a Block of {block.elem} cannot hold these values")


def _decode_block(block, r):
    n = r.varint(64)
    data = r.take(n)  # checks the payload holds n bytes before anything is allocated
    if n % block._size:
        raise ValueError(
            f"postcard: a Block of {block.elem} has {n} bytes, not a multiple of {block._size}")
    if block._typecode is None:
        signed = block._kind == "i"
        return [int.from_bytes(data[i:i + 16], "little", signed=signed) for i in range(0, n, 16)]
    a = array.array(block._typecode)
    a.frombytes(data)
    if not _LITTLE:
        a.byteswap()
    return a


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
    elif isinstance(shape, Block):
        _encode_block(shape, v, out)
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
    if isinstance(shape, Block):
        return _decode_block(shape, r)
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
