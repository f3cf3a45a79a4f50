"""Order-level market data (an instrument's `order_level` reference data): exact messages for adds,
modifies, deletes, executions and iceberg slices; the OrderSnapshot in priority order; a Book kept from
the stream and one recovered from the snapshots agree; other instruments' feed is unchanged."""
from engine_helpers import Harness, book_update, cancel, nos, replace, trade
from lob.client.book import LIVE, RECOVERING
from lob.client.market_data import MarketDataFeed
from lob.framing import split_outbound
from lob.instruments import InstrumentSpec
from lob.sbe import messages

SLICE = 1 << 63     # an iceberg's later slices: the high bit set, the low bits the seqNum of their OrderAdd
RECOVERY = {"market_data": None, "recovery": object()}


def order(name, order_id, side, price, quantity=None, trade_id=None, instrument=1):
    m = {"_name": name, "instrumentId": instrument, "orderId": order_id, "side": side, "price": price}
    if quantity is not None:
        m["quantity"] = quantity
    if trade_id is not None:
        m["tradeId"] = trade_id
    return m


def add(order_id, side, price, qty):
    return order("OrderAdd", order_id, side, price, qty)


def venue():
    return Harness({1: InstrumentSpec(1, order_level=True), 2: InstrumentSpec(2)})


def test_an_iceberg_shows_slices_under_fresh_ids_and_never_its_hidden_quantity():
    h = venue()
    h.send(nos(1, "Sell", 100, 10, displayQty=3))
    assert h.md() == [add(1, "Sell", 100, 3), book_update([("New", "Sell", 100, 3, 1)])]
    h.send(nos(2, "Sell", 100, 2))
    assert h.md() == [add(2, "Sell", 100, 2), book_update([("Change", "Sell", 100, 5, 2)])]
    h.send(nos(1, "Buy", 100, 4), session=2)    # the slice of 3, then 1 of order 2
    md = h.md(sequences=True)
    refill_seq = md[2]["seqNum"]
    strip = [{k: v for k, v in m.items() if k not in ("seqNum", "transactTime")} for m in md]
    assert strip == [
        trade(1, 100, 3, "Buy"),
        order("OrderExecute", 1, "Sell", 100, 3, trade_id=1),
        add(SLICE | refill_seq, "Sell", 100, 3),            # behind order 2, not linked to order 1
        trade(2, 100, 1, "Buy"),
        order("OrderExecute", 2, "Sell", 100, 1, trade_id=2),
        book_update([("Change", "Sell", 100, 4, 2)]),
    ]
    assert [m["seqNum"] for m in md] == list(range(md[0]["seqNum"], md[0]["seqNum"] + 6))
    h.send(cancel(3, 1, side="Sell"))
    assert h.md() == [order("OrderDelete", SLICE | refill_seq, "Sell", 100),
                      book_update([("Change", "Sell", 100, 1, 1)])]


def test_replaces_keep_or_lose_the_place_and_hidden_changes_are_silent():
    h = venue()
    h.send(nos(3, "Buy", 98, 10))
    h.send(nos(4, "Buy", 98, 5))
    h.send(nos(5, "Buy", 97, 20, displayQty=4))
    h.md()
    h.send(replace(6, 3, 98, 6))                        # smaller, same price: keeps its place
    assert h.md() == [order("OrderModify", 1, "Buy", 98, 6), book_update([("Change", "Buy", 98, 11, 2)])]
    h.send(replace(7, 5, 97, 15))                       # the iceberg's hidden part shrinks: nothing shows
    assert h.md() == []
    h.send(replace(8, 6, 99, 6))                        # a new price: leaves one level, joins another
    assert h.md() == [order("OrderDelete", 1, "Buy", 98), add(1, "Buy", 99, 6),
                      book_update([("Change", "Buy", 98, 5, 1), ("New", "Buy", 99, 6, 1)])]


