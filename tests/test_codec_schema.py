"""The SBE schema parser on its own: XML -> IR (layouts, types, versions) and schema errors."""
import math
import re

import pytest

from codec_build import DATA, SCHEMAS, codegen

gen = codegen()
ir = gen.ir
SchemaError = gen.SchemaError


def parse(name):
    return gen.parse_file(DATA / name)


def offsets(node):
    return {f.name: f.offset for f in node.fields}


def schema_text(types="", messages="", version=0, extra_attrs=""):
    """A small schema with the standard header and group dimension."""
    return f"""<?xml version="1.0"?>
<sbe:messageSchema xmlns:sbe="http://fixprotocol.io/2016/sbe" package="t" id="7" version="{version}" {extra_attrs}>
  <types>
    <composite name="messageHeader">
      <type name="blockLength" primitiveType="uint16"/>
      <type name="templateId" primitiveType="uint16"/>
      <type name="schemaId" primitiveType="uint16"/>
      <type name="version" primitiveType="uint16"/>
    </composite>
    <composite name="groupSizeEncoding">
      <type name="blockLength" primitiveType="uint16"/>
      <type name="numInGroup" primitiveType="uint16"/>
    </composite>
    <composite name="varData">
      <type name="length" primitiveType="uint16"/>
      <type name="varData" primitiveType="uint8" length="0"/>
    </composite>
    {types}
  </types>
  {messages}
</sbe:messageSchema>"""


def errors_of(text):
    with pytest.raises(SchemaError) as info:
        gen.parse_string(text)
    return info.value.errors


# ---- valid schemas: layout ------------------------------------------------------------------------

def test_example_schema_car_layout():
    s = parse("example-schema.xml")
    assert (s.package, s.id, s.version, s.byte_order) == ("baseline", 1, 0, "littleEndian")
    assert s.header.name == "messageHeader" and s.header.encoded_length == 8
    car = s.message("Car")
    assert (car.id, car.block_length) == (1, 49)
    assert offsets(car) == {"serialNumber": 0, "modelYear": 8, "available": 10, "code": 11, "someNumbers": 12,
                            "vehicleCode": 32, "extras": 38, "discountedModel": 39, "engine": 39}
    assert [f.encoded_length for f in car.fields] == [8, 2, 1, 1, 20, 6, 1, 0, 10]
    disc = car.fields[7]
    assert disc.presence == "constant" and disc.value_ref.name == "C" and disc.constant_value == ord("C")
    engine = s.types["Engine"]
    assert engine.encoded_length == 10
    assert [(m.name, m.offset, m.encoded_length) for m in engine.members] == [
        ("capacity", 0, 2), ("numCylinders", 2, 1), ("maxRpm", 3, 0), ("manufacturerCode", 3, 3),
        ("fuel", 6, 0), ("efficiency", 6, 1), ("boosterEnabled", 7, 1), ("booster", 8, 2)]
    assert engine.member("maxRpm").type.constant_value == 9000
    assert engine.member("fuel").type.constant_value == "Petrol"
    assert engine.member("booster").type is s.types["Booster"]
    assert s.types["BoostType"].encoding.name == "char"  # declared inside Booster, named like any type
    assert [(v.name, v.value) for v in s.types["Model"].values] == [("A", 65), ("B", 66), ("C", 67)]
    assert [(c.name, c.bit) for c in s.types["OptionalExtras"].choices] == [
        ("sunRoof", 0), ("sportsPack", 1), ("cruiseControl", 2)]
    fuel, perf = car.groups
    assert (fuel.name, fuel.id, fuel.block_length, fuel.dimension.name) == ("fuelFigures", 10, 6, "groupSizeEncoding")
    assert offsets(fuel) == {"speed": 0, "mpg": 2}
    assert [d.name for d in fuel.data] == ["usageDescription"]
    assert perf.block_length == 1 and perf.groups[0].name == "acceleration" and perf.groups[0].block_length == 6
    assert [(d.name, d.header_length, d.is_text, d.max_length) for d in car.data] == [
        ("manufacturer", 4, True, 1073741824), ("model", 4, True, 1073741824), ("activationCode", 4, True, 1073741824)]


