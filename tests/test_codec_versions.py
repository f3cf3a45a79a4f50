"""Versioned layouts as exchanges publish them: fields out of sinceVersion order, constants between
versioned fields, explicit offsets; decoders that take a field as absent when the acting version is
older than it or the acting block length ends before it. Parser, generated code (compiled) and the
`_present` hot-path tests, on tests/data/venue-style-schema.xml and on small inline schemas."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

import codec_build
from codec_build import VENUE_STYLE, codegen
from codec_vectors import hexbytes
from test_codec_schema import errors_of, schema_text

gen = codegen()


def parse_inline(types="", messages="", version=3):
    return gen.parse_string(schema_text(types=types, messages=messages, version=version))


def plain(texts):
    return [re.sub(r" \(line \d+\)", "", t) for t in texts]


def layout(node):
    return {f.name: (f.offset, f.since_version) for f in node.fields}


@pytest.fixture(scope="module")
def codecs():
    return codec_build.build_codecs(["sbe_venue", "sbe_venue_v0", "sbe_venue_v1"])


def fields_of(decoded):
    return {k: v for k, v in decoded.items() if not k.startswith("_")}


# ---- parser ---------------------------------------------------------------------------------------

def test_venue_style_layout():
    s = gen.parse_file(VENUE_STYLE)
    quote, status = s.message("Quote"), s.message("Status")
    assert quote.block_length == 32 and layout(quote) == {
        "transactTime": (0, 0), "venueFlags": (8, 2), "securityIdSource": (9, 0), "securityId": (12, 0),
        "price": (16, 0), "kind": (24, 1), "qty": (24, 1), "orderCount": (28, 3), "side": (30, 1)}
    legs = quote.groups[0]
    assert (legs.since_version, legs.block_length) == (1, 16)
    # the group's sinceVersion is the least of its fields'
    assert layout(legs) == {"legRatio": (0, 3), "legSide": (1, 1), "legSource": (2, 1), "legSecurityId": (4, 1),
                            "legPrice": (8, 2)}
    assert quote.data[0].since_version == 2
    # a constant's explicit offset moves the next field; the message's sinceVersion is its fields' floor
    assert status.block_length == 10 and layout(status) == {
        "code": (0, 1), "source": (4, 1), "seq": (4, 1), "tail": (8, 1), "flags": (9, 2)}
    assert s.warnings == ["message 'Status' field 'tail' (line 64): offset 0 would overlap the previous field: "
                          "taken as no offset, the field is at 8"]


def test_out_of_order_since_versions_with_offsets_give_no_warning():
    s = parse_inline(messages='<sbe:message name="M" id="1">'
                              '<field name="a" id="1" type="uint8" sinceVersion="2"/>'
                              '<field name="b" id="2" type="uint8" offset="1"/>'
                              '<field name="c" id="3" type="uint8" sinceVersion="3" offset="4"/>'
                              '<field name="d" id="4" type="uint16" sinceVersion="1" offset="6"/></sbe:message>')
    assert layout(s.messages[0]) == {"a": (0, 2), "b": (1, 0), "c": (4, 3), "d": (6, 1)}
    assert s.messages[0].block_length == 8 and s.warnings == []


def test_group_opening_with_versioned_constants():
    # as in a market-data channel reset: two constants (one versioned), then a newer field at offset 0
    s = parse_inline(
        types='<type name="NewAction" primitiveType="uint8" presence="constant">0</type>'
              '<type name="ResetType" primitiveType="char" presence="constant">J</type>',
        messages='<sbe:message name="Reset" id="4" blockLength="9"><field name="t" id="60" type="uint64"/>'
                 '<group name="e" id="268" blockLength="2">'
                 '<field name="action" id="279" type="NewAction" sinceVersion="2"/>'
                 '<field name="kind" id="269" type="ResetType"/>'
                 '<field name="channel" id="1180" type="int16" offset="0" sinceVersion="3"/></group></sbe:message>')
    group = s.messages[0].groups[0]
    assert layout(group) == {"action": (0, 2), "kind": (0, 0), "channel": (0, 3)}
    assert (s.messages[0].block_length, group.block_length, s.warnings) == (9, 2, [])


def test_implicit_offset_after_a_newer_field_is_a_warning():
    s = parse_inline(messages='<sbe:message name="M" id="1">'
                              '<field name="a" id="1" type="uint32"/>'
                              '<field name="b" id="2" type="uint32" sinceVersion="2"/>'
                              '<field name="k" id="3" type="SecurityIDSource"/>'
                              '<field name="c" id="4" type="uint32" sinceVersion="1"/></sbe:message>',
                     types='<type name="SecurityIDSource" primitiveType="char" presence="constant">8</type>')
    assert layout(s.messages[0]) == {"a": (0, 0), "b": (4, 2), "k": (8, 0), "c": (8, 1)}
    # the constant takes no space and does not count; c's offset depends on b, added after c
    assert plain(s.warnings) == ["message 'M' field 'c': sinceVersion=1 is lower than that of field 'b' (2) before "
                                 "it, and it has no offset: messages of version 1 may hold it elsewhere"]


def test_groups_and_var_data_out_of_version_order_are_warnings():
    s = parse_inline(messages='<sbe:message name="M" id="1"><field name="a" id="1" type="uint8"/>'
                              '<group name="g" id="2" sinceVersion="2"><field name="x" id="3" type="uint8"/></group>'
                              '<group name="h" id="4" sinceVersion="1"><field name="y" id="5" type="uint8"/></group>'
                              '<data name="d" id="6" type="varData"/></sbe:message>')
    assert plain(s.warnings) == [
        "message 'M' group 'h': sinceVersion=1 is lower than that of group 'g' (2) before it: "
        "a decoder older than version 2 reads the bytes of 'g' as 'h'",
        "message 'M' data 'd': sinceVersion=0 is lower than that of group 'g' (2) before it: "
        "a decoder older than version 2 reads the bytes of 'g' as 'd'"]


def test_warnings_where_the_reference_tool_warns():
    s = parse_inline(
        types='<composite name="signedSize"><type name="blockLength" primitiveType="uint32"/>'
              '<type name="numInGroup" primitiveType="int16" minValue="0"/></composite>'
              '<composite name="bigData"><type name="length" primitiveType="uint64"/>'
              '<type name="varData" primitiveType="uint8" length="0"/></composite>'
              '<enum name="E" encodingType="uint8"><validValue name="X">1</validValue>'
              '<validValue name="Y">1</validValue></enum>'
              '<set name="S" encodingType="uint8"><choice name="A">0</choice></set>',
        messages='<sbe:message name="M" id="1"><field name="e" id="1" type="E"/>'
                 '<field name="s" id="2" type="S" presence="optional"/>'
                 '<group name="g" id="3" dimensionType="signedSize"><field name="x" id="4" type="uint8"/></group>'
                 '<group name="h" id="5" dimensionType="signedSize"><field name="y" id="6" type="uint8"/></group>'
                 '<data name="d" id="7" type="bigData"/></sbe:message>')
    assert plain(s.warnings) == [
        "enum 'E' value 'Y': duplicate value 1 (also value 'X'): decoders name it 'X'",
        "composite 'signedSize': member 'blockLength' should be uint8 or uint16, not uint32",
        "composite 'signedSize': member 'numInGroup' should be an unsigned integer type",
        "composite 'bigData': member 'length' should be uint8, uint16 or uint32, not uint64"]
    # each warning names its element and its line
    assert all(re.search(r" \(line \d+\): ", w) for w in s.warnings)
    header = schema_text().replace('<type name="templateId" primitiveType="uint16"/>',
                                   '<type name="templateId" primitiveType="uint8"/>')
    assert plain(gen.parse_string(header).warnings) == [
        "composite 'messageHeader': member 'templateId' should be uint16, not uint8"]


@pytest.mark.parametrize("types, messages, expected", [
    # still errors, as in the reference tool
    ("", '<field name="a" id="1" type="uint32"/><field name="b" id="2" type="uint8" offset="2"/>',
     "message 'M' field 'b': offset 2 overlaps the previous field (which ends at 4)"),
    ('<type name="K" primitiveType="char" presence="constant">8</type>',
     '<field name="a" id="1" type="uint32"/><field name="k" id="2" type="K" offset="3"/>',
     "message 'M' field 'k': offset 3 overlaps the previous field (which ends at 4)"),
    ("", '<field name="a" id="1" type="uint8"/><field name="b" id="1" type="uint8"/>',
     "message 'M' field 'b': duplicate id 1 (also used by 'a')"),
    ("", '<field name="a" id="1" type="uint8" sinceVersion="4"/>',
     "message 'M' field 'a': sinceVersion=4 is greater than the schema version 3"),
    ('<composite name="sz"><type name="blockLength" primitiveType="uint16"/>'
     '<type name="numInGroup" primitiveType="int16"/></composite>',
     '<group name="g" id="1" dimensionType="sz"><field name="x" id="2" type="uint8"/></group>',
     "message 'M' group 'g' dimensionType 'sz': member 'numInGroup' is signed: it needs a minValue of 0 or more"),
])
def test_errors_kept(types, messages, expected):
    text = schema_text(types=types, messages=f'<sbe:message name="M" id="1">{messages}</sbe:message>', version=3)
    assert expected in plain(errors_of(text))


def test_cli_prints_warnings_and_generates(tmp_path):
    lob = Path(sys.executable).with_name("lob")
    result = subprocess.run([str(lob), "codegen", str(VENUE_STYLE), "--out", str(tmp_path)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ("lob codegen: warning: message 'Status' field 'tail' (line 64): offset 0 would overlap "
                             "the previous field: taken as no offset, the field is at 8\n")
    assert result.stdout.split() == [str(tmp_path / "venue_style.pxd"), str(tmp_path / "venue_style.pyx")]
    pxd = (tmp_path / "venue_style.pxd").read_text()
    assert "cdef inline bint Quote_qty_present(Py_ssize_t block_length, int version) noexcept nogil:\n" \
           "    return version >= Quote_qty_SINCE_VERSION and block_length >= 28\n" in pxd
    assert "cdef inline bint Quote_kind_present(Py_ssize_t block_length, int version) noexcept nogil:\n" \
           "    return version >= Quote_kind_SINCE_VERSION\n" in pxd
    assert "cdef inline bint Quote_price_present(Py_ssize_t block_length, int version) noexcept nogil:\n" \
           "    return block_length >= 24\n" in pxd


# ---- compiled codecs: byte vectors worked out by hand ---------------------------------------------

QUOTE = dict(transactTime=0x0102030405060708, venueFlags=5, securityId=42, price=-1500, qty=7, orderCount=3,
             side="Sell", legs=[{"legRatio": 2, "legSide": "Buy", "legSecurityId": 43, "legPrice": 1000}], text="hi")
QUOTE_DECODED = dict(QUOTE, securityIdSource="8", kind="Trade",
                     legs=[dict(QUOTE["legs"][0], legSource="8")])
QUOTE_V3 = hexbytes("""
    20 00  01 00  4d 00  03 00      # header: blockLength 32, templateId 1, schemaId 77, version 3
    08 07 06 05 04 03 02 01         # 0  transactTime
    05                              # 8  venueFlags (v2, in v0's padding)
    00 00 00                        # 9  securityIdSource is a constant: nothing on the wire; padding
    2a 00 00 00                     # 12 securityId 42
    24 fa ff ff ff ff ff ff         # 16 price -1500
    07 00 00 00                     # 24 qty 7 (kind before it is a constant)
    03 00                           # 28 orderCount 3 (v3)
    02                              # 30 side Sell
    00                              # 31 padding up to blockLength 32
    10 00  01                       # legs: blockLength 16, numInGroup 1 (uint8)
    02  01  00 00                   #   legRatio 2, legSide Buy, legSource constant, padding
    2b 00 00 00                     #   legSecurityId 43
    e8 03 00 00 00 00 00 00         #   legPrice 1000
    02  68 69                       # text: length 2, "hi"
