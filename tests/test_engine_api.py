"""The Python boundary: construction, batch processing, timing, introspection, `lob decode`."""
import json
import sys
from array import array

import pytest

from engine_helpers import cancel, decode_stream, nos, kind, session_engine
from lob import cli
from lob.engine import Engine
from lob.framing import iter_inbound, iter_outbound, pack_inbound, pack_outbound, split_outbound


def batch(*frames, session=1):
    return b"".join(pack_inbound(f, session, 1_000 + i) for i, f in enumerate(frames))


def test_defaults():
    engine = session_engine()
    assert engine.instruments == {1: 1}
    assert engine.max_orders == 1 << 20
    assert engine.market_data
    assert (engine.live_orders, engine.next_order_id, engine.next_trade_id, engine.next_md_seq) == (0, 1, 1, 1)
    assert engine.session(1) == {"session_id": 1, "state": "established", "transport": 1, "next_seq_no": 1,
                                 "next_recv_seq_no": 1, "keep_alive_ms": 60000, "retained": (1, 1)}


@pytest.mark.parametrize("kwargs", [
    dict(instruments={}), dict(instruments={0: 1}), dict(instruments={1: 0}), dict(instruments={1: -1}),
    dict(instruments={1 << 32: 1}), dict(max_orders=0), dict(max_orders=1 << 31),
])
def test_bad_configuration(kwargs):
    with pytest.raises(ValueError):
        Engine(**kwargs)


@pytest.mark.parametrize("wrap", [bytes, bytearray, memoryview])
def test_process_takes_any_buffer(wrap):
    engine = session_engine()
    out = engine.process(wrap(batch(nos(1, "Buy", 100, 1), nos(2, "Sell", 100, 1))))
    assert isinstance(out, bytes)
    assert [kind(r) for r in decode_stream(out)] == ["New", "New", "Trade", "Trade"]


def test_empty_batch():
    assert session_engine().process(b"") == b""


@pytest.mark.parametrize("cut", [1, 15, 17, 16 + 61 + 3])
def test_badly_framed_batch_is_refused_before_anything_runs(cut):
    engine = session_engine()
    data = batch(nos(1, "Buy", 100, 1), nos(2, "Buy", 100, 1))
    with pytest.raises(ValueError):
        engine.process(data[:-cut])
    assert engine.session(1)["next_seq_no"] == 1 and engine.live_orders == 0


def test_output_buffers_grow_for_a_large_fan_out():
    engine = session_engine(max_orders=10_000)
    engine.process(batch(*[nos(i, "Sell", 100 + i % 50, 1) for i in range(1, 5_001)]))
    engine.take_market_data()
    out = engine.process(batch(nos(9_999, "Buy", 1_000, 5_000)))
    reports = decode_stream(out)
    assert len(reports) == 1 + 2 * 5_000 and (kind(reports[-1]), reports[-1]["leavesQty"]) == ("Trade", 0)
    (update,) = [m for m in decode_stream(engine.take_market_data(), outbound=True) if m["_name"] == "BookUpdate"]
    assert len(update["levels"]) == 50


def test_process_timed_records_each_message():
    frames = [nos(i, "Buy" if i % 2 else "Sell", 100, 1) for i in range(1, 101)]
    plain, timed = session_engine(), session_engine()
    expected = len(plain.process(batch(*frames))) + len(plain.take_market_data())
    latencies = array("q", [0] * 100)
    assert timed.process_timed(batch(*frames), latencies) == expected
    assert min(latencies) >= 0 and sum(latencies) > 0
    assert timed.live_orders == plain.live_orders
    with pytest.raises(ValueError):
        timed.process_timed(batch(*frames), array("q", [0] * 99))


def test_introspection():
    engine = session_engine({1: 1, 5: 10})
    engine.process(batch(nos(1, "Buy", 100, 7, account=3), nos(2, "Sell", 110, 2, instrumentId=5,
                                                               timeInForce="Day", post_only=True), session=4))
    assert engine.order(4, 1) == {
        "order_id": 1, "session": 4, "cl_ord_id": 1, "account": 3, "instrument_id": 1, "side": "Buy",
        "ord_type": "Limit", "time_in_force": "GoodTillCancel", "post_only": False, "price": 100, "order_qty": 7,
        "leaves_qty": 7, "cum_qty": 0}
    assert engine.order(4, 2)["post_only"] and engine.order(4, 2)["time_in_force"] == "Day"
    assert engine.order(1, 1) is None and engine.order(4, 3) is None and engine.order(-1, 1) is None
    assert engine.orders(5) == [engine.order(4, 2)]
    assert engine.levels(1, "Buy") == [(100, 7, 1)] and engine.levels(1, 2) == []
    for bad in (2, 0, "1", 1 << 40):
        with pytest.raises(KeyError):
            engine.orders(bad)
        with pytest.raises(KeyError):
            engine.levels(bad, "Buy")
        with pytest.raises(KeyError):
            engine.book_snapshot(bad)


