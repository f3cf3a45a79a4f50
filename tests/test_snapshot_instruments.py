"""Instrument settings survive a snapshot: matching algorithm and minimum allocation, STP default, lot, band,
limits and state come back from the file alone, so the recovered engine answers as the one that wrote it."""
import copy

from engine_helpers import ADMIN_SESSION, Harness, harness_sessions, nos, set_state
from lob.instruments import InstrumentSpec
from lob.snapshot import load_snapshot, write_snapshot

SPECS = {
    1: InstrumentSpec(1, symbol="PRO", algorithm="pro-rata", min_allocation=2, stp="CancelResting", band_ticks=50,
                      reference_price=100, max_order_qty=1_000, max_notional=1_000_000),
    2: InstrumentSpec(2, symbol="LOT", tick=5, lot=2, band_bp=500, reference_price=1_000),
    3: InstrumentSpec(3, state="halted"),
}


def fills(reports):
    return [(m["orderId"], m["lastQty"], m["leavesQty"]) for m in reports
            if m["_name"] == "ExecutionReportTrade" and m["liquidity"] == "Added"]


def continuation(h):
    """What the engine answers to the same messages after the snapshot."""
    out = [h.send(nos(10, "Buy", 100, 20, account=1), session=2)]     # STP (default), then pro-rata
    out.append(h.send(nos(11, "Buy", 151, 5)))                         # beyond the band
    out.append(h.send(nos(12, "Buy", 100, 1_001)))                     # over the maximum quantity
    out.append(h.send(nos(13, "Buy", 1_000, 3, instrumentId=2)))       # not a whole lot
    out.append(h.send(nos(14, "Buy", 1_060, 2, instrumentId=2)))       # beyond 5% of 1,000
    out.append(h.send(nos(15, "Buy", 100, 2, instrumentId=3)))         # halted
    out.append(h.send(set_state(16, "Trading", 3), session=ADMIN_SESSION))
    out.append(h.send(nos(17, "Buy", 100, 2, instrumentId=3)))
    return out


def test_a_snapshot_restores_every_instrument_setting_without_the_instruments_file(tmp_path):
    h = Harness(SPECS)
    h.send(nos(1, "Sell", 100, 30, account=1), session=2)
    h.send(nos(2, "Sell", 100, 10, account=2), session=3)
    h.send(nos(3, "Sell", 100, 20, account=3), session=2)
    restored, _ = load_snapshot(write_snapshot(h.engine, tmp_path, 1), sessions=harness_sessions())
    assert restored.instrument_specs == SPECS_WITHOUT_SYMBOLS
    assert restored.instrument_state(3) == "halted"

    other = copy.copy(h)
    other.engine, other.logged_on = restored, set(h.logged_on)
    want, got = continuation(h), continuation(other)
    assert got == want
    # what pro-rata with a minimum of 2 and CancelResting by default give: order 1 (account 1, the
    # aggressor's own) canceled, then 20 shared 6 / 13 over 10 and 20, the lot left over by time
    assert [m["reason"] for m in want[0] if m["_name"] == "ExecutionReportCanceled"] == ["SelfTradePrevented"]
    assert fills(want[0]) == [(2, 7, 3), (3, 13, 7)]
    assert [m[0]["reason"] for m in want[1:6]] == ["RiskPriceBand", "RiskMaxOrderQty", "InvalidLot", "RiskPriceBand",
                                                   "InstrumentHalted"]
    assert want[7][0]["_name"] == "ExecutionReportNew"


def test_the_snapshot_wins_over_a_changed_instruments_file_but_keeps_its_symbols(tmp_path):
    h = Harness(SPECS)
    path = write_snapshot(h.engine, tmp_path, 1)
    changed = {1: InstrumentSpec(1, symbol="NEW"), 2: InstrumentSpec(2, tick=5)}
    restored, _ = load_snapshot(path, sessions=harness_sessions(), instruments=changed)
    assert restored.instrument_specs[1] == InstrumentSpec(**{**vars(SPECS[1]), "symbol": "NEW"})
    assert restored.instrument_specs[2] == SPECS_WITHOUT_SYMBOLS[2]


SPECS_WITHOUT_SYMBOLS = {i: InstrumentSpec(**{**vars(s), "symbol": ""}) for i, s in SPECS.items()}


def as_version_3(data):
    """A version 4 snapshot file rewritten as version 3 wrote it: SnapshotInstrument without the settings."""
    import struct

    from lob.journal import crc32c_of
    from lob.sbe import messages

    out, offset, end = bytearray(b"LOBSNAP\x00" + struct.pack("<II", 3, 0)), 16, len(data) - 16
    while offset < end:
        length = int.from_bytes(data[offset:offset + 4], "little")
        frame = data[offset + 4:offset + 4 + length]
        if int.from_bytes(frame[2:4], "little") == messages.MESSAGES["SnapshotInstrument"]:
            frame = struct.pack("<H", 21) + frame[2:8 + 21]     # id, tick, state, last trade price
        out += struct.pack("<I", len(frame)) + frame
        offset += 4 + length
    return bytes(out + b"LOBSEND\x00" + struct.pack("<II", crc32c_of(bytes(out)), 0))


def test_a_version_3_snapshot_still_loads_with_the_settings_from_the_instruments_file(tmp_path):
    h = Harness(SPECS)
    h.send(nos(1, "Sell", 100, 30, account=1), session=2)
    old = tmp_path / "old.snap"
    old.write_bytes(as_version_3(open(write_snapshot(h.engine, tmp_path, 1), "rb").read()))
    restored, _ = load_snapshot(str(old), sessions=harness_sessions(), instruments=SPECS)
    assert restored.instrument_specs == SPECS and restored.orders(1) == h.engine.orders(1)
    assert restored.last_price(1) is None and restored.instrument_state(3) == "halted"
    bare, _ = load_snapshot(str(old), sessions=harness_sessions())
    assert bare.instrument_specs == {1: InstrumentSpec(1), 2: InstrumentSpec(2, tick=5), 3: InstrumentSpec(3)}
    assert bare.instrument_state(3) == "halted"
