"""The recovering Book and MarketDataFeed, fed real engine frames by hand: each state and each bad input."""
import random
import time
import zlib

import pytest

from engine_helpers import Harness, cancel, nos
from lob.client.book import LIVE, RECOVERING, STALE, Book
from lob.client.market_data import CHECKSUM_OFFSET, MarketDataFeed
from lob.framing import split_outbound
from lob.sbe import messages

RECOVERY = {"market_data": None, "recovery": object()}     # channels as far as an offline feed cares
NO_RECOVERY = {"market_data": None}


class Venue:
    """An engine with instruments 1 and 7; its incremental frames and book snapshots."""

    def __init__(self):
        self.h = Harness({1: 1, 7: 5})
        self.next_id = 1

    def send(self, *frames):
        out = []
        for frame in frames:
            self.h.send(frame)
            out += split_outbound(self.h.engine.take_market_data())
        return out

    def order(self, side, price, qty, instrument=1):
        self.next_id += 1
        return self.send(nos(self.next_id, side, price, qty, instrumentId=instrument))

    def snapshot(self, instrument=1, per_part=65535):
        return self.h.engine.book_snapshot_parts(instrument, per_part)

    def levels(self, instrument=1):
        return ([(p, q, c) for p, q, c in self.h.engine.levels(instrument, "Buy")],
                [(p, q, c) for p, q, c in self.h.engine.levels(instrument, "Sell")])

    @property
    def seq(self):
        return self.h.engine.next_md_seq - 1


def book_levels(book):
    return book.levels("Buy"), book.levels("Sell")


def feed_of(frames, feed):
    for frame in frames:
        feed.on_incremental_frame(frame)


def a_book(venue, orders=12, seed=1, instrument=1):
    rng = random.Random(seed)
    out = []
    for _ in range(orders):
        out += venue.order(rng.choice("BS") == "B" and "Buy" or "Sell", 100 + rng.randrange(-6, 7),
                           rng.randrange(1, 9), instrument)
    return out


def test_a_feed_from_the_stream_start_is_live_without_a_snapshot():
    venue = Venue()
    feed = MarketDataFeed(None, RECOVERY, instruments=[1])
    assert (feed.books[1].state, feed.books[1].why) == (RECOVERING, "waiting for a snapshot")
    feed_of(a_book(venue, 30), feed)
    book = feed.books[1]
    assert (book.state, book.why, book.seq, book.recoveries, book.gaps) == (LIVE, None, venue.seq, 0, 0)
    assert book_levels(book) == venue.levels()
    assert feed.trade_count == len(feed.trades) > 0
    instrument, trade_id, price, qty, side, when = feed.trades[-1]
    assert (instrument, trade_id) == (1, venue.h.engine.next_trade_id - 1) and side in ("Buy", "Sell")


def test_a_late_subscriber_buffers_takes_a_snapshot_applies_what_follows():
    venue = Venue()
    a_book(venue, 20)
    feed = MarketDataFeed(None, RECOVERY, instruments=[1])
    first = a_book(venue, 5, seed=2)           # the feed joins here: buffered
    snapshot = venue.snapshot()                 # consistent with everything so far
    snap_seq = venue.seq
    after = a_book(venue, 5, seed=3)
    feed_of(first, feed)
    book = feed.books[1]
    assert book.state == RECOVERING and book.why.startswith(f"joined the stream at seq {snap_seq - len(first) + 1}")
    feed_of(after, feed)
    assert book.state == RECOVERING
    for frame in snapshot:
        feed.on_snapshot_frame(frame)
    assert (book.state, book.why, book.recoveries, book.gaps, book.seq) == (LIVE, None, 1, 0, venue.seq)
    assert book_levels(book) == venue.levels()
    feed_of(a_book(venue, 5, seed=4), feed)
    assert book_levels(book) == venue.levels()


def test_a_large_book_comes_in_parts_that_are_reassembled():
    venue = Venue()
    for i in range(9):
        venue.order("Buy", 90 - i, 1 + i)
        venue.order("Sell", 110 + i, 2 + i)
    parts = venue.snapshot(per_part=4)
    decoded = [messages.decode(p) for p in parts]
    assert [(d["partIndex"], d["partCount"], d["levelCount"], len(d["levels"])) for d in decoded] == [
        (0, 5, 18, 4), (1, 5, 18, 4), (2, 5, 18, 4), (3, 5, 18, 4), (4, 5, 18, 2)]
    assert all(zlib.crc32(p[:CHECKSUM_OFFSET] + b"\0" * 4 + p[CHECKSUM_OFFSET + 4:])
               == d["checksum"] for p, d in zip(parts, decoded))
    assert {(d["seqNum"], d["instrumentId"], d["instrumentCount"]) for d in decoded} == {(venue.seq, 1, 2)}
    feed = MarketDataFeed(None, RECOVERY, instruments=[1])
    for frame in parts:
        feed.on_snapshot_frame(frame)
    assert feed.books[1].state == LIVE and book_levels(feed.books[1]) == venue.levels()