def test_no_python_objects_per_message():
    frames = [nos(i, "Buy" if i % 3 else "Sell", 90 + i % 20, 5) for i in range(1, 20_001)]
    frames += [cancel(30_000 + i, i) for i in range(1, 20_001, 2)]
    data = batch(*frames)
    engine = session_engine(market_data=True)
    engine.process(batch(nos(999_999, "Buy", 1, 1)))  # first-call setup out of the way
    before = sys.getallocatedblocks()
    engine.process(data)
    after = sys.getallocatedblocks()
    assert after - before < 10, f"{after - before} blocks for {len(frames)} messages"


def test_framing_helpers():
    records = pack_inbound(b"abc", 7, 9) + pack_inbound(b"", 8, 10)
    assert list(iter_inbound(records)) == [(7, 9, b"abc"), (8, 10, b"")]
    assert split_outbound(pack_outbound(b"x") + pack_outbound(b"yz")) == [b"x", b"yz"]
    with pytest.raises(ValueError):
        list(iter_inbound(records + b"\x01"))
    with pytest.raises(ValueError):
        list(iter_outbound(pack_outbound(b"xy")[:-1]))


# --- lob decode ------------------------------------------------------------------------------------

def decode_command(capsys, *args):
    assert cli.main(["decode", *map(str, args)]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_decode_inbound_and_outbound_files(tmp_path, capsys):
    inbound = batch(nos(1, "Buy", 100, 1), cancel(2, 1), session=3)
    engine = session_engine()
    (tmp_path / "in.bin").write_bytes(inbound)
    (tmp_path / "out.bin").write_bytes(engine.process(inbound))
    (tmp_path / "md.bin").write_bytes(engine.take_market_data())

    lines = decode_command(capsys, tmp_path / "in.bin")
    assert [(x["_transport"], x["_timestamp_ns"], x["_name"]) for x in lines] == [
        (3, 1_000, "NewOrderSingle"), (3, 1_001, "OrderCancelRequest")]
    assert lines[0]["price"] == {"mantissa": 100, "exponent": -4}
    assert [(x["_session"], x["_transport"], kind(x)) for x in decode_command(capsys, tmp_path / "out.bin")] == [
        (3, 3, "New"), (3, 3, "Canceled")]
    assert len(decode_command(capsys, tmp_path / "out.bin", "--execution")) == 2
    assert [x["_name"] for x in decode_command(capsys, tmp_path / "md.bin", "--outbound")] == ["BookUpdate"] * 2
    assert len(decode_command(capsys, tmp_path / "in.bin", "--inbound")) == 2


def test_decode_shows_unreadable_frames(tmp_path, capsys):
    (tmp_path / "bad.bin").write_bytes(pack_inbound(b"\x01\x02\x03", 1, 2))
    (line,) = decode_command(capsys, tmp_path / "bad.bin", "--inbound")
    assert line["_transport"] == 1 and line["_length"] == 3 and line["_hex"] == "010203" and "_error" in line


def test_decode_refuses_what_it_cannot_frame(tmp_path, capsys):
    (tmp_path / "junk.bin").write_bytes(b"\xff" * 7)
    assert cli.main(["decode", str(tmp_path / "junk.bin")]) == 1
    assert "--inbound" in capsys.readouterr().err


def _rss_bytes():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024


def test_prefault_touches_the_pools_and_changes_nothing():
    from lob.tools.workload import WorkloadSpec, generate
    encoded = generate(WorkloadSpec(orders=4_000, seed=5)).encode()
    frames = [pack_inbound(f, 1, 1_000 + i) for i, f in enumerate(encoded.frame_list())]
    first, second = b"".join(frames[:2_000]), b"".join(frames[2_000:])
    fresh = session_engine(max_orders=100_000)
    before = _rss_bytes()
    touched = fresh.prefault()
    assert touched > 100_000 * 8 and touched % 4096 == 0
    assert _rss_bytes() - before >= touched * 0.9       # the pages are there now, not when first used
    plain, faulted = session_engine(max_orders=100_000), session_engine(max_orders=100_000)
    assert plain.process(first) == faulted.process(first)
    assert faulted.prefault() == touched                # with 2,000 orders in: their state stays as it was
    assert plain.process(second) == faulted.process(second)
    assert (plain.live_orders, plain.next_order_id, plain.session(1)) == (
        faulted.live_orders, faulted.next_order_id, faulted.session(1))
    assert plain.take_market_data() == faulted.take_market_data()
