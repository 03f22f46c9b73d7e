"""The postcard encoding of WIRE.md ("Postcard encoding"), with Python's standard library only.

Postcard is not self-describing, so values are encoded and decoded along a *schema* that
mirrors the Rust type:

    schema = Struct(("id", U32), ("name", STR), ("tags", Seq(STR)), ("parent", Option(U64)))
    data = encode(schema, {"id": 7, "name": "x", "tags": [], "parent": None})
    value = decode(schema, data)  # strict: bytes left over are an error

Python values:
  integers -> int, f32/f64 -> float, bool -> bool, char -> str of one character,
  string -> str, byte array -> bytes, unit and unit struct -> (), newtype -> the inner value,
  option -> None or Some(value) (so that Some(None) differs from None),
  sequence -> list, tuple / tuple struct / array -> tuple, struct -> dict by field name,
  ipcbox's Block -> list,
  map -> list of (key, value) pairs (the order is kept), enum -> Variant(index, content) with
  content None (unit), the value (newtype), a tuple (tuple variant) or a dict (struct variant).
"""

import struct


class DecodeError(ValueError):
    """The bytes are not a valid encoding of the schema's type."""


class Some:
    """An option that holds a value (None is the empty option)."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value

    def __eq__(self, other):
        return isinstance(other, Some) and same(self.value, other.value)

    def __repr__(self):
        return f"Some({self.value!r})"


class Variant:
    """An enum value: the variant's index (declaration order, from 0) and its content."""

    __slots__ = ("index", "content")

    def __init__(self, index, content=None):
        self.index = index
        self.content = content

    def __eq__(self, other):
        return (
            isinstance(other, Variant)
            and self.index == other.index
            and same(self.content, other.content)
        )

    def __repr__(self):
        return f"Variant({self.index}, {self.content!r})"


def same(a, b):
    """Equality that tells floats by their bits (NaN equals NaN, -0.0 differs from 0.0)."""
    if isinstance(a, float) and isinstance(b, float):
        return struct.pack("<d", a) == struct.pack("<d", b)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(same, a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


class Reader:
    """The bytes of one payload, consumed from the front."""

    def __init__(self, data):
        self.data = bytes(data)
        self.pos = 0

    def take(self, n):
        if n > len(self.data) - self.pos:
            raise DecodeError(f"{n} bytes wanted at offset {self.pos}, {len(self.data) - self.pos} left")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def byte(self):
        return self.take(1)[0]


# --- building blocks ---------------------------------------------------------------------------


def put_varint(out, n, bits):
    if not 0 <= n < (1 << bits):
        raise ValueError(f"{n} does not fit {bits} bits")
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)


def get_varint(r, bits):
    limit = (bits + 6) // 7
    n = 0
    for i in range(limit):
        b = r.byte()
        n |= (b & 0x7F) << (7 * i)
        if not b & 0x80:
            if n >> bits:
                raise DecodeError(f"varint wider than {bits} bits")
            return n
    raise DecodeError(f"varint longer than {limit} bytes")


def zigzag(n, bits):
    return ((n << 1) ^ (n >> (bits - 1))) & ((1 << bits) - 1)


def unzigzag(z):
    return (z >> 1) ^ -(z & 1)


def put_length(out, n):
    put_varint(out, n, 64)


def get_length(r):
    return get_varint(r, 64)


# --- schemas -----------------------------------------------------------------------------------


class _Raw8:
    def __init__(self, signed):
        self.signed = signed

    def enc(self, v, out):
        lo, hi = (-128, 127) if self.signed else (0, 255)
        if not (isinstance(v, int) and lo <= v <= hi):
            raise ValueError(f"{v!r} is not a{'n i' if self.signed else ' u'}8")
        out.append(v & 0xFF)

    def dec(self, r):
        b = r.byte()
        return b - 256 if self.signed and b >= 128 else b


class _Varint:
    def __init__(self, bits, signed):
        self.bits = bits
        self.signed = signed

    def enc(self, v, out):
        if isinstance(v, bool) or not isinstance(v, int):
            raise ValueError(f"{v!r} is not an integer")
        if self.signed:
            if not -(1 << (self.bits - 1)) <= v < (1 << (self.bits - 1)):
                raise ValueError(f"{v} does not fit i{self.bits}")
            v = zigzag(v, self.bits)
        put_varint(out, v, self.bits)

    def dec(self, r):
        z = get_varint(r, self.bits)
        return unzigzag(z) if self.signed else z


class _Float:
    def __init__(self, fmt):
        self.fmt = fmt

    def enc(self, v, out):
        out += struct.pack(self.fmt, v)

    def dec(self, r):
        return struct.unpack(self.fmt, r.take(struct.calcsize(self.fmt)))[0]


class _Bool:
    def enc(self, v, out):
        out.append(1 if v is True else 0 if v is False else _fail(f"{v!r} is not a bool"))

    def dec(self, r):
        b = r.byte()
        if b > 1:
            raise DecodeError(f"bool byte {b:#04x}")
        return b == 1


class _Char:
    def enc(self, v, out):
        if not (isinstance(v, str) and len(v) == 1):
            raise ValueError(f"{v!r} is not one character")
        data = v.encode("utf-8")
        put_length(out, len(data))
        out += data

    def dec(self, r):
        n = get_length(r)
        if not 1 <= n <= 4:
            raise DecodeError(f"char of {n} bytes")
        text = _utf8(r.take(n))
        if len(text) != 1:
            raise DecodeError(f"char holds {len(text)} characters")
        return text


