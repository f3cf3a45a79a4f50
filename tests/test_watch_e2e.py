"""`lob watch` against `lob engine` over real Aeron UDP on 127.0.0.1: no logon, the engine's channels,
the book recovered from the engine's snapshot, then kept live from the incrementals while a trading
session builds and trades a book; what it prints is checked line by line.

One media driver in this process (shared threading); the engine and `lob watch` are subprocesses
attached to it. Waits are bounded; nothing asserts on time.
"""
import os
import re
import signal
import subprocess
import sys
import threading

from aeron_helpers import ROOT, WAIT, EngineProcess, OrderEntrySession, wait_until
from engine_helpers import nos

SCREEN_AFTER_TRADING = """\
╭─ Instrument 1  live  seq 7  recoveries 1  gaps 0 ──╮
│ orders    bid qty        price    ask qty   orders │
│ ────────────────────────────────────────────────── │
│                         0.1020          3        1 │
│                         0.1010          8        1 │
│                                                    │
│      2         11       0.0990                     │
│      1          7       0.0980                     │
│ spread 0.0020  last 0.0990 x 4 (sell aggressor) #1 │
╰────────────────────────────────────────────────────╯"""


class Watcher:
    """`lob watch` as a subprocess; its screens (stdout is a pipe, so each changed screen is printed)
    are collected by a thread."""

    def __init__(self, *args):
        self.process = subprocess.Popen([sys.executable, "-m", "lob.cli", "watch", *map(str, args)], cwd=ROOT,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1)
        self.chunks = []
        self.reader = threading.Thread(target=lambda: self.chunks.extend(self.process.stdout), daemon=True)
        self.reader.start()

    @property
    def output(self):
        return "".join(line.rstrip() + "\n" for line in self.chunks)

    def screens(self):
        return [s for s in self.output.split("\n\n") if s.strip()]

    def close(self):
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self.reader.join(5)
        self.process.stdout.close()
        self.process.stderr.close()


def test_watch_shows_the_engine_book(tmp_path):
    from lob.transport.driver import MediaDriver

    driver = MediaDriver()
    watcher = session = None
    try:
        with EngineProcess("--max-orders", "4096", "--no-prefault", instruments="1:1", attach_dir=driver.dir) as engine:
            engine.wait_ready()
            watcher = Watcher("--aeron-dir", driver.dir, "--port-base", engine.port_base, "--instrument", 1,
                              "--levels", 3, "--trades", 2, "--width", 120, "--refresh", 20)
            # an empty book, live from the engine's snapshot (seq 0: nothing published yet)
            assert wait_until(lambda: "Instrument 1  live  seq 0  recoveries 1  gaps 0" in watcher.output), \
                watcher.output[-3000:]
            session = OrderEntrySession(engine.client_channels(), engine.credentials[1001], driver_dir=driver.dir,
                                        market_data=False)
            session.logon()
            orders = [nos(1, "Buy", 990, 10), nos(2, "Buy", 990, 5), nos(3, "Buy", 980, 7), nos(4, "Sell", 1010, 8),
                      nos(5, "Sell", 1020, 3), nos(6, "Sell", 990, 4)]   # the last trades 4 at 990: seq 6, 7
            for frame in orders:
                session.send(frame)
            assert wait_until(lambda: SCREEN_AFTER_TRADING in watcher.output), watcher.output[-3000:]
            watcher.process.send_signal(signal.SIGTERM)
            assert watcher.process.wait(WAIT) == 0
            watcher.reader.join(WAIT)
            last = watcher.screens()[-1]
            assert SCREEN_AFTER_TRADING in last
            lines = last.splitlines()
            assert re.fullmatch(r"lob watch   messages [\d,]+ \([\d,]+/s\)   trades 1 \([\d,]+/s\)   "
                                r"feed seq 7   gaps 0   snapshots [\d,]+", lines[0]), lines[0]
            trades = lines[lines.index("last trades") + 3:]
            assert len(trades) == 1
            assert re.fullmatch(r"\d\d:\d\d:\d\d\.\d\d\d +1 +1 +0\.0990 +4 +sell", trades[0]), trades
            assert "lob watch: market data aeron:udp?endpoint=127.0.0.1:0|control=127.0.0.1:" \
                   f"{engine.port_base + 2}|control-mode=dynamic stream 1003" in watcher.process.stderr.read()
            watcher.close()

            # one that joins now gets the book from a snapshot (the trade before it joined is not replayed)
            watcher = Watcher("--aeron-dir", driver.dir, "--port-base", engine.port_base, "--levels", 3,
                              "--width", 120, "--refresh", 20)
            trade_line = "│ spread 0.0020  last 0.0990 x 4 (sell aggressor) #1 │"
            late = SCREEN_AFTER_TRADING.replace(trade_line, "│ spread 0.0020".ljust(len(trade_line) - 1) + "│")
            if not wait_until(lambda: late in watcher.output):
                watcher.process.kill()
                raise AssertionError(watcher.output[-3000:] + watcher.process.stderr.read())
    finally:
        if watcher is not None:
            watcher.close()
        if session is not None:
            session.close()
        driver.close()


def test_demo_shows_the_book_while_the_load_runs():
    done = subprocess.run([sys.executable, "-m", "lob.cli", "demo", "--watch", "--seconds", "1", "--rate", "3000"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, env=dict(os.environ, COLUMNS="120"))
    assert done.returncode == 0, done.stdout + done.stderr
    screens = [s for s in done.stdout.split("\n\n") if s.startswith("lob watch   messages")]
    assert screens, done.stdout
    last = [line.rstrip() for line in screens[-1].splitlines()]
    header = last[0]
    assert int(re.search(r"trades ([\d,]+) ", header).group(1).replace(",", "")) > 0
    assert any(line.startswith("╭─ Instrument 1  live  seq ") for line in last), last
    assert "last trades" in last and "none yet" not in screens[-1]
    assert "books identical to the engine's: yes" in done.stdout    # the demo's own subscriber, beside the view
    assert "nothing left behind" in done.stdout
