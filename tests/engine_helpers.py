"""Small helpers for the engine tests: build inbound frames from keyword fields, run them through an
Engine (logged on as sessions 1..16, session N on transport N), decode what comes out.

Expected execution reports are written as before the lean protocol (`er(execType, ordStatus, ...)` with
every field of the old ExecutionReport) and projected onto the per-event template that carries the
event: the fields a template has must match exactly, the others do not exist on the wire."""
from lob import credentials, logon
from lob.engine import Engine
from lob.framing import iter_execution, iter_outbound, pack_inbound
from lob.sbe import messages

TEST_SESSIONS = range(1, 17)
ADMIN_SESSION = 90      # in the Harness's credentials with admin=yes
KEEP_ALIVE_MS = 60000

SEQUENCE_FIELDS = ("seqNum", "transactTime")


def nos(clOrdId, side="Buy", price=100, quantity=10, *, post_only=False, **fields):
    """A NewOrderSingle frame: a GTC limit order on instrument 1 unless fields say otherwise."""
    values = dict(clOrdId=clOrdId, account=0, instrumentId=1, side=side, ordType="Limit",
                  timeInForce="GoodTillCancel", flags=["PostOnly"] if post_only else [],
                  selfTradePrevention="None", quantity=quantity, expireTime=0, stpGroup=0)
    if price is not None:
        values["price"] = {"mantissa": price}
    values.update(fields)
    return messages.encode("NewOrderSingle", **values)


def market(clOrdId, side="Buy", quantity=10, price=None, **fields):
    return nos(clOrdId, side, price, quantity, ordType="Market", **fields)


def cancel(clOrdId, origClOrdId, side="Buy", instrumentId=1):
    return messages.encode("OrderCancelRequest", clOrdId=clOrdId, origClOrdId=origClOrdId,
                           instrumentId=instrumentId, side=side)


def replace(clOrdId, origClOrdId, price, quantity, side="Buy", instrumentId=1):
    return messages.encode("OrderCancelReplaceRequest", clOrdId=clOrdId, origClOrdId=origClOrdId,
                           instrumentId=instrumentId, side=side, price={"mantissa": price}, quantity=quantity)


def mass_cancel(clOrdId, instrumentId=0, side="Both"):
    return messages.encode("OrderMassCancelRequest", clOrdId=clOrdId, instrumentId=instrumentId, side=side)


def set_state(clOrdId, state, instrumentId=1):
    return messages.encode("InstrumentStateRequest", clOrdId=clOrdId, instrumentId=instrumentId, state=state)


def end_of_day(clOrdId, instrumentId=0):
    return messages.encode("EndOfDayRequest", clOrdId=clOrdId, instrumentId=instrumentId)


def admin_report(clOrdId, refTemplateId, reason="None", instrumentId=1, count=0, sessionId=ADMIN_SESSION):
    return {"_name": "AdminReport", "sessionId": sessionId, "clOrdId": clOrdId, "refTemplateId": refTemplateId,
            "instrumentId": instrumentId, "count": count, "reason": reason}


def simplify(value):
    """A decoded message with prices as plain mantissas and without the header fields."""
    if isinstance(value, dict):
        if set(value) == {"mantissa", "exponent"}:
            return value["mantissa"]
        return {k: simplify(v) for k, v in value.items() if k not in ("_template_id", "_schema_id", "_version")}
    if isinstance(value, list):
        return [simplify(v) for v in value]
    return value


def decode_stream(buffer, sequences=True, outbound=False):
    """Every frame of a routed execution buffer (or, with outbound, an outbound-framed one), decoded and
    simplified; execution frames get the `sessionId` they were routed to."""
    out = []
    frames = ((None, frame) for frame in iter_outbound(buffer)) if outbound else (
        (session_id, frame) for session_id, _, frame in iter_execution(buffer))
    for session_id, frame in frames:
        message = simplify(messages.decode(frame))
        if session_id is not None:
            message["sessionId"] = session_id
        if not sequences:
            for field in SEQUENCE_FIELDS:
                message.pop(field, None)
        out.append(message)
    return out


# execType of the old ExecutionReport -> the per-event template and the fields it carries
LEAN_REPORTS = {
    "New": ("ExecutionReportNew", ("clOrdId", "orderId")),
    "Trade": ("ExecutionReportTrade", ("clOrdId", "orderId", "tradeId", "lastPx", "lastQty", "leavesQty", "liquidity")),
    "Canceled": ("ExecutionReportCanceled", ("clOrdId", "origClOrdId", "orderId", "reason")),
    "Replaced": ("ExecutionReportReplaced", ("clOrdId", "origClOrdId", "orderId", "price", "orderQty", "leavesQty")),
    "Rejected": ("ExecutionReportRejected", ("clOrdId", "reason")),
    "Expired": ("ExecutionReportExpired", ("clOrdId", "orderId", "reason")),
}


