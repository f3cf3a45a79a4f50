"""IR -> one Cython module: `NAME.pxd` (hot-path `cdef inline` accessors) and `NAME.pyx` (Python API).

The naming of everything in the `.pxd` is the contract in README.md. The `.pyx` implements `encode`
and `decode` on top of those same accessors, so the Python round trips exercise them too.
"""
from __future__ import annotations

import hashlib
import math

from . import ir
from .ir import CONSTANT, OPTIONAL
from .schema import SchemaError

INT32_MIN, INT32_MAX = -(2 ** 31), 2 ** 31 - 1
# Unsigned carrier of the same size: values are byte-swapped as these.
CARRIER = {1: "uint8_t", 2: "uint16_t", 4: "uint32_t", 8: "uint64_t"}
STDINT = ("int8_t", "uint8_t", "int16_t", "uint16_t", "int32_t", "uint32_t", "int64_t", "uint64_t")

BYTEORDER_C = """\
#ifndef LOB_SBE_BYTEORDER_H
#define LOB_SBE_BYTEORDER_H
#include <stdint.h>
#include <math.h>
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define lob_sbe_le16(x) __builtin_bswap16(x)
#define lob_sbe_le32(x) __builtin_bswap32(x)
#define lob_sbe_le64(x) __builtin_bswap64(x)
#define lob_sbe_be16(x) (x)
#define lob_sbe_be32(x) (x)
#define lob_sbe_be64(x) (x)
#else
#define lob_sbe_le16(x) (x)
#define lob_sbe_le32(x) (x)
#define lob_sbe_le64(x) (x)
#define lob_sbe_be16(x) __builtin_bswap16(x)
#define lob_sbe_be32(x) __builtin_bswap32(x)
#define lob_sbe_be64(x) __builtin_bswap64(x)
#endif
#endif"""


def generate(schema: ir.Schema, module_name: str, source_name: str = "") -> dict:
    """{"NAME.pxd": text, "NAME.pyx": text} for the schema."""
    gen = _Generator(schema, module_name, source_name)
    return {f"{module_name}.pxd": gen.pxd(), f"{module_name}.pyx": gen.pyx()}


class _Lines:
    def __init__(self):
        self.lines = []
        self.level = 0

    def __call__(self, text=""):
        self.lines.append(("    " * self.level + text) if text else "")

    def indent(self):
        self.level += 1

    def dedent(self):
        self.level -= 1

    def text(self):
        return "\n".join(self.lines) + "\n"


def _c_literal(value, primitive):
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if (primitive is not None and primitive.is_float) or isinstance(value, float):
        value = float(value)
        if math.isnan(value):
            return "NAN"
        if math.isinf(value):
            return "INFINITY" if value > 0 else "(-INFINITY)"
        return repr(value)
    value = int(value)
    # the most negative literals are written as expressions: C has no negative literals
    if value == -(2 ** 63):
        return "(-9223372036854775807LL - 1)"
    if value == INT32_MIN:
        return "(-2147483647 - 1)"
    if value < INT32_MIN:
        return f"({value}LL)"
    if value > 2 ** 63 - 1:
        return f"{value}ULL"
    if value > INT32_MAX:
        return f"{value}LL"
    return str(value)


def _py_literal(value):
    if isinstance(value, float):
        if math.isnan(value):
            return 'float("nan")'
        if math.isinf(value):
            return 'float("inf")' if value > 0 else 'float("-inf")'
    return repr(value)


class _Slot:
    """A primitive, enum, set or composite value at a fixed offset: a field or a composite member."""

    def __init__(self, head, name, type_, offset, presence, null_value=None, constant_value=None,
                 value_ref=None, since_version=0):
        self.head = head  # the owner's name prefix, e.g. "Car" or "Car_fuelFigures"
        self.prefix = f"{head}_{name}"  # accessor name, e.g. "Car_serialNumber"
        self.setter = f"{head}_set_{name}"
        self.name = name
        self.type = type_
        self.offset = offset
        self.presence = presence
        self.null_value = null_value
        self.constant_value = constant_value
        self.value_ref = value_ref
        self.since_version = since_version

    @classmethod
    def of_field(cls, prefix, f: ir.Field):
        return cls(prefix, f.name, f.type, f.offset, f.presence, f.null_value, f.constant_value,
                   f.value_ref, f.since_version)

    @classmethod
    def of_member(cls, composite, m: ir.Member):
        t = m.type
        presence = getattr(t, "presence", ir.REQUIRED)
        null_value = None
        if presence == OPTIONAL and isinstance(t, (ir.EncodedType, ir.EnumType)):
            null_value = t.effective_null
        constant = t.constant_value if isinstance(t, ir.EncodedType) and presence == CONSTANT else None
        return cls(composite.name, m.name, t, m.offset, presence, null_value, constant)

    @property
    def is_constant(self):
        return self.presence == CONSTANT

    @property
    def is_optional(self):
        return self.presence == OPTIONAL

    @property
    def size(self):
        return 0 if self.is_constant else self.type.encoded_length

    @property
    def primitive(self):
        t = self.type
        if isinstance(t, ir.EncodedType):
            return t.primitive
        if isinstance(t, (ir.EnumType, ir.SetType)):
            return t.encoding
        return None


