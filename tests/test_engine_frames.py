"""Frames the engine cannot read are answered with a MessageReject; nothing crashes, nothing changes."""
import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from engine_helpers import Harness, cancel, er, kind, mass_cancel, message_reject, nos, replace
from lob.sbe import messages

NOS_BLOCK = len(nos(1)) - 8


def header(block_length, template_id, schema_id=messages.SCHEMA_ID, version=messages.SCHEMA_VERSION):
    return struct.pack("<HHHH", block_length, template_id, schema_id, version)


def with_header(frame, **changes):
    fields = dict(zip(("block_length", "template_id", "schema_id", "version"), struct.unpack_from("<HHHH", frame)))
    fields.update(changes)
    return header(**fields) + frame[8:]


def resting_harness():
    h = Harness()
    h.send(nos(1, "Buy", 100, 10))
    h.md()
    return h


def assert_rejected(frame, reason, ref_template_id, session=1):
    h = resting_harness()
    # the resting order was session 1's first message, so this frame is its second
    assert h.send(frame, session=session) == [message_reject(reason, ref_template_id, len(frame), session,
                                                             refSeqNo=2 if session == 1 else 1)]
    assert h.book() == [("Buy", 100, 10, 0, 1, 1, 1)] and h.md() == []


def test_empty_frame():
    assert_rejected(b"", "MalformedFrame", 0)


def test_frame_too_short_for_a_template_id():
    assert_rejected(b"\x35\x00\x01", "MalformedFrame", 0)


def test_frame_shorter_than_the_header_reports_its_template_id():
    assert_rejected(nos(1)[:6], "MalformedFrame", 1)
    assert_rejected(nos(1)[:4], "MalformedFrame", 1)


def test_header_only():
    assert_rejected(nos(1)[:8], "MalformedFrame", 1)


def test_truncated_body():
    assert_rejected(nos(1)[:-1], "MalformedFrame", 1)
    assert_rejected(cancel(2, 1)[:-3], "MalformedFrame", 2)


def test_wrong_schema_id():
    assert_rejected(with_header(nos(1), schema_id=messages.SCHEMA_ID + 1), "UnknownSchema", 1)


def test_wrong_schema_id_wins_over_a_short_body():
    assert_rejected(with_header(nos(1), schema_id=77)[:12], "UnknownSchema", 1)


def test_unknown_template():
    assert_rejected(header(4, 99) + b"\x00" * 4, "UnknownTemplate", 99)
    assert_rejected(header(0, 0), "UnknownTemplate", 0)


def test_outbound_and_snapshot_templates_are_not_accepted_inbound():
    report = messages.encode("MessageReject", seqNum=1, transactTime=2, refSeqNo=3, refClOrdId=4, refTemplateId=4,
                             refLength=5, reason="None")
    assert_rejected(report, "UnknownTemplate", 69)
    assert_rejected(messages.encode("NegotiationResponse", sessionId=1, requestTimestamp=2), "UnknownTemplate", 50)
    assert_rejected(messages.encode("SnapshotInstrument", instrumentId=1, tick=1, state="Trading",
                                    lastTradePrice={"mantissa": None}, lot=1, bandBp=0, bandTicks=0,
                                    referencePrice={"mantissa": None}, maxOrderQty=0, maxNotional=0,
                                    algorithm="PriceTime", minAllocation=1, stpDefault="None"),
                    "UnknownTemplate", 31)


def test_block_length_shorter_than_the_message_needs():
    frame = nos(1)
    assert_rejected(with_header(frame, block_length=NOS_BLOCK - 1)[:-1], "MalformedFrame", 1)
    assert_rejected(with_header(frame, block_length=NOS_BLOCK - 1), "MalformedFrame", 1)


def test_block_length_longer_than_the_frame():
    assert_rejected(with_header(mass_cancel(9, 1), block_length=100), "MalformedFrame", 4)


def test_newer_version_with_a_longer_block_is_read_by_the_extension_rules():
    frame = with_header(nos(2, "Sell", 100, 4), block_length=NOS_BLOCK + 6, version=messages.SCHEMA_VERSION + 3)
    h = resting_harness()
    reports = h.send(frame + b"\xee" * 6 + b"trailing var data")
    assert [kind(r) for r in reports] == ["New", "Trade", "Trade"]
    assert reports[0] == er("New", "New", clOrdId=2, orderId=2, side="Sell", price=100, orderQty=4, leavesQty=4)


def test_newer_version_of_every_request_is_accepted():
    h = resting_harness()
    for frame in (nos(2, "Buy", 99, 1), replace(3, 2, 98, 1), cancel(4, 3), mass_cancel(5, 1)):
        newer = with_header(frame, version=messages.SCHEMA_VERSION + 1)
        assert h.send(newer)[0]["_name"] != "MessageReject"
    assert h.book() == []


def test_reject_goes_to_the_sending_session_and_takes_its_sequence_numbers():
    h = Harness()
    h.send(nos(1, "Buy", 100, 1), session=4)
    h.send(nos(1, "Buy", 100, 1), session=9)
    assert h.send(b"junk", session=9, timestamp=77, sequences=True) == [
        {"_name": "MessageReject", "seqNum": 2, "transactTime": 77, "sessionId": 9, "refSeqNo": 2, "refClOrdId": 0,
         "refTemplateId": int.from_bytes(b"nk", "little"), "refLength": 4, "reason": "MalformedFrame"}]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80))
def test_random_bytes_never_crash_and_never_touch_the_book(data):
    h = resting_harness()
    reports = h.send(data)
    assert len(reports) >= 1
    if reports[0]["_name"] == "MessageReject":
        template = reports[0]["refTemplateId"]
        if 40 <= template <= 44 or 70 <= template <= 72:    # a session-layer template: answered unsequenced
            expected = message_reject(reports[0]["reason"], template, len(data), sessionId=0, refSeqNo=0)
        else:
            expected = message_reject(reports[0]["reason"], template, len(data), refSeqNo=2)
        assert reports == [expected]
        assert h.book() == [("Buy", 100, 10, 0, 1, 1, 1)]


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([nos(2, "Sell", 100, 3), cancel(2, 1), replace(2, 1, 101, 5), mass_cancel(2, 0)]),
       st.data())
def test_any_truncation_of_a_valid_request_is_a_malformed_frame(frame, data):
    cut = data.draw(st.integers(0, len(frame) - 1))
    template_id = struct.unpack_from("<H", frame, 2)[0] if cut >= 4 else 0
    assert_rejected(frame[:cut], "MalformedFrame", template_id)
