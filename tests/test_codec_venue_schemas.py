"""Exchanges' published SBE schemas, which tests/data cannot hold (their licences do not allow
redistribution): set LOB_SBE_VENUE_SCHEMAS to a folder of them (or to files joined with the path
separator) to run these. Each schema must generate, compile, and round-trip every message; its
warnings are printed (`pytest -s`)."""
import os
import re
from pathlib import Path

import pytest

import codec_build
from codec_build import codegen
from codec_vectors import hexbytes
from test_codec_roundtrip import _container, fields_of

gen = codegen()


def _schemas():
    spec = os.environ.get("LOB_SBE_VENUE_SCHEMAS", "")
    paths = []
    for part in filter(None, spec.split(os.pathsep)):
        part = Path(part)
        paths += sorted(part.glob("*.xml")) if part.is_dir() else [part]
    return paths


SCHEMAS = _schemas()
pytestmark = pytest.mark.skipif(not SCHEMAS, reason="LOB_SBE_VENUE_SCHEMAS is not set")


def _module_name(path):
    return "venue_" + re.sub(r"\W", "_", path.stem)


@pytest.fixture(scope="module")
def codecs():
    names = [codec_build.register(_module_name(p), p) for p in SCHEMAS]
    return codec_build.build_codecs(names)


def _messages():
    for path in SCHEMAS:
        schema = gen.parse_file(path)
        for message in schema.messages:
            yield path, message


@pytest.mark.parametrize("path", SCHEMAS, ids=[p.name for p in SCHEMAS])
def test_generates_with_warnings_only(path):
    schema = gen.parse_file(path)
    files = gen.generate(schema, _module_name(path), path.name)
    assert sorted(files) == sorted(f"{_module_name(path)}.{ext}" for ext in ("pxd", "pyx"))
    print(f"\n{path.name}: {len(schema.messages)} messages, {len(schema.warnings)} warnings")
    for text in schema.warnings:
        print("  warning:", text)


@pytest.mark.parametrize("path, message", [pytest.param(p, m, id=f"{p.stem}-{m.name}") for p, m in _messages()])
def test_round_trip(codecs, path, message):
    m = codecs[_module_name(path)]
    for seed in (0, 1, 2, 3):
        value, expected = _container(message, seed)
        data = m.encode(message.name, **value)
        decoded = m.decode(data)
        assert (decoded["_name"], decoded["_version"]) == (message.name, m.SCHEMA_VERSION)
        assert fields_of(decoded) == expected
        assert m.encode(message.id, **fields_of(decoded)) == data


def _at_version(node, expected, version):
    """What a message of an older `version` decodes to: everything newer than it absent."""
    out = {f.name: None if f.since_version > version else expected[f.name] for f in node.fields}
    for g in node.groups:
        out[g.name] = None if g.since_version > version else [_at_version(g, e, version) for e in expected[g.name]]
    for d in node.data:
        out[d.name] = None if d.since_version > version else expected[d.name]
    return out


def _tail_in_order(node, version):
    """Groups and var-data absent at `version` all come after the present ones (else an older message's
    bytes after the block differ from these, and relabelling the version proves nothing)."""
    present = [x.since_version <= version for x in node.groups + node.data]
    return present == sorted(present, reverse=True) and all(
        _tail_in_order(g, version) for g in node.groups if g.since_version <= version)


@pytest.mark.parametrize("path, message", [pytest.param(p, m, id=f"{p.stem}-{m.name}") for p, m in _messages()])
def test_older_versions_decode_newer_elements_as_absent(codecs, path, message):
    m = codecs[_module_name(path)]
    value, expected = _container(message, 1)
    data = bytearray(m.encode(message.name, **value))
    schema = gen.parse_file(path)
    version = schema.header.member("version")
    start, size = version.offset, version.type.primitive.size
    for v in range(message.since_version, m.SCHEMA_VERSION):
        if _tail_in_order(message, v):
            data[start:start + size] = v.to_bytes(size, "big" if schema.big_endian else "little")
            assert fields_of(m.decode(bytes(data))) == _at_version(message, expected, v), v


def _schema_with(package, template_id):
    for path in SCHEMAS:
        schema = gen.parse_file(path)
        if schema.package == package and any(m.id == template_id for m in schema.messages):
            return path
    pytest.skip(f"no schema of package {package!r} with template {template_id} in LOB_SBE_VENUE_SCHEMAS")


def test_cme_mdp3_book_update_bytes(codecs):
    """CME MDP 3.0 (package mktdata, version 9) MDIncrementalRefreshBook46, worked out from the schema's
    offsets: its second group's dimension (groupSize8Byte) has numInGroup at offset 7."""
    m = codecs[_module_name(_schema_with("mktdata", 46))]
    data = hexbytes("""
        0b 00  2e 00  01 00  09 00      # header: blockLength 11, templateId 46, schemaId 1, version 9
        08 07 06 05 04 03 02 01         # TransactTime
        84                              # MatchEventIndicator: LastQuoteMsg (bit 2), EndOfEvent (bit 7)
        00 00                           # padding to blockLength 11
        20 00  01                       # NoMDEntries (groupSize): blockLength 32, numInGroup 1
        80 f2 0e 97 1a 04 00 00         #   MDEntryPx.mantissa 4512250000000 (exponent -9 is constant)
        0a 00 00 00                     #   MDEntrySize 10
        39 30 00 00                     #   SecurityID 12345
        07 00 00 00                     #   RptSeq 7
        ff ff ff 7f                     #   NumberOfOrders: Int32NULL's null 2147483647
        01  01  31                      #   MDPriceLevel 1, MDUpdateAction Change, MDEntryType Offer ('1')
        00 00 00 00 00                  #   padding to 32
        18 00  00 00 00 00 00  01       # NoOrderIDEntries (groupSize8Byte): blockLength 24, numInGroup 1 at 7
        11 00 00 00 00 00 00 00         #   OrderID 17
        ff ff ff ff ff ff ff ff         #   MDOrderPriority: uInt64NULL's null
        05 00 00 00                     #   MDDisplayQty 5
        01  01                          #   ReferenceID 1, OrderUpdateAction Update
        00 00                           #   padding to 24
    """)
    book = dict(
        TransactTime=0x0102030405060708, MatchEventIndicator=["LastQuoteMsg", "EndOfEvent"],
        NoMDEntries=[dict(MDEntryPx={"mantissa": 4512250000000, "exponent": -9}, MDEntrySize=10, SecurityID=12345,
                          RptSeq=7, NumberOfOrders=None, MDPriceLevel=1, MDUpdateAction="Change",
                          MDEntryType="Offer")],
        NoOrderIDEntries=[dict(OrderID=17, MDOrderPriority=None, MDDisplayQty=5, ReferenceID=1,
                               OrderUpdateAction="Update")])
    assert fields_of(m.decode(data)) == book
    assert m.encode("MDIncrementalRefreshBook46", **book) == data
