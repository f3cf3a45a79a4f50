"""Own-order and position tracking from execution reports (no transport here; unit-testable alone).

Reports are the dicts the generated codec decodes (`lob.sbe.messages.decode`): enums as value names,
prices as `{"mantissa": int, ...}` composites (or None when null). Prices and quantities stay integers:
a price is the mantissa of a decimal with exponent PRICE_EXPONENT.
"""
from dataclasses import dataclass, field

PRICE_EXPONENT = -4

# Client-side states before the engine answers.
PENDING_NEW = "PendingNew"
PENDING_CANCEL = "PendingCancel"
PENDING_REPLACE = "PendingReplace"
# Engine order statuses (OrdStatus value names).
NEW = "New"
PARTIALLY_FILLED = "PartiallyFilled"
FILLED = "Filled"
CANCELED = "Canceled"
REJECTED = "Rejected"
EXPIRED = "Expired"

TERMINAL = frozenset((FILLED, CANCELED, REJECTED, EXPIRED))


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
    """Own orders by client order id, and positions, updated from the session's own reports."""

    def __init__(self):
        self.orders = {}  # every client order id an order has had -> Order
        self.requests = {}  # clOrdId of an outstanding cancel/replace/mass cancel -> Order or instrument
        self.positions = {}
        self.seen_trade_ids = set()
        self.unknown_reports = 0

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

    # -- reports coming in ---------------------------------------------------------------------
    def order_for(self, report):
        order = self.orders.get(report.get("clOrdId"))
        if order is None:
            order = self.orders.get(report.get("origClOrdId"))
        if order is None:
            request = self.requests.get(report.get("clOrdId"))
            if isinstance(request, Order):
                order = request
        return order

    def apply_execution_report(self, report):
        """Update the order and position; returns the Order (or None for an order we do not know)."""
        order = self.order_for(report)
        if order is None:
            self.unknown_reports += 1
            return None
        exec_type = report["execType"]
        if report.get("orderId"):
            order.order_id = report["orderId"]
        if exec_type == "Trade":
            trade_id = report.get("tradeId")
            # A report delivered twice must not move the position twice.
            key = (trade_id, order.order_id)
            if key not in self.seen_trade_ids:
                self.seen_trade_ids.add(key)
                qty = report["lastQty"]
                px = mantissa(report["lastPx"])
                order.fills.append(Fill(trade_id, px, qty, report.get("liquidity")))
                pos = self.positions.setdefault(order.instrument, Position())
                if order.side == "Buy":
                    pos.quantity += qty
                    pos.cash -= px * qty
                    pos.bought += qty
                else:
                    pos.quantity -= qty
                    pos.cash += px * qty
                    pos.sold += qty
        elif exec_type == "Replaced":
            new_id = report["clOrdId"]
            if new_id != order.cl_ord_id:
                order.orig_cl_ord_ids.append(order.cl_ord_id)
                order.cl_ord_id = new_id
                self.orders[new_id] = order
            order.price = mantissa(report.get("price"))
            order.quantity = report.get("orderQty", order.quantity)
            self._clear_pending(report)
        elif exec_type in ("Canceled", "Rejected", "Expired"):
            order.reason = report.get("reason")
            self._clear_pending(report)
        self._sync(order, report)
        return order

    def apply_cancel_reject(self, report):
        request_id = report["clOrdId"]
        order = self.requests.pop(request_id, None)
        if not isinstance(order, Order):
            order = self.orders.get(report.get("origClOrdId"))
        if order is None:
            self.unknown_reports += 1
            return None
        if order.pending and order.pending[0] == request_id:
            order.pending = None
        order.reason = report.get("reason")
        return order

    def apply_mass_cancel_report(self, report):
        return self.requests.pop(report["clOrdId"], None)

    def _clear_pending(self, report):
        request_id = report.get("clOrdId")
        request = self.requests.pop(request_id, None)
        if isinstance(request, Order) and request.pending and request.pending[0] == request_id:
            request.pending = None

    @staticmethod
    def _sync(order, report):
        status = report.get("ordStatus")
        if status is not None:
            order.status = status
        if "leavesQty" in report:
            order.leaves = report["leavesQty"]
        if "cumQty" in report:
            order.cum = report["cumQty"]
        if report.get("orderQty"):
            order.quantity = report["orderQty"]
        px = mantissa(report.get("price"))
        if px is not None:
            order.price = px

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