def test_the_recovery_module_checksum_is_zlibs():
    from lob.md_recovery import checksum
    for data in (b"", b"a", bytes(range(256)) * 7):
        assert checksum(data) == zlib.crc32(data)


def recovering_feed(venue, instruments=(1,)):
    a_book(venue, 10)
    feed = MarketDataFeed(None, RECOVERY, instruments=list(instruments))
    feed_of(venue.order("Buy", 95, 1), feed)
    return feed


def test_a_corrupted_snapshot_is_refused_and_the_next_good_one_used():
    venue = Venue()
    feed = recovering_feed(venue)
    good = venue.snapshot()[0]
    bad = bytearray(good)
    bad[-3] ^= 0x40                             # a level's order count
    feed.on_snapshot_frame(bytes(bad))
    book = feed.books[1]
    assert (book.state, book.why) == (RECOVERING, "snapshot refused (checksum mismatch: corrupted); waiting for the next")
    assert (book.bids, book.asks, feed.snapshots_refused) == ({}, {}, 1)
    feed.on_snapshot_frame(good)
    assert book.state == LIVE and book_levels(book) == venue.levels()


def test_a_truncated_snapshot_is_refused():
    venue = Venue()
    feed = recovering_feed(venue)
    good = venue.snapshot()[0]
    feed.on_snapshot_frame(good[:-5])
    book = feed.books[1]
    assert book.state == RECOVERING
    assert book.why == (f"snapshot refused (truncated: {len(good) - 5} bytes, its levels need {len(good)}); "
                        f"waiting for the next")
    feed.on_snapshot_frame(good[:30])
    assert book.why == "snapshot refused (truncated: 30 bytes); waiting for the next"
    feed.on_snapshot_frame(good[:20])           # not even the instrument: counted by the feed only
    assert feed.snapshots_refused == 3 and book.snapshots_refused == 2 and book.state == RECOVERING


def test_a_snapshot_that_does_not_add_up_is_refused_even_with_a_good_checksum():
    venue = Venue()
    feed = recovering_feed(venue)
    fields = {k: v for k, v in messages.decode(venue.snapshot()[0]).items() if not k.startswith("_")}
    fields["levels"] = [dict(l) for l in fields["levels"]]
    bid = next(l for l in fields["levels"] if l["side"] == "Buy")
    ask = next(l for l in fields["levels"] if l["side"] == "Sell")
    ask["price"] = {"mantissa": bid["price"]["mantissa"] - 1}     # the best ask below the best bid
    fields["checksum"] = 0
    frame = bytearray(messages.encode("BookSnapshot", **fields))
    frame[CHECKSUM_OFFSET:CHECKSUM_OFFSET + 4] = zlib.crc32(frame).to_bytes(4, "little")
    feed.on_snapshot_frame(bytes(frame))
    book = feed.books[1]
    assert (book.state, book.why) == (
        RECOVERING, f"snapshot refused (seq {fields['seqNum']}: crossed book); waiting for the next")


def test_a_snapshot_older_than_the_incrementals_held_is_refused():
    venue = Venue()
    a_book(venue, 10)
    old = venue.snapshot()
    old_seq = venue.seq
    lost = venue.order("Buy", 96, 2)            # the feed never sees this one
    feed = MarketDataFeed(None, RECOVERY, instruments=[1])
    feed_of(venue.order("Sell", 104, 3), feed)
    for frame in old:
        feed.on_snapshot_frame(frame)
    book = feed.books[1]
    assert book.state == RECOVERING and lost
    assert book.why == (f"snapshot refused (seq {old_seq} is older than the incrementals held, which start at "
                        f"{old_seq + 2}); waiting for the next")
    for frame in venue.snapshot():
        feed.on_snapshot_frame(frame)
    assert book.state == LIVE and book_levels(book) == venue.levels()


