"""`lob demo`: the engine serving the load generator over Aeron UDP on 127.0.0.1, with no setup.

It starts an embedded media driver (shared threading, yield idle) in this process, `lob engine` as a
subprocess attached to that driver on free UDP ports with the sample credentials (examples/
credentials.txt), logs the load generator's sessions on, runs it for a few seconds and prints its
report; then logs off, stops the engine (SIGTERM: drain and exit), closes the driver and checks that no
process and no driver directory is left behind.

`LocalStack` is that driver + engine pair as a context manager, for tests and benchmarks too.
"""
import os
import signal
import subprocess
import sys
import threading

from lob.transport.driver import free_port_base

READY_LINE = "lob engine ready"


class LocalStack:
    """An embedded media driver in this process and `lob engine` attached to it as a subprocess.

    `config` (a lob.config.EngineConfig with `aeron_dir` set to the driver) is what clients connect
    with; `credentials` the file the engine is given (default: the sample file), whose sessions they log
    on as (`sessions()`). Engine output lines go to `on_line` (default: kept in `lines` only). close() stops the engine
    with SIGTERM (SIGKILL if it does not exit in time) and removes the driver directory; it runs on
    every exit path of the `with` block.
    """

    def __init__(self, *, instruments=None, engine_args=(), on_line=None, ready_timeout=30.0, stop_timeout=15.0,
                 driver_idle="yield", driver_options=None, credentials=None):
        from lob.tools import examples

        self.instruments = dict(instruments or {1: 1})
        self.credentials = credentials or examples.credentials_path()
        self.engine_args = list(engine_args)
        self.on_line = on_line
        self.ready_timeout = ready_timeout
        self.stop_timeout = stop_timeout
        self.driver_idle = driver_idle
        self.driver_options = dict(driver_options or {})   # more MediaDriver keywords (sparse_terms=...)
        self.driver = None
        self.process = None
        self.config = None
        self.lines = []
        self.exit_code = None
        self._ready = threading.Event()
        self._reader = None

    @property
    def aeron_dir(self):
        return self.driver.dir

    def sessions(self):
        """The sessions of the engine's credentials file ([lob.credentials.SessionCredentials])."""
        from lob import credentials

        return credentials.load(self.credentials)

    def start(self):
        from lob.config import EngineConfig
        from lob.transport.driver import MediaDriver

        try:
            self.driver = MediaDriver(idle=self.driver_idle, **self.driver_options)
            port_base = free_port_base(6)
            self.config = EngineConfig(aeron_dir=self.driver.dir, instruments=self.instruments).with_ports(port_base)
            instruments = ",".join(f"{i}:{t}" for i, t in self.instruments.items())
            command = [sys.executable, "-m", "lob.cli", "engine", "--aeron-dir", self.driver.dir,
                       "--port-base", str(port_base), "--instruments", instruments, "--status-interval", "0",
                       "--credentials", self.credentials, *self.engine_args]
            # Its own process group keeps a terminal's Ctrl-C away from the engine (close() stops it), but
            # not its own session: with the kernel's autogroup scheduling each session is a group that
            # gets an equal share of the CPU, and the engine alone in one would hold a whole share while
            # the driver and the load generator split another (10-20x the latency here, see
            # benchmarks/README.md).
            self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                            bufsize=1, process_group=0)
            self._reader = threading.Thread(target=self._read, name="lob-engine-output", daemon=True)
            self._reader.start()
            if not self._ready.wait(self.ready_timeout) or self.process.poll() is not None:
                raise RuntimeError("lob engine did not start:\n" + "\n".join(self.lines))
        except BaseException:
            self.close()
            raise
        return self

    def _read(self):
        for line in self.process.stdout:
            line = line.rstrip("\n")
            self.lines.append(line)
            if self.on_line is not None:
                self.on_line(line)
            if line.startswith(READY_LINE):
                self._ready.set()
        self._ready.set()

    def stop_engine(self):
        """SIGTERM the engine and wait for it (SIGKILL after stop_timeout); returns its exit code."""
        process = self.process
        if process is None:
            return self.exit_code
        try:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(self.stop_timeout)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            self.exit_code = process.returncode
        finally:
            if self._reader is not None:
                self._reader.join(5)
            if process.stdout is not None:
                process.stdout.close()
            self.process = None
        return self.exit_code

    def close(self):
        try:
            self.stop_engine()
        finally:
            if self.driver is not None:
                self.driver.close()

    def leftovers(self):
        """What close() failed to clean up: a running engine, or the driver directory."""
        left = []
        if self.process is not None and self.process.poll() is None:
            left.append(f"engine process {self.process.pid}")
        if self.driver is not None and os.path.exists(self.driver.dir):
            left.append(f"driver directory {self.driver.dir}")
        return left

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()


