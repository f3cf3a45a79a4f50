"""Random order flow through the Engine and through the reference model: every report, every market
data message and the resting orders must agree after every message.

Hypothesis draws the flow as a list of seeds, each for a burst of up to ten messages. A seed picks its
messages with a plain `random.Random` (Hypothesis' own value choices lean towards repeating one value,
which keeps books one-sided); a message may name a live order of the model's book, so cancels and
replaces mostly hit something. Shrinking drops bursts.

The clock moves 1 ns per message, and EngineTick records move it up to two seconds, never past
MAX_CLOCK_NS (well inside the sessions' keep-alive interval, so no heartbeat or timeout comes into play);
GoodTillDate orders expire 0..3 seconds after the current second."""
import random
import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from engine_helpers import (ADMIN_SESSION, KEEP_ALIVE_MS, cancel, decode_stream, end_of_day, harness_sessions,
                            mass_cancel, nos, replace, session_engine, set_state)
from lob.accounts import AccountLimits, AccountRules
from lob.engine import Engine
from lob.framing import pack_inbound
from lob.instruments import InstrumentSpec
from lob.sbe import messages
from reference_model import ReferenceEngine

SECOND = 1_000_000_000
MAX_CLOCK_NS = 40 * SECOND
assert MAX_CLOCK_NS < KEEP_ALIVE_MS * 1_000_000
ENGINE_TICK = messages.encode("EngineTick", reserved=0)

INSTRUMENTS = {1: 1, 7: 5, 9: 1}
PRO_RATA = {9: 2}     # instrument 9 matches pro-rata, minimum allocation 2
# instrument 1 has a price band of 4 ticks around 23 (then the last trade), instrument 7 a lot of 2
SPECS = {1: InstrumentSpec(1, band_ticks=4, reference_price=23), 7: InstrumentSpec(7, tick=5, lot=2),
         9: InstrumentSpec(9, algorithm="pro-rata", min_allocation=PRO_RATA[9])}
ACCOUNTS = AccountRules(AccountLimits(max_open_orders=3, max_position=40), {2: AccountLimits(max_open_orders=2)})
MAX_ORDERS = 6
SESSIONS = (1, 2, 3)
LOGGED_ON = SESSIONS + (4, ADMIN_SESSION)


def engines():
    """(engine, model) with the same instruments, limits and sessions."""
    return (session_engine(SPECS, logged_on=LOGGED_ON, max_orders=MAX_ORDERS, accounts=ACCOUNTS,
                           sessions=harness_sessions()),
            ReferenceEngine(SPECS, MAX_ORDERS, admin_sessions=[ADMIN_SESSION], accounts=ACCOUNTS, pro_rata=PRO_RATA))


def pick(r, weighted):
    """One of a {value: weight} dict."""
    return r.choices(list(weighted), list(weighted.values()))[0]


def some_price(r, instrument):
    tick = INSTRUMENTS.get(instrument, 1)
    price = r.randint(20, 26) * tick
    return pick(r, {price: 96, price + 1: 2, 0: 1, -tick: 1})


def some_quantity(r):
    return r.randint(1, 25) if r.random() < 0.97 else r.choice([0, -5, 10 ** 12, 10 ** 12 + 1])


def new_order(r, now=0):
    instrument = pick(r, {1: 40, 7: 35, 9: 20, 99: 5})
    ord_type = pick(r, {"Limit": 70, "Market": 12, "Stop": 7, "StopLimit": 7, 9: 2})
    fields = dict(instrumentId=instrument, ordType=ord_type, account=r.randint(0, 2),
                  timeInForce=pick(r, {"GoodTillCancel": 50, "Day": 10, "ImmediateOrCancel": 17,
                                       "FillOrKill": 17, "GoodTillDate": 8, 2: 3}))
    if fields["timeInForce"] == "GoodTillDate" or r.random() < 0.02:
        fields["expireTime"] = now // SECOND + pick(r, {0: 1, 1: 3, 2: 2, 3: 1})
    if ord_type in ("Stop", "StopLimit"):
        if r.random() < 0.97:
            fields["stopPrice"] = {"mantissa": some_price(r, instrument)}
    elif r.random() < 0.01:
        fields["stopPrice"] = {"mantissa": 100}
    quantity = some_quantity(r)
    if instrument == 7 and r.random() < 0.85 and 0 < quantity < 10 ** 12:
        quantity += quantity % 2
    if r.random() < 0.2:
        fields["displayQty"] = pick(r, {r.randint(1, 6): 90, quantity + 1: 4, 0: 3, -1: 3})
    if r.random() < 0.4:
        fields["selfTradePrevention"] = pick(r, {"CancelAggressor": 24, "CancelResting": 24, "CancelBoth": 24,
                                                 "DecrementAndCancel": 24, 7: 4})
    if r.random() < 0.3:
        fields["stpGroup"] = r.randint(1, 2)
    price = None if ord_type in ("Market", "Stop") and r.random() < 0.5 else some_price(r, instrument)
    side = pick(r, {"Buy": 49, "Sell": 49, 0: 1, 3: 1})
    return nos(r.randint(1, 8), side, price, quantity, post_only=r.random() < 0.15, **fields)