def test_other_instruments_and_self_trade_prevention():
    h = venue()
    h.send(nos(1, "Sell", 50, 5, instrumentId=2))
    assert h.md() == [book_update([("New", "Sell", 50, 5, 1)], instrumentId=2)]   # no order-level messages
    h.send(nos(2, "Sell", 100, 5))
    h.md()
    h.send(nos(3, "Buy", 100, 2, selfTradePrevention="DecrementAndCancel"))
    assert h.md() == [order("OrderModify", 2, "Sell", 100, 3), book_update([("Change", "Sell", 100, 3, 1)])]
    h.send(nos(4, "Buy", 100, 1, selfTradePrevention="CancelResting"))
    assert h.md() == [order("OrderDelete", 2, "Sell", 100), add(4, "Buy", 100, 1),
                      book_update([("Delete", "Sell", 100, 0, 0), ("New", "Buy", 100, 1, 1)])]


def build(h):
    """A book with icebergs part way through, several levels and queues."""
    frames = []
    for frame in (nos(1, "Sell", 101, 9, displayQty=2), nos(2, "Sell", 101, 3), nos(3, "Sell", 102, 4),
                  nos(4, "Buy", 99, 6), nos(5, "Buy", 99, 7, displayQty=3), nos(6, "Buy", 98, 1)):
        h.send(frame)
        frames += split_outbound(h.engine.take_market_data())
    h.send(nos(7, "Buy", 101, 3), session=2)
    frames += split_outbound(h.engine.take_market_data())
    h.send(nos(8, "Sell", 99, 9), session=2)       # order 4 and the first slice of order 5
    frames += split_outbound(h.engine.take_market_data())
    return frames


def test_the_order_snapshot_lists_displayed_orders_in_priority_order():
    h = venue()
    frames = build(h)
    parts = h.engine.order_snapshot_parts(1, 2)
    decoded = [messages.decode(p) for p in parts]
    seq = h.engine.next_md_seq - 1
    assert [(d["seqNum"], d["partIndex"], d["partCount"], d["orderCount"]) for d in decoded] == [
        (seq, 0, 3, 5), (seq, 1, 3, 5), (seq, 2, 3, 5)]
    listed = [(o["orderId"], o["side"], o["price"]["mantissa"], o["quantity"]) for d in decoded for o in d["orders"]]
    stream = MarketDataFeed(None, RECOVERY, instruments=[1])
    for frame in frames:
        stream.on_incremental_frame(frame)
    book = stream.books[1]
    assert book.state == LIVE and book.order_level
    (buy_slice, _), = book.queue("Buy", 99)            # order 5's second slice
    (_, two), (sell_slice, _) = book.queue("Sell", 101)  # order 2 (after 1 traded), order 1's second slice
    assert buy_slice & SLICE and sell_slice & SLICE and two == 2
    assert listed == [(buy_slice, "Buy", 99, 3), (6, "Buy", 98, 1), (2, "Sell", 101, 2), (sell_slice, "Sell", 101, 2),
                      (3, "Sell", 102, 4)]
    (level_frame,) = h.engine.book_snapshot_parts(1, 62)
    assert messages.decode(level_frame)["orderLevel"] == 1
    assert messages.decode(h.engine.book_snapshot_parts(2, 62)[0])["orderLevel"] == 0


def test_a_late_subscriber_recovers_the_orders_from_both_snapshots():
    h = venue()
    frames = build(h)
    live = MarketDataFeed(None, RECOVERY, instruments=[1])
    for frame in frames:
        live.on_incremental_frame(frame)
    late = MarketDataFeed(None, RECOVERY, instruments=[1])
    h.send(nos(9, "Sell", 103, 2))
    more = split_outbound(h.engine.take_market_data())
    late.on_incremental_frame(more[-1])                 # joins here, just before the snapshots
    book = late.books[1]
    levels, orders = h.engine.book_snapshot_parts(1, 2), h.engine.order_snapshot_parts(1, 2)
    for frame in levels:
        late.on_snapshot_frame(frame)
    assert book.state == RECOVERING                     # the level snapshot waits for its orders
    for frame in orders[1:]:
        late.on_snapshot_frame(frame)
    assert book.why == (f"snapshot refused (order part 2 of 3 at seq {h.engine.next_md_seq - 1} came without the "
                        f"parts before it); waiting for the next")
    for frame in levels + orders:
        late.on_snapshot_frame(frame)
    for frame in more:
        live.on_incremental_frame(frame)
    assert book.state == LIVE and book.recoveries == 1
    assert (book.bids, book.asks, book.orders) == (live.books[1].bids, live.books[1].asks, live.books[1].orders)
    assert [book.queue(s, p) for s, p in (("Buy", 99), ("Sell", 101))] == \
        [live.books[1].queue(s, p) for s, p in (("Buy", 99), ("Sell", 101))]


