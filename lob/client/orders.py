"""Own-order and position tracking from the session's execution messages (no transport here).

The engine's execution messages are lean: one template per event, carrying only what the event changed
(ExecutionReportNew: the order id; ExecutionReportTrade: the fill and the quantity left; ...). Side,
instrument, price and quantity are what the client sent, so the tracker keeps them from the requests
and derives each order's status, leaves and cumulative quantity from the events.

Messages are the dicts the generated codec decodes (`lob.sbe.messages.decode`): enums as value names,
prices as `{"mantissa": int, ...}` composites. Prices and quantities stay integers: a price is the
mantissa of a decimal with exponent PRICE_EXPONENT.
"""
from dataclasses import dataclass, field

PRICE_EXPONENT = -4

# Client-side state before the engine answers.
PENDING_NEW = "PendingNew"
# Order statuses (OrdStatus value names).
NEW = "New"
PARTIALLY_FILLED = "PartiallyFilled"
FILLED = "Filled"
CANCELED = "Canceled"
REJECTED = "Rejected"
EXPIRED = "Expired"

TERMINAL = frozenset((FILLED, CANCELED, REJECTED, EXPIRED))

# Template ids of the order-entry requests, as MessageReject.refTemplateId names them.
NEW_ORDER_TEMPLATE = 1
CANCEL_TEMPLATE = 2
REPLACE_TEMPLATE = 3
MASS_CANCEL_TEMPLATE = 4

EXECUTION_MESSAGES = frozenset((
    "ExecutionReportNew", "ExecutionReportTrade", "ExecutionReportCanceled", "ExecutionReportReplaced",
    "ExecutionReportRejected", "ExecutionReportExpired", "OrderCancelReject", "OrderMassCancelReport",
    "MessageReject", "AdminReport"))


def mantissa(value):
    """A decoded price (composite dict, plain int or None) as its integer mantissa or None."""
    if isinstance(value, dict):
        return value.get("mantissa")
    return value


def to_decimal_str(price_mantissa, exponent=PRICE_EXPONENT):
    if price_mantissa is None:
        return "-"
    sign = "-" if price_mantissa < 0 else ""
    digits = str(abs(price_mantissa)).rjust(-exponent + 1, "0")
    return f"{sign}{digits[:exponent]}.{digits[exponent:]}"


@dataclass
class Fill:
    trade_id: int
    price: int
    quantity: int
    liquidity: str


@dataclass
class Order:
    cl_ord_id: int
    instrument: int
    side: str
    quantity: int
    price: int = None
    ord_type: str = "Limit"
    time_in_force: str = "GoodTillCancel"
    status: str = PENDING_NEW
    order_id: int = 0
    leaves: int = 0
    cum: int = 0
    reason: str = None
    orig_cl_ord_ids: list = field(default_factory=list)
    fills: list = field(default_factory=list)
    pending: tuple = None  # (request clOrdId, kind, new price, new quantity) while a cancel/replace is out

    @property
    def is_open(self):
        return self.status not in TERMINAL

    @property
    def average_price(self):
        if not self.cum:
            return None
        return sum(f.price * f.quantity for f in self.fills) / self.cum


@dataclass
class Position:
    """Signed position and cash per instrument; cash is in price-mantissa x quantity units."""
    quantity: int = 0
    cash: int = 0
    bought: int = 0
    sold: int = 0

    def pnl(self, mark):
        """Mark-to-market P&L at the price mantissa `mark` (cash + position valued at mark)."""
        return self.cash + self.quantity * mark