def any_cancel(r):
    return cancel(r.randint(1, 8), r.randint(1, 8), r.choice(["Buy", "Sell"]), pick(r, {1: 10, 7: 10, 99: 1}))


def any_replace(r):
    instrument = r.choice([1, 7])
    return replace(r.randint(1, 8), r.randint(1, 8), some_price(r, instrument), some_quantity(r),
                   r.choice(["Buy", "Sell"]), instrument)


def live_cancel(r, o):
    side = o.side if r.random() < 0.9 else ("Buy" if o.side == "Sell" else "Sell")
    return cancel(r.randint(1, 8), o.cl_ord_id, side, o.instrument_id)


def live_replace(r, o, model):
    tick = INSTRUMENTS[o.instrument_id]
    price = (o.stop if o.ord_type == "Stop" and o in model.stops else o.price) + tick * pick(r, {0: 8, 1: 2, -1: 2, 3: 2, -3: 2, -6: 1, 6: 1})
    price = pick(r, {price: 95, price + 1: 3, 0: 2})
    qty = pick(r, {o.order_qty: 4, o.order_qty - 1: 3, o.order_qty + 5: 3, o.cum: 1, o.cum + 1: 1, 0: 1,
                   o.leaves: 1, 10 ** 12 + 1: 1})
    new_id = o.cl_ord_id if r.random() < 0.5 else r.randint(1, 8)
    side = o.side if r.random() < 0.95 else ("Buy" if o.side == "Sell" else "Sell")
    return replace(new_id, o.cl_ord_id, price, qty, side, o.instrument_id)


def bad_frame(r):
    frame = r.choice([new_order, any_cancel, any_replace, lambda r: mass_cancel(1, 0)])(r)
    block_length, template_id, schema_id, version = struct.unpack_from("<HHHH", frame)
    body = frame[8:]
    kind = r.choice(["random", "truncated", "schema", "template", "short_block", "newer"])
    if kind == "random":
        return r.randbytes(r.randint(0, 64))
    if kind == "truncated":
        return frame[:r.randint(0, len(frame) - 1)]
    if kind == "schema":
        return struct.pack("<HHHH", block_length, template_id, schema_id + 1, version) + body
    if kind == "template":
        return struct.pack("<HHHH", block_length, r.choice([0, 10, 20, 30, 99]), schema_id, version) + body
    if kind == "short_block":
        return struct.pack("<HHHH", block_length - 1, template_id, schema_id, version) + body[:-1]
    # a newer version of the message with a longer block: our fields are read, the rest skipped
    extra = r.randbytes(r.randint(1, 16))
    return struct.pack("<HHHH", block_length + len(extra), template_id, schema_id, version + 1) + body + extra


def burst(seed, model):
    """Messages chosen by the seed: yields (session, frame, ns the clock moves first); the model must
    process each before the next."""
    r = random.Random(seed)
    for _ in range(r.randint(1, 10)):
        if r.random() < 0.06:   # an EngineTick record: the clock moves on
            yield 0, ENGINE_TICK, pick(r, {r.randint(1, 2 * SECOND): 6, SECOND: 2, 1: 1})
        else:
            yield *some_message(r, model), 1


