"""Snapshots: the file, an exact round trip of the engine's state, and skipping a damaged newest snapshot."""
import os
import struct
from collections import Counter

import pytest
from engine_helpers import TEST_SESSIONS, cancel, decode_stream, mass_cancel, nos, replace, session_engine
from journal_helpers import book_state, inbound, logons, new_engine, traffic

from lob import credentials
from lob.framing import iter_execution, pack_inbound
from lob.journal import crc32c_of
from lob.sbe import messages
from lob.snapshot import (
    SnapshotError,
    encode_snapshot,
    latest_snapshot,
    list_snapshots,
    load_snapshot,
    read_frames,
    write_snapshot,
)

TEST_CREDENTIALS = credentials.for_tests(TEST_SESSIONS)
INSTRUMENTS = {1: 1, 7: 5, 3: 1}   # the random traffic uses 1 and 7; instrument 3 holds a hand-made book
T0 = 1_700_000_000_000_000_000     # the random traffic starts here (and spans less than a minute) ...
TH = T0 + 10 ** 12                 # ... the hand-made book after it


def hand_made_book():
    """Instrument 3: two bids share 500 (s11 first), a post-only bid at 501, asks at 505 (partly filled)
    and 510 (s11 first, a Day order)."""
    return [
        (11, TH + 1, nos(9001, "Buy", 500, 5, instrumentId=3, account=2)),
        (12, TH + 2, nos(9001, "Buy", 500, 7, instrumentId=3)),
        (13, TH + 3, nos(9001, "Buy", 501, 3, instrumentId=3, post_only=True)),
        (11, TH + 4, nos(9002, "Sell", 510, 4, instrumentId=3, timeInForce="Day")),
        (12, TH + 5, nos(9002, "Sell", 510, 6, instrumentId=3)),
        (13, TH + 6, nos(9002, "Sell", 505, 10, instrumentId=3)),
        (11, TH + 7, nos(9003, "Buy", 505, 4, instrumentId=3, timeInForce="ImmediateOrCancel")),
    ]


def summary(orders):
    return [(o["side"], o["price"], o["leaves_qty"], o["cum_qty"], o["session"], o["cl_ord_id"], o["time_in_force"],
             o["post_only"], o["account"]) for o in orders]


@pytest.fixture
def original():
    """An engine after 800 random messages and then the hand-made book; its market data already taken."""
    engine = new_engine(INSTRUMENTS)
    engine.process(inbound(traffic(800, seed=5, start_ns=T0) + hand_made_book()))
    engine.take_market_data()
    return engine


def test_hand_made_book_is_what_the_tests_assume(original):
    assert summary(original.orders(3)) == [
        ("Buy", 501, 3, 0, 13, 9001, "GoodTillCancel", True, 0),
        ("Buy", 500, 5, 0, 11, 9001, "GoodTillCancel", False, 2),
        ("Buy", 500, 7, 0, 12, 9001, "GoodTillCancel", False, 0),
        ("Sell", 505, 6, 4, 13, 9002, "GoodTillCancel", False, 0),
        ("Sell", 510, 4, 0, 11, 9002, "Day", False, 0),
        ("Sell", 510, 6, 0, 12, 9002, "GoodTillCancel", False, 0),
    ]
    assert book_state(original)["last_prices"][3] == 505
    assert {k: v for k, v in book_state(original).items() if k not in ("orders", "levels", "sessions", "last_prices")} == {
        "live_orders": 105, "next_order_id": 491, "next_trade_id": 208, "next_md_seq": 788, "traded_quantity": 3288}
    # each session's next seqNum follows the application messages routed to it
    out = new_engine(INSTRUMENTS).process(inbound(traffic(800, seed=5, start_ns=T0) + hand_made_book()))
    sent = Counter(session for session, _, frame in iter_execution(out) if frame[2] >= 60)
    assert [(s["session_id"], s["state"], s["transport"], s["next_seq_no"]) for s in book_state(original)["sessions"]
            if s["state"] != "idle"] == [(i, "established", i, sent[i] + 1) for i in (11, 12, 13)]


