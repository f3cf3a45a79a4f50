"""A market maker's session with the engine over Aeron: send orders, receive reports and market data.

One `Client` owns one exclusive publication on the order-entry stream (its Aeron session id is the
session id the engine stamps on every report for it), a subscription to the execution-report stream
(filtered to its own session id) and, optionally, one to the market-data stream.

Nothing runs in the background: call `poll()` (or `run()` / `wait_for()`) from your loop. Callbacks
fire from inside those calls.
"""
import os
import time

import pyaeron

from . import wire
from .book import Book
from .orders import Order, OrderTracker

SESSION_MASK = 0xFFFFFFFF


class ClientError(RuntimeError):
    pass


class Client:
    """Connect with `Client(aeron_dir=...)` (attach to a running media driver) or `Client(aeron=...)`
    (share an Aeron client), or `Client(embedded=True)` (start a private embedded driver).

    `config` is the engine's `lob.config.EngineConfig` (default: the default channels); the client
    publishes to its order-entry channel and subscribes to its execution and market-data channels.
    Callbacks (all optional, set as attributes or constructor keywords):
      on_execution_report(report, order)  own ExecutionReport (order: the tracked Order or None)
      on_cancel_reject(report, order)     own OrderCancelReject
      on_mass_cancel_report(report)       own OrderMassCancelReport
      on_message_reject(report)           own MessageReject
      on_book_update(message, book), on_trade(message, book), on_snapshot(message, book)  market data
    Reports are the codec's decoded dicts.
    """

    def __init__(self, *, aeron_dir=None, aeron=None, embedded=False, config=None, market_data=True,
                 connect_timeout=10.0, first_cl_ord_id=1, record=False, **callbacks):
        if config is None:
            from lob.config import EngineConfig

            config = EngineConfig()
        self.config = config
        channels = config.client_channels()
        self.messages = wire.codec()
        self._encode = self.messages.encode
        self._decode = self.messages.decode
        self._layout = _exec_layout(self.messages)
        self.tracker = OrderTracker()
        self.books = {}
        self.reports = [] if record else None
        self.exec_seq_gaps = 0
        self.md_seq_gaps = 0
        self._last_exec_seq = None
        self._last_md_seq = None
        self._next_id = first_cl_ord_id
        self.timeout = connect_timeout
        for name in ("on_execution_report", "on_cancel_reject", "on_mass_cancel_report", "on_message_reject",
                     "on_book_update", "on_trade", "on_snapshot"):
            setattr(self, name, callbacks.pop(name, None))
        if callbacks:
            raise TypeError(f"unknown keyword arguments: {sorted(callbacks)}")

        self._driver = None
        self._own_aeron = aeron is None
        self._pub = self._exec_sub = self._md_sub = None
        aeron_dir = aeron_dir or getattr(config, "aeron_dir", None)
        try:
            if aeron is None:
                if embedded:
                    from lob.transport.driver import MediaDriver

                    self._driver = MediaDriver()
                    aeron_dir = self._driver.dir
                aeron = pyaeron.Aeron(dir=aeron_dir) if aeron_dir else pyaeron.Aeron()
            self.aeron = aeron
            execution, md, order_entry = channels["execution"], channels["market_data"], channels["order_entry"]
            self._exec_sub = aeron.add_subscription(execution.channel, execution.stream_id)
            if market_data and getattr(config, "market_data_enabled", True):
                self._md_sub = aeron.add_subscription(md.channel, md.stream_id)
            self._pub = aeron.add_exclusive_publication(order_entry.channel, order_entry.stream_id)
            self.session_id = self._pub.session_id & SESSION_MASK
            self._await(lambda: self._pub.is_connected and self._exec_sub.is_connected
                        and (self._md_sub is None or self._md_sub.is_connected),
                        "the engine (order entry, execution reports and market data streams)")
        except BaseException:
            self.close()
            raise

    # -- lifecycle -----------------------------------------------------------------------------
    def close(self):
        for resource in (self._pub, self._exec_sub, self._md_sub):
            if resource is not None and not resource.is_closed:
                resource.close()
        self._pub = self._exec_sub = self._md_sub = None
        aeron = getattr(self, "aeron", None)
        if aeron is not None and self._own_aeron and not aeron.is_closed:
            aeron.close()
        self.aeron = None
        if self._driver is not None:
            self._driver.close()
            self._driver = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- state ---------------------------------------------------------------------------------
    @property
    def orders(self):
        return self.tracker.orders

    def open_orders(self, instrument=None):
        return self.tracker.open_orders(instrument)

    def position(self, instrument):
        return self.tracker.position(instrument)

    def book(self, instrument):
        book = self.books.get(instrument)
        if book is None:
            book = self.books[instrument] = Book(instrument)
        return book

    def next_cl_ord_id(self):
        value = self._next_id
        self._next_id += 1
        return value

    # -- requests ------------------------------------------------------------------------------
    def place(self, instrument, side, quantity, price=None, *, ord_type="Limit", time_in_force="GoodTillCancel",
              post_only=False, self_trade_prevention="None", account=0, stop_price=None, display_qty=None,
              cl_ord_id=None):
        """Send a NewOrderSingle; returns the tracked Order (status PendingNew until the engine answers).
        Prices are integer mantissas (exponent -4)."""
        if side not in ("Buy", "Sell"):
            raise ValueError("side must be 'Buy' or 'Sell'")
        cl_ord_id = self.next_cl_ord_id() if cl_ord_id is None else cl_ord_id
        fields = dict(clOrdId=cl_ord_id, account=account, instrumentId=instrument, side=side, ordType=ord_type,
                      timeInForce=time_in_force, flags=["PostOnly"] if post_only else [],
                      selfTradePrevention=self_trade_prevention, quantity=quantity)
        if price is not None:
            fields["price"] = {"mantissa": price}
        if stop_price is not None:
            fields["stopPrice"] = {"mantissa": stop_price}
        if display_qty is not None:
            fields["displayQty"] = display_qty
        frame = self._encode("NewOrderSingle", **fields)
        order = Order(cl_ord_id=cl_ord_id, instrument=instrument, side=side, quantity=quantity, price=price,
                      ord_type=ord_type, time_in_force=time_in_force)
        self.tracker.on_new_order(order)
        self.send(frame)
        return order

    def _resolve(self, order):
        if isinstance(order, Order):
            return order
        found = self.tracker.orders.get(order)
        if found is None:
            raise KeyError(f"unknown client order id {order}")
        return found

    def cancel(self, order):
        """Send an OrderCancelRequest for an Order (or its client order id); returns the request's id."""
        order = self._resolve(order)
        request_id = self.next_cl_ord_id()
        frame = self._encode("OrderCancelRequest", clOrdId=request_id, origClOrdId=order.cl_ord_id,
                             instrumentId=order.instrument, side=order.side)
        self.tracker.on_cancel(request_id, order)
        self.send(frame)
        return request_id

    def replace(self, order, *, price=None, quantity=None):
        """Send an OrderCancelReplaceRequest (new price and/or new total quantity); returns the new
        client order id, which the order carries once the engine reports Replaced."""
        order = self._resolve(order)
        price = order.price if price is None else price
        quantity = order.quantity if quantity is None else quantity
        request_id = self.next_cl_ord_id()
        frame = self._encode("OrderCancelReplaceRequest", clOrdId=request_id, origClOrdId=order.cl_ord_id,
                             instrumentId=order.instrument, side=order.side, price={"mantissa": price},
                             quantity=quantity)
        self.tracker.on_replace(request_id, order, price, quantity)
        self.send(frame)
        return request_id

    def mass_cancel(self, instrument=0):
        """Cancel all of this session's orders in `instrument` (0: every instrument); returns the request id."""
        request_id = self.next_cl_ord_id()
        frame = self._encode("OrderMassCancelRequest", clOrdId=request_id, instrumentId=instrument)
        self.tracker.on_mass_cancel(request_id, instrument)
        self.send(frame)
        return request_id

    def send(self, frame):
        """Offer a raw frame; while back-pressured keep polling (the engine may be waiting on us)."""
        offer = self._pub.offer
        deadline = None
        while True:
            result = offer(frame)
            if result is True:
                return
            if deadline is None:
                deadline = time.monotonic() + self.timeout
            elif time.monotonic() > deadline:
                raise ClientError(f"could not send to the engine within {self.timeout}s ({result.name})")
            if not self.poll():
                os.sched_yield()

    # -- receiving -----------------------------------------------------------------------------
    def poll(self, fragment_limit=64):
        """Deliver what has arrived; returns the number of fragments read."""
        work = self._exec_sub.poll(self._on_exec, fragment_limit)
        if self._md_sub is not None:
            work += self._md_sub.poll(self._on_md, fragment_limit)
        return work

    def run(self, until=None, timeout=None):
        """Poll until `until()` is true (returns True) or `timeout` seconds pass (returns False);
        yields the CPU whenever a poll finds nothing."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if until is not None and until():
                return True
            if deadline is not None and time.monotonic() > deadline:
                return False
            if not self.poll():
                os.sched_yield()

    def wait_for(self, predicate, timeout=None):
        if not self.run(predicate, self.timeout if timeout is None else timeout):
            raise TimeoutError("condition not met within the timeout")

    def _await(self, predicate, what):
        deadline = time.monotonic() + self.timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise ClientError(f"no connection to {what} within {self.timeout}s")
            time.sleep(0.001)

    def _on_exec(self, buffer, header):
        layout = self._layout
        template_id = wire.TEMPLATE_ID.unpack_from(buffer, wire.TEMPLATE_ID_OFFSET)[0]
        peek = layout.get(template_id)
        if peek is None:
            return
        seq, session = peek.unpack_from(buffer)
        last = self._last_exec_seq
        if last is not None and seq != last + 1:
            self.exec_seq_gaps += 1
        self._last_exec_seq = seq
        if session != self.session_id:
            return
        report = self._decode(bytes(buffer))
        if self.reports is not None:
            self.reports.append(report)
        name = report["_name"]
        tracker = self.tracker
        if name == "ExecutionReport":
            order = tracker.apply_execution_report(report)
            if self.on_execution_report:
                self.on_execution_report(report, order)
        elif name == "OrderCancelReject":
            order = tracker.apply_cancel_reject(report)
            if self.on_cancel_reject:
                self.on_cancel_reject(report, order)
        elif name == "OrderMassCancelReport":
            tracker.apply_mass_cancel_report(report)
            if self.on_mass_cancel_report:
                self.on_mass_cancel_report(report)
        elif name == "MessageReject":
            if self.on_message_reject:
                self.on_message_reject(report)

    def _on_md(self, buffer, header):
        message = self._decode(bytes(buffer))
        seq = message.get("seqNum")
        if seq is not None:
            last = self._last_md_seq
            if last is not None and seq != last + 1:
                self.md_seq_gaps += 1
            self._last_md_seq = seq
        name = message["_name"]
        instrument = message.get("instrumentId")
        if instrument is None:
            return
        book = self.book(instrument)
        if name == "BookUpdate":
            book.apply_update(message)
            if self.on_book_update:
                self.on_book_update(message, book)
        elif name == "Trade":
            book.apply_trade(message)
            if self.on_trade:
                self.on_trade(message, book)
        elif name == "BookSnapshot":
            book.apply_snapshot(message)
            if self.on_snapshot:
                self.on_snapshot(message, book)


_LAYOUT_CACHE = {}


def _exec_layout(messages):
    """template id -> Struct reading (seqNum, sessionId) of each execution-stream message."""
    key = id(messages)
    if key not in _LAYOUT_CACHE:
        layouts = wire.ExecStreamLayout(messages)
        _LAYOUT_CACHE[key] = {
            layout.template_id: layout.reader("seqNum", "sessionId")
            for layout in (layouts.execution_report, layouts.cancel_reject, layouts.mass_cancel_report,
                           layouts.message_reject)
        }
    return _LAYOUT_CACHE[key]
