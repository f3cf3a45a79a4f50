"""Generated codecs, compiled: fixed byte vectors worked out from the SBE spec, round trips of every
message of every schema, schema extension (old decoder / new message and back), input errors."""
import math

import pytest

import codec_build
from codec_build import codegen, schema_text
from codec_vectors import (BOOK_UPDATE, BOOK_UPDATE_BYTES, CAR, CAR_BIG_ENDIAN_BYTES, CAR_BYTES, NEW_ORDER,
                           NEW_ORDER_BYTES, hexbytes)

gen = codegen()
ir = gen.ir


@pytest.fixture(scope="session")
def codecs():
    return codec_build.build_codecs()


def fields_of(decoded):
    return {k: v for k, v in decoded.items() if not k.startswith("_")}


# ---- fixed byte vectors ---------------------------------------------------------------------------

def test_lob_new_order_single_bytes(codecs):
    m = codecs["sbe_lob"]
    assert m.encode("NewOrderSingle", **NEW_ORDER) == NEW_ORDER_BYTES
    assert m.decode(NEW_ORDER_BYTES) == {
        "_name": "NewOrderSingle", "_template_id": 1, "_schema_id": 1, "_version": 1,
        "clOrdId": 0x0102030405060708, "account": 7, "instrumentId": 42, "side": "Sell", "ordType": "Limit",
        "timeInForce": "ImmediateOrCancel", "flags": ["PostOnly"], "selfTradePrevention": "CancelResting",
        "price": {"mantissa": 1234500, "exponent": -4}, "quantity": 10, "stopPrice": None, "displayQty": None,
        "expireTime": 0x65a0bc00, "stpGroup": 9}


def test_lob_book_update_group_bytes(codecs):
    m = codecs["sbe_lob"]
    assert m.encode("BookUpdate", **BOOK_UPDATE) == BOOK_UPDATE_BYTES
    assert fields_of(m.decode(BOOK_UPDATE_BYTES)) == BOOK_UPDATE


def test_lob_trade_report_bytes(codecs):
    m = codecs["sbe_lob"]
    report = dict(seqNum=1, transactTime=2, clOrdId=5, orderId=6, tradeId=9, lastPx={"mantissa": 100}, lastQty=4,
                  leavesQty=6, liquidity="Added")
    data = m.encode("ExecutionReportTrade", **report)
    # header: blockLength 65, templateId 61, schemaId 1, version 1; then eight 8-byte fields and liquidity
    assert data[:8] == bytes([65, 0, 61, 0, 1, 0, 1, 0]) and len(data) == 8 + 65
    assert data[8 + 40:8 + 48] == (100).to_bytes(8, "little") and data[8 + 64] == 1
    assert fields_of(m.decode(data)) == {**report, "lastPx": {"mantissa": 100, "exponent": -4}}


def test_example_car_bytes(codecs):
    m = codecs["sbe_example"]
    assert m.encode("Car", **CAR) == CAR_BYTES
    assert m.decode(CAR_BYTES) == {"_name": "Car", "_template_id": 1, "_schema_id": 1, "_version": 0, **CAR}


def test_big_endian_car_bytes(codecs):
    m = codecs["sbe_bigendian"]
    assert m.encode("Car", **CAR) == CAR_BIG_ENDIAN_BYTES
    assert fields_of(m.decode(CAR_BIG_ENDIAN_BYTES)) == CAR


def test_nested_groups_with_one_byte_dimensions(codecs):
    m = codecs["sbe_nested_groups"]
    top = dict(a=1, x=[{"b": 2, "y": [{"c": 3, "z": [{"d": 4}, {"d": 5}]}]}, {"b": 6, "y": []}])
    data = m.encode("Top", **top)
    assert data == hexbytes("""
        10 00 01 00 02 00 00 00          # header: blockLength 16 (declared), templateId 1, schemaId 2
        01 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00   # a, then padding up to blockLength 16
        01 02                            # x: blockLength 1, numInGroup 2 (uint8 each)
        02                               # x[0].b
        01 01  03                        # y: 1 entry, c 3
        01 02  04  05                    # z: 2 entries, d 4, d 5
        06  01 00                        # x[1].b 6, y: blockLength 1, 0 entries
    """)
    assert fields_of(m.decode(data)) == top


