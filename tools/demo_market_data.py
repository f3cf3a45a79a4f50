"""`lob demo`'s market-data subscriber: a MarketDataFeed polled on a thread of its own while the load
runs, its books checked against the engine's book snapshots during the run and once more at the end."""
import threading
import time

from lob.client.book import LIVE
from lob.client.market_data import MarketDataFeed


class DemoMarketData:
    def __init__(self, aeron, config, instruments):
        self.instruments = list(instruments)
        self.feed = MarketDataFeed(aeron, config.client_channels(), instruments=self.instruments)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.error = None
        self.end_verified = False
        self._thread = threading.Thread(target=self._run, name="lob-demo-market-data", daemon=True)
        self._thread.start()

    def _run(self):
        try:
            while not self._stop.is_set():
                with self._lock:
                    work = self.feed.poll()
                if not work:
                    time.sleep(0.0005)
        except Exception as exc:  # reported in the summary line
            self.error = exc

    def finish(self, timeout=10.0):
        """After the load: wait until every book is live and has matched an engine snapshot taken after
        the load ended (a mismatch would send it back to recovering), then stop polling."""
        feed = self.feed
        with self._lock:
            start = {i: feed.books[i].verified for i in self.instruments}
            feed.request_snapshots()
        deadline = time.monotonic() + timeout
        ask_again = time.monotonic() + 0.25
        while time.monotonic() < deadline and self._thread.is_alive():
            with self._lock:
                done = all(feed.books[i].state == LIVE and feed.books[i].verified > start[i]
                           for i in self.instruments)
                if not done and time.monotonic() >= ask_again:   # the stream was not quiet yet
                    feed.request_snapshots()
                    ask_again = time.monotonic() + 0.25
            if done:
                self.end_verified = True
                break
            time.sleep(0.01)
        self._stop.set()
        self._thread.join(5)

    def identical(self):
        return self.end_verified and self.feed.mismatches == 0 and self.error is None

    def summary(self):
        feed = self.feed
        books = feed.books.values()
        recoveries = sum(b.recoveries for b in books)
        verdict = "yes" if self.identical() else "NO"
        if not self.end_verified:
            checks = [b.check[0] for b in books if b.check is not None]
            verdict += (f" (not compared at the end: the feed is at seq {feed.seq}"
                        + (f", the engine's last snapshot at seq {max(checks)}" if checks else "") + ")")
        states = ", ".join(f"{b.instrument} {b.state}" + (f" ({b.why})" if b.why else "") for b in books)
        line = (f"market data: {feed.messages:,} messages ({feed.snapshot_messages:,} snapshot), "
                f"{feed.trade_count:,} trades, {feed.gaps} gaps, {recoveries} recoveries; "
                f"books identical to the engine's: {verdict} "
                f"(checked against {feed.verified} engine snapshots, {feed.mismatches} mismatches; {states})")
        if self.error is not None:
            line += f"; feed error: {self.error!r}"
        return line

    def close(self):
        self._stop.set()
        self._thread.join(5)
        self.feed.close()
