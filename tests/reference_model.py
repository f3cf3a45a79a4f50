"""A small, obviously correct model of the matching engine, for the property test.

Resting orders live in one plain list; the best order is found by sorting it. Reports come out as the
simplified dicts of engine_helpers.simplify (prices as mantissas). No cleverness, no speed.

An iceberg shows `shown` (its slice) and queues by `arrival`; a new slice gets a new arrival. A FOK is
fillable when a dry run of its matching, on a copy of the book, fills all of it. Untriggered stops wait in
their own list; after each aggressor, the stops reached by the prices it traded at trigger, buys then
sells, and the prices those trade at decide the next round. An EngineTick (session 0) expires every
GoodTillDate order, resting or waiting, whose expiry the clock has reached, by expiry then order id; the
end of day every Day order, each side's book and then its stops.
"""
import copy
import struct

from lob.sbe import messages

HEADER = struct.Struct("<HHHH")  # blockLength, templateId, schemaId, version
# Root block lengths of the order-entry messages in schemas/lob.xml (sum of their field sizes).
BLOCK_LENGTHS = {
    1: 8 + 4 + 4 + 1 + 1 + 1 + 1 + 1 + 8 + 8 + 8 + 8 + 4 + 4,  # NewOrderSingle
    2: 8 + 8 + 4 + 1,                                  # OrderCancelRequest
    3: 8 + 8 + 4 + 1 + 8 + 8,                          # OrderCancelReplaceRequest
    4: 8 + 4 + 1,                                      # OrderMassCancelRequest
    80: 8 + 4 + 1,                                     # InstrumentStateRequest
    81: 8 + 4,                                         # EndOfDayRequest
}
MAX_QTY = 10 ** 12
ENGINE_TICK = 70
TIME_IN_FORCE = ("Day", "GoodTillCancel", "ImmediateOrCancel", "FillOrKill", "GoodTillDate")
STATE_REJECTS = {"halted": "InstrumentHalted", "closed": "InstrumentClosed"}
ICEBERG_MAX_SLICES = 1000
STP_MODES = ("None", "CancelAggressor", "CancelResting", "CancelBoth", "DecrementAndCancel")


class Order:
    def __init__(self, **fields):
        self.__dict__.update(fields)

    def as_dict(self):
        extra = {"expire_time": self.expire_time} if self.expire_time else {}
        return {**extra, "order_id": self.order_id, "session": self.session, "cl_ord_id": self.cl_ord_id,
                "account": self.account, "instrument_id": self.instrument_id, "side": self.side,
                "ord_type": self.ord_type, "time_in_force": self.tif, "post_only": self.post_only,
                "price": self.price, "order_qty": self.order_qty, "leaves_qty": self.leaves, "cum_qty": self.cum}