def test_constants_are_not_on_the_wire(codecs):
    m = codecs["sbe_group_constants"]
    data = m.encode("ConstantsGalore", a=1, e={"w": 2}, f=[{"g": 3, "h": {"w": 4}}])
    assert data == hexbytes("02 00 01 00 01 00 00 00  01 02  02 00 01 00  03 04")
    assert fields_of(m.decode(data)) == {
        "a": 1, "b": 9000, "c": "C", "d": 9000, "e": {"w": 2, "x": 250, "y": 9000},
        "f": [{"g": 3, "h": {"w": 4, "x": 250, "y": 9000}, "i": 9000, "j": 9000, "k": "C", "l": "Huzzah"}]}


def test_explicit_offsets_leave_zeroed_gaps(codecs):
    m = codecs["sbe_basic_types"]
    header = {"blockLength": 1, "templateId": 2, "schemaId": 3, "version": 4}
    data = m.encode("Message1WithOffsets", header=header, EDTField="hello", ENUMField="Value10",
                    SETField=["Bit16", "Bit26"], int64Field=-2)
    assert len(data) == 8 + 144
    body = data[8:]
    assert body[0:8] == bytes.fromhex("0100 0200 0300 0400")
    assert body[8:28] == b"hello" + bytes(15) and body[28:32] == bytes(4)
    assert body[32] == 10 and body[33:128] == bytes(95)
    assert body[128:132] == (1 << 16 | 1 << 26).to_bytes(4, "little")
    assert body[136:144] == (-2).to_bytes(8, "little", signed=True)
    assert fields_of(m.decode(data)) == dict(header=header, EDTField="hello", ENUMField="Value10",
                                             SETField=["Bit16", "Bit26"], int64Field=-2)


def test_var_data_with_uint8_length(codecs):
    m = codecs["sbe_basic_varlen"]
    assert m.encode("TestMessage1", encryptedNewPassword="pw") == hexbytes("00 00 01 00 04 00 00 00  02 70 77")
    # the length's maximum is that of uint8 (254): 255 is uint8's null value
    assert m.decode(m.encode("TestMessage1", encryptedNewPassword="x" * 254))["encryptedNewPassword"] == "x" * 254
    with pytest.raises(ValueError, match=r"TestMessage1\.encryptedNewPassword: 255 bytes, at most 254"):
        m.encode("TestMessage1", encryptedNewPassword="x" * 255)


# ---- round trips of every message, every field type -----------------------------------------------

def _scalar(primitive, seed):
    if primitive.is_float:
        return seed + 0.25
    if primitive.is_char:
        return chr(ord("A") + seed % 26)
    return (primitive.min_value, primitive.max_value, seed % 100 + 1)[seed % 3]


def _slot(t, presence, seed, value_ref=None, constant=None):
    """-> (value to encode or _SKIP, value decode returns)."""
    if presence == "constant":
        return _SKIP, value_ref.name if value_ref is not None else constant
    optional = presence == "optional"
    if optional and seed % 4 == 0 and not isinstance(t, ir.CompositeType):
        return None, [] if isinstance(t, ir.SetType) else None  # a set has no null value: no choice set
    if isinstance(t, ir.CompositeType):
        value, expected = {}, {}
        for k, m in enumerate(t.members):
            v, e = _slot(m.type, m.presence, seed + k, None, getattr(m.type, "constant_value", None))
            if v is not _SKIP:
                value[m.name] = v
            expected[m.name] = e
        settable = [m for m in t.members if m.presence != "constant"]
        if all(m.presence == "optional" for m in settable) and all(expected[m.name] is None for m in settable):
            expected = None
        return value, expected
    if isinstance(t, ir.EnumType):
        name = t.values[seed % len(t.values)].name
        return name, name
    if isinstance(t, ir.SetType):
        names = [c.name for i, c in enumerate(t.choices) if (seed >> i) & 1 or i == 0]
        return names, names
    if t.is_char_array:
        text = "".join(chr(ord("a") + (seed + i) % 26) for i in range(1 + seed % t.length))
        return text, text
    values = [_scalar(t.primitive, seed + i) for i in range(t.length)]
    if optional:  # a value that is the declared null value decodes as None: take another
        values = [seed % 100 + 1 if v == t.effective_null else v for v in values]
    return (values, values) if t.length != 1 else (values[0], values[0])


