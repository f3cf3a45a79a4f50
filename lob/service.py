"""`lob engine`: the matching engine as a service over Aeron UDP.

One process: a media driver (embedded by default, or attached with --aeron-dir), an Aeron client with
the order-entry subscription, one private execution publication per logged-on client transport
(lob.private_streams), the market-data publication and an optional drop copy, and one matching loop
thread running nogil (lob.service_loop). The main thread only prints the status line, feeds the
Prometheus collector and waits for SIGINT/SIGTERM.

The trading sessions come from the credentials file (--credentials, lob.credentials); its secrets are
never printed or logged. Every start writes an EngineStart record (sessions bound before it are
unbound and cancel-on-disconnect applies); the loop writes EngineTick records every --tick-ms and a
TransportLost record when a client's order-entry publication goes away.

With --journal DIR, every inbound message is appended to the journal before it is processed and
before any of its effects are published; at start the engine recovers from the newest snapshot plus
the journal after it. Snapshots are written on SIGUSR1, every --snapshot-interval seconds, and at a
clean exit, on the loop thread between two messages.

Shutdown (first SIGINT/SIGTERM): stop polling, answer the messages that already arrived, wait until
the driver has sent everything published (bounded by the drain timeout), close the publications and
the subscription, stop the embedded driver and remove its directory. A second signal during shutdown
stops waiting for back-pressured subscribers.

    from lob.config import EngineConfig
    from lob.service import EngineService
    with EngineService(EngineConfig(instruments={1: 1}, credentials="sessions.txt").with_ports(41000)) as service:
        service.serve(stop_event)       # or: service.start(); ...; service.close()
"""
import signal
import sys
import threading
import time

from lob import __version__, config as config_module


def add_arguments(parser):
    config_module.add_arguments(parser)


def run(args):
    try:
        cfg = config_module.from_args(args)
        if not cfg.credentials:
            raise ValueError("--credentials FILE is required: the trading sessions and their secrets "
                             "(format in lob/credentials.py; a sample is examples/credentials.txt)")
        sessions = load_sessions(cfg.credentials)
    except (ValueError, OSError) as exc:
        print(f"lob engine: {exc}", file=sys.stderr)
        return 2
    service = EngineService(cfg, sessions=sessions)
    stop = threading.Event()
    signals = [0]

    def on_signal(signum, frame):
        signals[0] += 1
        if signals[0] > 1:
            service.abort()
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    previous[signal.SIGUSR1] = signal.signal(signal.SIGUSR1, lambda *_: service.request_snapshot())
    try:
        try:
            service.start()
        except Exception as exc:
            print(f"lob engine: cannot start: {exc}", file=sys.stderr)
            return 1
        return service.serve(stop)
    finally:
        service.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def load_sessions(path):
    """The sessions of a credentials file; ValueError/OSError name the file (never a secret)."""
    from lob.credentials import load
    try:
        return load(path)
    except FileNotFoundError:
        raise OSError(f"credentials file {path} does not exist") from None


