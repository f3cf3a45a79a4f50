"""The intermediate representation: what the parser (`schema.py`) hands the generators.

Plain dataclasses, no XML. Every offset and length is resolved; every reference points at the
object it names. A generator reads only these classes.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional, Union

LITTLE_ENDIAN = "littleEndian"
BIG_ENDIAN = "bigEndian"

REQUIRED = "required"
OPTIONAL = "optional"
CONSTANT = "constant"


@dataclass(frozen=True)
class Primitive:
    """One of the SBE primitive types, with the spec's range and null value."""

    name: str
    size: int
    c_type: str
    struct_code: str
    kind: str  # "char", "int", "uint" or "float"
    min_value: Union[int, float]
    max_value: Union[int, float]
    null_value: Union[int, float]

    @property
    def is_char(self):
        return self.kind == "char"

    @property
    def is_float(self):
        return self.kind == "float"

    @property
    def is_integer(self):
        return self.kind in ("int", "uint", "char")

    @property
    def is_signed(self):
        return self.kind in ("int", "float")


def _int(bits, signed):
    if signed:
        return dict(kind="int", min_value=-(2 ** (bits - 1)) + 1, max_value=2 ** (bits - 1) - 1,
                    null_value=-(2 ** (bits - 1)))
    return dict(kind="uint", min_value=0, max_value=2 ** bits - 2, null_value=2 ** bits - 1)


PRIMITIVES = {
    p.name: p
    for p in (
        Primitive("char", 1, "char", "c", kind="char", min_value=0x20, max_value=0x7E, null_value=0),
        Primitive("int8", 1, "int8_t", "b", **_int(8, True)),
        Primitive("uint8", 1, "uint8_t", "B", **_int(8, False)),
        Primitive("int16", 2, "int16_t", "h", **_int(16, True)),
        Primitive("uint16", 2, "uint16_t", "H", **_int(16, False)),
        Primitive("int32", 4, "int32_t", "i", **_int(32, True)),
        Primitive("uint32", 4, "uint32_t", "I", **_int(32, False)),
        Primitive("int64", 8, "int64_t", "q", **_int(64, True)),
        Primitive("uint64", 8, "uint64_t", "Q", **_int(64, False)),
        Primitive("float", 4, "float", "f", kind="float", min_value=-3.4028234663852886e38,
                  max_value=3.4028234663852886e38, null_value=math.nan),
        Primitive("double", 8, "double", "d", kind="float", min_value=-1.7976931348623157e308,
                  max_value=1.7976931348623157e308, null_value=math.nan),
    )
}

Value = Union[int, float, str]


@dataclass
class EncodedType:
    """A `<type>`: one primitive, or a fixed array of them (`length` > 1), or var-data (`length` 0)."""

    name: str
    primitive: Primitive
    length: int = 1
    presence: str = REQUIRED
    null_value: Optional[Union[int, float]] = None  # the value meaning "absent" (optional types)
    min_value: Optional[Union[int, float]] = None
    max_value: Optional[Union[int, float]] = None
    constant_value: Optional[Value] = None  # presence="constant": int/float, or str for char
    character_encoding: Optional[str] = None
    since_version: int = 0
    deprecated: Optional[int] = None
    semantic_type: Optional[str] = None
    description: Optional[str] = None

    @property
    def encoded_length(self):
        return 0 if self.presence == CONSTANT else self.primitive.size * self.length

    @property
    def is_array(self):
        return self.length != 1

    @property
    def is_char_array(self):
        return self.primitive.is_char and self.length != 1

    @property
    def effective_null(self):
        """The null value to use when the type is optional."""
        return self.primitive.null_value if self.null_value is None else self.null_value


@dataclass
class EnumValue:
    name: str
    value: int  # a char enum's value is the character's code
    since_version: int = 0
    deprecated: Optional[int] = None
    description: Optional[str] = None


@dataclass
class EnumType:
    name: str
    encoding: Primitive
    values: list[EnumValue]
    presence: str = REQUIRED
    null_value: Optional[int] = None
    since_version: int = 0
    deprecated: Optional[int] = None
    semantic_type: Optional[str] = None
    description: Optional[str] = None

    @property
    def encoded_length(self):
        return self.encoding.size

    @property
    def effective_null(self):
        return self.encoding.null_value if self.null_value is None else self.null_value

    def value(self, name):
        for v in self.values:
            if v.name == name:
                return v
        return None


