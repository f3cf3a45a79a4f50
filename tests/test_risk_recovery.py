"""Recovery and replay with risk state: a snapshot taken mid-stream plus the journal tail gives the same
execution stream, byte for byte, and the same instrument states, positions and GoodTillDate expiries as an
engine that never stopped."""
import random

from engine_helpers import ADMIN_SESSION, cancel, end_of_day, harness_sessions, logon_records, nos, replace, set_state
from journal_helpers import inbound, write_journal
from lob.accounts import AccountLimits, AccountRules
from lob.engine import Engine
from lob.framing import iter_execution, iter_inbound
from lob.instruments import InstrumentSpec
from lob.recovery import recover
from lob.replay import replay_journal_bytes
from lob.sbe import messages
from lob.snapshot import load_snapshot, write_snapshot

START = 1_700_000_000 * 10 ** 9
SPECS = {1: InstrumentSpec(1, band_ticks=6, reference_price=1000), 7: InstrumentSpec(7, tick=5, lot=2)}
ACCOUNTS = AccountRules(AccountLimits(max_open_orders=6, max_position=300))
SESSIONS = (1, 2, 3)


def flow(count, seed=3):
    """[(transport, timestamp, frame)]: logons, then orders (a third GoodTillDate), cancels, replaces,
    admin requests and an EngineTick every few messages, 0.2 s apart."""
    r = random.Random(seed)
    out = [rec for s in SESSIONS + (ADMIN_SESSION,) for rec in iter_inbound(logon_records(s, timestamp=START))]
    tick = messages.encode("EngineTick", reserved=0)
    now, cl = START, 1
    for _ in range(count):
        now += 200_000_000
        session, cl = r.choice(SESSIONS), cl + 1
        kind = r.random()
        instrument = r.choice((1, 7))
        step = SPECS[instrument].tick
        if kind < 0.55:
            tif = r.choice(("GoodTillCancel", "Day", "GoodTillDate", "GoodTillDate"))
            frame = nos(cl, r.choice(("Buy", "Sell")), (1000 // step + r.randint(-8, 8)) * step, r.randint(1, 40),
                        instrumentId=instrument, account=r.randint(0, 3), timeInForce=tif,
                        expireTime=now // 10 ** 9 + r.randint(1, 20) if tif == "GoodTillDate" else 0)
        elif kind < 0.7:
            frame = cancel(cl, r.randint(1, cl), r.choice(("Buy", "Sell")), instrument)
        elif kind < 0.8:
            frame = replace(cl, r.randint(1, cl), (1000 // step + r.randint(-8, 8)) * step, 2 * r.randint(1, 20),
                            r.choice(("Buy", "Sell")), instrument)
        elif kind < 0.84:
            session, frame = ADMIN_SESSION, set_state(cl, r.choice(("Trading", "Trading", "Halted", "Closed")),
                                                      instrument)
        elif kind < 0.86:
            session, frame = ADMIN_SESSION, end_of_day(cl, r.choice((0, instrument)))
        else:
            session, frame = 0, tick
        out.append((session, now, frame))
    return out


def new_engine():
    return Engine(SPECS, max_orders=4096, sessions=harness_sessions(), accounts=ACCOUNTS)


def state(engine):
    return (engine.accounts(), {i: engine.orders(i) for i in SPECS}, {i: engine.instrument_state(i) for i in SPECS},
            {i: engine.last_price(i) for i in SPECS}, engine.next_order_id, engine.next_md_seq)


def test_snapshot_plus_journal_tail_is_the_engine_that_never_stopped(tmp_path):
    records = flow(1500)
    middle = len(records) // 2
    full = new_engine()
    head = full.process(inbound(records[:middle]))
    tail = full.process(inbound(records[middle:]))
    reasons = {messages.decode(f).get("reason") for _, _, f in iter_execution(head + tail)}
    assert {"ExpireTime", "EndOfDay", "InstrumentHalted", "RiskPriceBand", "InvalidLot"} <= reasons

    journal = str(tmp_path / "journal")
    write_journal(journal, records)
    snapshots = str(tmp_path / "snapshots")
    halfway = new_engine()
    halfway.process(inbound(records[:middle]))
    write_snapshot(halfway, snapshots, middle)

    restored, seq = load_snapshot(f"{snapshots}/snapshot-{middle:020d}.snap", max_orders=4096,
                                  sessions=harness_sessions(), instruments=SPECS, accounts=ACCOUNTS)
    assert seq == middle and state(restored) == state(halfway)
    replayed, last_seq, stream = replay_journal_bytes(restored, journal, from_seq=middle + 1)
    assert stream == tail and state(restored) == state(full)

    recovered = recover(journal, snapshots, instruments=SPECS, max_orders=4096, sessions=harness_sessions(),
                        accounts=ACCOUNTS)
    assert recovered.snapshot_seq == middle and state(recovered.engine) == state(full)