def add_arguments(parser):
    parser.add_argument("--seconds", type=float, default=5.0, help="how long to offer load (default 5)")
    parser.add_argument("--rate", type=float, default=50_000.0, help="messages per second offered (default 50000)")
    parser.add_argument("--closed-loop", action="store_true", help="send at maximum rate instead (window 256)")
    parser.add_argument("--sessions", type=int, default=1,
                        help="load sessions, the first N of the sample credentials (default 1)")
    parser.add_argument("--instruments", type=int, default=1, help="instruments (default 1)")
    parser.add_argument("--seed", type=int, default=1, help="workload seed (default 1)")
    parser.add_argument("--hdr-out", metavar="PATH", help="write the HdrHistogram percentile distribution (µs)")
    parser.add_argument("--json", metavar="PATH", help="write the load generator's report as JSON")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    from lob.tools.loadgen import add_order_type_arguments

    add_order_type_arguments(parser)
    parser.add_argument("--watch", action="store_true",
                        help="show the book while the load runs (lob watch on the engine's market data)")


def watching(aeron, config, enabled):
    """lob watch in this process while the load runs, with --watch."""
    import contextlib

    if not enabled:
        return contextlib.nullcontext()
    from lob.tools import watch

    return watch.in_background(aeron, config)


def run(args):
    import json

    from lob.client import connection
    from lob.tools import loadgen
    from lob.tools.demo_market_data import DemoMarketData
    from lob.tools.workload import WorkloadSpec, generate

    if args.seconds <= 0 or args.rate <= 0 or args.sessions < 1 or args.instruments < 1:
        print("lob demo: --seconds, --rate, --sessions and --instruments must be positive", file=sys.stderr)
        return 2
    orders = max(1, int(args.rate * args.seconds))
    if args.closed_loop:
        orders = max(orders, 100_000)
    try:
        spec = WorkloadSpec(orders=orders, seed=args.seed, instruments=args.instruments, sessions=args.sessions,
                            **loadgen.order_type_options(args))
    except ValueError as exc:
        print(f"lob demo: {exc}", file=sys.stderr)
        return 2
    print(f"lob demo: preparing {orders:,} order-entry messages (seed {args.seed}) ...", flush=True)
    encoded = generate(spec).encode()

    def show(line):
        print(f"  [engine] {line}", flush=True)

    stack = LocalStack(instruments={i: 1 for i in range(1, args.instruments + 1)}, on_line=show)
    print("lob demo: starting an embedded media driver and `lob engine` ...", flush=True)
    with stack:
        print(f"lob demo: driver {stack.driver.describe()}", flush=True)
        credentials = stack.sessions()
        if len(credentials) < args.sessions:
            print(f"lob demo: --sessions {args.sessions}: the sample credentials have {len(credentials)}",
                  file=sys.stderr)
            return 2
        print(f"lob demo: logging on as session(s) {', '.join(str(c.session_id) for c in credentials[:args.sessions])}"
              f" (sample credentials {stack.credentials})", flush=True)
        with connection.connect(stack.config) as conn, watching(conn.aeron, stack.config, args.watch):
            market_data = DemoMarketData(conn.aeron, stack.config, stack.instruments)
            try:
                report, histogram = loadgen.run_workload(
                    conn.aeron, stack.config, encoded, credentials, rate=None if args.closed_loop else args.rate,
                    window=256 if args.closed_loop else None, progress=not (args.no_progress or args.watch))
                market_data.finish()
            finally:
                market_data.close()
        print(report.format(), flush=True)
        print(f"lob demo: {market_data.summary()}", flush=True)
        print(f"lob demo: {report.logged_off} of {report.sessions} session(s) logged off", flush=True)
        code = stack.stop_engine()
    left = stack.leftovers()
    print(f"lob demo: engine exited with code {code}; "
          + ("nothing left behind (no engine process, driver directory removed)" if not left
             else "left behind: " + ", ".join(left)), flush=True)
    if args.hdr_out:
        loadgen.write_percentile_distribution(histogram, args.hdr_out)
    if args.json:
        with open(args.json, "w") as out:
            json.dump(report.to_json(), out, indent=2)
            out.write("\n")
    ok = (report.lost == 0 and report.duplicated == 0 and report.logged_off == report.sessions and code == 0
          and not left and market_data.identical())
    return 0 if ok else 1
