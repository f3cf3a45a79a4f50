"""The generated `cdef inline` accessors, used from small .pyx modules that cimport the generated .pxd
(tests/codec_hotpath_*.pyx), against the fixed byte vectors and the generated Python encode/decode."""
import pytest

import codec_build
from codec_vectors import BOOK_UPDATE, BOOK_UPDATE_BYTES, CAR, CAR_BIG_ENDIAN_BYTES, CAR_BYTES, NEW_ORDER_BYTES


@pytest.fixture(scope="session")
def codecs():
    return codec_build.build_codecs()


def test_constants(codecs):
    assert codecs["codec_hotpath_lob"].constants() == {
        "SCHEMA_ID": 1, "SCHEMA_VERSION": 1, "HEADER_LENGTH": 8,
        "NewOrderSingle_TEMPLATE_ID": 1, "NewOrderSingle_BLOCK_LENGTH": 61, "NewOrderSingle_SINCE_VERSION": 0,
        "NewOrderSingle_price_OFFSET": 21, "NewOrderSingle_displayQty_OFFSET": 45,
        "NewOrderSingle_displayQty_NULL_VALUE": -(2 ** 63), "NewOrderSingle_displayQty_SINCE_VERSION": 0,
        "PriceNull_mantissa_NULL_VALUE": -(2 ** 63), "PriceNull_ENCODED_LENGTH": 8, "PriceNull_exponent": -4,
        "Side_Buy": 1, "Side_Sell": 2, "Side_NULL_VALUE": 255, "ExecType_Trade": ord("F"), "ExecType_NULL_VALUE": 0,
        "OrdStatus_PartiallyFilled": ord("1"), "OrderFlags_PostOnly_BIT": 0,
        "BookUpdate_levels_BLOCK_LENGTH": 22, "BookUpdate_levels_HEADER_LENGTH": 4,
        "groupSizeEncoding_ENCODED_LENGTH": 4,
    }


def test_read_new_order(codecs):
    assert codecs["codec_hotpath_lob"].read_new_order(NEW_ORDER_BYTES) == {
        "blockLength": 61, "templateId": 1, "schemaId": 1, "version": 1, "clOrdId": 0x0102030405060708,
        "account": 7, "instrumentId": 42, "side": 2, "ordType": 2, "timeInForce": 3, "postOnly": 1,
        "selfTradePrevention": 2, "price": 1234500, "quantity": 10, "stopPriceIsNull": True,
        "displayQtyIsNull": True, "sum": 1234510}


def test_write_new_order_matches_encode(codecs):
    lob, hot = codecs["sbe_lob"], codecs["codec_hotpath_lob"]
    data = hot.write_new_order(2 ** 64 - 2, 1, -5, 300, False)
    assert data == lob.encode("NewOrderSingle", clOrdId=2 ** 64 - 2, account=7, instrumentId=42, side="Buy",
                              ordType="Limit", timeInForce="GoodTillCancel", flags=[], selfTradePrevention="None",
                              price={"mantissa": -5}, quantity=300, expireTime=0, stpGroup=0)


def test_group_read_and_write(codecs):
    lob, hot = codecs["sbe_lob"], codecs["codec_hotpath_lob"]
    assert hot.read_book_update(BOOK_UPDATE_BYTES) == {
        "instrumentId": 3, "levels": [(0, 1, 1000000, 50, 2), (2, 2, 1010000, 0, 0)], "end": len(BOOK_UPDATE_BYTES)}
    levels = [(1, 2, 999, 7, 1), (0, 1, 1001, 8, 3), (2, 1, 1002, 0, 0)]
    data = hot.write_book_update(11, levels)
    assert data == lob.encode("BookUpdate", seqNum=11, transactTime=1000, instrumentId=3, levels=[
        {"action": a, "side": s, "price": {"mantissa": p}, "quantity": q, "orderCount": c} for a, s, p, q, c in levels])
    assert hot.read_book_update(lob.encode("BookUpdate", **BOOK_UPDATE))["levels"][1] == (2, 2, 1010000, 0, 0)


def test_trade_report_accessors(codecs):
    lob, hot = codecs["sbe_lob"], codecs["codec_hotpath_lob"]
    data = lob.encode("ExecutionReportTrade", seqNum=1, transactTime=2, clOrdId=5, orderId=6, tradeId=77,
                      lastPx={"mantissa": 99}, lastQty=4, leavesQty=6, liquidity="Removed")
    assert hot.read_trade_report(data) == {"seqNum": 1, "lastPx": 99, "lastQty": 4, "leavesQty": 6, "tradeId": 77,
                                           "removed": True}


def test_whole_car_through_the_accessors(codecs):
    example, hot = codecs["sbe_example"], codecs["codec_hotpath_example"]
    assert hot.write_car() == CAR_BYTES
    assert hot.read_car(CAR_BYTES) == dict(CAR, _end=len(CAR_BYTES))
    other = dict(CAR, serialNumber=2 ** 64 - 2, code="B", extras=["sportsPack"], fuelFigures=[],
                 performanceFigures=[{"octaneRating": 90, "acceleration": []}], manufacturer="", model="ü")
    data = example.encode("Car", **other)
    assert hot.read_car(data) == dict(other, _end=len(data))


def test_big_endian_accessors(codecs):
    be, hot = codecs["sbe_bigendian"], codecs["codec_hotpath_bigendian"]
    assert hot.read_car(CAR_BIG_ENDIAN_BYTES) == {
        "blockLength": 49, "templateId": 1, "serialNumber": 1234, "modelYear": 2013, "someNumbers": [1, 2, 3, 4, 5],
        "capacity": 2000, "fuelFigures": 1, "speed": 30, "mpg": 35.5}
    frame = bytearray(CAR_BIG_ENDIAN_BYTES)
    hot.write_fields(frame, 0x0102030405060708, 0x0A0B, -2.0)
    assert frame[8:16] == bytes.fromhex("0102030405060708") and frame[16:18] == bytes.fromhex("0a0b")
    assert frame[8 + 49 + 4 + 2:8 + 49 + 4 + 6] == bytes.fromhex("c0000000")
    decoded = be.decode(bytes(frame))
    assert (decoded["serialNumber"], decoded["modelYear"], decoded["fuelFigures"][0]["mpg"]) == (
        0x0102030405060708, 0x0A0B, -2.0)