class _Str:
    def enc(self, v, out):
        data = v.encode("utf-8")
        put_length(out, len(data))
        out += data

    def dec(self, r):
        return _utf8(r.take(get_length(r)))


class _Bytes:
    def enc(self, v, out):
        put_length(out, len(v))
        out += bytes(v)

    def dec(self, r):
        return r.take(get_length(r))


class Block:
    """ipcbox's `codec::Block<T>` (WIRE.md, "Blocks"): a byte array holding each element's
    fixed-width little-endian bytes; `code` is the element's `struct` code (B b H h I i Q q f d),
    or "u128" / "i128". Python value: a list."""

    _WIDE = {"u128": (16, False), "i128": (16, True)}

    def __init__(self, code):
        self.code = code
        self.size = self._WIDE[code][0] if code in self._WIDE else struct.calcsize("<" + code)

    def enc(self, v, out):
        if self.code in self._WIDE:
            data = b"".join(x.to_bytes(16, "little", signed=self._WIDE[self.code][1]) for x in v)
        else:
            data = struct.pack(f"<{len(v)}{self.code}", *v)
        put_length(out, len(data))
        out += data

    def dec(self, r):
        data = r.take(get_length(r))
        if len(data) % self.size:
            raise DecodeError(f"block of {len(data)} bytes, not a multiple of {self.size}")
        if self.code in self._WIDE:
            signed = self._WIDE[self.code][1]
            return [int.from_bytes(data[i:i + 16], "little", signed=signed)
                    for i in range(0, len(data), 16)]
        return list(struct.unpack(f"<{len(data) // self.size}{self.code}", data))


class _Unit:
    def enc(self, v, out):
        if v != ():
            raise ValueError(f"{v!r} is not ()")

    def dec(self, r):
        return ()


def _fail(why):
    raise ValueError(why)


def _utf8(data):
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DecodeError(f"invalid UTF-8: {e}") from None


class Option:
    def __init__(self, inner):
        self.inner = inner

    def enc(self, v, out):
        if v is None:
            out.append(0)
        elif isinstance(v, Some):
            out.append(1)
            self.inner.enc(v.value, out)
        else:
            raise ValueError(f"{v!r} is neither None nor Some(...)")

    def dec(self, r):
        tag = r.byte()
        if tag == 0:
            return None
        if tag == 1:
            return Some(self.inner.dec(r))
        raise DecodeError(f"option tag {tag:#04x}")


class Seq:
    def __init__(self, item):
        self.item = item

    def enc(self, v, out):
        put_length(out, len(v))
        for x in v:
            self.item.enc(x, out)

    def dec(self, r):
        return [self.item.dec(r) for _ in range(get_length(r))]


class Map:
    def __init__(self, key, value):
        self.key = key
        self.value = value

    def enc(self, v, out):
        put_length(out, len(v))
        for k, x in v:
            self.key.enc(k, out)
            self.value.enc(x, out)

    def dec(self, r):
        return [(self.key.dec(r), self.value.dec(r)) for _ in range(get_length(r))]


class Tuple:
    """A tuple, tuple struct or array: the elements in order, no length."""

    def __init__(self, *items):
        self.items = items

    def enc(self, v, out):
        if len(v) != len(self.items):
            raise ValueError(f"{len(v)} elements for a tuple of {len(self.items)}")
        for schema, x in zip(self.items, v):
            schema.enc(x, out)

    def dec(self, r):
        return tuple(schema.dec(r) for schema in self.items)


class Struct:
    """A struct: the fields in declaration order, no names."""

    def __init__(self, *fields):
        self.fields = fields

    def enc(self, v, out):
        for name, schema in self.fields:
            schema.enc(v[name], out)

    def dec(self, r):
        return {name: schema.dec(r) for name, schema in self.fields}


def Newtype(inner):
    """A newtype struct is its inner value alone."""
    return inner


class Enum:
    """An enum: one content schema per variant, in declaration order: UNIT_VARIANT, a schema
    (newtype variant), a Tuple (tuple variant) or a Struct (struct variant)."""

    def __init__(self, *variants):
        self.variants = variants

    def enc(self, v, out):
        if not 0 <= v.index < len(self.variants):
            raise ValueError(f"no variant {v.index}")
        put_varint(out, v.index, 32)
        content = self.variants[v.index]
        if content is not UNIT_VARIANT:
            content.enc(v.content, out)

    def dec(self, r):
        index = get_varint(r, 32)
        if index >= len(self.variants):
            raise DecodeError(f"variant index {index} of an enum of {len(self.variants)}")
        content = self.variants[index]
        return Variant(index, None if content is UNIT_VARIANT else content.dec(r))


UNIT_VARIANT = object()

BOOL = _Bool()
U8, I8 = _Raw8(False), _Raw8(True)
U16, U32, U64, U128 = (_Varint(b, False) for b in (16, 32, 64, 128))
I16, I32, I64, I128 = (_Varint(b, True) for b in (16, 32, 64, 128))
USIZE, ISIZE = U64, I64
F32, F64 = _Float("<f"), _Float("<d")
CHAR = _Char()
STR = _Str()
BYTES = _Bytes()
UNIT = _Unit()


def encode(schema, value):
    out = bytearray()
    schema.enc(value, out)
    return bytes(out)


def decode(schema, data):
    r = Reader(data)
    value = schema.dec(r)
    if r.pos != len(r.data):
        raise DecodeError(f"{len(r.data) - r.pos} byte(s) left after the value")
    return value