class _Generator:
    def __init__(self, schema: ir.Schema, module_name: str, source_name: str):
        self.schema = schema
        self.module = module_name
        self.source = source_name
        digest = hashlib.sha1(f"{module_name}\0{schema.package}\0{schema.id}\0{schema.version}".encode()).hexdigest()
        self.cprefix = f"LOB_SBE_{''.join(c if c.isalnum() else '_' for c in module_name)}_{digest[:8]}_"
        self.names = {}  # generated pxd name -> what generated it (to report clashes)
        self.macros = []  # (name, C literal)
        self.externs = []  # Cython declarations inside the extern block
        self.body = _Lines()
        self.order = "be" if schema.big_endian else "le"
        self.composites = [t for t in schema.types.values() if isinstance(t, ir.CompositeType)]
        self.enums = [t for t in schema.types.values() if isinstance(t, ir.EnumType)]
        self.sets = [t for t in schema.types.values() if isinstance(t, ir.SetType)]

    # ---- naming --------------------------------------------------------------------------------

    def claim(self, name, what):
        if name in self.names:
            raise SchemaError(f"generated name {name!r} of {what} clashes with that of {self.names[name]}; "
                              "rename one of them")
        self.names[name] = what
        return name

    def const(self, name, value, primitive=None, what=""):
        """A named constant: an anonymous extern enum when it fits an int, else a typed const."""
        self.claim(name, what or name)
        cname = self.cprefix + name
        self.macros.append((cname, _c_literal(value, primitive)))
        if isinstance(value, str):
            self.externs.append(f'const char* {name} "{cname}"')
        elif isinstance(value, float) or (primitive is not None and primitive.is_float):
            self.externs.append(f'const {primitive.c_type if primitive else "double"} {name} "{cname}"')
        elif INT32_MIN <= value <= INT32_MAX:
            self.externs.append(f'enum: {name} "{cname}"')
        else:
            ctype = primitive.c_type if primitive is not None and primitive.is_integer and not primitive.is_char else (
                "uint64_t" if value > 0 else "int64_t")
            self.externs.append(f'const {ctype} {name} "{cname}"')

    # ---- .pxd ----------------------------------------------------------------------------------

    def pxd(self):
        s = self.schema
        b = self.body
        self.const("SCHEMA_ID", s.id, what="the schema id")
        self.const("SCHEMA_VERSION", s.version, what="the schema version")
        self.const("HEADER_LENGTH", s.header.encoded_length, what="the header length")
        self.primitive_helpers()
        for t in self.enums:
            self.enum(t)
        for t in self.sets:
            self.set_(t)
        for t in self.composites:
            self.composite(t)
        for m in s.messages:
            self.message(m)

        out = _Lines()
        out(f"# Generated by lob.codecs from {self.source or 'a schema'} (package {s.package!r}, id {s.id}, "
            f"version {s.version}, {s.byte_order}). Do not edit.")
        out("# cython: language_level=3")
        out(f"from libc.stdint cimport {', '.join(STDINT)}")
        out("from libc.string cimport memcpy")
        out()
        out("cdef extern from *:")
        out.indent()
        out('"""')
        for line in BYTEORDER_C.splitlines():
            out.lines.append(line)
        guard = self.cprefix + "H"
        out.lines.append(f"#ifndef {guard}")
        out.lines.append(f"#define {guard}")
        for cname, literal in self.macros:
            out.lines.append(f"#define {cname} {literal}")
        out.lines.append("#endif")
        out('"""')
        for bits in (16, 32, 64):
            out(f"uint{bits}_t _sbe_order{bits} \"lob_sbe_{self.order}{bits}\"(uint{bits}_t v) noexcept nogil")
        for decl in self.externs:
            out(decl)
        out.dedent()
        out()
        return out.text() + "\n" + b.text()

    def primitive_helpers(self):
        b = self.body
        b("# Load and store one primitive at p in the schema's byte order (memcpy: one unaligned load).")
        for p in ir.PRIMITIVES.values():
            carrier = CARRIER[p.size]
            b()
            b(f"cdef inline {p.c_type} _sbe_get_{p.name}(const uint8_t* p) noexcept nogil:")
            b.indent()
            if p.size == 1:
                b(f"return (<const {p.c_type}*>p)[0]")
            elif p.c_type == carrier:
                b(f"cdef {carrier} v")
                b(f"memcpy(&v, p, {p.size})")
                b(f"return _sbe_order{p.size * 8}(v)")
            else:
                b(f"cdef {carrier} u")
                b(f"cdef {p.c_type} v")
                b(f"memcpy(&u, p, {p.size})")
                b(f"u = _sbe_order{p.size * 8}(u)")
                b(f"memcpy(&v, &u, {p.size})")
                b("return v")
            b.dedent()
            b()
            b(f"cdef inline void _sbe_put_{p.name}(uint8_t* p, {p.c_type} v) noexcept nogil:")
            b.indent()
            if p.size == 1:
                b(f"(<{p.c_type}*>p)[0] = v")
            elif p.c_type == carrier:
                b(f"cdef {carrier} u = _sbe_order{p.size * 8}(v)")
                b(f"memcpy(p, &u, {p.size})")
            else:
                b(f"cdef {carrier} u")
                b(f"memcpy(&u, &v, {p.size})")
                b(f"u = _sbe_order{p.size * 8}(u)")
                b(f"memcpy(p, &u, {p.size})")
            b.dedent()
        b()

    def enum(self, t: ir.EnumType):
        for v in t.values:
            self.const(f"{t.name}_{v.name}", v.value, t.encoding, f"enum {t.name!r} value {v.name!r}")
        self.const(f"{t.name}_NULL_VALUE", t.effective_null, t.encoding, f"enum {t.name!r}")

    def set_(self, t: ir.SetType):
        for c in t.choices:
            self.const(f"{t.name}_{c.name}_BIT", c.bit, None, f"set {t.name!r} choice {c.name!r}")

    def composite(self, t: ir.CompositeType):
        what = f"composite {t.name!r}"
        self.const(f"{t.name}_ENCODED_LENGTH", t.encoded_length, what=what)
        for m in t.members:
            self.slot(_Slot.of_member(t, m), f"{what} member {m.name!r}")

    def message(self, m: ir.Message):
        what = f"message {m.name!r}"
        self.const(f"{m.name}_TEMPLATE_ID", m.id, what=what)
        self.const(f"{m.name}_BLOCK_LENGTH", m.block_length, what=what)
        self.const(f"{m.name}_SINCE_VERSION", m.since_version, what=what)
        self.container(m.name, m, what)

    def container(self, prefix, node, what):
        for f in node.fields:
            slot = _Slot.of_field(prefix, f)
            self.slot(slot, f"{what} field {f.name!r}")
            self.const(f"{slot.prefix}_SINCE_VERSION", f.since_version, what=f"{what} field {f.name!r}")
            self.presence_test(slot, f, f"{what} field {f.name!r}")
        for g in node.groups:
            gp = f"{prefix}_{g.name}"
            gwhat = f"{what} group {g.name!r}"
            self.const(f"{gp}_BLOCK_LENGTH", g.block_length, what=gwhat)
            self.const(f"{gp}_HEADER_LENGTH", g.dimension.encoded_length, what=gwhat)
            self.const(f"{gp}_SINCE_VERSION", g.since_version, what=gwhat)
            self.container(gp, g, gwhat)
        for d in node.data:
            dp = f"{prefix}_{d.name}"
            dwhat = f"{what} data {d.name!r}"
            self.const(f"{dp}_HEADER_LENGTH", d.header_length, what=dwhat)
            self.const(f"{dp}_MAX_LENGTH", d.max_length, d.length.type.primitive, what=dwhat)
            self.const(f"{dp}_SINCE_VERSION", d.since_version, what=dwhat)
            lp = d.length.type.primitive
            b = self.body
            b(f"cdef inline {lp.c_type} {self.claim(dp + '_length', dwhat)}(const uint8_t* p) noexcept nogil:")
            b(f"    return _sbe_get_{lp.name}(p + {d.length.offset})")
            b()
            b(f"cdef inline void {self.claim(dp + '_set_length', dwhat)}(uint8_t* p, {lp.c_type} v) noexcept nogil:")
            b(f"    _sbe_put_{lp.name}(p + {d.length.offset}, v)")
            b()

    def presence_test(self, s: _Slot, f: ir.Field, what):
        """`M_f_present(block_length, version)`: whether a message (or group entry) of that acting block
        length and version holds the field; when not, a decoder takes it as absent."""
        tests = [f"version >= {s.prefix}_SINCE_VERSION"] if f.since_version > 0 else []
        if not s.is_constant:
            tests.append(f"block_length >= {s.offset + s.size}")
        b = self.body
        b(f"cdef inline bint {self.claim(s.prefix + '_present', what)}(Py_ssize_t block_length, int version) noexcept nogil:")
        b(f"    return {' and '.join(tests) or 'True'}")
        b()

    def slot(self, s: _Slot, what):
        b = self.body
        t = s.type
        if s.is_constant:
            value = s.constant_value
            primitive = s.primitive
            self.const(f"{s.prefix}_VALUE", value, primitive, what)
            if isinstance(value, str):
                self.const(f"{s.prefix}_LENGTH", len(value.encode("latin-1", "replace")), what=what)
                ctype = "const char*"
            else:
                ctype = primitive.c_type
            b(f"cdef inline {ctype} {self.claim(s.prefix, what)}() noexcept nogil:")
            b(f"    return {s.prefix}_VALUE")
            b()
            return
        self.const(f"{s.prefix}_OFFSET", s.offset, what=what)
        if isinstance(t, ir.CompositeType):
            return
        p = s.primitive
        if s.is_optional and s.null_value is not None:
            self.const(f"{s.prefix}_NULL_VALUE", s.null_value, p, what)
        getter = self.claim(s.prefix, what)
        setter = self.claim(s.setter, what)
        if isinstance(t, ir.EncodedType) and t.length != 1:
            self.const(f"{s.prefix}_LENGTH", t.length, what=what)
            b(f"cdef inline {p.c_type} {getter}(const uint8_t* p, Py_ssize_t i) noexcept nogil:")
            b(f"    return _sbe_get_{p.name}(p + {s.prefix}_OFFSET + i * {p.size})")
            b()
            b(f"cdef inline void {setter}(uint8_t* p, Py_ssize_t i, {p.c_type} v) noexcept nogil:")
            b(f"    _sbe_put_{p.name}(p + {s.prefix}_OFFSET + i * {p.size}, v)")
            b()
            return
        b(f"cdef inline {p.c_type} {getter}(const uint8_t* p) noexcept nogil:")
        b(f"    return _sbe_get_{p.name}(p + {s.prefix}_OFFSET)")
        b()
        b(f"cdef inline void {setter}(uint8_t* p, {p.c_type} v) noexcept nogil:")
        b(f"    _sbe_put_{p.name}(p + {s.prefix}_OFFSET, v)")
        b()

    # ---- .pyx ----------------------------------------------------------------------------------

    def pyx(self):
        s = self.schema
        out = _Lines()
        out(f"# Generated by lob.codecs from {self.source or 'a schema'} (package {s.package!r}, id {s.id}, "
            f"version {s.version}). Do not edit.")
        out("# cython: language_level=3")
        out('"""SBE codec for schema ' + repr(s.package) + ': `encode(name, **fields) -> bytes`, '
            '`decode(buffer) -> dict`."""')
        out(PYX_PRELUDE)
        out("globals().update(SCHEMA_ID=SCHEMA_ID, SCHEMA_VERSION=SCHEMA_VERSION, HEADER_LENGTH=HEADER_LENGTH)")
        out("MESSAGES = {" + ", ".join(f"{m.name!r}: {m.id}" for m in s.messages) + "}")
        out("BLOCK_LENGTHS = {" + ", ".join(f"{m.name!r}: {m.block_length}" for m in s.messages) + "}")
        out("ENUMS = {")
        for t in self.enums:
            out(f"    {t.name!r}: {{" + ", ".join(f"{v.name!r}: {v.value}" for v in t.values) + "},")
        out("}")
        out("SETS = {")
        for t in self.sets:
            out(f"    {t.name!r}: {{" + ", ".join(f"{c.name!r}: {c.bit}" for c in t.choices) + "},")
        out("}")
        for t in self.enums:
            out(f"cdef dict _E_{t.name} = ENUMS[{t.name!r}]")
            out(f"cdef dict _EN_{t.name} = {{v: k for k, v in reversed(_E_{t.name}.items())}}  # a duplicate value: its first name")
        for t in self.sets:
            out(f"cdef dict _S_{t.name} = SETS[{t.name!r}]")
        out()
        for t in self.composites:
            self.pyx_composite(out, t)
        for m in s.messages:
            self.pyx_container(out, m.name, m, m.name, is_message=True)
        self.pyx_entry_points(out)
        return out.text()

    def pyx_entry_points(self, out):
        s = self.schema
        h = s.header.name
        out()
        out("def encode(name, **fields):")
        out('    """Header + message `name` (or its template id) from keyword field values -> bytes."""')
        out("    cdef _Writer w = _Writer()")
        out("    cdef uint8_t* hp = w.block(HEADER_LENGTH)")
        out("    if isinstance(name, int):")
        out("        name = _NAMES_BY_ID.get(name, name)")
        first = True
        for m in s.messages:
            out(f"    {'if' if first else 'elif'} name == {m.name!r}:")
            first = False
            out(f"        {h}_set_blockLength(hp, {m.name}_BLOCK_LENGTH)")
            out(f"        {h}_set_templateId(hp, {m.name}_TEMPLATE_ID)")
            out(f"        {h}_set_schemaId(hp, SCHEMA_ID)")
            out(f"        {h}_set_version(hp, SCHEMA_VERSION)")
            out(f"        _sbe_enc_{m.name}(w, fields, {m.name!r})")
        if s.messages:
            out("    else:")
            out("        raise ValueError(f\"unknown message {name!r}\")")
        else:
            out("    raise ValueError(f\"unknown message {name!r}\")")
        out("    return w.getvalue()")
        out()
        out("def decode(buffer):")
        out('    """One message (header first) -> dict of its fields plus _name, _template_id, _schema_id, _version."""')
        out("    cdef _Reader r = _Reader(buffer)")
        out("    cdef const uint8_t* hp = r.take(HEADER_LENGTH, 'the message header')")
        out(f"    cdef Py_ssize_t block_length = {h}_blockLength(hp)")
        out(f"    template_id = {h}_templateId(hp)")
        out(f"    schema_id = {h}_schemaId(hp)")
        out(f"    cdef int version = {h}_version(hp)")
        out("    if schema_id != SCHEMA_ID:")
        out("        raise ValueError(f\"schema id {schema_id} is not this codec's {SCHEMA_ID}\")")
        out("    name = _NAMES_BY_ID.get(template_id)")
        out("    if name is None:")
        out("        raise ValueError(f\"unknown template id {template_id}\")")
        out("    d = {'_name': name, '_template_id': template_id, '_schema_id': schema_id, '_version': version}")
        first = True
        for m in s.messages:
            out(f"    {'if' if first else 'elif'} template_id == {m.id}:")
            first = False
            out(f"        _sbe_dec_{m.name}(r, block_length, version, d)")
        out("    return d")
        out()
        out("_NAMES_BY_ID = {v: k for k, v in MESSAGES.items()}")

    def pyx_composite(self, out, t: ir.CompositeType):
        required = [m.name for m in t.members if getattr(m.type, "presence", ir.REQUIRED) == ir.REQUIRED]
        settable = [m for m in t.members if getattr(m.type, "presence", ir.REQUIRED) != CONSTANT]
        out(f"cdef _sbe_enc_comp_{t.name}(uint8_t* p, object value, str path):")
        out.indent()
        out("if value is None or value is _MISSING:")
        if required:
            out(f"    raise ValueError(f\"{{path}}: required (members {', '.join(required)})\")")
        else:
            out("    value = {}")
        out("if not isinstance(value, dict):")
        out("    raise ValueError(f\"{path}: expected a dict of members, got {value!r}\")")
        out("cdef dict v = dict(value)")
        for m in t.members:
            self.pyx_encode_slot(out, _Slot.of_member(t, m), "p", f'v.pop({m.name!r}, _MISSING)', f'path + ".{m.name}"')
        out("if v:")
        out("    raise ValueError(f\"{path}: unknown member(s) {', '.join(map(str, v))}\")")
        out.dedent()
        out()
        out(f"cdef _sbe_dec_comp_{t.name}(const uint8_t* p):")
        out.indent()
        out("cdef dict d = {}")
        out("cdef object x, seq  # Python objects: no C type inference across differently typed fields")
        for m in t.members:
            self.pyx_decode_slot(out, _Slot.of_member(t, m), "p", f"d[{m.name!r}]")
        if settable and all(getattr(m.type, "presence", ir.REQUIRED) == OPTIONAL for m in settable):
            out("if " + " and ".join(f"d[{m.name!r}] is None" for m in settable) + ":")
            out("    return None")
        out("return d")
        out.dedent()
        out()

    def pyx_container(self, out, prefix, node, path, is_message=False):
        for g in node.groups:
            self.pyx_container(out, f"{prefix}_{g.name}", g, f"{path}.{g.name}")
        # encoder: the block, then groups, then var-data
        out(f"cdef _sbe_enc_{prefix}(_Writer w, dict fields, str path):")
        out.indent()
        out(f"cdef uint8_t* p = w.block({node.block_length})")
        out("cdef dict v = dict(fields)")
        for f in node.fields:
            self.pyx_encode_slot(out, _Slot.of_field(prefix, f), "p", f'v.pop({f.name!r}, _MISSING)',
                                 f'path + ".{f.name}"')
        for g in node.groups:
            gp = f"{prefix}_{g.name}"
            dim = g.dimension.name
            out(f"entries = v.pop({g.name!r}, _MISSING)")
            out("if entries is _MISSING or entries is None:")
            out("    entries = ()")
            out("if isinstance(entries, (dict, str, bytes)):")
            out(f"    raise ValueError(f\"{{path}}.{g.name}: expected a list of entries\")")
            out("entries = list(entries)")
            num_max = int(g.dimension.member("numInGroup").type.max_value or g.dimension.member("numInGroup").type.primitive.max_value)
            out(f"if len(entries) > {num_max}:")
            out(f"    raise ValueError(f\"{{path}}.{g.name}: {{len(entries)}} entries, at most {num_max}\")")
            out(f"p = w.block({gp}_HEADER_LENGTH)")
            out(f"{dim}_set_blockLength(p, {gp}_BLOCK_LENGTH)")
            out(f"{dim}_set_numInGroup(p, len(entries))")
            out("for i, entry in enumerate(entries):")
            out("    if not isinstance(entry, dict):")
            out(f"        raise ValueError(f\"{{path}}.{g.name}[{{i}}]: expected a dict, got {{entry!r}}\")")
            out(f"    _sbe_enc_{gp}(w, entry, f\"{{path}}.{g.name}[{{i}}]\")")
        for d in node.data:
            dp = f"{prefix}_{d.name}"
            enc = d.character_encoding or ("ascii" if d.is_text else None)
            out(f"raw = _data_bytes(v.pop({d.name!r}, _MISSING), {_py_literal(_python_codec(enc))}, path + '.{d.name}')")
            out(f"if len(raw) > {dp}_MAX_LENGTH:")
            out(f"    raise ValueError(f\"{{path}}.{d.name}: {{len(raw)}} bytes, at most {{{dp}_MAX_LENGTH}}\")")
            out(f"p = w.block({dp}_HEADER_LENGTH + len(raw))")
            out(f"{dp}_set_length(p, len(raw))")
            out("if raw:")
            out(f"    memcpy(p + {dp}_HEADER_LENGTH, <const char*>raw, len(raw))")
        out("if v:")
        out("    raise ValueError(f\"{path}: unknown field(s) {', '.join(map(str, v))}\")")
        out.dedent()
        out()
        # decoder: acting block length and version come from the header / the group dimension
        out(f"cdef _sbe_dec_{prefix}(_Reader r, Py_ssize_t block_length, int version, dict d):")
        out.indent()
        out(f"cdef const uint8_t* p = r.take(block_length, {path!r})")
        out("cdef Py_ssize_t n, i")
        out("cdef object x, seq  # Python objects: no C type inference across differently typed fields")
        for f in node.fields:
            s = _Slot.of_field(prefix, f)
            target = f"d[{f.name!r}]"
            # absent: a version older than the field, or a block that ends before the field does
            cond = [] if s.is_constant else [f"block_length >= {s.offset + s.size}"]
            if f.since_version > 0:
                cond.insert(0, f"version >= {f.since_version}")
            if not cond:
                self.pyx_decode_slot(out, s, "p", target)
                continue
            out(f"if {' and '.join(cond)}:")
            out.indent()
            self.pyx_decode_slot(out, s, "p", target)
            out.dedent()
            out("else:")
            out(f"    {target} = None")
        for g in node.groups:
            gp = f"{prefix}_{g.name}"
            dim = g.dimension.name
            indent = g.since_version > 0
            if indent:
                out(f"if version < {g.since_version}:")
                out(f"    d[{g.name!r}] = None")
                out("else:")
                out.indent()
            out(f"p = r.take({gp}_HEADER_LENGTH, {path + '.' + g.name + ' dimension'!r})")
            out(f"n = {dim}_numInGroup(p)")
            out(f"entry_length = {dim}_blockLength(p)")
            out(f"entries = d[{g.name!r}] = []")
            out("for i in range(n):")
            out("    entry = {}")
            out(f"    _sbe_dec_{gp}(r, entry_length, version, entry)")
            out("    entries.append(entry)")
            if indent:
                out.dedent()
        for d in node.data:
            dp = f"{prefix}_{d.name}"
            enc = _python_codec(d.character_encoding or ("ascii" if d.is_text else None))
            indent = d.since_version > 0
            if indent:
                out(f"if version < {d.since_version}:")
                out(f"    d[{d.name!r}] = None")
                out("else:")
                out.indent()
            out(f"p = r.take({dp}_HEADER_LENGTH, {path + '.' + d.name + ' length'!r})")
            out(f"n = {dp}_length(p)")
            out(f"p = r.take(n, {path + '.' + d.name!r})")
            out(f"d[{d.name!r}] = _data_value(p, n, {_py_literal(enc)})")
            if indent:
                out.dedent()
        out.dedent()
        out()

    def pyx_encode_slot(self, out, s: _Slot, p, value_expr, path_expr):
        t = s.type
        if s.is_constant:
            out(f"{value_expr}  # constant: not on the wire")
            return
        setter = s.setter
        out(f"x = {value_expr}")
        if isinstance(t, ir.CompositeType):
            out(f"_sbe_enc_comp_{t.name}({p} + {s.prefix}_OFFSET, x, {path_expr})")
            return
        prim = s.primitive
        null = f"{s.prefix}_NULL_VALUE" if s.is_optional and s.null_value is not None else None
        if isinstance(t, ir.EncodedType) and t.length != 1 and prim.is_char:
            enc = _python_codec(t.character_encoding or "ascii")
            out(f"_put_chars({p} + {s.prefix}_OFFSET, x, {s.prefix}_LENGTH, {_py_literal(enc)}, "
                f"{s.is_optional}, {path_expr})")
            return
        if isinstance(t, ir.EncodedType) and t.length != 1:
            out(f"seq = _sequence(x, {s.prefix}_LENGTH, {s.is_optional}, {path_expr})")
            out(f"for i in range({s.prefix}_LENGTH):")
            out.indent()
            conv = self.pyx_convert(s, "seq[i]", f"{path_expr} + f'[{{i}}]'")
            if null:
                out("if seq[i] is None:")
                out(f"    {setter}({p}, i, {null})")
                out("else:")
                out(f"    {setter}({p}, i, {conv})")
            else:
                out(f"{setter}({p}, i, {conv})")
            out.dedent()
            return
        out("if x is _MISSING or x is None:")
        if null:
            out(f"    {setter}({p}, {null})")
        elif s.is_optional and isinstance(t, ir.SetType):
            out(f"    {setter}({p}, 0)")
        else:
            out(f"    raise ValueError({path_expr} + \": required\")")
        out("else:")
        out(f"    {setter}({p}, {self.pyx_convert(s, 'x', path_expr)})")

    def pyx_convert(self, s: _Slot, x, path_expr):
        """Python expression converting the Python value `x` to what the setter takes."""
        t = s.type
        prim = s.primitive
        if isinstance(t, ir.EnumType):
            expr = f"_enum_value({x}, _E_{t.name}, {_py_literal(prim.null_value if prim.kind == 'int' else 0)}, " \
                   f"{_py_literal(255 if prim.is_char else (prim.max_value if prim.kind == 'int' else prim.null_value))}, {path_expr})"
            return f"<char><int>{expr}" if prim.is_char else expr
        if isinstance(t, ir.SetType):
            return f"_set_value({x}, _S_{t.name}, {prim.size * 8}, {path_expr})"
        if prim.is_char:
            return f"<char>_char_value({x}, {path_expr})"
        if prim.is_float:
            return f"_float_value({x}, {path_expr})"
        low = prim.null_value if prim.kind == "int" else 0
        high = prim.max_value if prim.kind == "int" else prim.null_value
        return f"_int_value({x}, {low}, {high}, {path_expr})"

    def pyx_decode_slot(self, out, s: _Slot, p, target):
        t = s.type
        prim = s.primitive
        if s.is_constant:
            if s.value_ref is not None:
                out(f"{target} = {s.value_ref.name!r}")
            else:
                out(f"{target} = {_py_literal(s.constant_value)}")
            return
        if isinstance(t, ir.CompositeType):
            out(f"{target} = _sbe_dec_comp_{t.name}({p} + {s.prefix}_OFFSET)")
            return
        null = f"{s.prefix}_NULL_VALUE" if s.is_optional and s.null_value is not None else None
        if isinstance(t, ir.EncodedType) and t.length != 1 and prim.is_char:
            enc = _python_codec(t.character_encoding or "ascii")
            out(f"{target} = _get_chars({p} + {s.prefix}_OFFSET, {s.prefix}_LENGTH, {_py_literal(enc)}, {s.is_optional})")
            return
        if isinstance(t, ir.EncodedType) and t.length != 1:
            value = self.pyx_value(s, f"{s.prefix}({p}, i)")
            out(f"seq = [{value} for i in range({s.prefix}_LENGTH)]")
            if null is None:
                out(f"{target} = seq")
            else:
                out(f"seq = [None if {self.null_test(s, 'e')} else e for e in seq]")
                out(f"{target} = None if all(e is None for e in seq) else seq")
            return
        out(f"x = {self.pyx_value(s, f'{s.prefix}({p})')}")
        if null is not None:
            out(f"{target} = None if {self.null_test(s, 'x')} else {self.pyx_python(s, 'x')}")
        else:
            out(f"{target} = {self.pyx_python(s, 'x')}")

    @staticmethod
    def pyx_value(s: _Slot, call):
        return f"<uint8_t>{call}" if s.primitive.is_char else call

    def null_test(self, s: _Slot, x):
        if s.primitive.is_float and isinstance(s.null_value, float) and math.isnan(s.null_value):
            return f"{x} != {x}"
        if s.primitive.is_char:
            return f"{x} == <uint8_t>{s.prefix}_NULL_VALUE"
        return f"{x} == {s.prefix}_NULL_VALUE"

    @staticmethod
    def pyx_python(s: _Slot, x):
        t = s.type
        if isinstance(t, ir.EnumType):
            return f"_EN_{t.name}.get({x}, {x})"
        if isinstance(t, ir.SetType):
            return f"_set_names({x}, _S_{t.name})"
        if s.primitive.is_char:
            return f"chr({x})"
        return x