class ReferenceEngine:
    def __init__(self, instruments=None, max_orders=1 << 20, admin_sessions=(), accounts=None, pro_rata=None):
        from lob.accounts import AccountRules
        from lob.instruments import specs_of

        self.specs = specs_of(instruments)
        self.ticks = {i: s.tick for i, s in self.specs.items()}
        self.state = {i: s.state for i, s in self.specs.items()}
        self.last_price = {}
        self.positions = {}     # (account, instrument) -> bought - sold
        self.accounts = accounts or AccountRules()
        self.admin_sessions = set(admin_sessions)
        self.pro_rata = dict(pro_rata or {})   # instrument -> minimum allocation, for pro-rata instruments
        self.max_orders = max_orders
        self.resting = []
        self.next_order_id = 1
        self.next_trade_id = 1
        self.next_seq = {}      # session -> seqNum of its next execution message
        self.next_in_seq = {}   # session -> implicit number of its next inbound application message
        self.next_md_seq = 1
        self.arrivals = 0
        self.stops = []         # untriggered stop orders
        self.last_price = {}    # instrument -> last trade price
        self.traded = {}        # instrument -> prices traded since its stops were last checked

    # -- the book ---------------------------------------------------------------------------------

    def book(self, instrument_id, side):
        """Resting orders of one side, best first, oldest first within a price."""
        orders = [o for o in self.resting if o.instrument_id == instrument_id and o.side == side]
        if side == "Buy":
            return sorted(orders, key=lambda o: (-o.price, o.arrival))
        return sorted(orders, key=lambda o: (o.price, o.arrival))

    def orders(self, instrument_id):
        return [o.as_dict() for side in ("Buy", "Sell") for o in self.book(instrument_id, side)]

    def levels(self, instrument_id, side):
        out = []
        for o in self.book(instrument_id, side):
            if out and out[-1][0] == o.price:
                out[-1] = (o.price, out[-1][1] + o.shown, out[-1][2] + 1)
            else:
                out.append((o.price, o.shown, 1))
        return out

    def all_levels(self):
        return {(i, side, price): (qty, count)
                for i in self.ticks for side in ("Buy", "Sell") for price, qty, count in self.levels(i, side)}

    def stop_orders(self, instrument_id):
        """Untriggered stops, each side the next to trigger first: buys, then sells."""
        return [dict(o.as_dict(), stop_price=o.stop) for o in self.stop_queue(instrument_id, "Buy")] + \
            [dict(o.as_dict(), stop_price=o.stop) for o in self.stop_queue(instrument_id, "Sell")]

    def stop_queue(self, instrument_id, side):
        orders = [o for o in self.stops if o.instrument_id == instrument_id and o.side == side]
        return sorted(orders, key=lambda o: (o.stop if side == "Buy" else -o.stop, o.order_id))

    def find(self, session, cl_ord_id):
        for o in self.resting + self.stops:
            if o.session == session and o.cl_ord_id == cl_ord_id:
                return o
        return None

    def touch(self, o):
        key = (o.instrument_id, o.side, o.price)
        if key not in self.touched:
            self.touched.append(key)

    def rest(self, o):
        self.touch(o)
        self.arrivals += 1
        o.arrival = self.arrivals
        o.shown = self.next_slice(o)
        self.resting.append(o)

    def next_slice(self, o):
        return o.leaves if o.display is None else min(o.display, o.leaves)

    def unrest(self, o):
        self.touch(o)
        self.resting.remove(o)

    # -- output -----------------------------------------------------------------------------------

    def emit(self, message, session):
        message["sessionId"] = session
        message["seqNum"] = self.next_seq.get(session, 1)
        self.next_seq[session] = message["seqNum"] + 1
        message["transactTime"] = self.now
        self.exec_out.append(message)

    def emit_md(self, message):
        message["seqNum"] = self.next_md_seq
        self.next_md_seq += 1
        message["transactTime"] = self.now
        self.md_out.append(message)

    def report(self, o, execType, ordStatus, reason="None", liquidity="None", clOrdId=None, origClOrdId=0,
               lastPx=None, lastQty=0, tradeId=0):
        clOrdId = o.cl_ord_id if clOrdId is None else clOrdId
        if execType == "New":
            message = {"_name": "ExecutionReportNew", "clOrdId": clOrdId, "orderId": o.order_id}
        elif execType == "Trade":
            message = {"_name": "ExecutionReportTrade", "clOrdId": clOrdId, "orderId": o.order_id, "tradeId": tradeId,
                       "lastPx": lastPx, "lastQty": lastQty, "leavesQty": o.leaves, "liquidity": liquidity}
        elif execType == "Canceled":
            message = {"_name": "ExecutionReportCanceled", "clOrdId": clOrdId, "origClOrdId": origClOrdId,
                       "orderId": o.order_id, "reason": reason}
        elif execType == "Replaced":
            message = {"_name": "ExecutionReportReplaced", "clOrdId": clOrdId, "origClOrdId": origClOrdId,
                       "orderId": o.order_id, "price": 0 if o.price is None else o.price, "orderQty": o.order_qty,
                       "leavesQty": o.leaves}
        elif execType == "Expired":
            message = {"_name": "ExecutionReportExpired", "clOrdId": clOrdId, "orderId": o.order_id, "reason": reason}
        else:
            assert execType == "Rejected"
            message = {"_name": "ExecutionReportRejected", "clOrdId": clOrdId, "reason": reason}
        self.emit(message, o.session)

    def cancel_reject(self, session, request, responseTo, reason, orderId=0):
        self.emit({"_name": "OrderCancelReject", "clOrdId": request["clOrdId"], "origClOrdId": request["origClOrdId"],
                   "orderId": orderId, "responseTo": responseTo, "reason": reason}, session)

    def message_reject(self, session, template_id, length, reason):
        self.emit({"_name": "MessageReject", "refSeqNo": self.in_seq, "refClOrdId": 0, "refTemplateId": template_id,
                   "refLength": length, "reason": reason}, session)

    def book_updates(self, before):
        after = self.all_levels()
        runs = []
        for key in self.touched:
            old, new = before.get(key), after.get(key)
            if old == new:
                continue
            instrument_id, side, price = key
            if new is None:
                level = {"action": "Delete", "side": side, "price": price, "quantity": 0, "orderCount": 0}
            else:
                level = {"action": "New" if old is None else "Change", "side": side, "price": price,
                         "quantity": new[0], "orderCount": new[1]}
            if runs and runs[-1][0] == instrument_id:
                runs[-1][1].append(level)
            else:
                runs.append((instrument_id, [level]))
        for instrument_id, levels in runs:
            self.emit_md({"_name": "BookUpdate", "instrumentId": instrument_id, "levels": levels})

    # -- messages ---------------------------------------------------------------------------------

    def process(self, frame, session, timestamp):
        """One inbound frame -> (execution reports, market data messages)."""
        self.now = timestamp
        self.exec_out, self.md_out, self.touched = [], [], []
        before = self.all_levels()
        self.on_frame(bytes(frame), session)
        self.book_updates(before)
        return self.exec_out, self.md_out

    def on_frame(self, frame, session):
        if session == 0:    # an engine record
            if HEADER.unpack_from(frame)[1] == ENGINE_TICK:
                self.on_tick()
            return
        self.in_seq = self.next_in_seq.get(session, 1)
        self.next_in_seq[session] = self.in_seq + 1
        length = len(frame)
        if length < HEADER.size:
            template_id = int.from_bytes(frame[2:4], "little") if length >= 4 else 0
            return self.message_reject(session, template_id, length, "MalformedFrame")
        block_length, template_id, schema_id, _version = HEADER.unpack_from(frame)
        if schema_id != messages.SCHEMA_ID:
            return self.message_reject(session, template_id, length, "UnknownSchema")
        if HEADER.size + block_length > length:
            return self.message_reject(session, template_id, length, "MalformedFrame")
        if template_id not in BLOCK_LENGTHS:
            return self.message_reject(session, template_id, length, "UnknownTemplate")
        if block_length < BLOCK_LENGTHS[template_id]:
            return self.message_reject(session, template_id, length, "MalformedFrame")
        request = {k: (v["mantissa"] if isinstance(v, dict) else v) for k, v in messages.decode(frame).items()}
        handler = {1: self.on_new_order, 2: self.on_cancel, 3: self.on_replace, 4: self.on_mass_cancel,
                   80: self.on_instrument_state, 81: self.on_end_of_day}
        handler[template_id](request, session)

    def new_order_reason(self, r, o):
        if r["instrumentId"] not in self.ticks:
            return "UnknownInstrument"
        if r["side"] not in ("Buy", "Sell"):
            return "InvalidSide"
        stop = r["ordType"] in ("Stop", "StopLimit")
        if r["ordType"] not in ("Market", "Limit") and not stop:
            return "InvalidOrdType"
        if stop and o.post_only:
            return "InvalidOrdType"
        if r["timeInForce"] not in TIME_IN_FORCE:
            return "InvalidTimeInForce"
        if not 0 < r["quantity"] <= MAX_QTY:
            return "InvalidQuantity"
        if r["ordType"] in ("Limit", "StopLimit"):
            if r["price"] is None or r["price"] <= 0:
                return "InvalidPrice"
            if r["price"] % self.ticks[r["instrumentId"]] != 0:
                return "PriceOffTick"
        if r["displayQty"] is not None and (r["ordType"] not in ("Limit", "StopLimit") or not 0 < r["displayQty"] <= r["quantity"]
                                            or r["displayQty"] * ICEBERG_MAX_SLICES < r["quantity"]):
            return "InvalidDisplayQty"
        if r["selfTradePrevention"] not in STP_MODES:
            return "InvalidSelfTradePrevention"
        if stop != (r["stopPrice"] is not None) or (stop and r["stopPrice"] <= 0):
            return "InvalidStopPrice"
        if stop and r["stopPrice"] % self.ticks[r["instrumentId"]] != 0:
            return "PriceOffTick"
        reason = self.risk_reason(r, o)
        if reason:
            return reason
        if self.find(o.session, o.cl_ord_id):
            return "DuplicateClOrdId"
        if len(self.resting) + len(self.stops) >= self.max_orders:
            return "PoolFull"
        if o.ord_type == "Limit" and o.post_only and self.crossable(o, o.price) > 0:
            return "PostOnlyWouldCross"
        return None

    # -- risk -------------------------------------------------------------------------------------

    def band_edge(self, instrument_id, side):
        spec = self.specs[instrument_id]
        reference = self.last_price.get(instrument_id, spec.reference_price)
        if reference is None or not (spec.band_bp or spec.band_ticks):
            return None
        width = spec.band_ticks * spec.tick if spec.band_ticks else reference * spec.band_bp // 10000
        return reference + width if side == "Buy" else reference - width

    def outside_band(self, instrument_id, side, price):
        edge = self.band_edge(instrument_id, side)
        return edge is not None and (price > edge if side == "Buy" else price < edge)

    def over_position(self, account, instrument_id, side, qty):
        limit = self.accounts.limits(account).max_position
        after = self.positions.get((account, instrument_id), 0) + (qty if side == "Buy" else -qty)
        return limit != 0 and abs(after) > limit

    def risk_reason(self, r, o):
        spec = self.specs[o.instrument_id]
        if self.state[o.instrument_id] != "trading":
            return STATE_REJECTS[self.state[o.instrument_id]]
        if o.order_qty % spec.lot:
            return "InvalidLot"
        if o.tif == "GoodTillDate":
            if o.expire_time * 10 ** 9 <= self.now:
                return "InvalidExpireTime"
        else:
            o.expire_time = 0
        if spec.max_order_qty and o.order_qty > spec.max_order_qty:
            return "RiskMaxOrderQty"
        if o.ord_type == "Market" or o.price is None:     # a stop order has no price either
            price = self.band_edge(o.instrument_id, o.side)
            if price is None:
                price = self.last_price.get(o.instrument_id, spec.reference_price)
        else:
            price = o.price
            if self.outside_band(o.instrument_id, o.side, price):
                return "RiskPriceBand"
        if spec.max_notional and price is not None and price > 0 and o.order_qty * price > spec.max_notional:
            return "RiskMaxNotional"
        limits = self.accounts.limits(o.account)
        open_orders = sum(1 for x in self.resting + self.stops   # untriggered stops count too
                          if (x.account, x.instrument_id) == (o.account, o.instrument_id))
        if limits.max_open_orders and open_orders >= limits.max_open_orders:
            return "RiskMaxOpenOrders"
        if self.over_position(o.account, o.instrument_id, o.side, o.order_qty):
            return "RiskMaxPosition"
        return None

    def replace_risk_reason(self, o, price, qty):
        spec = self.specs[o.instrument_id]
        if self.state[o.instrument_id] != "trading":
            return STATE_REJECTS[self.state[o.instrument_id]]
        if qty % spec.lot:
            return "InvalidLot"
        if spec.max_order_qty and qty > spec.max_order_qty:
            return "RiskMaxOrderQty"
        if price != o.price and self.outside_band(o.instrument_id, o.side, price):
            return "RiskPriceBand"
        if spec.max_notional and qty * price > spec.max_notional:
            return "RiskMaxNotional"
        if qty > o.order_qty and self.over_position(o.account, o.instrument_id, o.side, qty - o.cum):
            return "RiskMaxPosition"
        return None

    def can_trade(self, taker, limit, maker):
        if limit is None:
            return True
        return maker.price <= limit if taker.side == "Buy" else maker.price >= limit

    def opposite(self, o):
        return self.book(o.instrument_id, "Sell" if o.side == "Buy" else "Buy")

    def crossable(self, o, limit):
        return sum(m.leaves for m in self.opposite(o) if self.can_trade(o, limit, m))

    def fok_fillable(self, taker, limit):
        saved = (self.resting, self.next_trade_id, self.arrivals, self.next_seq, self.next_md_seq, self.exec_out,
                 self.md_out, self.touched, self.last_price, self.traded, self.positions)
        self.resting, self.next_seq = copy.deepcopy(self.resting), dict(self.next_seq)
        self.last_price, self.traded = dict(self.last_price), copy.deepcopy(self.traded)
        self.positions = dict(self.positions)
        self.exec_out, self.md_out, self.touched = [], [], []
        trial = copy.copy(taker)
        self.match(trial, limit)
        (self.resting, self.next_trade_id, self.arrivals, self.next_seq, self.next_md_seq, self.exec_out,
         self.md_out, self.touched, self.last_price, self.traded, self.positions) = saved
        return trial.cum == taker.order_qty

    def self_trade(self, taker, maker):
        return taker.stp != "None" and (
            maker.account == taker.account or (taker.stp_group != 0 and maker.stp_group == taker.stp_group))

    def stp_cancel(self, o):
        if o in self.resting:
            self.resting.remove(o)
        self.end(o, "SelfTradePrevented")

    def stp_decrement(self, o, qty):
        o.order_qty -= qty
        o.leaves -= qty
        o.shown = min(o.shown, o.leaves)
        self.report(o, "Replaced", "", origClOrdId=o.cl_ord_id)

    def prevent_self_trade(self, taker, maker):
        """The aggressor's STP mode decides."""
        if taker.stp == "CancelAggressor":
            self.end(taker, "SelfTradePrevented")
        elif taker.stp == "CancelResting":
            self.stp_cancel(maker)
        elif taker.stp == "CancelBoth":
            self.stp_cancel(maker)
            self.end(taker, "SelfTradePrevented")
        elif maker.leaves < taker.leaves:
            qty = maker.leaves
            self.stp_cancel(maker)
            self.stp_decrement(taker, qty)
        elif maker.leaves == taker.leaves:
            self.stp_cancel(maker)
            self.end(taker, "SelfTradePrevented")
        else:
            self.stp_decrement(maker, taker.leaves)
            self.end(taker, "SelfTradePrevented")

    def match(self, taker, limit):
        while taker.leaves > 0:
            makers = self.opposite(taker)
            if not makers or not self.can_trade(taker, limit, makers[0]):
                return
            if taker.instrument_id in self.pro_rata and self.pro_rata_level(taker, makers[0].price):
                continue
            if makers != self.opposite(taker):     # self-trade prevention canceled some: look again
                continue
            maker = makers[0]
            self.touch(maker)
            if self.self_trade(taker, maker):
                self.prevent_self_trade(taker, maker)
                continue
            self.fill(taker, maker, min(taker.leaves, maker.shown))

    def fill(self, taker, maker, qty):
        maker.shown -= qty
        for o in (maker, taker):
            o.leaves -= qty
            o.cum += qty
        trade_id = self.next_trade_id
        self.next_trade_id += 1
        for o, liquidity in ((maker, "Added"), (taker, "Removed")):
            self.report(o, "Trade", "Filled" if o.leaves == 0 else "PartiallyFilled", liquidity=liquidity,
                        lastPx=maker.price, lastQty=qty, tradeId=trade_id)
        self.last_price[taker.instrument_id] = maker.price
        self.traded.setdefault(taker.instrument_id, []).append(maker.price)
        for o in (maker, taker):
            key = (o.account, o.instrument_id)
            self.positions[key] = self.positions.get(key, 0) + (qty if o.side == "Buy" else -qty)
        self.emit_md({"_name": "Trade", "instrumentId": taker.instrument_id, "tradeId": trade_id,
                      "price": maker.price, "quantity": qty, "aggressorSide": taker.side})
        if maker.leaves == 0:
            self.resting.remove(maker)
        elif maker.shown == 0:
            self.arrivals += 1
            maker.arrival = self.arrivals
            maker.shown = self.next_slice(maker)

    def pro_rata_level(self, taker, price):
        """Pro-rata at the best level when the taker cannot take all of it; True when it did."""
        def level():
            return [o for o in self.opposite(taker) if o.price == price]
        if taker.leaves >= sum(o.shown for o in level()):
            return False
        self.touch(level()[0])
        if taker.stp != "None":
            for maker in level():
                if taker.leaves > 0 and maker in self.resting and self.self_trade(taker, maker):
                    self.prevent_self_trade(taker, maker)
            if taker.leaves == 0:
                return True
            if taker.leaves >= sum(o.shown for o in level()):
                return False
        makers, q = level(), taker.leaves
        total, minimum = sum(o.shown for o in makers), self.pro_rata[taker.instrument_id]
        shares = [q * o.shown // total for o in makers]
        shares = [share if share >= minimum else 0 for share in shares]
        left = q - sum(shares)
        for maker, share in zip(makers, shares):
            extra = min(maker.shown - share, left)
            left -= extra
            if share + extra:
                self.fill(taker, maker, share + extra)
        return True

    def end(self, o, reason, **fields):
        o.leaves = 0
        self.report(o, "Canceled", "Canceled", reason=reason, **fields)

    def on_new_order(self, r, session):
        o = Order(order_id=0, session=session, cl_ord_id=r["clOrdId"], account=r["account"],
                  instrument_id=r["instrumentId"], side=r["side"], ord_type=r["ordType"], tif=r["timeInForce"],
                  post_only="PostOnly" in (r["flags"] or []), price=r["price"], order_qty=r["quantity"],
                  leaves=0, cum=0, expire_time=r["expireTime"], display=r["displayQty"],
                  stp=r["selfTradePrevention"], stp_group=r["stpGroup"], shown=0, stop=r["stopPrice"])
        reason = self.new_order_reason(r, o)
        if reason:
            return self.report(o, "Rejected", "Rejected", reason=reason)
        o.order_id = self.next_order_id
        self.next_order_id += 1
        o.leaves = o.order_qty
        self.report(o, "New", "New")
        if o.ord_type in ("Stop", "StopLimit"):
            return self.place_stop(o)
        self.execute(o)
        self.run_stops(o.instrument_id)

    def execute(self, o):
        """Match a new or triggered order, then rest or end what is left; a market order (or a triggered
        Stop) goes no further than the price band's edge."""
        market = o.ord_type in ("Market", "Stop")
        limit = self.band_edge(o.instrument_id, o.side) if market else o.price
        if o.tif == "FillOrKill" and not self.fok_fillable(o, limit):
            return self.end(o, "FillOrKillNotFillable")
        self.match(o, limit)
        if o.leaves == 0:
            return
        if market:
            self.end(o, "RiskPriceBand" if limit is not None and self.opposite(o) else "NoLiquidity")
        elif o.tif == "ImmediateOrCancel":
            self.end(o, "ImmediateOrCancel")
        else:
            self.rest(o)

    def reached(self, o, price):
        return price is not None and (price >= o.stop if o.side == "Buy" else price <= o.stop)

    def trigger(self, o):
        self.emit({"_name": "ExecutionReportTriggered", "clOrdId": o.cl_ord_id, "orderId": o.order_id}, o.session)
        self.execute(o)

    def place_stop(self, o):
        if self.reached(o, self.last_price.get(o.instrument_id)):
            self.trigger(o)
            self.run_stops(o.instrument_id)
        else:
            self.stops.append(o)

    def run_stops(self, instrument_id):
        while self.traded.get(instrument_id):
            prices = self.traded.pop(instrument_id)
            for side, price in (("Buy", max(prices)), ("Sell", min(prices))):
                for o in self.stop_queue(instrument_id, side):
                    if self.reached(o, price):
                        self.stops.remove(o)
                        self.trigger(o)

    def on_cancel(self, r, session):
        o = self.find(session, r["origClOrdId"])
        if o is None or o.instrument_id != r["instrumentId"] or o.side != r["side"]:
            return self.cancel_reject(session, r, "Cancel", "UnknownOrder", o.order_id if o else 0)
        if o in self.stops:
            self.stops.remove(o)
        else:
            self.unrest(o)
        self.end(o, "UserRequest", clOrdId=r["clOrdId"], origClOrdId=o.cl_ord_id)

    def on_replace(self, r, session):
        o = self.find(session, r["origClOrdId"])
        if o is None:
            return self.cancel_reject(session, r, "Replace", "UnknownOrder")
        price, qty = r["price"], r["quantity"]
        if o.instrument_id != r["instrumentId"] or o.side != r["side"]:
            reason = "UnknownOrder"
        elif not 0 < qty <= MAX_QTY:
            reason = "InvalidQuantity"
        elif price <= 0:
            reason = "InvalidPrice"
        elif price % self.ticks[o.instrument_id] != 0:
            reason = "PriceOffTick"
        elif o.display is not None and o.display * ICEBERG_MAX_SLICES < qty:
            reason = "InvalidDisplayQty"
        elif r["clOrdId"] != o.cl_ord_id and self.find(session, r["clOrdId"]):
            reason = "DuplicateClOrdId"
        elif self.replace_risk_reason(o, price, qty):
            reason = self.replace_risk_reason(o, price, qty)
        elif o in self.stops:
            return self.replace_stop(o, r)
        elif qty <= o.cum:
            self.unrest(o)
            return self.end(o, "ReplacedAtOrBelowFilled", clOrdId=r["clOrdId"], origClOrdId=o.cl_ord_id)
        elif o.post_only and self.crossable(o, price) > 0:
            reason = "PostOnlyWouldCross"
        else:
            reason = None
        if reason:
            return self.cancel_reject(session, r, "Replace", reason, o.order_id)

        old_cl_ord_id, keeps_priority = o.cl_ord_id, price == o.price and qty <= o.order_qty
        if keeps_priority:
            self.touch(o)
        else:
            self.unrest(o)
        o.cl_ord_id, o.price, o.order_qty, o.leaves = r["clOrdId"], price, qty, qty - o.cum
        o.shown = min(o.shown, o.leaves)
        self.report(o, "Replaced", "New" if o.cum == 0 else "PartiallyFilled", origClOrdId=old_cl_ord_id)
        if keeps_priority:
            return
        self.match(o, price)
        if o.leaves > 0:
            self.rest(o)
        self.run_stops(o.instrument_id)

    def replace_stop(self, o, r):
        """A Stop's price becomes its stop price, a StopLimit's its limit price."""
        self.stops.remove(o)
        old_cl_ord_id = o.cl_ord_id
        o.cl_ord_id, o.order_qty, o.leaves = r["clOrdId"], r["quantity"], r["quantity"]
        if o.ord_type == "Stop":
            o.stop = r["price"]
        else:
            o.price = r["price"]
        self.emit({"_name": "ExecutionReportReplaced", "clOrdId": o.cl_ord_id, "origClOrdId": old_cl_ord_id,
                   "orderId": o.order_id, "price": o.stop if o.ord_type == "Stop" else o.price,
                   "orderQty": o.order_qty, "leavesQty": o.leaves}, o.session)
        self.place_stop(o)

    def on_mass_cancel(self, r, session):
        instrument_id = r["instrumentId"]
        if r["side"] not in ("Both", "Buy", "Sell"):
            count, reason = 0, "InvalidSide"
        elif instrument_id != 0 and instrument_id not in self.ticks:
            count, reason = 0, "UnknownInstrument"
        else:
            count, reason = 0, "None"
            for i in (self.ticks if instrument_id == 0 else [instrument_id]):
                for side in [s for s in ("Buy", "Sell") if r["side"] in ("Both", s)]:
                    for o in self.book(i, side):
                        if o.session == session:
                            self.unrest(o)
                            self.end(o, "MassCancel")
                            count += 1
                    for o in self.stop_queue(i, side):
                        if o.session == session:
                            self.stops.remove(o)
                            self.end(o, "MassCancel")
                            count += 1
        self.emit({"_name": "OrderMassCancelReport", "clOrdId": r["clOrdId"],
                   "instrumentId": instrument_id, "canceledCount": count, "reason": reason}, session)

    # -- administration ---------------------------------------------------------------------------

    def admin_report(self, session, r, template_id, count, reason):
        self.emit({"_name": "AdminReport", "clOrdId": r["clOrdId"], "refTemplateId": template_id,
                   "instrumentId": r["instrumentId"], "count": count, "reason": reason}, session)

    def on_instrument_state(self, r, session):
        instrument_id, state = r["instrumentId"], r["state"]
        if session not in self.admin_sessions:
            reason = "NotAuthorized"
        elif instrument_id not in self.ticks:
            reason = "UnknownInstrument"
        elif state not in ("Trading", "Halted", "Closed"):
            reason = "InvalidInstrumentState"
        else:
            reason = "None"
            if self.state[instrument_id] != state.lower():
                self.state[instrument_id] = state.lower()
                self.emit_md({"_name": "InstrumentStatus", "instrumentId": instrument_id, "state": state})
        self.admin_report(session, r, 80, 0, reason)

    def on_end_of_day(self, r, session):
        instrument_id, count = r["instrumentId"], 0
        if session not in self.admin_sessions:
            reason = "NotAuthorized"
        elif instrument_id != 0 and instrument_id not in self.ticks:
            reason = "UnknownInstrument"
        else:
            reason = "None"
            for i in (self.ticks if instrument_id == 0 else [instrument_id]):
                for side in ("Buy", "Sell"):
                    for o in self.book(i, side) + self.stop_queue(i, side):
                        if o.tif == "Day":
                            self.expire(o, "EndOfDay")
                            count += 1
        self.admin_report(session, r, 81, count, reason)

    # -- expiry -----------------------------------------------------------------------------------

    def expire(self, o, reason):
        if o in self.stops:
            self.stops.remove(o)
        else:
            self.unrest(o)
        o.leaves = 0
        self.report(o, "Expired", "Expired", reason=reason)

    def on_tick(self):
        due = [o for o in self.resting + self.stops if o.expire_time and o.expire_time * 10 ** 9 <= self.now]
        for o in sorted(due, key=lambda o: (o.expire_time, o.order_id)):
            self.expire(o, "ExpireTime")