def test_explicit_offsets_and_block_length():
    s = parse("basic-types-schema.xml")
    assert s.version == 0  # no version attribute
    plain, with_offsets = s.messages
    assert plain.block_length == 41
    assert offsets(with_offsets) == {"header": 0, "EDTField": 8, "ENUMField": 32, "SETField": 128, "int64Field": 136}
    assert with_offsets.block_length == 144
    edt = with_offsets.fields[1].type
    assert edt.is_char_array and edt.length == 20
    assert s.types["SET"].encoding.name == "uint32"
    nested = parse("nested-group-schema.xml").message("Top")
    assert nested.block_length == 16  # declared blockLength pads the single uint8
    x = nested.groups[0]
    assert x.dimension.encoded_length == 2 and x.groups[0].groups[0].name == "z"
    data = parse("group-with-data-schema.xml").message("TestMessage3")
    assert data.block_length == 16
    assert data.groups[0].block_length == 9 and data.groups[0].groups[0].block_length == 8
    assert [d.name for d in data.groups[0].data] == ["varDataField"]


def test_nested_composite_and_inline_enum_set():
    s = parse("composite-elements-schema.xml")
    outer = s.types["outer"]
    assert [(m.name, m.offset) for m in outer.members] == [("enumOne", 0), ("zeroth", 1), ("setOne", 2), ("inner", 6)]
    assert outer.encoded_length == 22 and s.types["inner"].encoded_length == 16
    assert isinstance(s.types["enumOne"], ir.EnumType) and isinstance(s.types["setOne"], ir.SetType)


def test_encoding_types_named_by_a_type():
    s = parse("encoding-types-schema.xml")
    assert s.types["EChar"].encoding.name == "char"
    assert [(v.name, v.value) for v in s.types["EChar"].values] == [("ValueA", 65), ("ValueB", 66)]
    assert {n: s.types[n].encoding.name for n in ("SUInt8", "SUInt16", "SUInt32", "SUInt64")} == {
        "SUInt8": "uint8", "SUInt16": "uint16", "SUInt32": "uint32", "SUInt64": "uint64"}
    assert s.messages[0].block_length == 8 + 1 + 1 + 1 + 2 + 4 + 8


def test_constants_in_messages_groups_and_composites():
    s = parse("group-with-constant-fields.xml")
    m = s.message("ConstantsGalore")
    by_name = {f.name: f for f in m.fields}
    assert {n: by_name[n].presence for n in "abcde"} == {
        "a": "required", "b": "constant", "c": "constant", "d": "constant", "e": "required"}
    assert by_name["b"].constant_value == 9000 and by_name["d"].constant_value == 9000
    assert by_name["c"].value_ref.name == "C"
    assert m.block_length == 2
    f = m.groups[0]
    assert f.block_length == 2
    assert {x.name: x.constant_value for x in f.fields if x.presence == "constant"} == {
        "i": 9000, "j": 9000, "k": ord("C"), "l": "Huzzah"}
    comp = s.types["CompositeWithConst"]
    assert comp.encoded_length == 1 and comp.member("x").type.constant_value == 250


def test_extension_schema_since_versions_and_optional_nulls():
    s = parse("example-extension-schema.xml")
    car = s.message("Car")
    assert s.version == 2 and car.block_length == 62
    fields = {f.name: f for f in car.fields}
    uuid, cup = fields["uuid"], fields["cupHolderCount"]
    assert (uuid.since_version, uuid.offset, uuid.presence, uuid.type.length) == (1, 45, "optional", 2)
    assert uuid.null_value == -(2 ** 63)
    assert (cup.since_version, cup.offset, cup.null_value) == (1, 61, 255)
    assert [(f.name, f.since_version) for f in car.groups[0].fields] == [("speed", 0), ("mpg", 2)]


def test_big_endian_and_header_type():
    assert parse("example-bigendian-test-schema.xml").byte_order == "bigEndian"
    text = schema_text(
        types='<composite name="hdr"><type name="blockLength" primitiveType="uint8"/>'
              '<type name="templateId" primitiveType="uint8"/><type name="schemaId" primitiveType="uint8"/>'
              '<type name="version" primitiveType="uint8"/></composite>',
        messages='<sbe:message name="M" id="1"><field name="a" id="1" type="int32"/></sbe:message>',
        extra_attrs='headerType="hdr" byteOrder="bigEndian"')
    s = gen.parse_string(text)
    assert s.header.name == "hdr" and s.header.encoded_length == 4 and s.big_endian


