"""Aeron media drivers: embedded in this process, attached to, or standalone (`lob driver`).

    with launch() as driver:                  # embedded C driver in a fresh directory under /dev/shm
        client = Client(driver.dir)
    with launch(aeron_dir="/dev/shm/aeron-x", attach=True) as driver:   # a driver someone else runs

The embedded driver runs in the shared threading mode (one agent thread for conductor, sender and
receiver) with the `yield` idle strategy unless told otherwise: with fewer cores than busy loops, a
driver that spins keeps the engine and its clients off the CPU for whole scheduler slices. Its
directory is created for it and removed when it closes, even when the driver fails to start.

Its log buffers are allocated whole when a publication or image is created (not sparse), with 4 MiB
terms (12 MiB per log): a sparse log makes the first pass over every page fault and zero it on the
message path, which cost a fresh client about a quarter of its closed-loop throughput (benchmarks/README.md).
"""
import getpass
import os
import shutil
import signal
import sys
import threading
import time
import uuid

import pyaeron

THREADING_MODES = ("shared", "shared_network", "dedicated")
DEFAULT_THREADING = "shared"
DEFAULT_IDLE = "yield"
DEFAULT_TERM_BUFFER_LENGTH = 4 << 20
DRIVER_IDLE_STRATEGIES = ("yield", "spin", "backoff", "noop", "sleep-ns", "sleeping")
DEFAULT_ROOT = "/dev/shm" if os.path.isdir("/dev/shm") else None

# Which agents' idle strategies the C driver reads from the environment, per threading mode.
_IDLE_ENV = {
    "shared": ("AERON_SHARED_IDLE_STRATEGY",),
    "shared_network": ("AERON_SHAREDNETWORK_IDLE_STRATEGY", "AERON_CONDUCTOR_IDLE_STRATEGY"),
    "dedicated": ("AERON_SENDER_IDLE_STRATEGY", "AERON_RECEIVER_IDLE_STRATEGY", "AERON_CONDUCTOR_IDLE_STRATEGY"),
}
_ENV_LOCK = threading.Lock()


def unique_dir(prefix="lob-aeron", root=DEFAULT_ROOT):
    """A fresh, not yet existing directory path for a driver: <root>/<prefix>-<user>-<pid>-<random>."""
    import tempfile
    root = root or tempfile.gettempdir()
    return os.path.join(root, f"{prefix}-{getpass.getuser()}-{os.getpid()}-{uuid.uuid4().hex[:8]}")


def remove_stale_dirs(prefix="lob-aeron", root=DEFAULT_ROOT):
    """Remove driver directories this user's killed processes left behind (their pid no longer exists).

    Only names made by unique_dir(prefix) are considered; returns the paths removed.
    """
    if not root or not os.path.isdir(root):
        return []
    removed = []
    head = f"{prefix}-{getpass.getuser()}-"
    for name in os.listdir(root):
        pid = name[len(head):].split("-", 1)[0] if name.startswith(head) else ""
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
            continue
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        shutil.rmtree(os.path.join(root, name), ignore_errors=True)
        removed.append(os.path.join(root, name))
    return removed


class MediaDriver:
    """An Aeron C media driver running in this process, owning its directory (removed on close)."""

    owned = True

    def __init__(self, aeron_dir=None, *, threading=DEFAULT_THREADING, idle=DEFAULT_IDLE,
                 term_buffer_length=DEFAULT_TERM_BUFFER_LENGTH, ipc_term_buffer_length=None, mtu_length=None,
                 spies_simulate_connection=False, sparse_terms=False, client_liveness_timeout=None,
                 socket_buffer=None, extra_settings=None):
        """`client_liveness_timeout` (seconds, default Aeron's 10): how long a client may go without a
        keep-alive before the driver drops it; a benchmark that pauses a client process raises it.
        `socket_buffer` (bytes, default Aeron's 128 KiB): SO_RCVBUF and SO_SNDBUF of the driver's UDP
        sockets (the kernel caps them at net.core.rmem_max / wmem_max). `extra_settings`: more AERON_* variables
        of the C driver's context ({"AERON_RECEIVER_IO_VECTOR_CAPACITY": "16"}), for experiments."""
        if threading not in THREADING_MODES:
            raise ValueError(f"threading mode {threading!r}: use one of {', '.join(THREADING_MODES)}")
        if idle not in DRIVER_IDLE_STRATEGIES:
            raise ValueError(f"driver idle strategy {idle!r}: use one of {', '.join(DRIVER_IDLE_STRATEGIES)}")
        if aeron_dir is None:
            remove_stale_dirs()
        self.dir = aeron_dir or unique_dir()
        self.threading = threading
        self.idle = idle
        self.term_buffer_length = term_buffer_length
        self.sparse_terms = sparse_terms
        self._driver = None
        kwargs = {"dir": self.dir, "threading": threading, "dir_delete_on_start": True,
                  "dir_delete_on_shutdown": True, "spies_simulate_connection": spies_simulate_connection}
        for key, value in (("term_buffer_length", term_buffer_length),
                           ("ipc_term_buffer_length", ipc_term_buffer_length), ("mtu_length", mtu_length)):
            if value is not None:
                kwargs[key] = value
        # The C driver reads these settings from the environment when its context is created; set them
        # only for that moment so the rest of the process (and its children) keep their own.
        settings = {name: idle for name in _IDLE_ENV[threading]}
        settings["AERON_TERM_BUFFER_SPARSE_FILE"] = "true" if sparse_terms else "false"
        self.socket_buffer = socket_buffer
        for name, value in (extra_settings or {}).items():
            if not name.startswith("AERON_"):
                raise ValueError(f"driver setting {name!r}: expected an AERON_* variable")
            settings[name] = str(value)
        if socket_buffer:
            settings["AERON_SOCKET_SO_RCVBUF"] = str(int(socket_buffer))
            settings["AERON_SOCKET_SO_SNDBUF"] = str(int(socket_buffer))
        if client_liveness_timeout is not None:
            liveness_ns = int(client_liveness_timeout * 1e9)
            settings["AERON_CLIENT_LIVENESS_TIMEOUT"] = str(liveness_ns)
            # the driver requires the unblock timeout to exceed the liveness timeout
            settings["AERON_PUBLICATION_UNBLOCK_TIMEOUT"] = str(liveness_ns + 5_000_000_000)
        with _ENV_LOCK:
            saved = {name: os.environ.get(name) for name in settings}
            try:
                os.environ.update(settings)
                self._driver = pyaeron.MediaDriver(**kwargs)
            except BaseException:
                shutil.rmtree(self.dir, ignore_errors=True)
                raise
            finally:
                for name, value in saved.items():
                    if value is None:
                        os.environ.pop(name, None)
                    else:
                        os.environ[name] = value

    @property
    def closed(self):
        return self._driver is None

    def close(self):
        """Stop the driver and remove its directory (idempotent)."""
        driver, self._driver = self._driver, None
        try:
            if driver is not None:
                driver.close()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def describe(self):
        terms = f"{self.term_buffer_length >> 20} MiB" if self.term_buffer_length else "default"
        return (f"embedded ({self.threading} threading, {self.idle} idle, {terms} terms"
                f"{', sparse' if self.sparse_terms else ''}) in {self.dir}")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        if getattr(self, "_driver", None) is not None:
            self.close()

    def __repr__(self):
        return f"MediaDriver({self.dir!r}{', closed' if self.closed else ''})"