def test_snapshot_file_layout(original, tmp_path):
    path = write_snapshot(original, tmp_path, 812)
    assert os.path.basename(path) == "snapshot-00000000000000000812.snap"
    assert os.listdir(tmp_path) == ["snapshot-00000000000000000812.snap"]   # the temporary file is gone
    data = open(path, "rb").read()
    assert data == encode_snapshot(original, 812)
    assert data[:16] == b"LOBSNAP\x00" + struct.pack("<II", 4, 0)
    assert data[-16:] == b"LOBSEND\x00" + struct.pack("<II", crc32c_of(data[:-16]), 0)

    frames = [messages.decode(bytes(f)) for f in read_frames(data)]
    assert {k: v for k, v in frames[0].items() if not k.startswith("_")} == {
        "journalSeq": 812, "nextOrderId": original.next_order_id, "nextTradeId": original.next_trade_id,
        "nextMdSeq": original.next_md_seq, "lastTransactTime": TH + 7, "instrumentCount": 3,
        "orderCount": original.live_orders, "tradedQty": original.traded_quantity, "sessionCount": 16}
    assert [(f["_name"], f["instrumentId"], f["tick"]) for f in frames[1:4]] == [
        ("SnapshotInstrument", 1, 1), ("SnapshotInstrument", 7, 5), ("SnapshotInstrument", 3, 1)]
    sessions = frames[4:20]
    assert [(f["_name"], f["sessionId"], f["state"], f["transport"], f["nextSeqNo"]) for f in sessions] == [
        ("SnapshotSession", s["session_id"], {"idle": 0, "established": 2}[s["state"]], s["transport"],
         s["next_seq_no"]) for s in (original.session(i) for i in range(1, 17))]
    s11 = sessions[10]
    assert s11["ringFirstSeqNo"] == 1 and s11["ring"] == b"".join(
        len(f).to_bytes(4, "little") + f for f in original.retained(11, 1, s11["nextSeqNo"] - 1))
    orders = frames[20:20 + original.live_orders]
    assert {f["_name"] for f in orders} == {"SnapshotOrder"}
    accounts = frames[20 + original.live_orders:]
    assert sorted((f["account"], f["instrumentId"], f["openOrders"], f["position"]) for f in accounts) == sorted(
        (a["account"], a["instrument_id"], a["open_orders"], a["position"]) for a in original.accounts())
    assert {f["_name"] for f in accounts} == {"SnapshotAccount"} and accounts
    # Each side from the worst level to the best, oldest first within a level.
    assert [(f["side"], f["price"]["mantissa"], f["sessionId"], f["clOrdId"], f["leavesQty"], f["cumQty"])
            for f in orders if f["instrumentId"] == 3] == [
        ("Buy", 500, 11, 9001, 5, 0), ("Buy", 500, 12, 9001, 7, 0), ("Buy", 501, 13, 9001, 3, 0),
        ("Sell", 510, 11, 9002, 4, 0), ("Sell", 510, 12, 9002, 6, 0), ("Sell", 505, 13, 9002, 6, 4)]
    by_id = {o["order_id"]: o for i in INSTRUMENTS for o in original.orders(i)}
    for f in orders:
        o = by_id[f["orderId"]]
        assert (f["clOrdId"], f["sessionId"], f["account"], f["instrumentId"], f["side"], f["ordType"],
                f["timeInForce"], "PostOnly" in f["flags"], f["price"]["mantissa"], f["orderQty"], f["leavesQty"],
                f["cumQty"]) == (o["cl_ord_id"], o["session"], o["account"], o["instrument_id"], o["side"],
                                  o["ord_type"], o["time_in_force"], o["post_only"], o["price"], o["order_qty"],
                                  o["leaves_qty"], o["cum_qty"])


def further_input():
    """After the snapshot: a sell sweeps instrument 3's bids (priority decides who fills), restored orders
    are canceled, replaced, collide with a new clOrdId and are mass-canceled; then more random traffic."""
    t = TH + 1000
    return logons([14], t) + [
        (14, t + 1, nos(1, "Sell", 499, 20, instrumentId=3)),
        (11, t + 2, cancel(9100, 9002, "Sell", 3)),
        (12, t + 3, replace(9101, 9002, 508, 9, "Sell", 3)),
        (13, t + 4, nos(9002, "Buy", 480, 1, instrumentId=3)),
        (14, t + 5, nos(2, "Buy", 512, 30, instrumentId=3)),
        (12, t + 6, mass_cancel(9102)),
    ] + traffic(600, seed=9, first_cl_ord_id=100_000, start_ns=t + 10, logon=False)