class EngineService:
    """The engine process's parts, started and stopped in order."""

    def __init__(self, cfg, out=None, sessions=None):
        """`sessions`: [lob.credentials.SessionCredentials]; None: read cfg.credentials."""
        self.cfg = config_module.validate(cfg)
        self.out = out or sys.stdout
        self.sessions = sessions
        self.driver = self.client = self.engine = self.loop = self.metrics = None
        self.journal = self.recovered = None
        self.trace = None
        self.snapshots_written = 0
        self.prefaulted = None      # (bytes, seconds) when the pools were faulted in at start
        self.order_entry = self.market_data = self.drop_copy = self.streams = self.images = None
        self.recovery = None        # lob.md_recovery.MarketDataRecovery when the engine runs it
        self.thread = None
        self.loop_error = None
        self.metrics_port = None
        self._closed = False

    def _print(self, text):
        try:
            print(text, file=self.out, flush=True)
        except (BrokenPipeError, ValueError):  # whoever read our output is gone: keep serving
            pass

    def start(self):
        from lob.engine import Engine
        from lob.private_streams import PrivateStreams
        from lob.service_loop import LATENCY_BOUNDS_NS, TEMPLATE_OTHER, ServiceLoop
        from lob.transport import driver as driver_module
        from lob.transport.aeron import version_number
        from lob.transport.client import Client
        from lob.transport.images import ImageEvents

        cfg = self.cfg
        if self.sessions is None:
            if not cfg.credentials:
                raise ValueError("no trading sessions: set credentials (--credentials FILE)")
            self.sessions = load_sessions(cfg.credentials)
        try:
            self.driver = driver_module.launch(cfg.aeron_dir or cfg.embedded_dir, attach=bool(cfg.aeron_dir),
                                               **({} if cfg.aeron_dir else {"threading": cfg.driver_threading,
                                                                            "idle": cfg.driver_idle}))
            self.client = Client(self.driver.dir, client_name="lob-engine")
            self.images = ImageEvents()
            self.order_entry = self.client.add_subscription(config_module.order_entry_subscription(cfg),
                                                            cfg.order_entry.stream_id,
                                                            images=self.images)
            self.streams = PrivateStreams(self.client, cfg.publication_limit(len(self.sessions)),
                                          buffer_bytes=cfg.private_buffer_limit_kb() << 10,
                                          connect_timeout=cfg.publication_connect_timeout,
                                          slow_consumer_timeout=cfg.slow_consumer_timeout,
                                          term_length=cfg.private_term_kb << 10)
            if cfg.market_data_enabled:
                self.market_data = self.client.add_exclusive_publication(cfg.market_data.channel,
                                                                         cfg.market_data.stream_id)
            if cfg.drop_copy is not None:
                self.drop_copy = self.client.add_exclusive_publication(cfg.drop_copy.channel, cfg.drop_copy.stream_id)
            if cfg.journal_dir:
                self._recover()
            else:
                self.engine = Engine(instruments=cfg.instruments, max_orders=cfg.max_orders,
                                     market_data=cfg.market_data_enabled, **self._session_args())
            if cfg.prefault:
                started = time.monotonic()
                self.prefaulted = (self.engine.prefault(), time.monotonic() - started)
            if cfg.recovery_on:
                self.recovery = self._start_recovery()
            if cfg.trace_file:
                from lob.latency_trace import LatencyTrace
                self.trace = LatencyTrace(cfg.trace_file, cfg.trace_capacity)
            self.loop = ServiceLoop(self.engine, self.order_entry, self.streams, self.market_data, self.drop_copy,
                                    self.images, idle=cfg.idle, fragment_limit=cfg.fragment_limit,
                                    journal=self.journal, on_snapshot=self._write_snapshot, tick_ms=cfg.tick_ms,
                                    recovery=self.recovery, trace=self.trace)
            if cfg.metrics_port is not None:
                from lob.metrics import EngineMetrics
                self.metrics = EngineMetrics(LATENCY_BOUNDS_NS, other_template=TEMPLATE_OTHER)
                self.metrics.update(self.snapshot())
                self.metrics_port = self.metrics.serve(cfg.metrics_port, cfg.metrics_host)
        except BaseException:
            self.close()
            raise
        self.thread = threading.Thread(target=self._run_loop, name="lob-engine-loop", daemon=True)
        self.thread.start()
        self._banner(version_number())

    def _recover(self):
        from lob.journal import JournalWriter
        from lob.recovery import recover

        cfg = self.cfg
        started = time.monotonic()
        self.recovered = recover(cfg.journal_dir, cfg.snapshots, instruments=cfg.instruments,
                                 max_orders=cfg.max_orders, market_data=cfg.market_data_enabled, log=self._print,
                                 **self._session_args())
        self.engine = self.recovered.engine
        self.journal = JournalWriter(cfg.journal_dir, segment_size=cfg.journal_segment_mb << 20,
                                     policy=cfg.journal_policy, batch_records=cfg.journal_batch_records,
                                     batch_us=cfg.journal_batch_us, first_seq=self.recovered.last_seq + 1)
        if self.journal.torn_offset >= 0:
            self._print(f"journal: dropped a torn record at offset {self.journal.torn_offset} of the newest segment")
        self._print(f"{self.recovered.describe()} in {time.monotonic() - started:.3f} s")

    def _start_recovery(self):
        from lob.md_recovery import MarketDataRecovery
        cfg = self.cfg
        publication = self.client.add_exclusive_publication(cfg.recovery.channel, cfg.recovery.stream_id)
        requests = self.client.add_subscription(cfg.recovery_requests.channel, cfg.recovery_requests.stream_id)
        return MarketDataRecovery(self.engine, publication, requests, interval=cfg.recovery_interval,
                                  request_gap=cfg.recovery_request_gap,
                                  levels_per_message=cfg.recovery_levels_per_message)

    def snapshot(self):
        """The loop's counters, with the market-data recovery publisher's under "recovery"."""
        snapshot = self.loop.snapshot()
        if self.recovery is not None:
            snapshot["recovery"] = self.recovery.counters()
        return snapshot

    def _session_args(self):
        return {"sessions": self.sessions, "ring_bytes": self.cfg.retransmit_ring_kb << 10,
                "accounts": self.cfg.accounts, "max_accounts": self.cfg.max_accounts}

    def request_snapshot(self):
        """Ask for a snapshot between two messages (from a signal handler or another thread)."""
        if self.loop is not None and self.journal is not None:
            self.loop.request_snapshot()

    def _write_snapshot(self):
        """On the loop thread (or after it stopped): everything journaled so far has been processed."""
        from lob.snapshot import write_snapshot
        try:
            started = time.monotonic()
            path = write_snapshot(self.engine, self.cfg.snapshots, self.journal.next_seq - 1)
            self.snapshots_written += 1
            self._print(f"snapshot {path}: {self.engine.live_orders} orders in {time.monotonic() - started:.3f} s")
        except Exception as exc:  # a failed snapshot must not stop matching; the journal still has it all
            print(f"lob engine: snapshot failed: {exc}", file=sys.stderr, flush=True)

    def _banner(self, aeron_version):
        cfg = self.cfg
        clients = cfg.client_channels()
        from lob.instruments import specs_of
        instruments = ", ".join(s.describe() for s in specs_of(cfg.instruments).values())
        if cfg.instruments_file:
            instruments += f" from {cfg.instruments_file}"
        lines = [
            f"lob engine {__version__} on Aeron {aeron_version}",
            f"  driver       {self.driver.describe()}",
            f"  order entry  {config_module.Channel(config_module.order_entry_subscription(cfg), cfg.order_entry.stream_id)}",
            f"  sessions     {len(self.sessions)} from {cfg.credentials or 'the caller'}; ticks every {cfg.tick_ms:g} ms, "
            f"{cfg.retransmit_ring_kb} KiB retransmission ring each",
            f"  executions   private publication per logged-on transport (at most {self.streams.capacity}; "
            f"{cfg.private_buffer_limit_kb():,} KiB held up to {cfg.publication_connect_timeout:g} s until it connects; "
            f"a client back-pressured {cfg.slow_consumer_timeout:g} s or beyond that is disconnected; "
            f"{cfg.private_term_kb} KiB terms: {3 * cfg.private_term_kb:,} KiB of driver memory per client)",
            f"  market data  " + (f"{cfg.market_data}, session {self.market_data.session_id}; "
                                  f"clients subscribe with {clients['market_data'].channel}"
                                  if self.market_data is not None else "off"),
            f"  md recovery  " + (f"{cfg.recovery}: snapshots every {cfg.recovery_interval:g} s and on request "
                                  f"({cfg.recovery_requests}, each instrument at most every "
                                  f"{cfg.recovery_request_gap:g} s), {self.recovery.levels_per_message} levels a "
                                  f"message; clients subscribe with {clients['recovery'].channel}"
                                  if self.recovery is not None else "off"),
            f"  drop copy    " + (f"{cfg.drop_copy}, session {self.drop_copy.session_id}"
                                  if self.drop_copy is not None else "off"),
            f"  instruments  {instruments}",
            f"  engine       max orders {cfg.max_orders:,}, idle {cfg.idle}, {cfg.fragment_limit} fragments per poll",
            f"  pools        " + pool_line(cfg.max_orders, self.prefaulted),
        ]
        if self.journal is not None:
            lines.append(f"  journal      {cfg.journal_dir} (policy {cfg.journal_policy}, next seq {self.journal.next_seq}),"
                         f" snapshots in {cfg.snapshots}")
        if self.trace is not None:
            lines.append(f"  trace        {self.trace.path} ({self.trace.capacity:,} records of 48 bytes)")
        if self.metrics_port is not None:
            lines.append(f"  metrics      http://{cfg.metrics_host}:{self.metrics_port}/metrics")
        lines.append("lob engine ready")
        self._print("\n".join(lines))

    def _run_loop(self):
        try:
            self.loop.run(self.cfg.drain_timeout)
        except Exception as exc:  # reported by serve()
            self.loop_error = exc

    def serve(self, stop):
        """Print status lines until `stop` is set or the loop fails; then shut down. Returns an exit code."""
        interval = self.cfg.status_interval
        tick = min(interval, 1.0) if interval > 0 else 1.0
        last = self.snapshot()
        last_time = next_status = next_snapshot = time.monotonic()
        next_status += interval
        next_snapshot += self.cfg.snapshot_interval
        while not stop.wait(tick):
            if not self.thread.is_alive():
                break
            if self.cfg.snapshot_interval > 0 and time.monotonic() >= next_snapshot:
                self.request_snapshot()
                next_snapshot = time.monotonic() + self.cfg.snapshot_interval
            snapshot = self.snapshot()
            if self.metrics is not None:
                self.metrics.update(snapshot)
            now = time.monotonic()
            if interval > 0 and now >= next_status:
                self._print(status_line(snapshot, last, now - last_time))
                last, last_time, next_status = snapshot, now, now + interval
        self.shutdown()
        if self.loop_error is not None:
            print(f"lob engine: stopped: {self.loop_error}", file=sys.stderr, flush=True)
            return 1
        return 0

    def abort(self):
        if self.loop is not None:
            self.loop.abort()

    def shutdown(self):
        """Stop the loop, let it answer what already arrived, flush the publications."""
        if self.loop is None or self.thread is None:
            return
        self.loop.stop()
        self.thread.join(self.cfg.drain_timeout + 1.0)
        if self.thread.is_alive():  # a subscriber is holding an offer back: give up on it
            self.loop.abort()
            self.thread.join()
        self._flush(self.cfg.drain_timeout)
        if self.journal is not None:
            self.journal.close()
            if self.loop_error is None:
                self._write_snapshot()
        final = self.snapshot()
        if self.metrics is not None:
            self.metrics.update(final)
        self._print("lob engine stopped: " + status_line(final, None, 0.0))

    def _flush(self, timeout):
        deadline = time.monotonic() + timeout
        for publication in (self.market_data, self.drop_copy):
            if publication is None or publication.is_closed:
                continue
            while time.monotonic() < deadline:
                sent = publication.sender_position()
                if sent < 0 or sent >= publication.position:
                    break
                time.sleep(0.001)
        if self.streams is not None:
            self.streams.flush(max(0.0, deadline - time.monotonic()))

    def close(self):
        """Release everything (idempotent); the loop must not be running."""
        if self._closed:
            return
        self._closed = True
        if self.thread is not None and self.thread.is_alive():
            self.shutdown()
        if self.metrics is not None:
            self.metrics.close()
        if self.streams is not None:
            self.streams.close()
        if self.client is not None:
            self.client.close()
        if self.driver is not None:
            self.driver.close()
        if self.trace is not None:
            self.trace.close()

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.close()


