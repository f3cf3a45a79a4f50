"""Market-data recovery over real Aeron UDP on 127.0.0.1: `lob engine` (journaled) under the load
generator; a subscriber that starts after 100,000 market-data messages and one that drops incrementals on
purpose both end with the engine's books. The engine's books are the journal replayed offline (replay is
deterministic), compared at the same market-data sequence number."""
import os
import tempfile
import threading
import time

import pytest

from engine_helpers import model_levels  # noqa: F401  (the same [(price, qty, count)] shape as Engine.levels)
from lob import credentials
from lob.client import connection
from lob.client.book import LIVE
from lob.client.market_data import MarketDataFeed
from lob.tools import loadgen
from lob.tools.demo import LocalStack
from lob.tools.workload import WorkloadSpec, generate

INSTRUMENTS = {1: 1, 2: 1}
KEEP_SESSION = 1101         # cancel_on_disconnect=no: its orders stay in the book after it logs off
WAIT = 120


class DroppingFeed(MarketDataFeed):
    """Loses every `every`-th incremental, as a reader that falls behind would."""

    def __init__(self, *args, every, **kwargs):
        super().__init__(*args, **kwargs)
        self.every, self.seen, self.dropped = every, 0, 0

    def on_incremental_frame(self, frame):
        self.seen += 1
        if self.seen % self.every == 0:
            self.dropped += 1
            return
        super().on_incremental_frame(frame)


class Poller(threading.Thread):
    def __init__(self, feed):
        super().__init__(daemon=True)
        self.feed, self.stop, self.error = feed, threading.Event(), None

    def run(self):
        try:
            while not self.stop.is_set():
                if not self.feed.poll():
                    time.sleep(0.0002)
        except BaseException as exc:   # reported by the test
            self.error = exc


@pytest.fixture(scope="module")
def stack():
    journal = tempfile.mkdtemp(prefix="lob-md-journal-")
    s = LocalStack(instruments=INSTRUMENTS, engine_args=["--journal", journal, "--journal-policy", "none",
                                                          "--recovery-interval", "0.5",
                                                          "--recovery-levels-per-message", "16"])
    s.journal = journal
    try:
        s.start()
        yield s
    finally:
        s.close()
        assert not s.leftovers()


def run_load(stack, orders, seed, instruments=2, first_instrument=1):
    """`orders` order-entry messages as the session whose orders stay on the book after it logs off."""
    spec = WorkloadSpec(orders=orders, seed=seed, instruments=instruments, first_instrument=first_instrument,
                        first_cl_ord_id=seed * 10_000_000)
    keep = [c for c in stack.sessions() if c.session_id == KEEP_SESSION]
    with connection.connect(stack.config) as conn:
        report, _ = loadgen.run_workload(conn.aeron, stack.config, generate(spec).encode(), keep, rate=40_000,
                                         drain_timeout=60.0, cancel_at_end=False)
    assert (report.sent, report.lost) == (orders, 0)
    return report


def wait_until(predicate, timeout=WAIT):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_late_and_lossy_subscribers_end_with_the_engines_books(stack):
    from lob.engine import Engine
    from lob.replay import replay_journal_bytes

    with connection.connect(stack.config) as conn:
        channels = stack.config.client_channels()
        lossy = DroppingFeed(conn.aeron, channels, every=4_999)
        pollers = [Poller(lossy)]
        pollers[0].start()
        late = None
        try:
            wait_until(lambda: lossy.connected)
            run_load(stack, 100_000, seed=1)
            wait_until(lambda: (lossy.seq or 0) >= 100_000)
            late = MarketDataFeed(conn.aeron, channels)     # every instrument the streams carry
            assert late.seq is None and late.books == {}
            pollers.append(Poller(late))
            pollers[1].start()
            run_load(stack, 20_000, seed=2)

            def settled():
                return (late.seq is not None and late.seq == lossy.seq
                        and all(b.state == LIVE for f in (late, lossy) for b in f.books.values())
                        and set(late.books) == set(INSTRUMENTS) == set(lossy.books))
            wait_until(settled)
            last = late.seq
            time.sleep(0.5)          # nothing more comes: the engine is quiet
            assert late.seq == lossy.seq == last
        finally:
            for poller in pollers:
                poller.stop.set()
                poller.join(10)
            for feed in (lossy, late):
                if feed is not None:
                    feed.close()
        for poller in pollers:
            assert poller.error is None, repr(poller.error)

    assert lossy.dropped > 20 and lossy.gaps == lossy.dropped
    assert all(0 < b.recoveries <= b.gaps for b in lossy.books.values())   # a gap during recovery: one recovery
    assert late.first_seq > 100_000 and late.gaps == 0 and all(b.recoveries == 1 for b in late.books.values())
    assert lossy.trade_count > 0 and late.trade_count > 0

    assert stack.stop_engine() == 0
    engine = Engine(INSTRUMENTS, max_orders=1 << 20, market_data=True,
                    sessions=credentials.load(stack.credentials))
    replay_journal_bytes(engine, stack.journal)
    assert engine.next_md_seq - 1 == last
    for instrument in INSTRUMENTS:
        expected = [engine.levels(instrument, side) for side in ("Buy", "Sell")]
        assert expected[0] and expected[1]
        for feed in (late, lossy):
            book = feed.books[instrument]
            assert [book.levels(side) for side in ("Buy", "Sell")] == expected, (instrument, book)


def test_on_request_only_a_late_subscriber_recovers_by_asking():
    with LocalStack(instruments={5: 1}, engine_args=["--recovery-interval", "0"]) as s:
        run_load(s, 2_000, seed=3, instruments=1, first_instrument=5)
        with connection.connect(s.config) as conn:
            feed = MarketDataFeed(conn.aeron, s.config.client_channels(), instruments=[5, 6])
            try:
                deadline = time.monotonic() + WAIT
                while not (feed.books[5].state == LIVE and feed.books[6].why):
                    assert time.monotonic() < deadline, (feed.books, feed.requests_sent)
                    if not feed.poll():
                        time.sleep(0.001)
                book, unknown = feed.books[5], feed.books[6]
                assert (book.recoveries, feed.snapshot_messages >= 1, feed.requests_sent >= 1) == (1, True, True)
                assert book.seq is not None and (book.bids or book.asks)
                assert (unknown.state, unknown.why) == ("stale", "instrument 6 is not among the engine's 1 instruments")
            finally:
                feed.close()
        assert s.stop_engine() == 0
        stopped = [line for line in s.lines if line.startswith("lob engine stopped:")]
        assert stopped and " | md snapshots " in stopped[0] and "requests 0" not in stopped[0], stopped
