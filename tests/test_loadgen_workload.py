"""The workload generator: deterministic for a seed, the requested mix, and a self-consistent book."""
import pytest

from lob.tools.workload import BUY, CANCEL, NEW, SELL, WorkloadSpec, generate


def test_same_seed_same_workload():
    a = generate(orders=5_000, seed=11, instruments=3, sessions=2)
    b = generate(orders=5_000, seed=11, instruments=3, sessions=2)
    assert a.digest() == b.digest()
    assert a.expected == b.expected
    assert [a.op(i) for i in range(len(a))] == [b.op(i) for i in range(len(b))]


def test_different_seed_different_workload():
    assert generate(orders=2_000, seed=1).digest() != generate(orders=2_000, seed=2).digest()


def test_prefix_is_stable():
    # A longer run starts with the same messages: --orders changes only the length.
    short = generate(orders=1_000, seed=5)
    long = generate(orders=3_000, seed=5)
    assert [short.op(i) for i in range(1_000)] == [long.op(i) for i in range(1_000)]


def test_mix_and_ranges():
    w = generate(orders=20_000, seed=3)
    n = len(w)
    e = w.expected
    assert n == 20_000 == e.new_orders + e.cancels
    assert 0.57 < e.passive / n < 0.63
    assert 0.27 < e.cancels / n < 0.33
    assert 0.08 < e.aggressive / n < 0.12
    for i in range(n):
        if w.kind[i] == NEW:
            assert 1 <= w.qty[i] <= 100
            assert w.price[i] > 0
            assert w.side[i] in (BUY, SELL)
            assert w.orig_cl_ord_id[i] == 0
        else:
            assert w.kind[i] == CANCEL
            assert w.qty[i] == 0


def test_cancels_name_earlier_orders_of_the_same_session_once():
    w = generate(orders=10_000, seed=9, instruments=2, sessions=3)
    owner = {}
    canceled = set()
    for i in range(len(w)):
        cl = w.cl_ord_id(i)
        if w.kind[i] == NEW:
            owner[cl] = (w.session[i], w.instrument[i], w.side[i])
        else:
            target = w.orig_cl_ord_id[i]
            assert target in owner, "a cancel names an order sent before it"
            assert owner[target] == (w.session[i], w.instrument[i], w.side[i])
            assert target not in canceled
            canceled.add(target)
    assert {w.instrument[i] for i in range(len(w))} == {1, 2}
    assert {w.session[i] for i in range(len(w))} == {0, 1, 2}


def test_reference_book_accounts_for_every_order():
    w = generate(orders=10_000, seed=4)
    e = w.expected
    assert e.fills > 0 and e.traded_quantity > 0
    assert e.resting_at_end > 0
    # Every order either rests at the end, was canceled, or was completely filled.
    assert e.resting_at_end + e.cancels <= e.new_orders
    assert e.trade_reports == 2 * e.fills


def test_spec_validation():
    with pytest.raises(ValueError):
        WorkloadSpec(orders=10, sessions=0)
    with pytest.raises(ValueError):
        WorkloadSpec(passive_ratio=0, cancel_ratio=0, aggressive_ratio=0)
    with pytest.raises(TypeError):
        generate(WorkloadSpec(), orders=3)


def test_encoded_frames_decode_to_the_workload():
    from lob.sbe import messages

    w = generate(orders=3_000, seed=6, instruments=2, sessions=2)
    encoded = w.encode()
    assert len(encoded) == len(w)
    for i in range(len(w)):
        d = messages.decode(encoded.frame(i))
        op = w.op(i)
        assert (d["clOrdId"], d["instrumentId"], d["side"]) == (op["clOrdId"], op["instrumentId"], op["side"])
        if op["kind"] == "NEW":
            assert d["_name"] == "NewOrderSingle"
            assert (d["price"]["mantissa"], d["quantity"], d["ordType"], d["timeInForce"]) == (
                op["price"], op["quantity"], "Limit", "GoodTillCancel")
        else:
            assert d["_name"] == "OrderCancelRequest"
            assert d["origClOrdId"] == op["origClOrdId"]