def test_restored_engine_has_the_same_state_and_answers_byte_for_byte(original, tmp_path):
    path = write_snapshot(original, tmp_path, 812)
    restored, seq = load_snapshot(path, max_orders=4096, sessions=TEST_CREDENTIALS)
    assert seq == 812
    assert restored.instruments == INSTRUMENTS
    assert book_state(restored) == book_state(original)
    assert restored.take_market_data() == b""

    more = inbound(further_input())
    expected_exec, got_exec = original.process(more), restored.process(more)
    assert got_exec == expected_exec
    assert restored.take_market_data() == original.take_market_data()
    assert book_state(restored) == book_state(original)

    # Priority survived the round trip: the sweep filled 501 (s13), then s11's bid at 500, then s12's.
    sweep = [r for r in decode_stream(expected_exec)[:10] if r["_name"] == "ExecutionReportTrade"]
    assert [(r["sessionId"], r["clOrdId"], r["lastPx"], r["lastQty"]) for r in sweep if r["liquidity"] == "Added"] == [
        (13, 9001, 501, 3), (11, 9001, 500, 5), (12, 9001, 500, 7)]
    # what the sessions were sent before the snapshot can still be sent again, byte for byte
    for session in (11, 12, 13):
        assert restored.retained(session, 1, 10_000) == original.retained(session, 1, 10_000) != []


def test_restored_order_ids_still_collide(original, tmp_path):
    restored, _ = load_snapshot(write_snapshot(original, tmp_path, 1), max_orders=4096, sessions=TEST_CREDENTIALS)
    frame = pack_inbound(nos(9002, "Buy", 480, 1, instrumentId=3), 13, TH + 99)
    out = restored.process(frame)
    assert out == original.process(frame)
    [report] = decode_stream(out)
    assert (report["_name"], report["reason"], report["clOrdId"]) == ("ExecutionReportRejected", "DuplicateClOrdId", 9002)


def test_empty_engine_round_trip(tmp_path):
    engine = session_engine({5: 2})
    restored, seq = load_snapshot(write_snapshot(engine, tmp_path, 0), sessions=TEST_CREDENTIALS)
    assert seq == 0 and restored.instruments == {5: 2}
    assert book_state(restored) == book_state(engine)
    assert book_state(restored)["next_order_id"] == 1


def snapshots_at(tmp_path, seqs):
    """Snapshots of one engine after each of `seqs` messages of random traffic; returns {seq: state}."""
    engine = new_engine(INSTRUMENTS)
    messages_ = traffic(max(seqs), seed=21)
    states, done = {}, 0
    for seq in sorted(seqs):
        engine.process(inbound(messages_[done:seq]))
        engine.take_market_data()
        done = seq
        write_snapshot(engine, tmp_path, seq)
        states[seq] = book_state(engine)
    return states


def test_a_damaged_newest_snapshot_is_skipped_for_the_next_older(tmp_path):
    states = snapshots_at(tmp_path, [100, 200, 300])
    paths = {seq: os.path.join(tmp_path, f"snapshot-{seq:020d}.snap") for seq in states}
    assert list_snapshots(tmp_path) == [paths[300], paths[200], paths[100]]
    with open(paths[300], "r+b") as f:     # one flipped bit in an order
        f.seek(1000)
        byte = f.read(1)
        f.seek(1000)
        f.write(bytes([byte[0] ^ 0x10]))
    log = []
    engine, seq, path = latest_snapshot(tmp_path, log=log.append, max_orders=4096, sessions=TEST_CREDENTIALS)
    assert (seq, path) == (200, paths[200])
    assert book_state(engine) == states[200]
    assert log == [f"skipping {paths[300]}: checksum mismatch"]

    os.truncate(paths[200], os.path.getsize(paths[200]) - 5)   # a write cut short
    (tmp_path / "snapshot-00000000000000000400.snap").write_bytes(b"not a snapshot at all" * 3)
    (tmp_path / "snapshot-00000000000000000500.snap.tmp").write_bytes(b"left behind by a crash")
    log = []
    engine, seq, path = latest_snapshot(tmp_path, log=log.append, max_orders=4096, sessions=TEST_CREDENTIALS)
    assert (seq, path) == (100, paths[100])
    assert book_state(engine) == states[100]
    assert log == [f"skipping {tmp_path}/snapshot-00000000000000000400.snap: not a snapshot file",
                   f"skipping {paths[300]}: checksum mismatch",
                   f"skipping {paths[200]}: truncated (no trailer)"]


def test_no_loadable_snapshot(tmp_path):
    assert latest_snapshot(tmp_path / "missing") == (None, 0, None)
    (tmp_path / "snapshot-00000000000000000001.snap").write_bytes(b"")
    log = []
    assert latest_snapshot(tmp_path, log=log.append) == (None, 0, None)
    assert log == [f"skipping {tmp_path}/snapshot-00000000000000000001.snap: not a snapshot file"]


def test_a_snapshot_larger_than_the_pool_is_refused(original, tmp_path):
    path = write_snapshot(original, tmp_path, 7)
    with pytest.raises(SnapshotError, match=f"{original.live_orders} resting orders do not fit an engine of 10"):
        load_snapshot(path, max_orders=10, sessions=TEST_CREDENTIALS)