def test_a_gap_while_live_sends_the_book_back_to_recovering():
    venue = Venue()
    feed = MarketDataFeed(None, RECOVERY, instruments=[1, 7])
    feed_of(a_book(venue, 10), feed)
    feed_of(a_book(venue, 3, instrument=7), feed)
    assert feed.books[1].state == LIVE
    lost = venue.order("Buy", 97, 4) + venue.order("Sell", 103, 4)
    gap = (venue.seq - len(lost) + 1, venue.seq)
    feed_of(venue.order("Buy", 98, 1), feed)
    for instrument in (1, 7):
        book = feed.books[instrument]
        assert (book.state, book.gaps, book.why) == (
            RECOVERING, 1, f"lost messages {gap[0]}..{gap[1]}: waiting for a snapshot at seq >= {gap[1]}")
    assert feed.gaps == 1
    for instrument in (1, 7):
        for frame in venue.snapshot(instrument):
            feed.on_snapshot_frame(frame)
        assert feed.books[instrument].state == LIVE and book_levels(feed.books[instrument]) == venue.levels(instrument)
        assert feed.books[instrument].recoveries == 1


def test_a_quiet_stream_behind_an_engine_snapshot_has_lost_its_last_messages():
    venue = Venue()
    feed = MarketDataFeed(None, RECOVERY, instruments=[1], quiet_after=1.0)
    feed_of(a_book(venue, 10), feed)
    seen = venue.seq
    venue.order("Buy", 97, 4)                       # its messages never reach the feed, nothing follows them
    start = time.monotonic()
    for frame in venue.snapshot(1):
        feed.on_snapshot_frame(frame)
    book = feed.books[1]
    feed.check_quiet(start + 0.5)
    assert (book.state, feed.seq, feed.gaps, feed.lost_tails) == (LIVE, seen, 0, 0)
    feed.check_quiet(start + 5)
    assert (feed.seq, feed.gaps, feed.lost_tails, book.gaps) == (venue.seq, 1, 1, 1)
    assert (book.state, book.why) == (
        RECOVERING, f"lost messages {seen + 1}..{venue.seq}: waiting for a snapshot at seq >= {venue.seq}")
    for frame in venue.snapshot(1):
        feed.on_snapshot_frame(frame)
    assert book.state == LIVE and book_levels(book) == venue.levels()


def test_a_stream_that_catches_up_with_the_snapshot_is_not_a_gap():
    venue = Venue()
    feed = MarketDataFeed(None, RECOVERY, instruments=[1], quiet_after=1.0)
    feed_of(a_book(venue, 10), feed)
    late = venue.order("Buy", 97, 4)                # the recovery channel is ahead of the incrementals
    start = time.monotonic()
    for frame in venue.snapshot(1):
        feed.on_snapshot_frame(frame)
    feed_of(late, feed)
    feed.check_quiet(start + 5)
    assert (feed.seq, feed.gaps, feed.lost_tails, feed.books[1].state) == (venue.seq, 0, 0, LIVE)
    feed.poll()
    assert feed.verified == 1 and book_levels(feed.books[1]) == venue.levels()


def test_a_gap_in_the_middle_of_a_recovery():
    venue = Venue()
    feed = recovering_feed(venue)
    early = venue.snapshot()                    # consistent before the gap below
    feed_of(venue.order("Sell", 105, 2), feed)
    lost = venue.order("Buy", 94, 2)
    feed_of(venue.order("Sell", 106, 1), feed)
    book = feed.books[1]
    assert (book.state, book.gaps) == (RECOVERING, 1)
    assert book.why == f"lost messages {venue.seq - 1}..{venue.seq - 1} during recovery: " \
                       f"waiting for a snapshot at seq >= {venue.seq - 1}" and lost
    for frame in early:
        feed.on_snapshot_frame(frame)
    assert book.state == RECOVERING and "is older than the incrementals held" in book.why
    for frame in venue.snapshot():
        feed.on_snapshot_frame(frame)
    assert book.state == LIVE and book_levels(book) == venue.levels()


def test_an_instrument_the_engine_does_not_have_goes_stale_with_the_reason():
    venue = Venue()
    feed = recovering_feed(venue, instruments=(1, 99))
    for instrument in (1, 7):
        for frame in venue.snapshot(instrument):
            feed.on_snapshot_frame(frame)
    assert feed.books[1].state == LIVE
    assert (feed.books[99].state, feed.books[99].why) == (
        STALE, "instrument 99 is not among the engine's 2 instruments")
    assert (feed.books[99].bids, feed.books[99].asks) == ({}, {})