@pytest.mark.parametrize("instruments,sessions", [(1, 1), (3, 2)])
def test_the_engine_agrees_with_the_expectations(instruments, sessions):
    from collections import Counter

    from lob.engine import Engine
    from lob.framing import iter_execution
    from lob.sbe import messages
    from lob.tools.workload import test_credentials

    w = generate(orders=20_000, seed=8, instruments=instruments, sessions=sessions)
    credentials = test_credentials(sessions)
    engine = Engine(instruments={i: 1 for i in range(1, instruments + 1)}, sessions=credentials)
    out = engine.process(w.encode().inbound_records(credentials))
    counts = Counter()
    traded = 0
    routes = set()
    next_seq = {}
    for session_id, transport, frame in iter_execution(out):
        d = messages.decode(frame)
        routes.add((session_id, transport))
        counts[d["_name"], d.get("liquidity")] += 1
        if d.get("liquidity") == "Removed":
            traded += d["lastQty"]
        if "seqNum" in d:   # each session numbers its own stream from 1, without gaps
            assert d["seqNum"] == next_seq.get(session_id, 1)
            next_seq[session_id] = d["seqNum"] + 1
    e = w.expected
    # The logon preamble: each session on its own id as transport, answered, and then its reports.
    assert routes == {(c.session_id, c.session_id) for c in credentials}
    assert counts == Counter({
        ("NegotiationResponse", None): sessions,
        ("EstablishmentAck", None): sessions,
        ("ExecutionReportNew", None): e.new_orders,
        ("ExecutionReportCanceled", None): e.cancels,
        ("ExecutionReportTrade", "Added"): e.fills,
        ("ExecutionReportTrade", "Removed"): e.fills,
    })
    assert traded == e.traded_quantity
    assert engine.live_orders == e.resting_at_end


def test_logon_preamble_is_deterministic_and_signed_for_each_session():
    from lob import credentials as creds_module
    from lob.framing import iter_inbound
    from lob.sbe import messages
    from lob.tools.workload import LOGON_TIMESTAMP_NS, logon_records, test_credentials

    credentials = test_credentials(3)
    records = logon_records(credentials)
    assert records == logon_records(test_credentials(3))
    decoded = [(transport, ts, messages.decode(frame)) for transport, ts, frame in iter_inbound(records)]
    assert [(t, d["_name"], d["sessionId"]) for t, _, d in decoded] == [
        (s, name, s) for s in (1, 2, 3) for name in ("Negotiate", "Establish")]
    assert {ts for _, ts, _ in decoded} == {LOGON_TIMESTAMP_NS}
    for (_, _, negotiate), c in zip(decoded[::2], credentials):
        assert negotiate["requestTimestamp"] == LOGON_TIMESTAMP_NS - 1
        assert creds_module.verify(c.secret, creds_module.negotiate_request(
            c.session_id, c.firm, negotiate["requestTimestamp"], negotiate["nonce"], negotiate["responseChannel"],
            negotiate["responseStreamId"]), negotiate["signature"])


def test_head_is_a_prefix():
    w = generate(orders=2_000, seed=12)
    head = w.head(500)
    assert len(head) == 500 and head.expected is None
    assert [head.op(i) for i in range(500)] == [w.op(i) for i in range(500)]
    encoded = w.encode()
    part = encoded.head(500)
    assert len(part) == 500 and part.workload.expected is None
    assert [part.frame(i) for i in range(500)] == [encoded.frame(i) for i in range(500)]


# --- order types: stops, icebergs, self-trade prevention ------------------------------------------

def mixed(**overrides):
    return generate(**{**dict(orders=20_000, seed=3, stop_share=0.1, iceberg_share=0.1, stp_accounts=8), **overrides})