def test_spec_null_values_per_primitive():
    fields = "".join(f'<field name="f_{p}" id="{i}" type="{p}" presence="optional"/>'
                     for i, p in enumerate(ir.PRIMITIVES, 1))
    s = gen.parse_string(schema_text(messages=f'<sbe:message name="M" id="1">{fields}</sbe:message>'))
    nulls = {f.type.primitive.name: f.null_value for f in s.messages[0].fields}
    assert math.isnan(nulls.pop("float")) and math.isnan(nulls.pop("double"))
    assert nulls == {"char": 0, "int8": -128, "uint8": 255, "int16": -32768, "uint16": 65535,
                     "int32": -2 ** 31, "uint32": 2 ** 32 - 1, "int64": -2 ** 63, "uint64": 2 ** 64 - 1}


def test_declared_null_value_and_optional_enum():
    s = gen.parse_string(schema_text(
        types='<type name="Q" primitiveType="int32" presence="optional" nullValue="-1"/>'
              '<enum name="E" encodingType="uint8" presence="optional" nullValue="9">'
              '<validValue name="X">1</validValue></enum>',
        messages='<sbe:message name="M" id="1"><field name="q" id="1" type="Q"/>'
                 '<field name="e" id="2" type="E" presence="optional"/>'
                 '<field name="r" id="3" type="uint16" presence="optional"/></sbe:message>'))
    assert [f.null_value for f in s.messages[0].fields] == [-1, 9, 65535]


def test_lob_schema_parses():
    s = gen.parse_file(SCHEMAS / "lob.xml")
    nos = s.message("NewOrderSingle")
    assert (nos.id, nos.block_length) == (1, 61)
    assert offsets(nos)["price"] == 21 and {f.name: f for f in nos.fields}["displayQty"].null_value == -(2 ** 63)
    assert [(v.name, v.value) for v in s.types["ExecType"].values][:2] == [("New", ord("0")), ("Canceled", ord("4"))]


# ---- invalid schemas ------------------------------------------------------------------------------

INVALID = {
    "error-handler-dup-message-schema.xml": ["message 'AnotherMessageWithId1' (line 14): duplicate message id 1"],
    "error-handler-enum-violates-min-max-value-range.xml": [
        "enum 'EnumWithCustomEncodingType' value 'INVALID_ZERO' (line 16): 0 is outside the encoding's range 1..5",
        "enum 'EnumWithCustomEncodingTypeOptional' value 'INVALID_THREE' (line 23): 3 is the enum's null value"],
    "error-handler-group-dimensions-schema.xml": [
        "message 'TestMessage1' group 'Entries' dimensionType 'fakeSizeEncoding' (line 21): is not a composite"],
    "error-handler-invalid-composite-offsets-schema.xml": [
        "composite 'messageHeader' member 'schemaId' (line 11): offset 1 overlaps the previous member",
        "composite 'groupSizeEncoding' member 'numInGroup' (line 16): offset 1 overlaps the previous member"],
    "error-handler-invalid-composite.xml": ["composite 'testType' (line 19): a composite cannot contain <group>"],
    "error-handler-invalid-name.xml": [
        "message 'Message' field 'invalid field name' (line 24): invalid name",
        "message 'Message' group 'invalid group name!' (line 26): invalid name",
        "message 'Message' data 'invalid data field name!' (line 35): invalid name"],
    "error-handler-message-schema.xml": [
        "header composite 'messageHeader' (line 11): has no member 'blockLength'",
        "message 'Message_1' field 'unknown_type' (line 34): unknown type 'XXXX'",
        "message 'Message_1' field 'offset_too_small' (line 37): offset 1 overlaps the previous field",
        "message 'Message_1' group 'group_1' (line 40): dimensionType 'groupSizeEncoding' is not defined",
        "message 'Message_1' group 'group_2' dimensionType 'invalidGroupSizeEncoding' (line 45): has no member",
        "message 'Message_1' data 'has_no_length_field' (line 50): type 'invalidVarDataEncoding' needs the members",
        "message 'Message_1' data 'has_invalid_type' (line 53): type 'RawData' is not a composite",
        "message 'Message_1' field 'field_misordered' (line 56): a field must come before every var-data field",
        "message 'Message_1' (line 23): blockLength 2 is less than the fields' length 3"],
    "error-handler-since-version.xml": [
        "type 'uuid_t' (line 22): sinceVersion=1 is greater than the schema version 0",
        "message 'TestMessage' (line 24): sinceVersion=1 is greater than the schema version 0"],
    "error-handler-types-dup-schema.xml": ["type 'TypeToTest' (line 10): duplicate type name (also at line 9)"],
    "error-handler-types-schema.xml": [
        "enum 'NullBoolean' value 'BOGUS' (line 11): 255 is the enum's null value",
        "type 'ConstButNoValue' (line 13): a constant type needs a value",
        "message 'Message1' field 'word!' (line 16): invalid name"],
}