def test_without_a_recovery_channel_a_gap_makes_the_book_stale():
    venue = Venue()
    feed = MarketDataFeed(None, NO_RECOVERY, instruments=[1])
    feed_of(a_book(venue, 5), feed)
    kept = book_levels(feed.books[1])
    seq = feed.books[1].seq
    venue.order("Buy", 99, 1)
    feed_of(venue.order("Buy", 98, 1), feed)
    book = feed.books[1]
    assert (book.state, book.why) == (STALE, f"lost messages {seq + 1}..{seq + 1}: no recovery channel to rebuild "
                                             f"the book from")
    assert book_levels(book) == kept and book.seq == seq      # the book as of seq, not a mix


def test_parts_out_of_order_or_missing_are_refused():
    venue = Venue()
    feed = recovering_feed(venue)
    for i in range(6):
        venue.order("Sell", 110 + i, 1)
    parts = venue.snapshot(per_part=3)
    assert len(parts) >= 3
    feed.on_snapshot_frame(parts[1])
    book = feed.books[1]
    assert book.why == (f"snapshot refused (part 1 of {len(parts)} at seq {venue.seq} came without the parts "
                        f"before it); waiting for the next")
    feed.on_snapshot_frame(parts[0])
    feed.on_snapshot_frame(parts[2])
    assert book.state == RECOVERING and "part 2 of" in book.why
    feed_of(split_outbound(b""), feed)
    feed_of([], feed)
    lost_between = venue.seq
    for frame in parts:
        feed.on_snapshot_frame(frame)
    assert book.state == LIVE and lost_between


def test_a_live_book_ignores_snapshots_and_old_or_repeated_incrementals():
    venue = Venue()
    feed = MarketDataFeed(None, RECOVERY, instruments=[1])
    frames = a_book(venue, 8)
    feed_of(frames, feed)
    before = book_levels(feed.books[1])
    feed_of(frames[2:5], feed)                  # (seq 1 again would be an engine starting afresh)
    assert feed.duplicates == 3 and book_levels(feed.books[1]) == before
    bad = bytearray(venue.snapshot()[0])
    bad[-1] ^= 1
    feed.on_snapshot_frame(bytes(bad))
    assert (feed.books[1].state, feed.books[1].why) == (LIVE, None)


def test_the_engine_starting_afresh_resets_the_books():
    venue = Venue()
    feed = MarketDataFeed(None, RECOVERY, instruments=[1])
    feed_of(a_book(venue, 8), feed)
    fresh = Venue()
    feed_of(fresh.order("Buy", 100, 1), feed)
    book = feed.books[1]
    assert (feed.restarts, book.state, book_levels(book)) == (1, LIVE, fresh.levels())


def test_buffers_are_bounded(monkeypatch):
    from lob.client import book as book_module
    monkeypatch.setattr(book_module, "MAX_PENDING", 3)
    venue = Venue()
    a_book(venue, 4)
    feed = MarketDataFeed(None, RECOVERY, instruments=[1])
    early = venue.snapshot()
    feed_of(a_book(venue, 6, seed=5), feed)
    book = feed.books[1]
    assert book.state == RECOVERING and book.why.startswith("recovery buffer full (3 messages)")
    for frame in early:
        feed.on_snapshot_frame(frame)
    assert book.state == RECOVERING and "older than the incrementals held" in book.why
    for frame in venue.snapshot():
        feed.on_snapshot_frame(frame)
    assert book.state == LIVE and book_levels(book) == venue.levels()


def test_book_refuses_an_inconsistent_snapshot_directly():
    book = Book(1)
    level = dict(side="Buy", price={"mantissa": 100}, quantity=5, orderCount=1)
    snap = dict(_name="BookSnapshot", seqNum=4, instrumentId=1, partIndex=0, partCount=1, levelCount=2,
                levels=[level])
    assert not book.on_snapshot(snap)
    assert book.why == "snapshot refused (seq 4: 1 levels, 2 announced); waiting for the next"
    assert not book.on_snapshot(dict(snap, levelCount=1, levels=[dict(level, quantity=0)]))
    assert book.why == "snapshot refused (seq 4: bad level Buy 100 0x1); waiting for the next"
    assert book.on_snapshot(dict(snap, levelCount=1))
    assert (book.state, book.bids, book.seq, book.recoveries) == (LIVE, {100: (5, 1)}, 4, 1)