def er(execType, ordStatus, **fields):
    """An expected execution report: the old ExecutionReport's fields (defaults for what `fields` leaves
    out) projected onto the template of the event."""
    report = {"sessionId": 1, "account": 0, "clOrdId": 0, "origClOrdId": 0,
              "orderId": 0, "instrumentId": 1, "side": "Buy", "ordType": "Limit", "timeInForce": "GoodTillCancel",
              "execType": execType, "ordStatus": ordStatus, "reason": "None", "liquidity": "None", "price": None,
              "orderQty": 0, "lastPx": None, "lastQty": 0, "leavesQty": 0, "cumQty": 0, "tradeId": 0}
    unknown = set(fields) - set(report)
    assert not unknown, f"not ExecutionReport fields: {unknown}"
    report.update(fields)
    name, carried = LEAN_REPORTS[execType]
    lean = {"_name": name, "sessionId": report["sessionId"]}
    lean.update((k, report[k]) for k in carried)
    return lean


def cancel_reject(responseTo, reason, **fields):
    report = {"_name": "OrderCancelReject", "sessionId": 1, "clOrdId": 0, "origClOrdId": 0, "orderId": 0,
              "responseTo": responseTo, "reason": reason}
    fields.pop("instrumentId", None)    # not on the wire: the client knows its order
    report.update(fields)
    return report


def message_reject(reason, refTemplateId, refLength, sessionId=1, refSeqNo=1, refClOrdId=0):
    return {"_name": "MessageReject", "sessionId": sessionId, "refSeqNo": refSeqNo, "refClOrdId": refClOrdId,
            "refTemplateId": refTemplateId, "refLength": refLength, "reason": reason}


def book_update(levels, instrumentId=1):
    """levels: [(action, side, price, quantity, orderCount)]"""
    return {"_name": "BookUpdate", "instrumentId": instrumentId,
            "levels": [{"action": a, "side": s, "price": p, "quantity": q, "orderCount": c} for a, s, p, q, c in levels]}


def logon_records(session_id, transport=None, timestamp=1000, **options):
    """Inbound records of Negotiate + Establish for test session `session_id` (on transport session_id)."""
    creds = credentials.for_tests([session_id])[0]
    return logon.logon_records(creds, session_id if transport is None else transport, timestamp, **options)


def trade(tradeId, price, quantity, aggressorSide, instrumentId=1):
    return {"_name": "Trade", "instrumentId": instrumentId, "tradeId": tradeId, "price": price,
            "quantity": quantity, "aggressorSide": aggressorSide}


def harness_sessions():
    """The Harness's credentials: test sessions 1..16 and the admin session."""
    return credentials.for_tests(TEST_SESSIONS) + credentials.for_tests([ADMIN_SESSION], admin=True)


class Harness:
    """An Engine fed one message at a time; timestamps count up from 1000 unless given. Session N sends on
    transport N and is logged on (Negotiate + Establish, their answers dropped) before its first message."""

    def __init__(self, instruments=None, max_orders=1024, market_data=True, **engine_options):
        self.engine = Engine(instruments, max_orders=max_orders, market_data=market_data,
                             sessions=harness_sessions(), **engine_options)
        self.clock = 1000
        self.logged_on = set()

    def logon(self, session, timestamp):
        answers = decode_stream(self.engine.process(logon_records(session, timestamp=timestamp)))
        assert [a["_name"] for a in answers] == ["NegotiationResponse", "EstablishmentAck"], answers
        self.logged_on.add(session)

    def send(self, frame, session=1, timestamp=None, sequences=False):
        """Process one frame; the execution reports it produced (without seqNum/transactTime unless asked)."""
        if timestamp is None:
            self.clock += 1
            timestamp = self.clock
        if session not in self.logged_on:
            self.logon(session, timestamp)
        return decode_stream(self.engine.process(pack_inbound(frame, session, timestamp)), sequences)

    def tick(self, timestamp, sequences=False):
        """An EngineTick record at `timestamp` (ns): what it produced."""
        self.clock = max(self.clock, timestamp)
        frame = messages.encode("EngineTick", reserved=0)
        return decode_stream(self.engine.process(pack_inbound(frame, 0, timestamp)), sequences)

    def md(self, sequences=False):
        """Market data produced since the last call."""
        return decode_stream(self.engine.take_market_data(), sequences, outbound=True)

    def book(self, instrument=1):
        """Resting orders as (side, price, leaves, cum, order id, session, clOrdId), priority order."""
        return [(o["side"], o["price"], o["leaves_qty"], o["cum_qty"], o["order_id"], o["session"], o["cl_ord_id"])
                for o in self.engine.orders(instrument)]


EXEC_TYPES = {name: exec_type for exec_type, (name, _) in LEAN_REPORTS.items()}


def kind(report):
    """The event of an execution report ("New", "Trade", "Canceled", ...), else the message's name."""
    return EXEC_TYPES.get(report["_name"], report["_name"])


def session_engine(instruments=None, logged_on=range(1, 5), timestamp=1000, sessions=None, **options):
    """An Engine that knows the test sessions, with sessions `logged_on` logged on (session N on
    transport N) and their logon answers dropped."""
    engine = Engine(instruments, sessions=credentials.for_tests(TEST_SESSIONS) if sessions is None else sessions,
                    **options)
    preamble = b"".join(logon_records(s, timestamp=timestamp) for s in logged_on)
    if preamble:
        engine.process(preamble)
    return engine


def model_levels(live, side):
    """[(price, quantity, order count)] of one side, best first, from {id: (side, price, quantity)}."""
    levels = {}
    for (s, price, qty) in live.values():
        if s == side:
            total, count = levels.get(price, (0, 0))
            levels[price] = (total + qty, count + 1)
    return [(p, *levels[p]) for p in sorted(levels, reverse=side == "Buy")]
