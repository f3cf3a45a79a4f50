"""Test helpers for real Aeron over UDP on 127.0.0.1: drivers, ports, `lob engine` as a subprocess.

Every driver runs in the shared threading mode with the yield idle strategy in its own directory;
every directory and process a helper starts is removed/killed on exit, also when the test fails.
Waits are bounded; nothing here asserts on time.
"""
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest

from lob.transport.driver import free_port_base  # noqa: F401  (tests import it from here)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WAIT = 30.0  # upper bound of any wait; tests pass long before it on an idle machine


def wait_until(predicate, timeout=WAIT, interval=0.002):
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)


def udp_channel(port, **params):
    extra = "".join(f"|{k.replace('_', '-')}={v}" for k, v in params.items())
    return f"aeron:udp?endpoint=127.0.0.1:{port}{extra}"


@pytest.fixture
def media_driver():
    """An embedded driver (lob.transport.driver.MediaDriver) in a fresh /dev/shm directory."""
    from lob.transport.driver import MediaDriver
    driver = MediaDriver()
    try:
        yield driver
    finally:
        driver.close()


@pytest.fixture
def client(media_driver):
    """A lob.transport Client of `media_driver`."""
    from lob.transport.client import Client
    c = Client(media_driver.dir, client_name="lob-test")
    try:
        yield c
    finally:
        c.close()


TEST_SESSIONS = (1001, 1002, 1003, 1004)


def write_credentials(path, sessions):
    """A credentials file (lob.credentials format) for `sessions` ([SessionCredentials])."""
    from lob.credentials import dumps
    with open(path, "w") as f:
        f.write(dumps(sessions))
    return path


