"""Client library for market makers: a session with the engine over Aeron, own-order and position
tracking, and a market-data book view.

    from lob.client import Client
    with Client(aeron_dir=driver_dir) as c:
        order = c.place(1, "Buy", 10, price=1_000_000)
        c.wait_for(lambda: order.status != "PendingNew")
"""
from .book import Book
from .orders import (CANCELED, EXPIRED, FILLED, NEW, PARTIALLY_FILLED, PENDING_NEW, PRICE_EXPONENT, REJECTED,
                     Fill, Order, OrderTracker, Position, mantissa, to_decimal_str)


def __getattr__(name):
    # The Aeron session is imported on first use, so state tracking works without pyaeron loaded.
    if name in ("Client", "ClientError"):
        from . import session

        return getattr(session, name)
    raise AttributeError(name)


__all__ = ["Book", "Client", "ClientError", "Fill", "Order", "OrderTracker", "Position", "PRICE_EXPONENT",
           "NEW", "PARTIALLY_FILLED", "FILLED", "CANCELED", "REJECTED", "EXPIRED", "PENDING_NEW", "mantissa",
           "to_decimal_str"]