_SKIP = object()


def _container(node, seed, depth=0):
    value, expected = {}, {}
    for k, f in enumerate(node.fields):
        v, e = _slot(f.type, f.presence, seed + k, f.value_ref, f.constant_value)
        if v is not _SKIP:
            value[f.name] = v
        expected[f.name] = e
    for k, g in enumerate(node.groups):
        entries = [_container(g, seed + k + i, depth + 1) for i in range((seed + k + depth) % 3)]
        value[g.name] = [v for v, _ in entries]
        expected[g.name] = [e for _, e in entries]
    for k, d in enumerate(node.data):
        n = (seed * 7 + k) % 12
        v = "".join(chr(ord("a") + i) for i in range(n)) if d.is_text else bytes(range(200, 200 + n))
        value[d.name] = expected[d.name] = v
    return value, expected


def _messages():
    for module in codec_build.CODECS:
        text, source = schema_text(module)
        for message in gen.parse_string(text, source=source).messages:
            yield module, message


@pytest.mark.parametrize("module, message", [pytest.param(mod, msg, id=f"{mod}-{msg.name}") for mod, msg in _messages()])
@pytest.mark.parametrize("seed", [0, 1, 2, 3, 5])
def test_round_trip(codecs, module, message, seed):
    m = codecs[module]
    value, expected = _container(message, seed)
    data = m.encode(message.name, **value)
    decoded = m.decode(data)
    assert {k: decoded[k] for k in ("_name", "_template_id", "_schema_id", "_version")} == {
        "_name": message.name, "_template_id": message.id, "_schema_id": m.SCHEMA_ID, "_version": m.SCHEMA_VERSION}
    assert fields_of(decoded) == expected
    assert m.encode(message.id, **fields_of(decoded)) == data  # decode's output encodes to the same bytes
    assert len(data) >= m.HEADER_LENGTH + m.BLOCK_LENGTHS[message.name]


def test_extreme_values(codecs):
    m = codecs["sbe_lob"]
    values = dict(NEW_ORDER, clOrdId=2 ** 64 - 1, quantity=-(2 ** 63), account=2 ** 32 - 1, flags=0xFF,
                  price={"mantissa": 2 ** 63 - 1}, displayQty=-(2 ** 63) + 1, side=255)
    decoded = fields_of(m.decode(m.encode("NewOrderSingle", **values)))
    assert (decoded["clOrdId"], decoded["quantity"], decoded["account"]) == (2 ** 64 - 1, -(2 ** 63), 2 ** 32 - 1)
    assert decoded["price"] == {"mantissa": 2 ** 63 - 1, "exponent": -4}
    assert decoded["displayQty"] == -(2 ** 63) + 1
    assert decoded["flags"] == ["PostOnly"]  # unknown bits are dropped
    assert decoded["side"] == 255  # a value that is not in the enum comes back as its integer


def test_optional_nulls(codecs):
    ext = codecs["sbe_extension"]
    car = dict(CAR, someNumbers=[1, 2, 3, 4], uuid=None, cupHolderCount=None)
    decoded = fields_of(ext.decode(ext.encode("Car", **car)))
    assert decoded["uuid"] is None and decoded["cupHolderCount"] is None
    car["uuid"] = [None, 7]
    data = ext.encode("Car", **car)
    assert data[8 + 45:8 + 61] == bytes(7) + b"\x80" + (7).to_bytes(8, "little")
    assert fields_of(ext.decode(data))["uuid"] == [None, 7]
    m = codecs["sbe_lob"]
    assert fields_of(m.decode(m.encode("NewOrderSingle", **dict(NEW_ORDER, price=None))))["price"] is None


def test_python_api_tables(codecs):
    m = codecs["sbe_lob"]
    assert (m.SCHEMA_ID, m.SCHEMA_VERSION, m.HEADER_LENGTH) == (1, 1, 8)
    assert m.MESSAGES["NewOrderSingle"] == 1 and m.MESSAGES["BookUpdate"] == 20
    assert m.BLOCK_LENGTHS["NewOrderSingle"] == 61
    assert m.ENUMS["ExecType"]["Trade"] == ord("F") and m.SETS["OrderFlags"] == {"PostOnly": 0}
    assert m.encode(1, **NEW_ORDER) == NEW_ORDER_BYTES


