"""FIX SBE 1.0 message schema (XML) -> IR, with validation.

`parse_file(path)` / `parse_string(text)` return an `ir.Schema` or raise `SchemaError` listing every
problem found, each naming the element (`message 'Car' field 'x' (line 12): ...`). What the reference SBE
tool (real-logic/simple-binary-encoding) accepts with a warning is accepted here too, the warning kept in
`Schema.warnings` in the same form.
"""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from xml.parsers import expat

from . import ir
from .ir import CONSTANT, OPTIONAL, REQUIRED

NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
PRESENCES = (REQUIRED, OPTIONAL, CONSTANT)
DEFAULT_HEADER = "messageHeader"
DEFAULT_DIMENSION = "groupSizeEncoding"
HEADER_MEMBERS = ("blockLength", "templateId", "schemaId", "version")


class SchemaError(Exception):
    """The schema is invalid. `errors` lists every problem found, one string each."""

    def __init__(self, message, errors=None):
        super().__init__(message)
        self.errors = list(errors) if errors else [message]


class _Reported(Exception):
    """A referenced element is invalid and its error is already recorded: skip without a new one."""


def parse_file(path):
    with open(path, "rb") as f:
        data = f.read()
    return parse_string(data, source=str(path))


def parse_string(text, source="<schema>"):
    root, lines = _parse_xml(text, source)
    return _Parser(root, lines, source).parse()


def _local(tag):
    """The element name without its namespace prefix (`sbe:message` -> `message`)."""
    return tag.rsplit(":", 1)[-1] if isinstance(tag, str) else ""


def _parse_xml(text, source):
    """Parse with expat so that every element's line number is known (for error messages)."""
    lines = {}
    builder = ET.TreeBuilder()
    parser = expat.ParserCreate()

    def start(tag, attrs):
        element = builder.start(tag, attrs)
        lines[id(element)] = parser.CurrentLineNumber

    parser.StartElementHandler = start
    parser.EndElementHandler = builder.end
    parser.CharacterDataHandler = builder.data
    try:
        parser.Parse(text, True)
    except expat.ExpatError as exc:
        raise SchemaError(f"{source}: not well-formed XML: {exc}") from None
    return builder.close(), lines


