"""Small helpers for the engine tests: build inbound frames from keyword fields, run them through an
Engine, decode what comes out."""
from lob.engine import Engine
from lob.framing import iter_outbound, pack_inbound
from lob.sbe import messages

SEQUENCE_FIELDS = ("seqNum", "transactTime")


def nos(clOrdId, side="Buy", price=100, quantity=10, *, post_only=False, **fields):
    """A NewOrderSingle frame: a GTC limit order on instrument 1 unless fields say otherwise."""
    values = dict(clOrdId=clOrdId, account=0, instrumentId=1, side=side, ordType="Limit",
                  timeInForce="GoodTillCancel", flags=["PostOnly"] if post_only else [],
                  selfTradePrevention="None", quantity=quantity)
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


def mass_cancel(clOrdId, instrumentId=0):
    return messages.encode("OrderMassCancelRequest", clOrdId=clOrdId, instrumentId=instrumentId)


def simplify(value):
    """A decoded message with prices as plain mantissas and without the header fields."""
    if isinstance(value, dict):
        if set(value) == {"mantissa", "exponent"}:
            return value["mantissa"]
        return {k: simplify(v) for k, v in value.items() if k not in ("_template_id", "_schema_id", "_version")}
    if isinstance(value, list):
        return [simplify(v) for v in value]
    return value


def decode_stream(buffer, sequences=True):
    """Every frame of an outbound-framed buffer, decoded and simplified."""
    out = []
    for frame in iter_outbound(buffer):
        message = simplify(messages.decode(frame))
        if not sequences:
            for field in SEQUENCE_FIELDS:
                message.pop(field, None)
        out.append(message)
    return out


def er(execType, ordStatus, **fields):
    """An expected ExecutionReport: every field, defaults for what `fields` leaves out."""
    report = {"_name": "ExecutionReport", "sessionId": 1, "account": 0, "clOrdId": 0, "origClOrdId": 0,
              "orderId": 0, "instrumentId": 1, "side": "Buy", "ordType": "Limit", "timeInForce": "GoodTillCancel",
              "execType": execType, "ordStatus": ordStatus, "reason": "None", "liquidity": "None", "price": None,
              "orderQty": 0, "lastPx": None, "lastQty": 0, "leavesQty": 0, "cumQty": 0, "tradeId": 0}
    unknown = set(fields) - set(report)
    assert not unknown, f"not ExecutionReport fields: {unknown}"
    report.update(fields)
    return report


def cancel_reject(responseTo, reason, **fields):
    report = {"_name": "OrderCancelReject", "sessionId": 1, "clOrdId": 0, "origClOrdId": 0, "orderId": 0,
              "instrumentId": 1, "responseTo": responseTo, "reason": reason}
    report.update(fields)
    return report


def message_reject(reason, refTemplateId, refLength, sessionId=1):
    return {"_name": "MessageReject", "sessionId": sessionId, "refTemplateId": refTemplateId,
            "refLength": refLength, "reason": reason}


def book_update(levels, instrumentId=1):
    """levels: [(action, side, price, quantity, orderCount)]"""
    return {"_name": "BookUpdate", "instrumentId": instrumentId,
            "levels": [{"action": a, "side": s, "price": p, "quantity": q, "orderCount": c} for a, s, p, q, c in levels]}


def trade(tradeId, price, quantity, aggressorSide, instrumentId=1):
    return {"_name": "Trade", "instrumentId": instrumentId, "tradeId": tradeId, "price": price,
            "quantity": quantity, "aggressorSide": aggressorSide}


class Harness:
    """An Engine fed one message at a time; timestamps count up from 1000 unless given."""

    def __init__(self, instruments=None, max_orders=1024, market_data=True):
        self.engine = Engine(instruments, max_orders=max_orders, market_data=market_data)
        self.clock = 1000

    def send(self, frame, session=1, timestamp=None, sequences=False):
        """Process one frame; the execution reports it produced (without seqNum/transactTime unless asked)."""
        if timestamp is None:
            self.clock += 1
            timestamp = self.clock
        return decode_stream(self.engine.process(pack_inbound(frame, session, timestamp)), sequences)

    def md(self, sequences=False):
        """Market data produced since the last call."""
        return decode_stream(self.engine.take_market_data(), sequences)

    def book(self, instrument=1):
        """Resting orders as (side, price, leaves, cum, order id, session, clOrdId), priority order."""
        return [(o["side"], o["price"], o["leaves_qty"], o["cum_qty"], o["order_id"], o["session"], o["cl_ord_id"])
                for o in self.engine.orders(instrument)]