def pool_line(max_orders, prefaulted):
    """What the order pools take (faulted in at start, or as used) and what a larger pool would cost."""
    from lob.engine import pool_bytes

    mib = 1 << 20
    sized = pool_bytes(max_orders)
    larger = max(max_orders * 4, 1 << 20)
    if not prefaulted:
        return (f"faulted in as used (--no-prefault): up to {sized / mib:,.0f} MiB for {max_orders:,} orders "
                f"({sized / max_orders:,.0f} bytes an order)")
    size, seconds = prefaulted
    fixed = max(0, size - sized)
    return (f"{size / mib:,.0f} MiB faulted in at start in {seconds:.2f} s: {sized / mib:,.0f} MiB for "
            f"{max_orders:,} orders ({sized / max_orders:,.0f} bytes an order) + {fixed / mib:,.0f} MiB of "
            f"account table; --max-orders {larger:,} would take {(pool_bytes(larger) + fixed) / mib:,.0f} MiB")


def status_line(snapshot, previous, seconds):
    """One line: messages in/out, rate, rejects, trades, sessions, back-pressure and dropped frames."""
    streams = snapshot["streams"]
    execution, market_data = streams["execution"], streams["market_data"]
    sessions, private = snapshot["sessions"], snapshot["private"]
    messages_in = snapshot["frames_in"]
    text = f"in {messages_in}"
    if previous is not None and seconds > 0:
        delta = messages_in - previous["frames_in"]
        text += f" (+{delta}, {delta / seconds:,.0f}/s)"
    rejects = sum(snapshot["rejects_by_reason"].values())
    text += (f" | out exec {execution['frames']} md {market_data['frames']}"
             f" | rejects {rejects} | trades {snapshot['trades']}"
             f" | sessions {sessions['established']} established, {sessions['claims_rejected']} claims rejected,"
             f" {sessions['unauthenticated']} unauthenticated, {sessions['throttled']} throttled"
             f" | publications {private['open']} | dropped unconnected {private['dropped_unconnected']}"
             f" | slow consumers disconnected {private['slow_consumers_disconnected']}"
             f" | back-pressure exec {execution['back_pressure_events']} md {market_data['back_pressure_events']}"
             f" | no subscriber md {market_data['not_connected']}")
    recovery = snapshot.get("recovery")
    if recovery is not None:
        text += (f" | md snapshots {recovery['snapshots']} ({recovery['messages']} messages),"
                 f" requests {recovery['requests']}")
    if snapshot["forged"]:
        text += f" | forged {snapshot['forged']}"
    errors = (execution["errors"] + market_data["errors"] + streams["drop_copy"]["errors"]
              + snapshot["core_errors"])
    if errors:
        text += f" | errors {errors}"
    return text