def test_order_types_are_mixed_into_the_same_standard_messages():
    from lob.tools.workload import ICEBERG_DISPLAY_DIVISOR, STOP_LIMIT_TICKS, STOP_TICKS

    plain, w = generate(orders=20_000, seed=3), mixed()
    assert plain.stop_price is None and plain.expected.fills is not None
    for column in ("kind", "session", "instrument", "orig_cl_ord_id", "side", "qty"):
        assert getattr(w, column) == getattr(plain, column), column
    e = w.expected
    assert (e.new_orders, e.cancels, e.passive, e.aggressive) == (
        plain.expected.new_orders, plain.expected.cancels, plain.expected.passive, plain.expected.aggressive)
    assert (e.fills, e.traded_quantity, e.resting_at_end) == (None, None, None)
    assert 0.08 < e.stops / e.new_orders < 0.12 and 0.08 < e.icebergs / e.new_orders < 0.12
    stops = icebergs = 0
    for i in range(len(w)):
        if w.kind[i] != NEW:
            assert (w.stop_price[i], w.display_qty[i], w.account[i]) == (0, 0, 0)
            continue
        direction = 1 if w.side[i] == BUY else -1
        if w.stop_price[i]:
            stops += 1
            assert w.stop_price[i] == plain.price[i] + direction * STOP_TICKS
            assert w.price[i] == w.stop_price[i] + direction * STOP_LIMIT_TICKS
            assert w.display_qty[i] == 0
        else:
            assert w.price[i] == plain.price[i]
            if w.display_qty[i]:
                icebergs += 1
                assert w.display_qty[i] == max(1, w.qty[i] // ICEBERG_DISPLAY_DIVISOR)
    assert (stops, icebergs) == (e.stops, e.icebergs)
    assert {w.account[i] for i in range(len(w)) if w.kind[i] == NEW} == set(range(8))
    assert mixed().digest() == w.digest() != plain.digest()


def test_order_type_frames_decode_to_stop_limits_icebergs_and_stp():
    from lob.sbe import messages

    w = mixed(orders=2_000, stp_mode="DecrementAndCancel")
    encoded = w.encode()
    seen = set()
    for i in range(len(w)):
        d = messages.decode(encoded.frame(i))
        if w.kind[i] != NEW:
            assert d["_name"] == "OrderCancelRequest"
            continue
        assert (d["clOrdId"], d["price"]["mantissa"], d["quantity"], d["account"]) == (
            w.cl_ord_id(i), w.price[i], w.qty[i], w.account[i])
        assert (d["timeInForce"], d["selfTradePrevention"]) == ("GoodTillCancel", "DecrementAndCancel")
        stop = d["stopPrice"]["mantissa"] if d["stopPrice"] else 0
        assert (d["ordType"], stop) == (("StopLimit", w.stop_price[i]) if w.stop_price[i] else ("Limit", 0))
        assert (d["displayQty"] or 0) == w.display_qty[i]
        seen.add((d["ordType"], d["displayQty"] is not None))
    assert seen == {("Limit", False), ("Limit", True), ("StopLimit", False)}


def test_order_type_validation():
    with pytest.raises(ValueError):
        WorkloadSpec(stop_share=1.5)
    with pytest.raises(ValueError):
        WorkloadSpec(stop_share=0.6, iceberg_share=0.6)
    with pytest.raises(ValueError):
        WorkloadSpec(stp_accounts=-1)
    with pytest.raises(ValueError):
        WorkloadSpec(stp_accounts=2, stp_mode="CancelNewest")
    assert not WorkloadSpec().order_types and WorkloadSpec(iceberg_share=0.1).order_types


def engine_answers(w, credentials):
    """What an Engine answers to a workload in process: a Counter of (message name, reason or liquidity),
    and (trade id -> accounts of its two sides)."""
    from collections import Counter

    from lob.engine import Engine
    from lob.framing import iter_execution
    from lob.sbe import messages

    spec = w.spec
    engine = Engine(instruments={i: 1 for i in range(spec.first_instrument, spec.first_instrument + spec.instruments)},
                    sessions=credentials)
    account_of = {w.cl_ord_id(i): w.account[i] for i in range(len(w)) if w.kind[i] == NEW}
    counts, trades = Counter(), {}
    for _, _, frame in iter_execution(engine.process(w.encode().inbound_records(credentials))):
        d = messages.decode(frame)
        counts[d["_name"], d.get("reason", d.get("liquidity"))] += 1
        if d["_name"] == "ExecutionReportTrade":
            trades.setdefault(d["tradeId"], []).append(account_of[d["clOrdId"]])
    return counts, trades


def test_the_engine_answers_every_order_type_message_once_and_never_trades_an_account_with_itself():
    from lob.tools.workload import test_credentials

    w = mixed(orders=20_000, seed=8)
    counts, trades = engine_answers(w, test_credentials(1))
    e = w.expected
    assert counts["ExecutionReportNew", None] == e.new_orders
    assert counts["ExecutionReportRejected", None] == 0
    assert counts["ExecutionReportCanceled", "UserRequest"] + counts["OrderCancelReject", "UnknownOrder"] == e.cancels
    assert 0 < counts["ExecutionReportTriggered", None] <= e.stops
    assert counts["ExecutionReportCanceled", "SelfTradePrevented"] > 0
    assert len(trades) == counts["ExecutionReportTrade", "Removed"] > 0
    assert all(len(sides) == 2 and sides[0] != sides[1] for sides in trades.values())