def _python_codec(encoding):
    """Python codec name for an SBE characterEncoding (None stays None: raw bytes)."""
    if encoding is None:
        return None
    e = encoding.strip().lower().replace("_", "-")
    return {"us-ascii": "ascii", "ascii": "ascii", "utf-8": "utf-8", "utf8": "utf-8",
            "iso-8859-1": "latin-1", "latin-1": "latin-1", "latin1": "latin-1"}.get(e, e)


PYX_PRELUDE = r'''
from libc.stdint cimport int8_t, uint8_t, int16_t, uint16_t, int32_t, uint32_t, int64_t, uint64_t
from libc.string cimport memcpy, memchr
from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_SIMPLE
from cpython.bytearray cimport PyByteArray_AS_STRING

cdef object _MISSING = object()


cdef class _Writer:
    """Collects the encoded pieces; each piece is a zeroed bytearray written through the accessors."""
    cdef list parts

    def __cinit__(self):
        self.parts = []

    cdef uint8_t* block(self, Py_ssize_t n) except NULL:
        cdef bytearray b = bytearray(n + 1)  # one spare byte: never a zero-length buffer
        self.parts.append(b)
        return <uint8_t*>PyByteArray_AS_STRING(b)

    cdef bytes getvalue(self):
        return b"".join([memoryview(b)[:-1] for b in self.parts])


cdef class _Reader:
    """Bounds-checked cursor over the buffer being decoded."""
    cdef Py_buffer view
    cdef bint has_view
    cdef const uint8_t* base
    cdef Py_ssize_t pos, end

    def __cinit__(self, buffer):
        PyObject_GetBuffer(buffer, &self.view, PyBUF_SIMPLE)
        self.has_view = True
        self.base = <const uint8_t*>self.view.buf
        if self.base == NULL:
            self.base = <const uint8_t*>b""
        self.pos = 0
        self.end = self.view.len

    def __dealloc__(self):
        if self.has_view:
            PyBuffer_Release(&self.view)

    cdef const uint8_t* take(self, Py_ssize_t n, str what) except NULL:
        cdef const uint8_t* p
        if n < 0 or n > self.end - self.pos:
            raise ValueError(f"buffer too short: {what} needs {n} bytes at offset {self.pos}, "
                             f"{self.end - self.pos} left")
        p = self.base + self.pos
        self.pos += n
        return p


cdef object _int_value(object x, object low, object high, str path):
    try:
        v = x.__index__()
    except AttributeError:
        raise ValueError(f"{path}: expected an integer, got {x!r}") from None
    if not low <= v <= high:
        raise ValueError(f"{path}: {v} is out of range {low}..{high}")
    return v


cdef double _float_value(object x, str path) except? -1.0:
    try:
        return float(x)
    except (TypeError, ValueError):
        raise ValueError(f"{path}: expected a number, got {x!r}") from None


cdef int _char_value(object x, str path) except -1:
    if isinstance(x, str) and len(x) == 1 and ord(x) < 256:
        return ord(x)
    if isinstance(x, (bytes, bytearray)) and len(x) == 1:
        return x[0]
    if isinstance(x, int) and 0 <= x < 256:
        return x
    raise ValueError(f"{path}: expected one character, got {x!r}")


cdef object _enum_value(object x, dict names, object low, object high, str path):
    if isinstance(x, str):
        try:
            return names[x]
        except KeyError:
            raise ValueError(f"{path}: {x!r} is not one of {', '.join(names)}") from None
    return _int_value(x, low, high, path)


cdef object _set_value(object x, dict bits, int width, str path):
    if isinstance(x, str):
        x = (x,)
    if isinstance(x, int):
        return _int_value(x, 0, (1 << width) - 1, path)
    v = 0
    try:
        for name in x:
            v |= 1 << bits[name]
    except KeyError as exc:
        raise ValueError(f"{path}: {exc.args[0]!r} is not one of {', '.join(bits)}") from None
    except TypeError:
        raise ValueError(f"{path}: expected a list of choice names or an integer, got {x!r}") from None
    return v


cdef list _set_names(object v, dict bits):
    return [name for name, bit in bits.items() if (v >> bit) & 1]


cdef _sequence(object x, Py_ssize_t length, bint optional, str path):
    if x is _MISSING or x is None:
        if optional:
            return [None] * length
        raise ValueError(f"{path}: required")
    if isinstance(x, (str, bytes, dict)):
        raise ValueError(f"{path}: expected a sequence of {length} values")
    x = list(x)
    if len(x) != length:
        raise ValueError(f"{path}: expected {length} values, got {len(x)}")
    return x


cdef _put_chars(uint8_t* p, object x, Py_ssize_t length, str encoding, bint optional, str path):
    cdef bytes raw
    if x is _MISSING or x is None:
        if optional:
            return
        raise ValueError(f"{path}: required")
    if isinstance(x, str):
        try:
            raw = x.encode(encoding)
        except UnicodeEncodeError:
            raise ValueError(f"{path}: {x!r} cannot be encoded as {encoding}") from None
    elif isinstance(x, (bytes, bytearray, memoryview)):
        raw = bytes(x)
    else:
        raise ValueError(f"{path}: expected str or bytes, got {x!r}")
    if len(raw) > length:
        raise ValueError(f"{path}: {len(raw)} characters, at most {length}")
    if raw:
        memcpy(p, <const char*>raw, len(raw))


cdef object _get_chars(const uint8_t* p, Py_ssize_t length, str encoding, bint optional):
    cdef const void* nul = memchr(p, 0, length)
    cdef Py_ssize_t n = length if nul == NULL else <const uint8_t*>nul - p
    if optional and n == 0:
        return None
    return (<const char*>p)[:n].decode(encoding, "replace")


cdef bytes _data_bytes(object x, object encoding, str path):
    if x is _MISSING or x is None:
        return b""
    if isinstance(x, str):
        try:
            return x.encode(encoding or "utf-8")
        except UnicodeEncodeError:
            raise ValueError(f"{path}: {x!r} cannot be encoded as {encoding}") from None
    if isinstance(x, (bytes, bytearray, memoryview)):
        return bytes(x)
    raise ValueError(f"{path}: expected bytes or str, got {x!r}")


cdef object _data_value(const uint8_t* p, Py_ssize_t n, object encoding):
    cdef bytes raw = (<const char*>p)[:n]
    if encoding is None:
        return raw
    return raw.decode(encoding, "replace")

'''