""")
QUOTE_V0 = hexbytes("""
    18 00  01 00  4d 00  00 00      # header: blockLength 24, version 0
    08 07 06 05 04 03 02 01         # transactTime
    00 00 00 00                     # padding (venueFlags came in v2)
    2a 00 00 00                     # securityId
    24 fa ff ff ff ff ff ff         # price
""")
ABSENT_BEFORE_V1 = dict(venueFlags=None, kind=None, qty=None, orderCount=None, side=None, legs=None, text=None)


def test_quote_bytes(codecs):
    m = codecs["sbe_venue"]
    assert m.encode("Quote", **QUOTE) == QUOTE_V3
    assert m.decode(QUOTE_V3) == {"_name": "Quote", "_template_id": 1, "_schema_id": 77, "_version": 3,
                                  **QUOTE_DECODED}
    assert m.encode("Quote", **fields_of(m.decode(QUOTE_V3))) == QUOTE_V3


def test_version_0_message_decodes_newer_fields_as_absent(codecs):
    decoded = codecs["sbe_venue"].decode(QUOTE_V0)
    assert decoded["_version"] == 0
    assert fields_of(decoded) == dict(transactTime=0x0102030405060708, securityIdSource="8", securityId=42,
                                      price=-1500, **ABSENT_BEFORE_V1)


def test_block_too_short_for_a_field_of_its_version(codecs):
    # a version-3 header announcing a 26-byte block: qty (24..28), orderCount, side do not fit
    data = hexbytes("1a 00 01 00 4d 00 03 00") + QUOTE_V3[8:8 + 26] + QUOTE_V3[8 + 32:]
    decoded = fields_of(codecs["sbe_venue"].decode(data))
    assert (decoded["qty"], decoded["orderCount"], decoded["side"]) == (None, None, None)
    assert decoded["venueFlags"] == 5 and decoded["kind"] == "Trade"  # a constant needs no block
    assert decoded["legs"] == QUOTE_DECODED["legs"] and decoded["text"] == "hi"


def test_version_older_than_a_field_inside_the_block(codecs):
    # the same 32-byte block announced as version 1: venueFlags (v2) and orderCount (v3) are not read,
    # nor legRatio (v3) / legPrice (v2) in the entries, nor the text (v2): the bytes after legs are ignored
    data = bytearray(QUOTE_V3)
    data[6:8] = (1).to_bytes(2, "little")
    decoded = fields_of(codecs["sbe_venue"].decode(bytes(data)))
    assert decoded == dict(QUOTE_DECODED, venueFlags=None, orderCount=None, text=None,
                           legs=[dict(QUOTE_DECODED["legs"][0], legRatio=None, legPrice=None)])


def test_status_constant_offset_and_optional_set(codecs):
    m = codecs["sbe_venue"]
    data = m.encode("Status", code=0x0201, seq=9, tail=255, flags=["Recovered"])
    assert data == hexbytes("""
        0a 00  02 00  4d 00  03 00    # header: blockLength 10, templateId 2
        01 02                         # 0 code
        00 00                         # 2 padding: the constant source has offset 4
        09 00 00 00                   # 4 seq
        ff                            # 8 tail (offset="0" taken as no offset)
        02                            # 9 flags: Recovered = bit 1
    """)
    assert fields_of(m.decode(data)) == dict(code=0x0201, source="8", seq=9, tail=255, flags=["Recovered"])
    # an optional set left out has no choice set; before its version it is absent
    assert fields_of(m.decode(m.encode("Status", code=1, seq=2, tail=3)))["flags"] == []
    older = bytearray(data)
    older[6:8] = (1).to_bytes(2, "little")
    assert fields_of(m.decode(bytes(older)))["flags"] is None


# ---- compiled codecs: older and newer codecs of the same schema ------------------------------------

def test_old_codecs_read_new_messages(codecs):
    v0, v1 = codecs["sbe_venue_v0"], codecs["sbe_venue_v1"]
    assert fields_of(v0.decode(QUOTE_V3)) == dict(transactTime=0x0102030405060708, securityIdSource="8",
                                                  securityId=42, price=-1500)
    assert fields_of(v1.decode(QUOTE_V3)) == dict(
        transactTime=0x0102030405060708, securityIdSource="8", securityId=42, price=-1500, kind="Trade", qty=7,
        side="Sell", legs=[{"legSide": "Buy", "legSource": "8", "legSecurityId": 43}])


def test_new_codec_reads_old_codecs_messages(codecs):
    v0, v1, v3 = codecs["sbe_venue_v0"], codecs["sbe_venue_v1"], codecs["sbe_venue"]
    data = v0.encode("Quote", transactTime=1, securityId=2, price=3)
    # the cut-back v0 codec keeps the declared blockLength 32 (padding); the version says what is there
    assert data[:8] == hexbytes("20 00 01 00 4d 00 00 00")
    assert fields_of(v3.decode(data)) == dict(transactTime=1, securityIdSource="8", securityId=2, price=3,
                                              **ABSENT_BEFORE_V1)
    data = v1.encode("Quote", transactTime=1, securityId=2, price=3, qty=None, side="Buy",
                     legs=[{"legSide": "Sell", "legSecurityId": 5}])
    assert fields_of(v3.decode(data)) == dict(
        transactTime=1, securityIdSource="8", securityId=2, price=3, kind="Trade", qty=None, side="Buy",
        venueFlags=None, orderCount=None, text=None,
        legs=[{"legRatio": None, "legSide": "Sell", "legSource": "8", "legSecurityId": 5, "legPrice": None}])
    status = v1.encode("Status", code=1, seq=2, tail=3)
    assert fields_of(v3.decode(status)) == dict(code=1, source="8", seq=2, tail=3, flags=None)


# ---- hot path: the `_present` tests -----------------------------------------------------------------

def test_present_tests_from_the_accessors(codecs):
    hot = codecs["codec_hotpath_venue"]
    assert hot.constants() == {
        "Quote_BLOCK_LENGTH": 32, "Quote_venueFlags_OFFSET": 8, "Quote_securityId_OFFSET": 12,
        "Quote_price_OFFSET": 16, "Quote_qty_OFFSET": 24, "Quote_orderCount_OFFSET": 28, "Quote_side_OFFSET": 30,
        "Quote_venueFlags_SINCE_VERSION": 2, "Quote_kind_SINCE_VERSION": 1, "Quote_legs_SINCE_VERSION": 1,
        "Quote_legs_BLOCK_LENGTH": 16, "Quote_legs_legPrice_OFFSET": 8, "Quote_text_SINCE_VERSION": 2,
        "Status_BLOCK_LENGTH": 10, "Status_seq_OFFSET": 4, "Status_tail_OFFSET": 8, "Status_flags_OFFSET": 9}
    everything = dict.fromkeys(("transactTime", "venueFlags", "securityIdSource", "securityId", "price", "kind",
                                "qty", "orderCount", "side"), True)
    assert hot.quote_presence(QUOTE_V3) == everything
    assert hot.quote_presence(QUOTE_V0) == dict(everything, venueFlags=False, kind=False, qty=False,
                                                orderCount=False, side=False)
    short = hexbytes("1a 00 01 00 4d 00 03 00") + QUOTE_V3[8:8 + 26]
    assert hot.quote_presence(short) == dict(everything, qty=False, orderCount=False, side=False)
    m = codecs["sbe_venue"]
    for frame in (QUOTE_V3, QUOTE_V0, short):
        decoded = fields_of(m.decode(frame + bytes(8)))  # spare bytes: the short frame has no legs dimension
        expected = {k: decoded[k] for k in everything}
        expected["side"] = {"Buy": 1, "Sell": 2, None: None}[expected["side"]]
        expected["kind"] = None if expected["kind"] is None else "2"
        assert hot.read_quote(frame) == expected