def some_message(r, model):
    """(session, frame), given the model's current book."""
    kind = pick(r, {"new": 50, "cancel_live": 12, "replace_live": 12, "cancel": 4, "replace": 4, "mass": 3,
                    "bad": 6, "state": 3, "eod": 2})
    if kind in ("state", "eod"):
        session = ADMIN_SESSION if r.random() < 0.85 else r.choice(SESSIONS)
        if kind == "eod":
            return session, end_of_day(r.randint(1, 8), pick(r, {0: 2, 1: 2, 7: 2, 9: 1, 99: 1}))
        return session, set_state(r.randint(1, 8), pick(r, {"Trading": 6, "Halted": 2, "Closed": 1, 7: 1}),
                                  pick(r, {1: 4, 7: 4, 9: 2, 99: 1}))
    if kind in ("cancel_live", "replace_live") and model.resting + model.stops:
        o = r.choice(model.resting + model.stops)
        return o.session, live_cancel(r, o) if kind == "cancel_live" else live_replace(r, o, model)
    session = r.choice(SESSIONS)
    if kind == "cancel":
        return session, any_cancel(r)
    if kind == "replace":
        return session, any_replace(r)
    if kind == "mass":
        return session, mass_cancel(r.randint(1, 8), pick(r, {0: 2, 1: 2, 7: 2, 99: 1}),
                                    pick(r, {"Both": 4, "Buy": 2, "Sell": 2, 3: 1}))
    if kind == "bad":
        return session, bad_frame(r)
    return session, new_order(r, getattr(model, "now", 0))


def check_state(engine, model):
    for instrument in INSTRUMENTS:
        assert engine.orders(instrument) == model.orders(instrument), "resting orders differ"
        for side in ("Buy", "Sell"):
            assert engine.levels(instrument, side) == model.levels(instrument, side), "levels differ"
    for instrument in INSTRUMENTS:
        assert engine.stop_orders(instrument) == model.stop_orders(instrument), "stops differ"
    assert engine.live_orders == len(model.resting) + len(model.stops)
    assert (engine.next_order_id, engine.next_trade_id, engine.next_md_seq) == \
        (model.next_order_id, model.next_trade_id, model.next_md_seq)
    for (account, instrument), position in model.positions.items():
        assert engine.account(account, instrument)["position"] == position, "positions differ"
    for instrument in INSTRUMENTS:
        assert engine.instrument_state(instrument) == model.state[instrument]
    for session in SESSIONS + (ADMIN_SESSION,):
        state = engine.session(session)
        assert (state["next_seq_no"], state["next_recv_seq_no"]) == (
            model.next_seq.get(session, 1), model.next_in_seq.get(session, 1))


def messages_of(flow, model):
    """(step, session, frame, timestamp) of a whole flow; the model must process each before the next."""
    step, clock = 0, 1_000
    for seed in flow:
        for session, frame, advance in burst(seed, model):
            clock += max(1, min(advance, MAX_CLOCK_NS - clock))
            yield step, session, frame, clock
            step += 1


seeds = st.lists(st.integers(0, 2 ** 64 - 1), min_size=1, max_size=40)


@settings(max_examples=200, deadline=None)
@given(seeds)
def test_engine_matches_reference_model(flow):
    engine, model = engines()
    for step, session, frame, timestamp in messages_of(flow, model):
        got = decode_stream(engine.process(pack_inbound(frame, session, timestamp)))
        got_md = decode_stream(engine.take_market_data(), outbound=True)
        want, want_md = model.process(frame, session, timestamp)
        assert got == want, f"step {step}: execution reports differ"
        assert got_md == want_md, f"step {step}: market data differs"
        check_state(engine, model)


@settings(max_examples=30, deadline=None)
@given(seeds)
def test_one_batch_equals_message_by_message(flow):
    """Processing a whole flow in one buffer gives the same streams as one message at a time."""
    model = engines()[1]
    records = []
    for step, session, frame, timestamp in messages_of(flow, model):
        model.process(frame, session, timestamp)
        records.append(pack_inbound(frame, session, timestamp))
    one, many = engines()[0], engines()[0]
    assert one.process(b"".join(records)) == b"".join(many.process(r) for r in records)
    assert one.take_market_data() == many.take_market_data()