def test_every_invalid_reference_schema_is_listed():
    assert sorted(p.name for p in (DATA / "invalid").glob("*.xml")) == sorted(INVALID)


@pytest.mark.parametrize("name", sorted(INVALID))
def test_invalid_reference_schema_is_rejected(name):
    path = DATA / "invalid" / name
    with pytest.raises(SchemaError) as info:
        gen.parse_file(path)
    for expected in INVALID[name]:
        assert any(e.startswith(expected) for e in info.value.errors), (expected, info.value.errors)
    assert str(path) in str(info.value) and INVALID[name][0] in str(info.value)


def _message(body, name="M"):
    return f'<sbe:message name="{name}" id="1">{body}</sbe:message>'


@pytest.mark.parametrize("types, messages, expected", [
    ("", _message('<field name="a" id="1" type="uint8"/><field name="a" id="2" type="uint8"/>'),
     "message 'M' field 'a': duplicate name"),
    ("", _message('<data name="d" id="1" type="varData"/><group name="g" id="2"><field name="x" id="3" type="uint8"/></group>'),
     "message 'M' group 'g': a group must come before every var-data field"),
    ('<enum name="E" encodingType="char"><validValue name="X">XY</validValue></enum>', "",
     "enum 'E' value 'X': 'XY' is not a single character"),
    ('<enum name="E" encodingType="float"><validValue name="X">1</validValue></enum>', "",
     "enum 'E': encodingType float is not allowed here"),
    ('<set name="S" encodingType="uint8"><choice name="X">8</choice></set>', "",
     "set 'S' choice 'X': bit position 8 is outside 0..7"),
    ('<composite name="C"><ref name="again" type="C"/></composite>', "",
     "composite 'C' member 'again': type 'C' refers to itself (C -> C)"),
    ('<enum name="E" encodingType="uint8"><validValue name="X">1</validValue></enum>',
     _message('<field name="k" id="1" type="E" presence="constant" valueRef="E.Y"/>'),
     "message 'M' field 'k': valueRef 'E.Y': enum 'E' has no value 'Y'"),
    ('<type name="T" primitiveType="int8" length="2" presence="constant">5</type>', "", None),
    ("", _message('<field name="a" id="1" type="uint8"/>', name="M")
     + '<sbe:message name="M" id="2"><field name="a" id="1" type="uint8"/></sbe:message>',
     "message 'M': duplicate message name (also at line 20)"),
    ('<type name="T" primitiveType="uint8" minValue="300"/>', "", "type 'T': minValue 300 does not fit in uint8"),
    ("", _message('<field name="a" id="1" type="uint8"/><group name="g" id="2" dimensionType="varData">'
                  '<field name="x" id="3" type="uint8"/></group>'),
     "message 'M' group 'g' dimensionType 'varData': has no member 'blockLength'"),
])
def test_invalid_inline_schema(types, messages, expected, tmp_path):
    text = schema_text(types=types, messages=messages, version=1)
    if expected is None:  # accepted: a constant array is only its value
        gen.parse_string(text)
        return
    errors = [re.sub(r" \(line \d+\)", "", e) for e in errors_of(text)]
    assert any(e.startswith(expected) for e in errors), errors


def test_not_xml_and_not_a_schema():
    with pytest.raises(SchemaError, match="not well-formed XML"):
        gen.parse_string("<messageSchema", source="broken.xml")
    with pytest.raises(SchemaError, match="the root element is <types>"):
        gen.parse_string("<types/>")