def test_orders_that_do_not_add_up_or_unknown_ids_are_refused():
    h = venue()
    build(h)
    late = MarketDataFeed(None, RECOVERY, instruments=[1])
    book = late.books[1]
    for frame in h.engine.book_snapshot_parts(1, 62):
        late.on_snapshot_frame(frame)
    fields = {k: v for k, v in messages.decode(h.engine.order_snapshot_parts(1, 62)[0]).items()
              if not k.startswith("_")}
    fields["orders"] = [dict(o) for o in fields["orders"]]
    fields["orders"][0]["quantity"] += 1
    fields["checksum"] = 0
    import zlib

    from lob.client.market_data import SNAPSHOTS
    offset = SNAPSHOTS[29][1]
    frame = bytearray(messages.encode("OrderSnapshot", **fields))
    frame[offset:offset + 4] = zlib.crc32(frame).to_bytes(4, "little")
    late.on_snapshot_frame(bytes(frame))
    assert book.state == RECOVERING
    assert book.why == f"snapshot refused (seq {fields['seqNum']}: its orders do not add up to its levels); " \
                       f"waiting for the next"
    for frame in h.engine.book_snapshot_parts(1, 62) + h.engine.order_snapshot_parts(1, 62):
        late.on_snapshot_frame(frame)
    assert book.state == LIVE
    bogus = messages.encode("OrderDelete", seqNum=h.engine.next_md_seq, transactTime=0, instrumentId=1,
                            orderId=424242, side="Buy", price={"mantissa": 99})
    late.on_incremental_frame(bogus)
    assert book.state == RECOVERING and book.why.startswith("OrderDelete of order 424242 does not match the book")


def test_a_random_session_with_icebergs_the_stream_always_matches_the_order_snapshot():
    import random

    rng = random.Random(12)
    h = venue()
    slices = []
    feed = MarketDataFeed(None, RECOVERY, instruments=[1], on_message=lambda m, b: slices.append(m["orderId"])
                          if m["_name"] == "OrderAdd" and m["orderId"] & SLICE else None)
    resting = []        # (clOrdId, side, session) of orders that may still rest
    for i in range(2, 1500):
        roll = rng.random()
        side, session = rng.choice(("Buy", "Sell")), 1 + i % 3
        if roll < 0.55 or not resting:
            extra = {"displayQty": rng.randrange(1, 4)} if rng.random() < 0.3 else {}
            frame = nos(i, side, 100 + rng.randrange(-5, 6), rng.randrange(1, 12), **extra)
            resting.append((i, side, session))
        elif roll < 0.75:
            orig, side, session = resting.pop(rng.randrange(len(resting)))
            frame = cancel(i, orig, side=side)
        elif roll < 0.9:
            orig, side, session = resting.pop(rng.randrange(len(resting)))
            frame = replace(i, orig, 100 + rng.randrange(-5, 6), rng.randrange(1, 12), side=side)
            resting.append((i, side, session))
        else:           # sweeps a few levels
            frame = nos(i, side, 106 if side == "Buy" else 94, rng.randrange(5, 40))
            resting.append((i, side, session))
        h.send(frame, session=session)
        for out in split_outbound(h.engine.take_market_data()):
            feed.on_incremental_frame(out)
        if i % 100 == 0:
            book = feed.books[1]
            assert book.state == LIVE, book.why
            listed = [(o["orderId"], o["side"], o["price"]["mantissa"], o["quantity"])
                      for p in h.engine.order_snapshot_parts(1, 7) for o in messages.decode(p)["orders"]]
            from_stream = [(oid, s, p, q) for s in ("Buy", "Sell") for p, _, _ in book.levels(s)
                           for oid, q in book.queue(s, p)]
            assert from_stream == listed
            assert [book.levels(s) for s in ("Buy", "Sell")] == [h.engine.levels(1, s) for s in ("Buy", "Sell")]
    assert feed.trade_count > 100 and len(slices) > 50 and len(set(slices)) == len(slices)
