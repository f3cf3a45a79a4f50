"""Client library for market makers: a trading session with the engine over Aeron, own-order and
position tracking, and a market-data book view.

    from lob.client import Client
    from lob.credentials import load
    creds = {c.session_id: c for c in load("credentials.txt")}[1001]
    with Client(creds, aeron_dir=driver_dir) as c:      # logs on (Negotiate, Establish)
        order = c.place(1, "Buy", 10, price=1_000_000)
        c.wait_for(lambda: order.status != "PendingNew")

Modules: session (Client: Aeron I/O and callbacks), protocol (the session layer: logon, sequence numbers,
heartbeats, retransmission, re-establishment), sequencer (the engine's sequence as received), orders
(order and position state from the lean execution messages), book (market data), wire (fixed-layout
order-entry encoding for hot loops), connection (flags, config and media driver for the tools).
"""
from .book import Book
from .orders import (CANCELED, EXPIRED, FILLED, NEW, PARTIALLY_FILLED, PENDING_NEW, PRICE_EXPONENT, REJECTED,
                     Fill, Order, OrderTracker, Position, mantissa, to_decimal_str)


def __getattr__(name):
    # The Aeron session is imported on first use, so state tracking works without pyaeron loaded.
    if name == "Client":
        from . import session

        return session.Client
    if name in ("ClientError", "LogonRejected", "LogonTimeout", "NotEstablished", "SessionProtocol"):
        from . import protocol

        return getattr(protocol, name)
    raise AttributeError(name)


__all__ = ["Book", "Client", "ClientError", "LogonRejected", "LogonTimeout", "NotEstablished", "SessionProtocol",
           "Fill", "Order", "OrderTracker", "Position", "PRICE_EXPONENT", "NEW", "PARTIALLY_FILLED", "FILLED",
           "CANCELED", "REJECTED", "EXPIRED", "PENDING_NEW", "mantissa", "to_decimal_str"]
