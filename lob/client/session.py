"""A market maker's trading session with the engine over Aeron: log on, send orders, receive its own
execution messages and (optionally) market data.

One `Client` owns one exclusive publication on the engine's order-entry stream (its transport), one
subscription to the private response channel it names at Negotiate (only this session's messages arrive
there) and, optionally, a market-data feed (lob.client.market_data: the shared stream and its recovery
channel, books that recover by themselves). The session protocol (logon, sequence
numbers, heartbeats, retransmission, re-establishment) is `lob.client.protocol`; order state is
`lob.client.orders`.

Nothing runs in the background: call `poll()` (or `run()` / `wait_for()`) from your loop; heartbeats,
retransmission requests and re-logons happen inside those calls, and so do the callbacks.

Callbacks (optional; constructor keywords or attributes):
  on_execution_report(message, order)  ExecutionReportNew/Trade/Canceled/Replaced/Rejected/Expired
                                        (message["_name"] says which); order: the tracked Order or None
  on_cancel_reject(message, order)      OrderCancelReject
  on_mass_cancel_report(message)        OrderMassCancelReport
  on_message_reject(message, order)     MessageReject (order: the request's Order, if it names one)
  on_not_applied(from_seq, count)       the engine never got our messages from_seq .. from_seq+count-1
  on_session_state(state)               the session's state changed (lob.client.protocol: Established, Lost, ...)
  on_terminate(reason)                  the engine ended the session (it is then negotiated again)
  on_book_update(message, book), on_trade(message, book), on_snapshot(message, book)   market data
Execution messages reach the tracker and the callbacks in the engine's sequence, each exactly once,
whether they came live or retransmitted.
"""
import os
import time

import pyaeron

from . import protocol, wire
from .market_data import MarketDataFeed
from .orders import EXECUTION_MESSAGES, Order, OrderTracker
from .reassembly import MessagePoller
from .protocol import ClientError, LogonRejected, LogonTimeout, NotEstablished  # noqa: F401  (public names)

DEFAULT_RESPONSE_STREAM = 1002
HEALTH_CHECK_INTERVAL = 0.01  # seconds between checks that the engine's streams are still there


def default_response_channel(host="127.0.0.1"):
    """A unicast UDP endpoint on a port free right now: the engine publishes this session's messages there."""
    from lob.transport.driver import free_udp_ports

    return f"aeron:udp?endpoint={host}:{free_udp_ports(1, host)[0]}"