class EngineProcess:
    """`lob engine` in a subprocess on fresh ports, with its own embedded driver directory (or attached).

    The engine serves the test sessions `sessions` (lob.credentials.for_tests; `self.credentials` maps
    their ids to SessionCredentials), from a credentials file in a fresh temporary directory. Output
    lines are collected by a reader thread. close() kills whatever is still running and removes the
    directories, so a failing test leaves nothing behind.
    """

    def __init__(self, *args, instruments="1:1", attach_dir=None, port_base=None, sessions=TEST_SESSIONS):
        import tempfile

        from lob.config import EngineConfig
        from lob.credentials import for_tests
        from lob.transport.driver import unique_dir
        self.port_base = port_base or free_port_base(6)
        self.config = EngineConfig(instruments=instruments).with_ports(self.port_base)
        self.embedded_dir = None if attach_dir else unique_dir("lob-test-engine")
        self.credentials = {c.session_id: c for c in for_tests(sessions)}
        self.temp_dir = tempfile.mkdtemp(prefix="lob-test-engine-")
        self.credentials_path = write_credentials(os.path.join(self.temp_dir, "credentials.txt"),
                                                  self.credentials.values())
        command = [sys.executable, "-m", "lob.cli", "engine", "--port-base", str(self.port_base),
                   "--instruments", instruments, "--status-interval", "0.5", "--credentials", self.credentials_path]
        command += ["--aeron-dir", attach_dir] if attach_dir else ["--embedded-dir", self.embedded_dir]
        command += list(args)
        self.lines = []
        self._ready = threading.Event()
        self.process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        text=True, bufsize=1)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))
            if line.startswith("lob engine ready"):
                self._ready.set()
        self._ready.set()

    @property
    def output(self):
        return "\n".join(self.lines)

    def wait_ready(self, timeout=WAIT):
        if not self._ready.wait(timeout) or self.process.poll() is not None:
            raise AssertionError(f"lob engine did not start:\n{self.output}")

    def client_channels(self):
        return self.config.client_channels()

    def terminate(self, sig=signal.SIGTERM, timeout=WAIT):
        """Signal the engine and wait for it to exit; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"lob engine did not exit after {sig!r}:\n{self.output}")
        self._reader.join(5)
        return code

    def close(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._reader.join(5)
        if self.process.stdout:
            self.process.stdout.close()
        if self.embedded_dir:
            shutil.rmtree(self.embedded_dir, ignore_errors=True)
        shutil.rmtree(self.temp_dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class OrderEntrySession:
    """A market maker's connection to the engine through pyaeron: its own embedded driver (or a shared
    one), an order-entry publication (its transport), a subscription on its own response channel for
    its private execution stream, and one to market data. `logon()` negotiates and establishes a
    trading session with lob.logon's signed frames; `channel_params` go into the order-entry channel
    (e.g. {"session-id": 42} to pick the Aeron session id), `response_params` into the response channel
    the engine publishes to (e.g. {"term-length": 65536})."""

    RESPONSE_STREAM = 2001

    def __init__(self, channels, creds=None, driver_dir=None, channel_params=None, response_port=None,
                 response_params=None, market_data=True):
        import pyaeron
        from lob.client.reassembly import MessagePoller
        from lob.transport.driver import MediaDriver, free_udp_ports
        self.creds = creds
        self.driver = None if driver_dir else MediaDriver()
        self.aeron = pyaeron.Aeron(dir=driver_dir or self.driver.dir)
        self.response_channel = f"aeron:udp?endpoint=127.0.0.1:{response_port or free_udp_ports(1)[0]}" + "".join(
            f"|{k}={v}" for k, v in (response_params or {}).items())
        order_entry = channels["order_entry"].channel + "".join(
            f"|{k}={v}" for k, v in (channel_params or {}).items())
        self.execution = self.market_data = self.publication = None
        try:
            self.subscribe_reports(self.response_channel)
            if market_data:
                self.market_data = MessagePoller(self.aeron.add_subscription(channels["market_data"].channel,
                                                                             channels["market_data"].stream_id),
                                                 self._on_md)
            self.publication = self.aeron.add_exclusive_publication(order_entry, channels["order_entry"].stream_id)
        except BaseException:
            self.close()
            raise
        self.reports, self.md = [], []
        self.nonce = 0

    def subscribe_reports(self, response_channel):
        """Read the private execution stream on `response_channel` (closing the previous subscription)."""
        from lob.client.reassembly import MessagePoller
        if self.execution is not None:
            self.execution.close()
        self.response_channel = response_channel
        self.execution = MessagePoller(self.aeron.add_subscription(response_channel, self.RESPONSE_STREAM),
                                       self._on_report)

    @property
    def session_id(self):
        """The transport the engine sees (the publication's Aeron session id, as uint32)."""
        return self.publication.session_id & 0xFFFFFFFF

    def wait_connected(self, timeout=WAIT):
        ok = wait_until(lambda: self.publication.is_connected, timeout) and (
            self.market_data is None or wait_until(lambda: self.market_data.is_connected, timeout))
        assert ok, "not connected to the engine"

    def _on_report(self, buffer, header):
        self.reports.append(bytes(buffer))

    def _on_md(self, buffer, header):
        self.md.append(bytes(buffer))

    def poll(self):
        n = self.execution.poll(64)
        return n + (self.market_data.poll(64) if self.market_data is not None else 0)

    def send(self, frame, timeout=WAIT):
        """Offer one frame, polling the inbound streams while back-pressured."""
        deadline = time.monotonic() + timeout
        while not self.publication.offer(frame):
            assert time.monotonic() < deadline, "order entry stayed back-pressured"
            if not self.poll():
                time.sleep(0)

    def wait_reports(self, count, timeout=WAIT, md=0):
        wait_until(lambda: self.poll() >= 0 and len(self.reports) >= count and len(self.md) >= md, timeout,
                   interval=0.0002)
        return self.reports, self.md

    def negotiate(self, creds=None, timestamp=None):
        """Send a Negotiate for `creds` (default: this session's) naming this client's response channel."""
        import random

        from lob import logon
        self.nonce = random.getrandbits(63)   # never one a session used before
        self.send(logon.negotiate(creds or self.creds, timestamp or time.time_ns(), self.nonce,
                                  self.response_channel, self.RESPONSE_STREAM))

    def establish(self, keep_alive_ms=10_000, next_seq_no=0):
        from lob import logon
        self.send(logon.establish(self.creds, time.time_ns(), keep_alive_ms, next_seq_no))

    def logon(self, keep_alive_ms=10_000, next_seq_no=0):
        """Negotiate and Establish; returns the decoded EstablishmentAck (reports received so far are kept)."""
        from lob.sbe.messages import decode
        self.wait_connected()
        first = len(self.reports)
        self.negotiate()
        self.wait_reports(first + 1)
        assert decode(self.reports[first])["_name"] == "NegotiationResponse", decode(self.reports[first])
        self.establish(keep_alive_ms, next_seq_no)
        self.wait_reports(first + 2)
        ack = decode(self.reports[first + 1])
        assert ack["_name"] == "EstablishmentAck", ack
        return ack

    def close(self):
        try:
            self.aeron.close()
        finally:
            if self.driver is not None:
                self.driver.close()


def running_stack(**kwargs):
    """A generator for a fixture: `lob demo`'s LocalStack (driver + engine) started with `kwargs`, yielded,
    then closed; the fixture fails if anything is left behind or the engine did not exit cleanly."""
    from lob.tools.demo import LocalStack

    s = LocalStack(**kwargs)
    try:
        s.start()
        yield s
    finally:
        s.close()
        assert not s.leftovers()
    assert s.exit_code == 0, "\n".join(s.lines)


def running_service_loop(journal_dir, credentials, *, tick_ms, images=False, trace=None):
    """A generator for a fixture: a driver and the engine side in this process (order-entry subscription,
    with image events if `images`, private streams, an Engine with instrument 1 and `credentials`, a
    journal in `journal_dir`, the ServiceLoop on a thread, tracing into `trace` if given). Yields
    {"loop", "driver", "dir", "channels"}; closes everything, `trace` too, at the end."""
    from lob.config import Channel
    from lob.engine import Engine
    from lob.journal import JournalWriter
    from lob.private_streams import PrivateStreams
    from lob.service_loop import ServiceLoop
    from lob.transport.client import Client
    from lob.transport.driver import MediaDriver, free_udp_ports
    from lob.transport.images import ImageEvents

    driver = MediaDriver()
    client = Client(driver.dir, client_name="lob-test-engine")
    channel = udp_channel(free_udp_ports(1)[0])
    events = ImageEvents() if images else None
    order_entry = client.add_subscription(channel, 1001, images=events)
    streams = PrivateStreams(client, 4)
    journal = JournalWriter(journal_dir, policy="none")
    engine = Engine(instruments={1: 1}, sessions=credentials)
    loop = ServiceLoop(engine, order_entry, streams, images=events, journal=journal, tick_ms=tick_ms, trace=trace)
    thread = threading.Thread(target=loop.run, args=(0.5,), daemon=True)
    thread.start()
    try:
        yield {"loop": loop, "driver": driver, "dir": journal_dir, "channels": {"order_entry": Channel(channel, 1001)}}
    finally:
        loop.stop()
        thread.join(WAIT)
        journal.close()
        streams.close()
        client.close()
        driver.close()
        if trace is not None:
            trace.close()
