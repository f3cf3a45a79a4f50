"""Deterministic inbound traffic for the snapshot, recovery and replay tests, and small journal helpers."""
import random

from engine_helpers import TEST_SESSIONS, cancel, logon_records, mass_cancel, nos, replace, session_engine

from lob import credentials
from lob.framing import iter_inbound, pack_inbound
from lob.journal import JournalWriter

INSTRUMENTS = {1: 1, 7: 5}
SESSIONS = (11, 12, 13)
TEST_CREDENTIALS = credentials.for_tests(TEST_SESSIONS)


def logons(sessions, timestamp):
    """[(transport, timestamp_ns, frame)]: Negotiate + Establish of each test session (on its own id)."""
    return [record for s in sessions for record in iter_inbound(logon_records(s, timestamp=timestamp))]


def traffic(count, seed, sessions=SESSIONS, instruments=INSTRUMENTS, first_cl_ord_id=1, start_ns=1_700_000_000_000_000_000,
            logon=True):
    """The sessions' logons (unless logon=False), then `count` messages [(session, timestamp_ns, frame)] drawn
    from `seed`: limit orders around a fixed mid (so many cross and trade), some post-only, Day, IOC or
    market; cancels and replaces of earlier orders (live or not: rejects are part of the stream); mass
    cancels; now and then a malformed frame."""
    rng = random.Random(seed)
    sent = {s: [] for s in sessions}
    next_cl = {s: first_cl_ord_id for s in sessions}
    timestamp = start_ns
    out = logons(sessions, start_ns) if logon else []
    for _ in range(count):
        session = rng.choice(sessions)
        timestamp += rng.randrange(1, 50_000)
        cl = next_cl[session]
        next_cl[session] += 1
        instrument = rng.choice(list(instruments))
        tick = instruments[instrument]
        r = rng.random()
        if r < 0.55 or not sent[session]:
            side = rng.choice(("Buy", "Sell"))
            away = rng.randrange(-3, 15)  # ticks on the passive side of 1000; negative ones cross
            price = (1000 - away if side == "Buy" else 1000 + away) * tick
            tif = rng.choices(("GoodTillCancel", "Day", "ImmediateOrCancel"), (7, 2, 1))[0]
            frame = nos(cl, side, price, rng.randrange(1, 60), instrumentId=instrument, timeInForce=tif,
                        account=rng.randrange(4), post_only=rng.random() < 0.1)
            sent[session].append((cl, side, instrument))
        elif r < 0.78:
            orig, side, instrument = rng.choice(sent[session][-12:])
            frame = cancel(cl, orig, side, instrument)
        elif r < 0.92:
            orig, side, instrument = rng.choice(sent[session][-12:])
            tick = instruments[instrument]
            frame = replace(cl, orig, (1000 + rng.randrange(-8, 9)) * tick, rng.randrange(1, 60), side, instrument)
        elif r < 0.96:
            frame = nos(cl, rng.choice(("Buy", "Sell")), None, rng.randrange(1, 80), instrumentId=instrument,
                        ordType="Market", timeInForce="ImmediateOrCancel")
        elif r < 0.965:
            frame = mass_cancel(cl, rng.choice([0, instrument]))
        else:
            frame = rng.choice((b"\x01\x02\x03", bytes([8, 0, 99, 0, 1, 0, 0, 0]) + bytes(8)))
        out.append((session, timestamp, frame))
    return out


def inbound(messages):
    """The messages as one buffer of inbound records (Engine.process input)."""
    return b"".join(pack_inbound(frame, session, timestamp) for session, timestamp, frame in messages)


def new_engine(instruments=INSTRUMENTS, max_orders=4096):
    """An engine that knows the test sessions; the traffic logs them on."""
    return session_engine(instruments, max_orders=max_orders, logged_on=())


def write_journal(directory, messages, **writer_options):
    """Append the messages to the journal in `directory` (continuing it); returns the last sequence."""
    writer = JournalWriter(directory, segment_size=writer_options.pop("segment_size", 1 << 20), **writer_options)
    try:
        for session, timestamp, frame in messages:
            writer.append(session, timestamp, frame)
        writer.commit()
        return writer.next_seq - 1
    finally:
        writer.close()


def book_state(engine):
    """Everything observable about an engine's state, for exact comparison."""
    return {
        "orders": {i: engine.orders(i) for i in engine.instruments},
        "levels": {(i, side): engine.levels(i, side) for i in engine.instruments for side in ("Buy", "Sell")},
        "live_orders": engine.live_orders,
        "next_order_id": engine.next_order_id,
        "next_trade_id": engine.next_trade_id,
        "sessions": [engine.session(i) for i in engine.session_ids],
        "last_prices": {i: engine.last_price(i) for i in engine.instruments},
        "next_md_seq": engine.next_md_seq,
        "traded_quantity": engine.traded_quantity,
    }
