"""A market-data view of one instrument's book, built from BookSnapshot and BookUpdate messages."""
from .orders import mantissa


class Book:
    """Displayed price levels: `bids` / `asks` map price mantissa -> (quantity, order count)."""

    def __init__(self, instrument):
        self.instrument = instrument
        self.bids = {}
        self.asks = {}
        self.last_trade = None  # (trade id, price, quantity, aggressor side)
        self.updates = 0

    def _side(self, side):
        return self.bids if side == "Buy" else self.asks

    def apply_update(self, message):
        for level in message.get("levels", ()):
            levels = self._side(level["side"])
            price = mantissa(level["price"])
            if level["action"] == "Delete" or level["quantity"] <= 0:
                levels.pop(price, None)
            else:
                levels[price] = (level["quantity"], level["orderCount"])
        self.updates += 1

    def apply_snapshot(self, message):
        self.bids.clear()
        self.asks.clear()
        for level in message.get("levels", ()):
            self._side(level["side"])[mantissa(level["price"])] = (level["quantity"], level["orderCount"])
        self.updates += 1

    def apply_trade(self, message):
        self.last_trade = (message["tradeId"], mantissa(message["price"]), message["quantity"],
                           message["aggressorSide"])

    @property
    def best_bid(self):
        return max(self.bids) if self.bids else None

    @property
    def best_ask(self):
        return min(self.asks) if self.asks else None

    @property
    def mid(self):
        bid, ask = self.best_bid, self.best_ask
        if bid is None or ask is None:
            return None
        return (bid + ask) // 2

    def depth(self, side, levels=5):
        book = self._side(side)
        prices = sorted(book, reverse=(side == "Buy"))[:levels]
        return [(p, *book[p]) for p in prices]

    def __repr__(self):
        return f"Book({self.instrument}, bid={self.best_bid}, ask={self.best_ask}, levels={len(self.bids)}/{len(self.asks)})"