@pytest.mark.parametrize("drop_every", [7, 50])
def test_dropping_incrementals_on_purpose_still_ends_identical(drop_every):
    venue = Venue()
    feed = MarketDataFeed(None, RECOVERY, instruments=[1, 7])
    rng = random.Random(drop_every)
    n = 0
    for i in range(400):
        instrument = rng.choice((1, 7))
        price = 100 + rng.randrange(-8, 9) * (5 if instrument == 7 else 1)
        frames = venue.order(rng.choice(("Buy", "Sell")), price, rng.randrange(1, 6), instrument)
        if i % 9 == 0:
            frames += venue.send(cancel(10_000 + i, max(2, venue.next_id - rng.randrange(0, 8)), instrumentId=instrument))
        for frame in frames:
            n += 1
            if n % drop_every:
                feed.on_incremental_frame(frame)
        if i % 40 == 39:        # the engine's snapshot loop comes round
            for inst in (1, 7):
                for frame in venue.snapshot(inst, per_part=3):
                    feed.on_snapshot_frame(frame)
    for inst in (1, 7):
        for frame in venue.snapshot(inst, per_part=3):
            feed.on_snapshot_frame(frame)
    assert feed.gaps > 0
    for inst in (1, 7):
        assert feed.books[inst].state == LIVE, feed.books[inst].why
        assert book_levels(feed.books[inst]) == venue.levels(inst)


def test_live_books_are_checked_against_the_engines_snapshots_at_their_seq():
    venue = Venue()
    feed = MarketDataFeed(None, RECOVERY, instruments=[1, 7])
    feed_of(a_book(venue, 10), feed)
    for frame in venue.snapshot(1, per_part=2):        # at the feed's seq: compared at once
        feed.on_snapshot_frame(frame)
    assert (feed.verified, feed.mismatches, feed.books[1].verified) == (1, 0, 1)
    behind = a_book(venue, 3, seed=7)
    ahead = venue.snapshot(1)                          # the recovery channel ahead of the incrementals
    feed.on_snapshot_frame(ahead[0])
    assert feed.verified == 1 and feed.books[1].check is not None
    feed_of(behind, feed)
    feed.poll()
    assert (feed.verified, feed.books[1].check) == (2, None)
    feed.books[1].bids[1] = (1, 1)                     # a book gone wrong (as a bug would make it)
    for frame in venue.snapshot(1):
        feed.on_snapshot_frame(frame)
    book = feed.books[1]
    assert (feed.mismatches, book.mismatches, book.state) == (1, 1, RECOVERING)
    assert book.why == f"differs from the engine's snapshot at seq {venue.seq}: waiting for a snapshot"
    for frame in venue.snapshot(1):
        feed.on_snapshot_frame(frame)
    assert book.state == LIVE and book_levels(book) == venue.levels()
    feed_of(venue.order("Buy", 90, 1, instrument=7), feed)
    for frame in venue.snapshot(7):                    # instrument 7's book moved on since: not comparable
        pass
    stale = venue.snapshot(1)
    feed_of(venue.order("Buy", 91, 1), feed)
    feed.on_snapshot_frame(stale[0])
    assert feed.books[1].verify(feed.seq) is None and feed.verified == 2


def test_snapshots_show_an_icebergs_slice_only_and_nobody_behind_an_order():
    venue = Venue()
    venue.send(nos(2, "Sell", 101, 10, displayQty=3), nos(3, "Sell", 101, 2), nos(4, "Buy", 99, 50, displayQty=5))
    feed = MarketDataFeed(None, RECOVERY, instruments=[1])
    (frame,) = venue.snapshot()
    message = messages.decode(frame)
    assert [(l["side"], l["price"]["mantissa"], l["quantity"], l["orderCount"]) for l in message["levels"]] == [
        ("Buy", 99, 5, 1), ("Sell", 101, 5, 2)]
    assert set(message) - {"levels"} == {"_name", "_template_id", "_schema_id", "_version", "seqNum", "transactTime",
                                         "instrumentId", "lastTradeId", "instrumentCount", "partIndex", "partCount",
                                         "levelCount", "checksum", "orderLevel"}    # no order, session, account, firm
    feed.on_snapshot_frame(frame)
    feed_of(venue.send(nos(5, "Buy", 101, 4)), feed)   # takes the 3 slice and 1 of the next order
    assert feed.books[1].state == LIVE and book_levels(feed.books[1]) == venue.levels() == (
        [(99, 5, 1)], [(101, 4, 2)])