# ---- schema extension -----------------------------------------------------------------------------

EXT_CAR = dict(CAR, someNumbers=[1, 2, 3, 4], uuid=[11, -12], cupHolderCount=3,
               fuelFigures=[{"speed": 30, "mpg": 35.5, "usageDescription": "Urban"},
                            {"speed": 55, "mpg": 49.0, "usageDescription": "Combined"}])


def _without(d, *names):
    return {k: v for k, v in d.items() if k not in names}


def test_version0_decoder_reads_version2_message(codecs):
    v0, v2 = codecs["sbe_extension_v0"], codecs["sbe_extension"]
    data = v2.encode("Car", **EXT_CAR)
    assert data[:8] == hexbytes("3e 00 01 00 01 00 02 00")  # blockLength 62 at version 2
    decoded = v0.decode(data)
    assert decoded["_version"] == 2 and v0.BLOCK_LENGTHS["Car"] == 45
    # v0 knows neither uuid/cupHolderCount (17 more block bytes) nor mpg (4 more bytes per entry)
    expected = _without(EXT_CAR, "uuid", "cupHolderCount")
    expected["fuelFigures"] = [_without(e, "mpg") for e in EXT_CAR["fuelFigures"]]
    assert fields_of(decoded) == expected


def test_version2_decoder_reads_version0_and_version1_messages(codecs):
    v0, v1, v2 = codecs["sbe_extension_v0"], codecs["sbe_extension_v1"], codecs["sbe_extension"]
    old = _without(EXT_CAR, "uuid", "cupHolderCount")
    old["fuelFigures"] = [_without(e, "mpg") for e in EXT_CAR["fuelFigures"]]
    data = v0.encode("Car", **old)
    assert data[:8] == hexbytes("2d 00 01 00 01 00 00 00")  # blockLength 45 at version 0
    decoded = v2.decode(data)
    assert decoded["_version"] == 0
    expected = dict(EXT_CAR, uuid=None, cupHolderCount=None,
                    fuelFigures=[dict(e, mpg=None) for e in EXT_CAR["fuelFigures"]])
    assert fields_of(decoded) == expected
    # version 1: uuid and cupHolderCount are there, mpg (since 2) is not
    data = v1.encode("Car", **dict(old, uuid=[11, -12], cupHolderCount=3))
    assert fields_of(v2.decode(data)) == dict(expected, uuid=[11, -12], cupHolderCount=3)
    assert fields_of(v1.decode(v2.encode("Car", **EXT_CAR))) == dict(EXT_CAR, fuelFigures=old["fuelFigures"])


def test_version_decides_even_when_the_block_is_long_enough(codecs):
    v2 = codecs["sbe_extension"]
    data = bytearray(v2.encode("Car", **EXT_CAR))
    data[6:8] = (1).to_bytes(2, "little")  # same bytes, announced as version 1: mpg is not there yet
    decoded = fields_of(v2.decode(bytes(data)))
    assert [e["mpg"] for e in decoded["fuelFigures"]] == [None, None]
    assert decoded["uuid"] == [11, -12]


def test_baseline_and_extension_reference_schemas(codecs):
    """example-schema.xml (v0) and example-extension-schema.xml (v2) are not one lineage (someNumbers
    has 5 elements in one and 4 in the other), but both put groups and var-data after the block: the
    header and group blockLengths carry a decoder across."""
    base, ext = codecs["sbe_example"], codecs["sbe_extension"]
    decoded = fields_of(base.decode(ext.encode("Car", **EXT_CAR)))
    for name in ("serialNumber", "modelYear", "available", "code", "performanceFigures", "manufacturer", "model",
                 "activationCode"):
        assert decoded[name] == EXT_CAR[name], name
    assert decoded["fuelFigures"] == EXT_CAR["fuelFigures"]
    decoded = fields_of(ext.decode(base.encode("Car", **CAR)))
    assert decoded["uuid"] is None and decoded["cupHolderCount"] is None
    assert decoded["fuelFigures"] == [dict(CAR["fuelFigures"][0], mpg=None)]
    for name in ("serialNumber", "modelYear", "performanceFigures", "manufacturer", "model", "activationCode"):
        assert decoded[name] == CAR[name], name