class AttachedDriver:
    """A media driver run by someone else: its directory is left alone on close."""

    owned = False
    closed = False

    def __init__(self, aeron_dir, *, timeout_ms=5000):
        self.dir = aeron_dir
        if not pyaeron.is_driver_active(aeron_dir, timeout_ms):
            raise RuntimeError(f"no active Aeron media driver in {aeron_dir}")

    def close(self):
        self.closed = True

    def describe(self):
        return f"attached to {self.dir}"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return f"AttachedDriver({self.dir!r})"


def launch(aeron_dir=None, *, attach=False, **options):
    """Attach to the running driver at `aeron_dir` (attach=True), or embed one (in `aeron_dir` if given)."""
    if attach:
        if not aeron_dir:
            raise ValueError("attaching needs the directory of a running media driver")
        return AttachedDriver(aeron_dir)
    return MediaDriver(aeron_dir, **options)


# `lob driver`: a standalone media driver for engines and clients that attach to it.

def add_arguments(parser):
    parser.add_argument("--dir", default=None,
                        help="driver directory (default: Aeron's default directory, "
                             f"{pyaeron.default_path()})")
    parser.add_argument("--threading", choices=THREADING_MODES, default=DEFAULT_THREADING,
                        help="driver threading mode (default %(default)s)")
    parser.add_argument("--idle", choices=DRIVER_IDLE_STRATEGIES, default=DEFAULT_IDLE,
                        help="idle strategy of the driver's agents (default %(default)s)")
    parser.add_argument("--term-buffer-length", type=int, default=DEFAULT_TERM_BUFFER_LENGTH,
                        help="publication term length in bytes, a power of 2 (default %(default)s)")
    parser.add_argument("--sparse-terms", action="store_true",
                        help="create log buffers sparse: less memory, page faults on the message path")
    parser.add_argument("--mtu-length", type=int, default=None, help="UDP MTU length (bytes)")


def run(args):
    aeron_dir = args.dir or pyaeron.default_path()
    if pyaeron.is_driver_active(aeron_dir, 1000):
        print(f"lob driver: a media driver is already running in {aeron_dir}", file=sys.stderr)
        return 1
    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with MediaDriver(aeron_dir, threading=args.threading, idle=args.idle,
                         term_buffer_length=args.term_buffer_length, mtu_length=args.mtu_length,
                         sparse_terms=args.sparse_terms) as driver:
            print(f"lob driver: {pyaeron.aeron_version}, {driver.describe()}", flush=True)
            print("ready", flush=True)
            while not stop.wait(1.0):
                pass
            print("lob driver: stopping", flush=True)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def wait_for_driver(aeron_dir, timeout=10.0):
    """Wait until a driver is active in `aeron_dir`; False on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(os.path.join(aeron_dir, "cnc.dat")) and pyaeron.is_driver_active(aeron_dir, 500):
            return True
        time.sleep(0.02)
    return False


def free_udp_ports(count, host="127.0.0.1"):
    """`count` distinct UDP ports that are free on `host` right now (the OS may hand them out again later)."""
    import socket
    sockets, ports = [], []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind((host, 0))
            sockets.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in sockets:
            s.close()
    return ports


def free_port_base(count=3, host="127.0.0.1", attempts=200):
    """A port p such that UDP ports p..p+count-1 on `host` are free right now (the engine's channels
    use consecutive ports)."""
    import random
    import socket
    for _ in range(attempts):
        base = random.randrange(20000, 60000 - count)
        sockets = []
        try:
            for port in range(base, base + count):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                sockets.append(s)
                s.bind((host, port))
            return base
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise RuntimeError("no free range of UDP ports found")