@dataclass
class Choice:
    name: str
    bit: int
    since_version: int = 0
    deprecated: Optional[int] = None
    description: Optional[str] = None


@dataclass
class SetType:
    name: str
    encoding: Primitive
    choices: list[Choice]
    presence: str = REQUIRED
    since_version: int = 0
    deprecated: Optional[int] = None
    semantic_type: Optional[str] = None
    description: Optional[str] = None

    @property
    def encoded_length(self):
        return self.encoding.size


@dataclass
class Member:
    """One member of a composite: an inline `<type>`/`<enum>`/`<set>`/`<composite>` or a `<ref>`."""

    name: str
    type: "AnyType"
    offset: int

    @property
    def presence(self):
        return getattr(self.type, "presence", REQUIRED)

    @property
    def encoded_length(self):
        return self.type.encoded_length

    @property
    def since_version(self):
        return self.type.since_version


@dataclass
class CompositeType:
    name: str
    members: list[Member]
    encoded_length: int
    since_version: int = 0
    deprecated: Optional[int] = None
    semantic_type: Optional[str] = None
    description: Optional[str] = None
    presence: str = REQUIRED

    def member(self, name):
        for m in self.members:
            if m.name == name:
                return m
        return None


AnyType = Union[EncodedType, EnumType, SetType, CompositeType]


@dataclass
class Field:
    """A message or group field. `type` is the resolved type; presence is the field's own."""

    name: str
    id: int
    type: AnyType
    offset: int
    presence: str = REQUIRED
    since_version: int = 0
    null_value: Optional[Union[int, float]] = None  # optional primitive/enum fields
    constant_value: Optional[Value] = None  # constant fields
    value_ref: Optional[EnumValue] = None  # a constant enum field: the enum value it names
    deprecated: Optional[int] = None
    semantic_type: Optional[str] = None
    description: Optional[str] = None

    @property
    def encoded_length(self):
        return 0 if self.presence == CONSTANT else self.type.encoded_length


@dataclass
class Data:
    """A var-data field: a composite of `length` and `varData`."""

    name: str
    id: int
    type: CompositeType
    length: Member
    var_data: Member
    since_version: int = 0
    deprecated: Optional[int] = None
    semantic_type: Optional[str] = None
    description: Optional[str] = None

    @property
    def header_length(self):
        return self.var_data.offset

    @property
    def character_encoding(self):
        return self.var_data.type.character_encoding

    @property
    def is_text(self):
        return self.character_encoding is not None or self.var_data.type.primitive.is_char

    @property
    def max_length(self):
        limit = self.length.type.primitive.max_value
        if self.length.type.max_value is not None:
            limit = min(limit, self.length.type.max_value)
        return int(limit)


@dataclass
class Group:
    name: str
    id: int
    dimension: CompositeType
    block_length: int
    fields: list[Field] = field(default_factory=list)
    groups: list["Group"] = field(default_factory=list)
    data: list[Data] = field(default_factory=list)
    since_version: int = 0
    deprecated: Optional[int] = None
    semantic_type: Optional[str] = None
    description: Optional[str] = None


@dataclass
class Message:
    name: str
    id: int
    block_length: int
    fields: list[Field] = field(default_factory=list)
    groups: list[Group] = field(default_factory=list)
    data: list[Data] = field(default_factory=list)
    since_version: int = 0
    deprecated: Optional[int] = None
    semantic_type: Optional[str] = None
    description: Optional[str] = None


@dataclass
class Schema:
    package: str
    id: int
    version: int
    byte_order: str
    header: CompositeType
    types: dict[str, AnyType]
    messages: list[Message]
    semantic_version: Optional[str] = None
    description: Optional[str] = None
    warnings: list[str] = field(default_factory=list)  # accepted, but worth a look (the parser's wording)

    @property
    def big_endian(self):
        return self.byte_order == BIG_ENDIAN

    def message(self, name):
        for m in self.messages:
            if m.name == name:
                return m
        return None