# ---- errors -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("change, message", [
    (dict(quantity=None), r"NewOrderSingle\.quantity: required"),
    (dict(side="Up"), r"NewOrderSingle\.side: 'Up' is not one of Buy, Sell"),
    (dict(account=-1), r"NewOrderSingle\.account: -1 is out of range 0\.\.4294967295"),
    (dict(clOrdId=2 ** 64), r"NewOrderSingle\.clOrdId: 18446744073709551616 is out of range"),
    (dict(quantity="10"), r"NewOrderSingle\.quantity: expected an integer, got '10'"),
    (dict(flags=["PostOnly", "Iceberg"]), r"NewOrderSingle\.flags: 'Iceberg' is not one of PostOnly"),
    (dict(price={"mantissa": 1, "tick": 2}), r"NewOrderSingle\.price: unknown member\(s\) tick"),
    (dict(price=5), r"NewOrderSingle\.price: expected a dict of members, got 5"),
    (dict(colour="red"), r"NewOrderSingle: unknown field\(s\) colour"),
])
def test_encode_errors_name_the_field(codecs, change, message):
    values = dict(NEW_ORDER, **change)
    with pytest.raises(ValueError, match=message):
        codecs["sbe_lob"].encode("NewOrderSingle", **values)


def test_encode_errors_in_groups_arrays_and_chars(codecs):
    m = codecs["sbe_example"]
    with pytest.raises(ValueError, match=r"Car\.vehicleCode: 7 characters, at most 6"):
        m.encode("Car", **dict(CAR, vehicleCode="abcdefg"))
    with pytest.raises(ValueError, match=r"Car\.someNumbers: expected 5 values, got 4"):
        m.encode("Car", **dict(CAR, someNumbers=[1, 2, 3, 4]))
    with pytest.raises(ValueError, match=r"Car\.performanceFigures\[0\]\.acceleration\[1\]\.mph: required"):
        m.encode("Car", **dict(CAR, performanceFigures=[{"octaneRating": 95, "acceleration": [
            {"mph": 1, "seconds": 1.0}, {"seconds": 2.0}]}]))
    with pytest.raises(ValueError, match=r"Car\.fuelFigures\[0\]: expected a dict"):
        m.encode("Car", **dict(CAR, fuelFigures=[5]))
    with pytest.raises(ValueError, match=r"Car\.engine\.booster\.BoostType: 'JET' is not one of TURBO, "):
        m.encode("Car", **dict(CAR, engine=dict(CAR["engine"], booster={"BoostType": "JET", "horsePower": 1})))
    with pytest.raises(ValueError, match="unknown message 'Truck'"):
        m.encode("Truck")


def test_decode_never_reads_past_the_buffer(codecs):
    m = codecs["sbe_example"]
    for n in range(len(CAR_BYTES)):
        with pytest.raises(ValueError, match="buffer too short"):
            m.decode(CAR_BYTES[:n])
    assert fields_of(m.decode(CAR_BYTES + b"trailing")) == CAR
    assert fields_of(m.decode(memoryview(bytearray(CAR_BYTES)))) == CAR


def test_decode_rejects_other_schemas_and_unknown_templates(codecs):
    m = codecs["sbe_lob"]
    other = bytearray(NEW_ORDER_BYTES)
    other[4:6] = (2).to_bytes(2, "little")
    with pytest.raises(ValueError, match="schema id 2 is not this codec's 1"):
        m.decode(bytes(other))
    unknown = bytearray(NEW_ORDER_BYTES)
    unknown[2:4] = (999).to_bytes(2, "little")
    with pytest.raises(ValueError, match="unknown template id 999"):
        m.decode(bytes(unknown))


def test_float_infinity_round_trips(codecs):
    m = codecs["sbe_example"]
    data = m.encode("Car", **dict(CAR, fuelFigures=[{"speed": 1, "mpg": math.inf, "usageDescription": ""}]))
    assert fields_of(m.decode(data))["fuelFigures"][0]["mpg"] == math.inf