class _Parser:
    def __init__(self, root, lines, source):
        self.root = root
        self.lines = lines
        self.source = source
        self.errors = []
        self.warnings = []
        self.elements = {}  # type name -> XML element (top-level and nested enum/set/composite)
        self.types = {}  # type name -> resolved IR type
        self.failed = set()
        self.resolving = []
        self.version = 0

    # ---- helpers -------------------------------------------------------------------------------

    def where(self, element, what):
        line = self.lines.get(id(element))
        return f"{what} (line {line})" if line else what

    def fail(self, element, what, problem):
        raise SchemaError(f"{self.where(element, what)}: {problem}")

    def warn(self, element, what, problem):
        text = f"{self.where(element, what)}: {problem}"
        if text not in self.warnings:
            self.warnings.append(text)

    def record(self, exc):
        for e in exc.errors:
            if e not in self.errors:
                self.errors.append(e)

    def name_of(self, element, kind, context=""):
        prefix = f"{context} " if context else ""
        name = element.get("name")
        if name is None:
            self.fail(element, f"{prefix}<{kind}>", "missing the 'name' attribute")
        if not NAME_RE.match(name):
            self.fail(element, f"{prefix}{kind} {name!r}",
                      "invalid name: use letters, digits and '_', not starting with a digit")
        return name

    def int_attr(self, element, what, attr, default=None, required=False, minimum=None):
        text = element.get(attr)
        if text is None:
            if required:
                self.fail(element, what, f"missing the {attr!r} attribute")
            return default
        try:
            value = int(text.strip(), 0) if text.strip().lower().startswith("0x") else int(text.strip())
        except ValueError:
            self.fail(element, what, f"{attr}={text!r} is not an integer")
        if minimum is not None and value < minimum:
            self.fail(element, what, f"{attr}={value} is less than {minimum}")
        return value

    def since_version(self, element, what):
        v = self.int_attr(element, what, "sinceVersion", 0, minimum=0)
        if v > self.version:
            self.fail(element, what, f"sinceVersion={v} is greater than the schema version {self.version}")
        return v

    def common(self, element, what):
        return dict(
            since_version=self.since_version(element, what),
            deprecated=self.int_attr(element, what, "deprecated", None, minimum=0),
            semantic_type=element.get("semanticType"),
            description=element.get("description"),
        )

    def parse_value(self, element, what, primitive, text, attr):
        """A literal of a primitive type (nullValue, minValue, maxValue, a constant)."""
        text = text.strip()
        if primitive.is_char:
            if len(text) == 1:
                return ord(text)
            try:
                return int(text)
            except ValueError:
                self.fail(element, what, f"{attr} {text!r} is not a single character")
        try:
            if primitive.is_float:
                return float(text)
            return int(text)
        except ValueError:
            self.fail(element, what, f"{attr} {text!r} is not a valid {primitive.name}")

    def check_range(self, element, what, primitive, value, attr):
        if primitive.is_float:
            return
        if primitive.kind == "int":
            low, high = primitive.null_value, primitive.max_value
        elif primitive.kind == "uint":
            low, high = 0, primitive.null_value
        else:
            low, high = 0, 255
        if not low <= value <= high:
            self.fail(element, what, f"{attr} {value} does not fit in {primitive.name}")

    # ---- schema --------------------------------------------------------------------------------

    def parse(self):
        root = self.root
        if _local(root.tag) != "messageSchema":
            raise SchemaError(f"{self.source}: the root element is <{_local(root.tag)}>, not <messageSchema>")
        try:
            schema_id = self.int_attr(root, "messageSchema", "id", required=True, minimum=0)
            self.version = self.int_attr(root, "messageSchema", "version", 0, minimum=0)
            byte_order = root.get("byteOrder", ir.LITTLE_ENDIAN)
            if byte_order not in (ir.LITTLE_ENDIAN, ir.BIG_ENDIAN):
                self.fail(root, "messageSchema", f"byteOrder {byte_order!r} is neither 'littleEndian' nor 'bigEndian'")
        except SchemaError as exc:
            raise SchemaError(f"{self.source}: {exc}") from None

        self.collect_types()
        for name in list(self.elements):
            try:
                self.resolve(name, None, "")
            except SchemaError as exc:
                self.record(exc)
            except _Reported:
                pass

        header = None
        header_name = root.get("headerType", DEFAULT_HEADER)
        try:
            header = self.header(header_name, schema_id)
        except SchemaError as exc:
            self.record(exc)
        except _Reported:
            pass

        messages = []
        ids, names = {}, {}
        for element in root:
            if _local(element.tag) != "message":
                continue
            try:
                message = self.message(element, header)
            except SchemaError as exc:
                self.record(exc)
                continue
            if message is None:
                continue
            what = self.where(element, f"message {message.name!r}")
            if message.name in names:
                self.errors.append(f"{what}: duplicate message name (also at line {names[message.name]})")
            elif message.id in ids:
                self.errors.append(f"{what}: duplicate message id {message.id} (also used by message {ids[message.id]!r})")
            else:
                names[message.name] = self.lines.get(id(element))
                ids[message.id] = message.name
                messages.append(message)

        if self.errors:
            count = len(self.errors)
            summary = f"{self.source}: {count} schema error{'s' if count > 1 else ''}:\n  " + "\n  ".join(self.errors)
            raise SchemaError(summary, self.errors)
        return ir.Schema(
            package=root.get("package", ""),
            id=schema_id,
            version=self.version,
            byte_order=byte_order,
            header=header,
            types=dict(self.types),
            messages=messages,
            semantic_version=root.get("semanticVersion"),
            description=root.get("description"),
            warnings=list(self.warnings),
        )

    def header(self, name, schema_id):
        if name not in self.elements:
            raise SchemaError(f"messageSchema: no header composite {name!r} in <types>")
        header = self.resolve(name, None, "")
        element = self.elements[name]
        what = f"header composite {name!r}"
        if not isinstance(header, ir.CompositeType):
            self.fail(element, what, "is not a composite")
        for member_name in HEADER_MEMBERS:
            self.check_unsigned_member(element, what, header, member_name, ("uint16",))
        limit = header.member("schemaId").type.primitive.max_value
        if schema_id > limit:
            self.fail(self.root, "messageSchema", f"id {schema_id} does not fit in the header's schemaId")
        if self.version > header.member("version").type.primitive.max_value:
            self.fail(self.root, "messageSchema", f"version {self.version} does not fit in the header's version")
        return header

    def check_unsigned_member(self, element, what, composite, member_name, usual=(), signed_ok=False):
        """A header or group dimension member: one unsigned integer (the reference tool warns, not fails,
        when it is not one of the `usual` types, and for a signed numInGroup that cannot be negative)."""
        member = composite.member(member_name)
        if member is None:
            self.fail(element, what, f"has no member {member_name!r}")
        t = member.type
        definition = self.elements.get(composite.name, element)  # warn once, at the composite
        if not (isinstance(t, ir.EncodedType) and t.primitive.kind in ("uint", "int") and t.length == 1
                and t.presence != CONSTANT):
            self.fail(element, what, f"member {member_name!r} must be a single unsigned integer type")
        if t.primitive.kind == "int":
            if not signed_ok:
                self.fail(element, what, f"member {member_name!r} must be a single unsigned integer type")
            if t.min_value is None or t.min_value < 0:
                self.fail(element, what, f"member {member_name!r} is signed: it needs a minValue of 0 or more")
            self.warn(definition, f"composite {composite.name!r}", f"member {member_name!r} should be an unsigned integer type")
        elif usual and t.primitive.name not in usual:
            self.warn(definition, f"composite {composite.name!r}",
                      f"member {member_name!r} should be {' or '.join(usual)}, not {t.primitive.name}")
        return member

    # ---- types ---------------------------------------------------------------------------------

    def collect_types(self):
        for types in self.root:
            if _local(types.tag) != "types":
                continue
            for element in types:
                kind = _local(element.tag)
                if kind not in ("type", "composite", "enum", "set"):
                    if kind:
                        self.record(SchemaError(f"{self.where(element, f'<{kind}>')}: unknown element in <types>"))
                    continue
                self.register(element, kind)

    def register(self, element, kind):
        try:
            name = self.name_of(element, kind)
        except SchemaError as exc:
            self.record(exc)
            return
        if name in ir.PRIMITIVES:
            self.record(SchemaError(f"{self.where(element, f'{kind} {name!r}')}: the name of a primitive type"))
            return
        if name in self.elements:
            line = self.lines.get(id(self.elements[name]))
            self.record(SchemaError(f"{self.where(element, f'{kind} {name!r}')}: duplicate type name (also at line {line})"))
            return
        self.elements[name] = element
        if kind == "composite":
            for child in element:
                child_kind = _local(child.tag)
                if child_kind in ("composite", "enum", "set"):
                    self.register(child, child_kind)

    def resolve(self, name, element, what):
        """The IR type called `name` (a primitive name gives a fresh EncodedType)."""
        if name in self.types:
            return self.types[name]
        if name in self.failed:
            raise _Reported()
        if name not in self.elements:
            if name in ir.PRIMITIVES:
                return ir.EncodedType(name=name, primitive=ir.PRIMITIVES[name])
            self.fail(element, what, f"unknown type {name!r}")
        if name in self.resolving:
            self.fail(element, what, f"type {name!r} refers to itself ({' -> '.join(self.resolving + [name])})")
        definition = self.elements[name]
        kind = _local(definition.tag)
        self.resolving.append(name)
        try:
            built = getattr(self, "build_" + kind)(definition, name)
        except SchemaError:
            self.failed.add(name)
            raise
        except _Reported:
            self.failed.add(name)
            raise
        finally:
            self.resolving.pop()
        self.types[name] = built
        return built

    def build_type(self, element, name, what=None):
        what = what or f"type {name!r}"
        primitive_name = element.get("primitiveType")
        if primitive_name is None:
            self.fail(element, what, "missing the 'primitiveType' attribute")
        primitive = ir.PRIMITIVES.get(primitive_name)
        if primitive is None:
            self.fail(element, what, f"unknown primitiveType {primitive_name!r}")
        presence = element.get("presence", REQUIRED)
        if presence not in PRESENCES:
            self.fail(element, what, f"presence {presence!r} is not one of {', '.join(PRESENCES)}")
        length = self.int_attr(element, what, "length", 1, minimum=0)
        t = ir.EncodedType(name=name, primitive=primitive, length=length, presence=presence,
                           character_encoding=element.get("characterEncoding"), **self.common(element, what))
        for attr in ("nullValue", "minValue", "maxValue"):
            text = element.get(attr)
            if text is not None:
                value = self.parse_value(element, what, primitive, text, attr)
                self.check_range(element, what, primitive, value, attr)
                setattr(t, {"nullValue": "null_value", "minValue": "min_value", "maxValue": "max_value"}[attr], value)
        if presence == CONSTANT:
            text = (element.text or "").strip()
            if not text:
                self.fail(element, what, "a constant type needs a value (the element's text)")
            if primitive.is_char:
                if length > 1 and len(text) > length:
                    self.fail(element, what, f"constant {text!r} is longer than length {length}")
                t.constant_value = text
                t.length = max(length, len(text))
            else:
                value = self.parse_value(element, what, primitive, text, "constant value")
                self.check_range(element, what, primitive, value, "constant value")
                t.constant_value = value
        elif element.text and element.text.strip():
            self.fail(element, what, "has a value but presence is not 'constant'")
        if presence == OPTIONAL and t.null_value is not None and (t.min_value is not None or t.max_value is not None):
            low = primitive.min_value if t.min_value is None else t.min_value
            high = primitive.max_value if t.max_value is None else t.max_value
            if low <= t.null_value <= high:
                self.fail(element, what, f"nullValue {t.null_value} lies inside the valid range {low}..{high}")
        return t

    def encoding_of(self, element, what, allowed):
        """An enum's or set's encodingType: a primitive name or a `<type>` of one. -> (primitive, type or None)"""
        encoding_name = element.get("encodingType")
        if encoding_name is None:
            self.fail(element, what, "missing the 'encodingType' attribute")
        if encoding_name in ir.PRIMITIVES and encoding_name not in self.elements:
            primitive, encoded = ir.PRIMITIVES[encoding_name], None
        else:
            encoded = self.resolve(encoding_name, element, what)
            if not isinstance(encoded, ir.EncodedType) or encoded.length != 1 or encoded.presence == CONSTANT:
                self.fail(element, what, f"encodingType {encoding_name!r} is not a single primitive type")
            primitive = encoded.primitive
        if primitive.name not in allowed:
            self.fail(element, what, f"encodingType {primitive.name} is not allowed here (use {', '.join(allowed)})")
        return primitive, encoded

    def build_enum(self, element, name):
        what = f"enum {name!r}"
        primitive, encoded = self.encoding_of(
            element, what, ("char", "uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64"))
        presence = element.get("presence", REQUIRED)
        if presence not in (REQUIRED, OPTIONAL):
            self.fail(element, what, f"presence {presence!r} is not 'required' or 'optional'")
        null_value = None
        if element.get("nullValue") is not None:
            null_value = self.parse_value(element, what, primitive, element.get("nullValue"), "nullValue")
        elif encoded is not None and encoded.null_value is not None:
            null_value = encoded.null_value
        effective_null = primitive.null_value if null_value is None else null_value
        low, high = (0, 255) if primitive.is_char else (primitive.min_value, primitive.max_value)
        if encoded is not None:
            low = low if encoded.min_value is None else encoded.min_value
            high = high if encoded.max_value is None else encoded.max_value
        values, seen = [], {}
        for child in element:
            if _local(child.tag) != "validValue":
                if _local(child.tag):
                    self.fail(child, what, f"unexpected <{_local(child.tag)}> in an enum")
                continue
            value_name = self.name_of(child, "value", what)
            value_what = f"{what} value {value_name!r}"
            text = (child.text or "").strip()
            if not text:
                self.fail(child, value_what, "has no value")
            if primitive.is_char:
                if len(text) != 1:
                    self.fail(child, value_what, f"{text!r} is not a single character")
                value = ord(text)
            else:
                try:
                    value = int(text)
                except ValueError:
                    self.fail(child, value_what, f"{text!r} is not an integer")
            if value == effective_null:
                self.fail(child, value_what, f"{text} is the enum's null value")
            if not low <= value <= high:
                self.fail(child, value_what, f"{text} is outside the encoding's range {low}..{high}")
            if value_name in seen:
                self.fail(child, value_what, "duplicate value name")
            if value in seen.values():
                other = next(n for n, v in seen.items() if v == value)
                self.warn(child, value_what, f"duplicate value {text} (also value {other!r}): "
                                             f"decoders name it {other!r}")
            seen[value_name] = value
            values.append(ir.EnumValue(value_name, value, **_pick(self.common(child, value_what), "since_version", "deprecated", "description")))
        if not values:
            self.fail(element, what, "has no <validValue>")
        return ir.EnumType(name=name, encoding=primitive, values=values, presence=presence, null_value=null_value,
                           **self.common(element, what))

    def build_set(self, element, name):
        what = f"set {name!r}"
        primitive, _ = self.encoding_of(element, what, ("uint8", "uint16", "uint32", "uint64"))
        choices, seen = [], {}
        for child in element:
            if _local(child.tag) != "choice":
                if _local(child.tag):
                    self.fail(child, what, f"unexpected <{_local(child.tag)}> in a set")
                continue
            choice_name = self.name_of(child, "choice", what)
            choice_what = f"{what} choice {choice_name!r}"
            try:
                bit = int((child.text or "").strip())
            except ValueError:
                self.fail(child, choice_what, f"bit position {child.text!r} is not an integer")
            if not 0 <= bit < primitive.size * 8:
                self.fail(child, choice_what, f"bit position {bit} is outside 0..{primitive.size * 8 - 1}")
            if choice_name in seen:
                self.fail(child, choice_what, "duplicate choice name")
            if bit in seen.values():
                self.fail(child, choice_what, f"duplicate bit position {bit}")
            seen[choice_name] = bit
            choices.append(ir.Choice(choice_name, bit, **_pick(self.common(child, choice_what), "since_version", "deprecated", "description")))
        return ir.SetType(name=name, encoding=primitive, choices=choices, **self.common(element, what))

    def build_composite(self, element, name):
        what = f"composite {name!r}"
        members, position = [], 0
        for child in element:
            kind = _local(child.tag)
            if not kind:
                continue
            if kind not in ("type", "enum", "set", "composite", "ref"):
                self.fail(child, what, f"a composite cannot contain <{kind}>")
            member_name = self.name_of(child, "member", what)
            member_what = f"{what} member {member_name!r}"
            if any(m.name == member_name for m in members):
                self.fail(child, member_what, "duplicate member name")
            if kind == "type":
                t = self.build_type(child, member_name, member_what)
            elif kind == "ref":
                ref = child.get("type")
                if ref is None:
                    self.fail(child, member_what, "missing the 'type' attribute")
                t = self.resolve(ref, child, member_what)
            else:
                t = self.resolve(member_name, child, member_what)
            offset = self.int_attr(child, member_what, "offset", None, minimum=0)
            if offset is None:
                offset = position
            elif offset < position:
                self.fail(child, member_what, f"offset {offset} overlaps the previous member (which ends at {position})")
            if isinstance(t, ir.EncodedType) and t.length == 0 and member_name != "varData":
                self.fail(child, member_what, "length 0 is only allowed for the varData member of a var-data composite")
            members.append(ir.Member(member_name, t, offset))
            position = offset + t.encoded_length
        if not members:
            self.fail(element, what, "has no members")
        return ir.CompositeType(name=name, members=members, encoded_length=position, **self.common(element, what))

    # ---- messages ------------------------------------------------------------------------------

    def message(self, element, header):
        name = self.name_of(element, "message")
        what = f"message {name!r}"
        template_id = self.int_attr(element, what, "id", required=True, minimum=0)
        if header is not None and template_id > header.member("templateId").type.primitive.max_value:
            self.fail(element, what, f"id {template_id} does not fit in the header's templateId")
        message = ir.Message(name=name, id=template_id, block_length=0, **self.common(element, what))
        errors_before = len(self.errors)
        self.container(element, what, message)
        if len(self.errors) > errors_before:
            return None
        return message

    def container(self, element, what, node):
        """Fill a message or group with its fields, groups and var-data, in schema order.

        As in the reference tool, offsets follow the declared order and explicit `offset`s whatever the
        sinceVersions, and a constant field may stand anywhere (it takes no space; an explicit offset on
        it moves the next field). Layouts that only a later version can have made are warnings.
        """
        position, names, ids, stage = 0, set(), {}, "field"
        order = {"field": 0, "group": 1, "data": 2}
        newest_field = None  # (sinceVersion, name) of the newest field the running position depends on
        newest_tail = None  # (sinceVersion, kind, name) of the newest group or var-data so far
        for child in element:
            kind = _local(child.tag)
            if not kind:
                continue
            if kind not in order:
                self.record(SchemaError(f"{self.where(child, what)}: unexpected <{kind}>"))
                continue
            try:
                child_name = self.name_of(child, kind, what)
                child_what = f"{what} {kind} {child_name!r}"
                if order[kind] < order[stage]:
                    self.fail(child, child_what, f"a {kind} must come before every {'group' if stage == 'group' else 'var-data field'}")
                stage = kind
                if child_name in names:
                    self.fail(child, child_what, "duplicate name")
                names.add(child_name)
                if kind == "field":
                    item, explicit = self.field(child, child_name, child_what, position, node.since_version)
                    position = item.offset + item.encoded_length
                    node.fields.append(item)
                    if explicit:
                        newest_field = None
                    if item.encoded_length:
                        if newest_field is not None and item.since_version < newest_field[0]:
                            self.warn(child, child_what,
                                      f"sinceVersion={item.since_version} is lower than that of field "
                                      f"{newest_field[1]!r} ({newest_field[0]}) before it, and it has no offset: "
                                      f"messages of version {item.since_version} may hold it elsewhere")
                        if newest_field is None or item.since_version > newest_field[0]:
                            newest_field = (item.since_version, child_name)
                else:
                    if kind == "group":
                        item = self.group(child, child_name, child_what, node.since_version)
                        node.groups.append(item)
                    else:
                        item = self.data(child, child_name, child_what)
                        item.since_version = max(item.since_version, node.since_version)
                        node.data.append(item)
                    if newest_tail is not None and item.since_version < newest_tail[0]:
                        v, other_kind, other = newest_tail
                        self.warn(child, child_what,
                                  f"sinceVersion={item.since_version} is lower than that of {other_kind} {other!r} "
                                  f"({v}) before it: a decoder older than version {v} reads the bytes of "
                                  f"{other!r} as {child_name!r}")
                    if newest_tail is None or item.since_version > newest_tail[0]:
                        newest_tail = (item.since_version, kind, child_name)
                if item.id in ids:
                    self.fail(child, child_what, f"duplicate id {item.id} (also used by {ids[item.id]!r})")
                ids[item.id] = child_name
            except SchemaError as exc:
                self.record(exc)
            except _Reported:
                pass
        declared = self.int_attr(element, what, "blockLength", None, minimum=0)
        if declared is not None and declared < position:
            self.record(SchemaError(f"{self.where(element, what)}: blockLength {declared} is less than the fields' length {position}"))
        node.block_length = position if declared is None else max(declared, position)

    def field(self, element, name, what, position, parent_since):
        """-> (Field, whether its offset was given). `position`: where the previous field ends."""
        field_id = self.int_attr(element, what, "id", required=True, minimum=0)
        type_name = element.get("type")
        if type_name is None:
            self.fail(element, what, "missing the 'type' attribute")
        t = self.resolve(type_name, element, what)
        presence = element.get("presence")
        if presence is not None and presence not in PRESENCES:
            self.fail(element, what, f"presence {presence!r} is not one of {', '.join(PRESENCES)}")
        type_presence = getattr(t, "presence", REQUIRED)
        if type_presence == CONSTANT:
            presence = CONSTANT
        presence = presence or type_presence
        common = self.common(element, what)
        common["since_version"] = max(common["since_version"], getattr(t, "since_version", 0), parent_since)
        offset = self.int_attr(element, what, "offset", None, minimum=0)
        if offset is not None and offset < position:
            if offset != 0:
                self.fail(element, what, f"offset {offset} overlaps the previous field (which ends at {position})")
            # the reference tool reads offset="0" as no offset at all
            self.warn(element, what, f"offset 0 would overlap the previous field: taken as no offset, "
                                     f"the field is at {position}")
            offset = None
        f = ir.Field(name=name, id=field_id, type=t, offset=position if offset is None else offset,
                     presence=presence, **common)
        explicit = offset is not None
        value_ref = element.get("valueRef")
        if value_ref is not None and presence != CONSTANT:
            self.fail(element, what, "valueRef is only allowed with presence='constant'")
        if presence == CONSTANT:
            if value_ref is not None:
                enum_name, _, value_name = value_ref.partition(".")
                enum = self.types.get(enum_name) if enum_name in self.elements else None
                if enum is None and enum_name in self.elements:
                    enum = self.resolve(enum_name, element, what)
                if not isinstance(enum, ir.EnumType):
                    self.fail(element, what, f"valueRef {value_ref!r} does not name an enum value")
                ev = enum.value(value_name)
                if ev is None:
                    self.fail(element, what, f"valueRef {value_ref!r}: enum {enum_name!r} has no value {value_name!r}")
                if isinstance(t, ir.EnumType) and t is not enum:
                    self.fail(element, what, f"valueRef {value_ref!r} is not a value of the field's type {t.name!r}")
                if not isinstance(t, (ir.EnumType, ir.EncodedType)):
                    self.fail(element, what, "a constant field must be of an enum or primitive type")
                f.value_ref = ev
                f.constant_value = ev.value
            elif isinstance(t, ir.EncodedType) and t.presence == CONSTANT:
                f.constant_value = t.constant_value
            else:
                text = (element.text or "").strip()
                if not text or not isinstance(t, ir.EncodedType):
                    self.fail(element, what, "a constant field needs a valueRef or a constant type")
                f.constant_value = text if t.primitive.is_char else self.parse_value(element, what, t.primitive, text, "constant value")
            return f, explicit
        if isinstance(t, ir.EncodedType) and t.length == 0:
            self.fail(element, what, "a field cannot have a variable-length type; use <data>")
        if presence == OPTIONAL and isinstance(t, (ir.EncodedType, ir.EnumType)):
            f.null_value = t.effective_null  # an optional set has no null value: left out, it has no choice set
        return f, explicit

    def group(self, element, name, what, parent_since):
        group_id = self.int_attr(element, what, "id", required=True, minimum=0)
        dimension_name = element.get("dimensionType", DEFAULT_DIMENSION)
        if dimension_name not in self.elements:
            self.fail(element, what, f"dimensionType {dimension_name!r} is not defined")
        dimension = self.resolve(dimension_name, element, what)
        dimension_what = f"{what} dimensionType {dimension_name!r}"
        if not isinstance(dimension, ir.CompositeType):
            self.fail(element, dimension_what, "is not a composite")
        self.check_unsigned_member(element, dimension_what, dimension, "blockLength", ("uint8", "uint16"))
        self.check_unsigned_member(element, dimension_what, dimension, "numInGroup", ("uint8", "uint16"),
                                   signed_ok=True)
        group = ir.Group(name=name, id=group_id, dimension=dimension, block_length=0, **self.common(element, what))
        group.since_version = max(group.since_version, parent_since)
        errors_before = len(self.errors)
        self.container(element, what, group)
        if len(self.errors) > errors_before:
            raise _Reported()
        if group.block_length > dimension.member("blockLength").type.primitive.max_value:
            self.fail(element, what, f"block length {group.block_length} does not fit in the dimension's blockLength")
        return group

    def data(self, element, name, what):
        data_id = self.int_attr(element, what, "id", required=True, minimum=0)
        type_name = element.get("type")
        if type_name is None:
            self.fail(element, what, "missing the 'type' attribute")
        t = self.resolve(type_name, element, what)
        if not isinstance(t, ir.CompositeType):
            self.fail(element, what, f"type {type_name!r} is not a composite of 'length' and 'varData'")
        length = t.member("length")
        var_data = t.member("varData")
        if length is None or var_data is None:
            self.fail(element, what, f"type {type_name!r} needs the members 'length' and 'varData'")
        lt = length.type
        if not (isinstance(lt, ir.EncodedType) and lt.primitive.kind == "uint" and lt.length == 1
                and lt.presence != CONSTANT):
            self.fail(element, what, f"member 'length' of {type_name!r} must be an unsigned integer")
        if lt.primitive.name not in ("uint8", "uint16", "uint32"):
            self.warn(self.elements.get(type_name, element), f"composite {type_name!r}",
                      f"member 'length' should be uint8, uint16 or uint32, not {lt.primitive.name}")
        vt = var_data.type
        if not (isinstance(vt, ir.EncodedType) and vt.primitive.name in ("char", "uint8", "int8")):
            self.fail(element, what, f"member 'varData' of {type_name!r} must be of char or uint8")
        if var_data is not t.members[-1] or var_data.offset < length.offset + lt.encoded_length:
            self.fail(element, what, f"member 'varData' of {type_name!r} must come after 'length', last")
        return ir.Data(name=name, id=data_id, type=t, length=length, var_data=var_data, **self.common(element, what))


def _pick(d, *keys):
    return {k: d[k] for k in keys}