class OrderTracker:
    """Own orders by client order id, and positions, updated from the session's own messages.

    `apply(message)` takes any execution message and returns what it concerns: the Order (or None when
    the order is not known here), for OrderMassCancelReport the instrument of the request.
    """

    def __init__(self):
        self.orders = {}  # every client order id an order has had -> Order
        self.requests = {}  # clOrdId of an outstanding cancel/replace/mass cancel -> Order or instrument
        self.positions = {}
        self.seen_trade_ids = set()
        self.unknown_reports = 0
        self._handlers = {
            "ExecutionReportNew": self._on_new, "ExecutionReportTrade": self._on_trade,
            "ExecutionReportCanceled": self._on_canceled, "ExecutionReportReplaced": self._on_replaced,
            "ExecutionReportRejected": self._on_rejected, "ExecutionReportExpired": self._on_expired,
            "OrderCancelReject": self._on_cancel_reject, "OrderMassCancelReport": self._on_mass_cancel_report,
            "MessageReject": self._on_message_reject,
        }

    # -- requests going out --------------------------------------------------------------------
    def on_new_order(self, order):
        if order.cl_ord_id in self.orders:
            raise ValueError(f"client order id {order.cl_ord_id} is already in use")
        self.orders[order.cl_ord_id] = order
        return order

    def on_cancel(self, request_id, order):
        order.pending = (request_id, "cancel", None, None)
        self.requests[request_id] = order

    def on_replace(self, request_id, order, price, quantity):
        order.pending = (request_id, "replace", price, quantity)
        self.requests[request_id] = order

    def on_mass_cancel(self, request_id, instrument):
        self.requests[request_id] = instrument

    # -- messages coming in --------------------------------------------------------------------
    def apply(self, message):
        handler = self._handlers.get(message["_name"])
        return handler(message) if handler is not None else None

    def _order(self, *ids):
        """The order any of these client order ids (order ids or request ids) belongs to."""
        for cl_ord_id in ids:
            if not cl_ord_id:
                continue
            order = self.orders.get(cl_ord_id)
            if order is None:
                request = self.requests.get(cl_ord_id)
                order = request if isinstance(request, Order) else None
            if order is not None:
                return order
        self.unknown_reports += 1
        return None

    def _settle_request(self, request_id, order):
        """The request `request_id` about `order` is answered (a mass cancel's id stays until its report)."""
        if order is not None and self.requests.get(request_id) is order:
            del self.requests[request_id]
            if order.pending and order.pending[0] == request_id:
                order.pending = None

    def _on_new(self, m):
        order = self._order(m["clOrdId"])
        if order is not None:
            order.order_id = m["orderId"]
            if order.status == PENDING_NEW:
                order.status = NEW
                order.leaves = order.quantity - order.cum
        return order

    def _on_trade(self, m):
        order = self._order(m["clOrdId"])
        if order is None:
            return None
        order.order_id = m["orderId"] or order.order_id
        key = (m["tradeId"], order.order_id)
        if key in self.seen_trade_ids:
            return order
        self.seen_trade_ids.add(key)
        qty, px = m["lastQty"], mantissa(m["lastPx"])
        order.fills.append(Fill(m["tradeId"], px, qty, m["liquidity"]))
        order.cum += qty
        order.leaves = m["leavesQty"]
        order.status = FILLED if order.leaves == 0 else PARTIALLY_FILLED
        pos = self.positions.setdefault(order.instrument, Position())
        if order.side == "Buy":
            pos.quantity += qty
            pos.cash -= px * qty
            pos.bought += qty
        else:
            pos.quantity -= qty
            pos.cash += px * qty
            pos.sold += qty
        return order

    def _ended(self, m, status):
        # A cancel request names the order in origClOrdId; an engine cancel or an expiry in clOrdId.
        order = self._order(m.get("origClOrdId"), m["clOrdId"])
        if order is not None:
            if m.get("orderId"):
                order.order_id = m["orderId"]
            order.status = status
            order.leaves = 0
            order.reason = m["reason"]
            self._settle_request(m["clOrdId"], order)
            if order.pending:  # a replace that was still on its way when the order ended
                self.requests.pop(order.pending[0], None)
                order.pending = None
        return order

    def _on_canceled(self, m):
        return self._ended(m, CANCELED)

    def _on_expired(self, m):
        return self._ended(m, EXPIRED)

    def _on_rejected(self, m):
        order = self._order(m["clOrdId"])
        if order is not None:
            order.status = REJECTED
            order.leaves = 0
            order.reason = m["reason"]
        return order

    def _on_replaced(self, m):
        order = self._order(m["origClOrdId"], m["clOrdId"])
        if order is None:
            return None
        new_id = m["clOrdId"]
        if new_id != order.cl_ord_id:
            order.orig_cl_ord_ids.append(order.cl_ord_id)
            order.cl_ord_id = new_id
            self.orders[new_id] = order
        order.order_id = m["orderId"] or order.order_id
        order.price = mantissa(m["price"])
        order.quantity = m["orderQty"]
        order.leaves = m["leavesQty"]
        order.status = PARTIALLY_FILLED if order.cum else NEW
        self._settle_request(new_id, order)
        return order

    def _on_cancel_reject(self, m):
        request_id = m["clOrdId"]
        request = self.requests.get(request_id)
        order = request if isinstance(request, Order) else self._order(m["origClOrdId"])
        self._settle_request(request_id, order)
        if order is not None:
            order.reason = m["reason"]
        return order

    def _on_mass_cancel_report(self, m):
        return self.requests.pop(m["clOrdId"], None)

    def _on_message_reject(self, m):
        """A request the engine did not carry out at all (throttled, not established, malformed)."""
        template, cl_ord_id = m["refTemplateId"], m["refClOrdId"]
        if template == NEW_ORDER_TEMPLATE:
            order = self.orders.get(cl_ord_id)
            if order is not None and order.status == PENDING_NEW:
                order.status = REJECTED
                order.reason = m["reason"]
            return order
        if template in (CANCEL_TEMPLATE, REPLACE_TEMPLATE, MASS_CANCEL_TEMPLATE):
            request = self.requests.get(cl_ord_id)
            if template == MASS_CANCEL_TEMPLATE:
                self.requests.pop(cl_ord_id, None)
                return None
            self._settle_request(cl_ord_id, request)
            if isinstance(request, Order):
                request.reason = m["reason"]
                return request
        return None

    # -- views ---------------------------------------------------------------------------------
    def open_orders(self, instrument=None):
        seen = set()
        out = []
        for order in self.orders.values():
            if id(order) in seen or not order.is_open:
                continue
            seen.add(id(order))
            if instrument is None or order.instrument == instrument:
                out.append(order)
        return out

    def position(self, instrument):
        return self.positions.setdefault(instrument, Position())