class Client:
    """`Client(credentials, aeron_dir=...)` attaches to a running media driver, `Client(credentials,
    aeron=...)` shares an Aeron client, `Client(credentials, embedded=True)` starts a private driver.

    `credentials` is a `lob.credentials.SessionCredentials`. `config` is the engine's
    `lob.config.EngineConfig` (default: the default channels): the client publishes to its order-entry
    channel and subscribes to its market-data channel. The constructor logs on and returns once the
    session is established; a reject raises LogonRejected (`.reason`), no answer LogonTimeout.
    `next_seq_out` 0 lets the engine say where our sequence continues. `record=True` keeps every
    execution message handed on, decoded in `reports` and as received in `report_frames`.
    """

    CALLBACKS = ("on_execution_report", "on_cancel_reject", "on_mass_cancel_report", "on_message_reject",
                 "on_not_applied", "on_session_state", "on_terminate", "on_book_update", "on_trade", "on_snapshot")

    def __init__(self, credentials, *, aeron_dir=None, aeron=None, embedded=False, config=None, market_data=True,
                 response_channel=None, response_stream_id=DEFAULT_RESPONSE_STREAM, keep_alive_ms=1000,
                 connect_timeout=10.0, first_cl_ord_id=1, next_seq_out=0, record=False, **callbacks):
        if config is None:
            from lob.config import EngineConfig

            config = EngineConfig()
        self.config = config
        self.credentials = credentials
        self.session_id = credentials.session_id
        self.messages = wire.codec()
        self._encode = self.messages.encode
        self._decode = self.messages.decode
        self.tracker = OrderTracker()
        self.feed = None        # lob.client.market_data.MarketDataFeed: the recovering books
        self.reports = [] if record else None
        self.report_frames = [] if record else None
        self.undecodable = 0
        self._next_id = first_cl_ord_id
        self.timeout = connect_timeout
        for name in self.CALLBACKS:
            setattr(self, name, callbacks.pop(name, None))
        if callbacks:
            raise TypeError(f"unknown keyword arguments: {sorted(callbacks)}")
        self.response_channel = response_channel or default_response_channel()
        self.response_stream_id = response_stream_id
        self.protocol = protocol.SessionProtocol(
            credentials, self.response_channel, response_stream_id, send=self._offer_session,
            keep_alive_ms=keep_alive_ms, next_seq_out=next_seq_out, logon_timeout=connect_timeout,
            can_send=lambda: self._pub is not None and self._pub.is_connected,
            on_state=lambda state: self.on_session_state and self.on_session_state(state),
            on_not_applied=lambda f, c: self.on_not_applied and self.on_not_applied(f, c),
            on_terminate=lambda reason: self.on_terminate and self.on_terminate(reason))
        self._next_health_check = 0.0
        self._private_seen = False

        self._driver = None
        self._own_aeron = aeron is None
        self._pub = self._private_sub = None
        aeron_dir = aeron_dir or getattr(config, "aeron_dir", None)
        try:
            if aeron is None:
                if embedded:
                    from lob.transport.driver import MediaDriver

                    self._driver = MediaDriver()
                    aeron_dir = self._driver.dir
                aeron = pyaeron.Aeron(dir=aeron_dir) if aeron_dir else pyaeron.Aeron()
            self.aeron = aeron
            channels = config.client_channels()
            order_entry = channels["order_entry"]
            self._private_sub = MessagePoller(aeron.add_subscription(self.response_channel, response_stream_id),
                                              self._on_private)
            if market_data and getattr(config, "market_data_enabled", True):
                self.feed = MarketDataFeed(aeron, channels, on_message=self._on_md)
            self._pub = self._add_exclusive_publication(order_entry.channel, order_entry.stream_id)
            self._await(lambda: self._pub.is_connected and (self.feed is None or self.feed.connected),
                        "the engine (order entry and market data streams)")
            self.logon()
        except BaseException:
            self.close(terminate=False)
            raise

    def _add_exclusive_publication(self, channel, stream_id):
        """The driver refuses a channel whose endpoint an earlier publication is still closing ("please
        retry"): retry for up to the connect timeout."""
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                return self.aeron.add_exclusive_publication(channel, stream_id)
            except pyaeron.AeronError as exc:
                if "CLOSING state" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    # -- session -------------------------------------------------------------------------------
    def logon(self, timeout=None):
        """Negotiate and establish (again, if the session was closed or failed); raises on a reject."""
        self.protocol.persistent = False  # a deliberate logon reports its rejects instead of retrying
        self.protocol.start(time.monotonic())
        self.run(lambda: self.protocol.state in (protocol.ESTABLISHED, protocol.FAILED),
                 self.timeout if timeout is None else timeout)
        if self.protocol.state == protocol.FAILED:
            raise self.protocol.error
        if self.protocol.state != protocol.ESTABLISHED:
            raise LogonTimeout(f"session {self.session_id}: not established within {self.timeout}s")

    @property
    def state(self):
        return self.protocol.state

    @property
    def established(self):
        return self.protocol.state == protocol.ESTABLISHED

    @property
    def next_seq_out(self):
        """Sequence number our next application message gets."""
        return self.protocol.next_seq_out

    @property
    def next_seq_in(self):
        """The engine's seqNum we hand on next (everything below it was handed on, or is lost)."""
        return self.protocol.next_seq_in

    @property
    def gaps_detected(self):
        return self.protocol.inbound.gaps_detected

    @property
    def retransmitted(self):
        return self.protocol.inbound.retransmitted

    @property
    def not_applied(self):
        return self.protocol.not_applied

    def sequence_state(self):
        inbound = self.protocol.inbound
        return dict(state=self.state, next_seq_out=self.next_seq_out, next_seq_in=inbound.next_seq,
                    gaps_detected=inbound.gaps_detected, retransmitted=inbound.retransmitted,
                    duplicates=inbound.duplicates, lost=inbound.lost, resets=inbound.resets,
                    not_applied=list(self.not_applied),
                    establishments=self.protocol.establishments, terminations=list(self.protocol.terminations))

    # -- lifecycle -----------------------------------------------------------------------------
    def close(self, terminate=True, timeout=2.0):
        """Terminate the session (waiting up to `timeout` for the engine's answer), then release everything."""
        if terminate and self._pub is not None and self.protocol.terminate(time.monotonic()):
            self.run(lambda: self.protocol.state == protocol.CLOSED, timeout)
        if self.feed is not None:
            self.feed.close()
        for resource in (self._pub, self._private_sub):
            if resource is not None and not resource.is_closed:
                resource.close()
        self._pub = self._private_sub = None
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

    def pause_reports(self):
        """Close the private subscription: what the engine sends meanwhile does not arrive here (it is
        asked for again once `resume_reports()` shows the hole). For tests and recovery drills."""
        if self._private_sub is not None:
            self._private_sub.close()
            self._private_sub = None

    def resume_reports(self):
        if self._private_sub is None:
            self._private_seen = False
            self._private_sub = MessagePoller(
                self.aeron.add_subscription(self.response_channel, self.response_stream_id), self._on_private)

    # -- state ---------------------------------------------------------------------------------
    @property
    def orders(self):
        return self.tracker.orders

    def open_orders(self, instrument=None):
        return self.tracker.open_orders(instrument)

    def position(self, instrument):
        return self.tracker.position(instrument)

    @property
    def books(self):
        """{instrument: Book} of the market data (recovering books: lob.client.book); {} without it."""
        return self.feed.books if self.feed is not None else {}

    @property
    def md_seq_gaps(self):
        """Lost ranges of the market-data stream (each sent the books back to recovering)."""
        return self.feed.gaps if self.feed is not None else 0

    def book(self, instrument):
        """The instrument's market-data Book (it recovers by itself; see `state`)."""
        if self.feed is None:
            raise ClientError("this client does not receive market data (market_data=False)")
        book = self.feed.book(instrument)
        return book

    def next_cl_ord_id(self):
        value = self._next_id
        self._next_id += 1
        return value

    # -- requests ------------------------------------------------------------------------------
    def place(self, instrument, side, quantity, price=None, *, ord_type="Limit", time_in_force="GoodTillCancel",
              post_only=False, self_trade_prevention="None", account=0, stop_price=None, display_qty=None,
              cl_ord_id=None, expire_time=0, stp_group=0):
        """Send a NewOrderSingle; returns the tracked Order (status PendingNew until the engine answers).
        Prices are integer mantissas (exponent -4)."""
        if side not in ("Buy", "Sell"):
            raise ValueError("side must be 'Buy' or 'Sell'")
        self._check_established()
        cl_ord_id = self.next_cl_ord_id() if cl_ord_id is None else cl_ord_id
        fields = dict(clOrdId=cl_ord_id, account=account, instrumentId=instrument, side=side, ordType=ord_type,
                      timeInForce=time_in_force, flags=["PostOnly"] if post_only else [],
                      selfTradePrevention=self_trade_prevention, quantity=quantity, expireTime=expire_time,
                      stpGroup=stp_group)
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
        self._check_established()
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
        self._check_established()
        price = order.price if price is None else price
        quantity = order.quantity if quantity is None else quantity
        request_id = self.next_cl_ord_id()
        frame = self._encode("OrderCancelReplaceRequest", clOrdId=request_id, origClOrdId=order.cl_ord_id,
                             instrumentId=order.instrument, side=order.side, price={"mantissa": price},
                             quantity=quantity)
        self.tracker.on_replace(request_id, order, price, quantity)
        self.send(frame)
        return request_id

    def mass_cancel(self, instrument=0, side="Both"):
        """Cancel all of this session's orders in `instrument` (0: every instrument) on `side` ("Buy",
        "Sell" or "Both"); returns the request id."""
        self._check_established()
        request_id = self.next_cl_ord_id()
        frame = self._encode("OrderMassCancelRequest", clOrdId=request_id, instrumentId=instrument, side=side)
        self.tracker.on_mass_cancel(request_id, instrument)
        self.send(frame)
        return request_id

    def _check_established(self):
        if self.protocol.state != protocol.ESTABLISHED:
            raise NotEstablished(f"session {self.session_id} is not established ({self.protocol.state})")

    def send(self, frame):
        """Offer one application message (it takes the next sequence number); while back-pressured keep
        polling (the engine may be waiting on us)."""
        self._check_established()
        offer = self._pub.offer
        deadline = None
        while True:
            result = offer(frame)
            if result is True:
                self.protocol.app_sent(time.monotonic())
                return
            if deadline is None:
                deadline = time.monotonic() + self.timeout
            elif time.monotonic() > deadline:
                raise ClientError(f"could not send to the engine within {self.timeout}s ({result.name})")
            if not self.poll():
                os.sched_yield()

    def _offer_session(self, frame):
        """Offer a session frame (no sequence number); False when the engine cannot be reached now."""
        pub = self._pub
        if pub is None:
            return False
        for _ in range(1000):
            result = pub.offer(frame)
            if result is True:
                return True
            if not pub.is_connected:
                return False
            os.sched_yield()
        return False

    # -- receiving -----------------------------------------------------------------------------
    def poll(self, fragment_limit=64):
        """Deliver what has arrived and keep the session alive; returns the number of fragments read."""
        work = 0
        if self._private_sub is not None:
            work = self._private_sub.poll(fragment_limit)
        if self.feed is not None:
            work += self.feed.poll(fragment_limit)
        now = time.monotonic()
        self.protocol.tick(now)
        if now >= self._next_health_check:
            self._next_health_check = now + HEALTH_CHECK_INTERVAL
            self._check_streams(now)
        return work

    def _check_streams(self, now):
        """An established session whose private stream lost its image: the engine went away."""
        sub = self._private_sub
        if sub is None:
            return
        if sub.is_connected:
            self._private_seen = True
        elif self._private_seen and self.protocol.state == protocol.ESTABLISHED:
            self._private_seen = False
            self.protocol.lost(now, "the engine's stream to this session went away")

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

    def _on_private(self, buffer, header):
        frame = bytes(buffer)
        try:
            message = self._decode(frame)
        except Exception:
            self.undecodable += 1
            return
        for message, frame in self.protocol.on_message(message, (message, frame), time.monotonic()):
            self._deliver(message, frame)

    def _deliver(self, message, frame):
        name = message["_name"]
        if name not in EXECUTION_MESSAGES:
            return
        if self.reports is not None:
            self.reports.append(message)
            self.report_frames.append(frame)
        result = self.tracker.apply(message)
        if name == "OrderCancelReject":
            if self.on_cancel_reject:
                self.on_cancel_reject(message, result)
        elif name == "OrderMassCancelReport":
            if self.on_mass_cancel_report:
                self.on_mass_cancel_report(message)
        elif name == "MessageReject":
            if self.on_message_reject:
                self.on_message_reject(message, result)
        elif self.on_execution_report:
            self.on_execution_report(message, result)

    def _on_md(self, message, book):
        name = message["_name"]
        if name == "BookUpdate":
            if self.on_book_update:
                self.on_book_update(message, book)
        elif name == "Trade":
            if self.on_trade:
                self.on_trade(message, book)
        elif name == "BookSnapshot":
            if self.on_snapshot:
                self.on_snapshot(message, book)
