"""Engine configuration: built-in defaults, overridden by a TOML file (`--config`), overridden by flags.

Channels (Aeron URIs) and streams, all UDP on 127.0.0.1 by default:

    order entry        engine subscribes  aeron:udp?endpoint=127.0.0.1:40101                      stream 1001
    execution reports  engine publishes   each session's own response channel and stream (its Negotiate names them)
    market data        engine publishes   aeron:udp?control=127.0.0.1:40103|control-mode=dynamic  stream 1003
    drop copy          engine publishes   off unless --drop-copy CHANNEL                          stream 1004
    md recovery        engine publishes   aeron:udp?control=127.0.0.1:40105|control-mode=dynamic  stream 1005
    snapshot requests  engine subscribes  aeron:udp?endpoint=127.0.0.1:40106                      stream 1006

Clients publish orders to the order-entry endpoint. A client's publication is its transport (its Aeron
session id routes the engine's answers), never its identity: it logs on with Negotiate/Establish signed
with its session's secret from the credentials file (lob.credentials), naming a response channel
("aeron:udp?..." or "aeron:ipc", at most 512 bytes) on which the engine creates a private exclusive
publication for it. Nobody else receives its execution reports. Port base + 1, the shared execution
stream of the earlier protocol, is no longer used; market data stays on base + 2, a
multi-destination-cast publication any number of clients subscribe to with `subscriber_channel(...)`
(default flow control: a slow market-data reader cannot hold the venue back).

Market-data recovery (lob.md_recovery) publishes BookSnapshot messages of every instrument once per
`recovery_interval` on base + 4 and soon after a SnapshotRequest on base + 5 (coalesced per instrument,
at most once per `recovery_request_gap`); it is off with market data or `--no-recovery`.

The drop copy is for the venue's operations: every routed execution frame, whoever it went to (also
those retained for a disconnected session), as `u32 length | u32 session | u32 transport | frame`
(lob.framing's routed framing), one message each.

Private publications: at most `max_publications` (default 2 x the sessions in the credentials file +
16) exist at once, so Negotiates cannot make the engine create publications without bound; frames for
a publication without a subscriber yet wait in a buffer of `private_buffer_kb` per transport for up to
`publication_connect_timeout` seconds, then are dropped and counted (a session's execution reports stay
retrievable with RetransmitRequest). The same buffer holds the frames of a connected client that does
not keep up (back-pressure); a client whose buffer would overflow, or that stays back-pressured longer
than `slow_consumer_timeout` seconds, is disconnected as a slow consumer: its session ends as if its
transport were lost (cancel-on-disconnect applies) and it recovers what it missed by RetransmitRequest
after logging on again.

A config file mirrors the flags:

    [driver]
    dir = "/dev/shm/aeron-me"        # attach to this running driver; omit to embed one
    embedded_dir = "/dev/shm/x"      # where the embedded driver lives (default: a fresh directory)
    threading = "shared"
    idle = "yield"

    [channels.order_entry]
    channel = "aeron:udp?endpoint=127.0.0.1:40101"
    stream = 1001
    [channels.market_data]
    enabled = true
    [channels.drop_copy]
    channel = "aeron:udp?endpoint=127.0.0.1:40110"   # omit the section: no drop copy
    stream = 1004
    [channels.recovery]
    enabled = true                   # book snapshots for subscribers that join late or lose messages
    [channels.recovery_requests]
    stream = 1006

    [recovery]
    interval = 1.0                   # seconds between loops over every instrument's book, 0: on request only
    request_gap = 0.1                # on request, an instrument is published at most once per this (seconds)
    levels_per_message = 0           # 0: as many as one network frame holds

    [engine]
    credentials = "examples/credentials.txt"   # required: the sessions and their secrets
    instruments = "1:1,2:5"          # id:tick pairs (or a table: {1 = 1, 2 = 5}), for quick starts; or
    instruments_file = "examples/instruments.toml"  # reference data (lob/instruments.py), not both
    max_accounts = 65536             # (account, instrument) pairs the risk table holds
    max_orders = 262144              # order pool capacity (208 bytes an order, faulted in at start)
    prefault = true                  # fault the pools for max_orders in at start (false: as first used)
    idle = "yield"                   # yield | spin | sleep:NS | backoff[:MIN_NS[:MAX_NS]]
    fragment_limit = 16
    tick_ms = 50                     # EngineTick records (heartbeats, keep-alive timeouts) every 50 ms
    retransmit_ring_kb = 4096        # execution messages retained per session for RetransmitRequest

    [publications]
    max = 64                         # private publications at once (default 2 x sessions + 16)
    connect_timeout = 5.0            # seconds frames wait for a new publication's subscriber
    buffer_kb = 21760                # what they may hold meanwhile (or while back-pressured), per transport
                                     # (default 8 MiB + a mass cancel's answer for every order of the pool)
    term_kb = 1024                   # term length of each private publication (its log holds 3 terms)
    slow_consumer_timeout = 2.0      # seconds a client may stay back-pressured before it is disconnected

    [status]
    interval = 5.0                   # seconds between status lines, 0: none

    [metrics]
    port = 9464                      # Prometheus endpoint, omit: none
    host = "127.0.0.1"

    [journal]
    dir = "var/journal"              # journal every inbound message here and recover from it; omit: none
    policy = "batch"                 # none | batch | every
    segment_mb = 64
    batch_records = 512              # batch policy: sync every N records ...
    batch_us = 1000                  # ... or T microseconds, whichever first

    [snapshot]
    dir = "var/snapshots"            # default: <journal dir>/snapshots
    interval = 60.0                  # seconds between scheduled snapshots, 0: only on SIGUSR1 and at exit

    [accounts.default]               # per-account risk limits (lob/accounts.py)
    max_open_orders = 100
    max_position = 5000
    [accounts.7]
    max_open_orders = 10
"""
import argparse
import os
import dataclasses
import tomllib
from dataclasses import dataclass, field

ORDER_ENTRY_STREAM = 1001
MARKET_DATA_STREAM = 1003
RECOVERY_STREAM = 1005
RECOVERY_REQUEST_STREAM = 1006
DROP_COPY_STREAM = 1004
DEFAULT_HOST = "127.0.0.1"
# What one ExecutionReportCanceled takes in a private stream's buffer: its 4-byte length, the 8-byte SBE
# header and the message's block (tests/test_service_config.py checks it against the schema).
BUFFERED_CANCEL_BYTES = 4 + 8 + 41
DEFAULT_PORT_BASE = 40101


def unicast_channel(host, port):
    return f"aeron:udp?endpoint={host}:{port}"


def fanout_channel(host, port, flow_control=None):
    """A multi-destination-cast publication channel: subscribers register with its control address."""
    uri = f"aeron:udp?control={host}:{port}|control-mode=dynamic"
    return f"{uri}|fc={flow_control}" if flow_control else uri


def with_param(channel, key, value):
    """`channel` with key=value added, unless it names that key already (or value is 0)."""
    if not value or f"{key}=" in channel:
        return channel
    return f"{channel}{'|' if '?' in channel else '?'}{key}={value}"


def with_term_length(channel, term_length):
    """`channel` with term-length=`term_length` added, unless it names one already (or term_length is 0)."""
    return with_param(channel, "term-length", term_length)


def order_entry_subscription(config):
    """The channel the engine subscribes to order entry on: a UDP channel gets the configured receiver window
    and socket receive buffer unless it names its own. Every client's publication may have a receiver
    window in flight to this one socket: windows x sessions must fit its buffer, or a stall ends in a
    storm of drops, NAKs and retransmissions (benchmarks/README.md, many sessions)."""
    channel = config.order_entry.channel
    if not channel.startswith("aeron:udp"):
        return channel
    channel = with_param(channel, "rcv-wnd", int(config.order_entry_window_kb) << 10)
    return with_param(channel, "so-rcvbuf", int(config.order_entry_socket_buffer_kb) << 10)


def _params(uri):
    media, _, query = uri.partition("?")
    return media, dict(p.split("=", 1) for p in query.split("|") if "=" in p)


def subscriber_channel(publication_channel, local_host=DEFAULT_HOST):
    """The channel a client subscribes with to receive a publication on `publication_channel`.

    For a multi-destination-cast publication (control-mode=dynamic): a local endpoint on an ephemeral
    port registered with the publication's control address. Otherwise the channel itself.
    """
    media, params = _params(publication_channel)
    if media == "aeron:udp" and params.get("control-mode") == "dynamic" and "control" in params:
        return f"aeron:udp?endpoint={local_host}:0|control={params['control']}|control-mode=dynamic"
    return publication_channel


@dataclass(frozen=True)
class Channel:
    channel: str
    stream_id: int

    def __str__(self):
        return f"{self.channel} stream {self.stream_id}"


def default_channels(host=DEFAULT_HOST, port_base=DEFAULT_PORT_BASE):
    """(order entry, market data) on ports port_base and port_base + 2."""
    return (Channel(unicast_channel(host, port_base), ORDER_ENTRY_STREAM),
            Channel(fanout_channel(host, port_base + 2), MARKET_DATA_STREAM))


def recovery_channels(host=DEFAULT_HOST, port_base=DEFAULT_PORT_BASE):
    """(market-data recovery, snapshot requests) on ports port_base + 4 and port_base + 5."""
    return (Channel(fanout_channel(host, port_base + 4), RECOVERY_STREAM),
            Channel(unicast_channel(host, port_base + 5), RECOVERY_REQUEST_STREAM))


def parse_instruments(value):
    """{id: tick} from "1:1,2:5" (a bare id has tick 1), a {id: tick} mapping or a list of ids."""
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, (list, tuple)):
        items = [(v, 1) for v in value]
    else:
        items = []
        for part in str(value).replace(" ", "").split(","):
            if part:
                instrument, _, tick = part.partition(":")
                items.append((instrument, tick or 1))
    try:
        instruments = {int(k): int(v) for k, v in items}
    except ValueError:
        raise ValueError(f"instruments {value!r}: expected id:tick pairs such as 1:1,2:5") from None
    if not instruments:
        raise ValueError("at least one instrument is needed")
    for instrument, tick in instruments.items():
        if not 0 < instrument < 1 << 32 or tick <= 0:
            raise ValueError(f"instrument {instrument}:{tick}: ids are 1..2**32-1 and ticks positive")
    return instruments


@dataclass
class EngineConfig:
    aeron_dir: str | None = None            # attach to the media driver in this directory
    embedded_dir: str | None = None         # directory of the embedded driver (default: fresh, removed on exit)
    driver_threading: str = "shared"
    driver_idle: str = "yield"
    order_entry: Channel = field(default_factory=lambda: default_channels()[0])
    market_data: Channel = field(default_factory=lambda: default_channels()[1])
    market_data_enabled: bool = True
    drop_copy: Channel | None = None        # operations' copy of every routed execution frame
    recovery: Channel = field(default_factory=lambda: recovery_channels()[0])
    recovery_requests: Channel = field(default_factory=lambda: recovery_channels()[1])
    recovery_enabled: bool = True           # (with market data) book snapshots on the recovery channel
    recovery_interval: float = 1.0          # seconds between loops over every instrument, 0: on request only
    recovery_request_gap: float = 0.1       # an instrument is published on request at most once per this
    recovery_levels_per_message: int = 0    # 0: as many as one network frame holds
    credentials: str | None = None          # the sessions file (lob.credentials); required by `lob engine`
    instruments: dict = field(default_factory=lambda: {1: 1})     # id -> tick, or -> InstrumentSpec
    instruments_file: str | None = None     # reference data, replaces `instruments` (lob.instruments)
    accounts: object = None                 # lob.accounts.AccountRules; None: no account limits
    max_accounts: int = 65536
    # Resting orders the pools hold (a full pool rejects new orders cleanly). 262,144 is several times
    # the resting orders of a busy venue's book per matching engine (tens of thousands), at 52 MiB
    # faulted in at start; raise it for a deep multi-instrument shard (208 bytes an order).
    max_orders: int = 1 << 18
    prefault: bool = True                   # fault the engine's pools in at start, not on the message path
    idle: str = "yield"
    fragment_limit: int = 16
    tick_ms: float = 50.0                   # EngineTick records every tick_ms of monotonic time
    retransmit_ring_kb: int = 4096          # per session, passed to the Engine
    max_publications: int | None = None     # None: 2 x sessions + 16
    publication_connect_timeout: float = 5.0
    private_buffer_kb: int | None = None    # None: private_buffer_limit_kb()'s default
    private_term_kb: int = 1024             # per private publication whose response channel names no term-length
    order_entry_window_kb: int = 16         # receiver window each client publication gets (0: the driver's)
    order_entry_socket_buffer_kb: int = 4096  # SO_RCVBUF of the order-entry socket (0: the driver's; the
                                            # kernel caps it at net.core.rmem_max)
    slow_consumer_timeout: float = 2.0
    status_interval: float = 5.0
    metrics_port: int | None = None
    metrics_host: str = DEFAULT_HOST
    drain_timeout: float = 2.0
    journal_dir: str | None = None
    journal_policy: str = "batch"
    journal_segment_mb: int = 64
    journal_batch_records: int = 512
    journal_batch_us: int = 1000
    snapshot_dir: str | None = None
    snapshot_interval: float = 0.0
    trace_file: str | None = None           # latency trace of every inbound message (lob.latency_trace); off
    trace_capacity: int = 1 << 20           # records in its ring (48 bytes each)

    @property
    def snapshots(self):
        """Where snapshots go: the configured directory, else <journal dir>/snapshots."""
        if self.snapshot_dir:
            return self.snapshot_dir
        return os.path.join(self.journal_dir, "snapshots") if self.journal_dir else None

    def with_ports(self, port_base, host=DEFAULT_HOST):
        """A copy whose order-entry and market-data channels use ports port_base and +2 on `host`."""
        order_entry, market_data = default_channels(host, port_base)
        recovery, requests = recovery_channels(host, port_base)
        return dataclasses.replace(
            self, order_entry=Channel(order_entry.channel, self.order_entry.stream_id),
            market_data=Channel(market_data.channel, self.market_data.stream_id),
            recovery=Channel(recovery.channel, self.recovery.stream_id),
            recovery_requests=Channel(requests.channel, self.recovery_requests.stream_id))

    @property
    def recovery_on(self):
        return self.market_data_enabled and self.recovery_enabled

    def client_channels(self, local_host=DEFAULT_HOST):
        """What a client uses: {"order_entry": publish here, "market_data": subscribe here, and, when the
        engine runs market-data recovery, "recovery": subscribe here, "recovery_requests": publish
        SnapshotRequests here}. Execution reports come on the response channel named in its Negotiate."""
        channels = {"order_entry": self.order_entry,
                    "market_data": Channel(subscriber_channel(self.market_data.channel, local_host),
                                           self.market_data.stream_id)}
        if self.recovery_on:
            channels["recovery"] = Channel(subscriber_channel(self.recovery.channel, local_host),
                                           self.recovery.stream_id)
            channels["recovery_requests"] = self.recovery_requests
        return channels

    def private_buffer_limit_kb(self):
        """Per transport, what a back-pressured or not yet connected private stream may hold: as set, or
        8 MiB plus what a mass cancel of the whole order pool answers (one ExecutionReportCanceled an
        order), so that the engine's own answer to one message never ends a client that reads."""
        if self.private_buffer_kb is not None:
            return int(self.private_buffer_kb)
        return 8192 + -(-self.max_orders * BUFFERED_CANCEL_BYTES // 1024)

    def publication_limit(self, session_count):
        """How many private publications may exist at once."""
        return self.max_publications if self.max_publications is not None else 2 * session_count + 16


_FILE_KEYS = {
    "driver": {"dir": "aeron_dir", "embedded_dir": "embedded_dir", "threading": "driver_threading",
               "idle": "driver_idle"},
    "engine": {"credentials": "credentials", "instruments": "instruments", "instruments_file": "instruments_file",
               "max_accounts": "max_accounts", "max_orders": "max_orders",
               "prefault": "prefault", "idle": "idle", "fragment_limit": "fragment_limit",
               "drain_timeout": "drain_timeout", "tick_ms": "tick_ms", "retransmit_ring_kb": "retransmit_ring_kb",
               "order_entry_window_kb": "order_entry_window_kb",
               "order_entry_socket_buffer_kb": "order_entry_socket_buffer_kb"},
    "publications": {"max": "max_publications", "connect_timeout": "publication_connect_timeout",
                     "buffer_kb": "private_buffer_kb", "slow_consumer_timeout": "slow_consumer_timeout",
                     "term_kb": "private_term_kb"},
    "status": {"interval": "status_interval"},
    "metrics": {"port": "metrics_port", "host": "metrics_host"},
    "journal": {"dir": "journal_dir", "policy": "journal_policy", "segment_mb": "journal_segment_mb",
                "batch_records": "journal_batch_records", "batch_us": "journal_batch_us"},
    "snapshot": {"dir": "snapshot_dir", "interval": "snapshot_interval"},
    "recovery": {"interval": "recovery_interval", "request_gap": "recovery_request_gap",
                 "levels_per_message": "recovery_levels_per_message"},
}
_CHANNELS = {"order_entry": "order_entry", "market_data": "market_data", "drop_copy": "drop_copy",
             "recovery": "recovery", "recovery_requests": "recovery_requests"}
_ENABLED = {"market_data": "market_data_enabled", "recovery": "recovery_enabled"}


def apply_file(config, data, source="config"):
    """Apply a parsed TOML document to `config` (unknown sections or keys are errors)."""
    for section, values in data.items():
        if section == "channels":
            for name, spec in values.items():
                if name not in _CHANNELS:
                    raise ValueError(f"{source}: unknown channel [channels.{name}] "
                                     f"(use {', '.join(_CHANNELS)})")
                unknown = set(spec) - {"channel", "stream"} - ({"enabled"} if name in _ENABLED else set())
                if unknown:
                    raise ValueError(f"{source}: unknown keys in [channels.{name}]: {', '.join(sorted(unknown))}")
                current = getattr(config, _CHANNELS[name]) or Channel(None, DROP_COPY_STREAM)
                if current.channel is None and "channel" not in spec:
                    raise ValueError(f"{source}: [channels.{name}] needs a channel")
                setattr(config, _CHANNELS[name], Channel(str(spec.get("channel", current.channel)),
                                                         int(spec.get("stream", current.stream_id))))
                if "enabled" in spec:
                    setattr(config, _ENABLED[name], bool(spec["enabled"]))
        elif section == "accounts":
            from lob.accounts import parse as parse_accounts
            config.accounts = parse_accounts(values, source)
        elif section in _FILE_KEYS:
            if section == "engine" and "instruments" in values and "instruments_file" in values:
                raise ValueError(f"{source}: [engine] has instruments and instruments_file: give one")
            for key, value in values.items():
                if key not in _FILE_KEYS[section]:
                    raise ValueError(f"{source}: unknown key {key!r} in [{section}] "
                                     f"(use {', '.join(_FILE_KEYS[section])})")
                setattr(config, _FILE_KEYS[section][key], value)
        else:
            raise ValueError(f"{source}: unknown section [{section}]")
    return config


def load_file(path, config=None):
    with open(path, "rb") as f:
        data = tomllib.load(f)
    return apply_file(config or EngineConfig(), data, source=path)


def add_arguments(parser):
    """The engine's flags; every one overrides the config file only when given."""
    s = argparse.SUPPRESS
    parser.add_argument("--config", metavar="FILE", default=None, help="TOML configuration file")
    driver = parser.add_argument_group("media driver")
    driver.add_argument("--aeron-dir", default=s, metavar="DIR",
                        help="attach to the media driver running in DIR (default: embed one)")
    driver.add_argument("--embedded-dir", default=s, metavar="DIR",
                        help="directory of the embedded driver (default: a fresh one under /dev/shm)")
    driver.add_argument("--driver-threading", default=s, choices=("shared", "shared_network", "dedicated"),
                        help="embedded driver threading mode (default shared)")
    driver.add_argument("--driver-idle", default=s,
                        help="embedded driver idle strategy: yield, spin, backoff, sleep-ns (default yield)")
    channels = parser.add_argument_group("channels")
    channels.add_argument("--order-entry-channel", default=s, metavar="URI")
    channels.add_argument("--order-entry-stream", default=s, type=int, metavar="ID")
    channels.add_argument("--md-channel", default=s, metavar="URI")
    channels.add_argument("--md-stream", default=s, type=int, metavar="ID")
    channels.add_argument("--port-base", default=s, type=int, metavar="PORT",
                          help="use ports PORT (order entry), PORT+2 (market data), PORT+4 and PORT+5 "
                               "(market-data recovery and its requests) on 127.0.0.1")
    channels.add_argument("--drop-copy", dest="drop_copy_channel", default=s, metavar="URI",
                          help="publish every routed execution frame on this channel for operations (default: off)")
    channels.add_argument("--drop-copy-stream", default=s, type=int, metavar="ID",
                          help=f"stream of the drop copy (default {DROP_COPY_STREAM})")
    channels.add_argument("--no-market-data", dest="market_data_enabled", action="store_false", default=s,
                          help="do not generate or publish market data")
    channels.add_argument("--recovery-channel", default=s, metavar="URI",
                          help="market-data recovery: book snapshots (default: port base + 4)")
    channels.add_argument("--recovery-stream", default=s, type=int, metavar="ID", help=f"default {RECOVERY_STREAM}")
    channels.add_argument("--recovery-request-channel", default=s, metavar="URI",
                          help="where subscribers send SnapshotRequests (default: port base + 5)")
    channels.add_argument("--recovery-request-stream", default=s, type=int, metavar="ID",
                          help=f"default {RECOVERY_REQUEST_STREAM}")
    channels.add_argument("--no-recovery", dest="recovery_enabled", action="store_false", default=s,
                          help="do not publish book snapshots for market-data recovery")
    channels.add_argument("--recovery-interval", default=s, type=float, metavar="SECONDS",
                          help="seconds between loops of snapshots over every instrument, 0: on request only "
                               "(default 1)")
    channels.add_argument("--recovery-request-gap", default=s, type=float, metavar="SECONDS",
                          help="on request, an instrument's snapshot is published at most once per this (default 0.1)")
    channels.add_argument("--recovery-levels-per-message", default=s, type=int, metavar="N",
                          help="levels per BookSnapshot message, a larger book is sent in parts "
                               "(default 0: as many as one network frame holds)")
    engine = parser.add_argument_group("engine")
    engine.add_argument("--credentials", default=s, metavar="FILE",
                        help="the trading sessions and their secrets (required; format in lob/credentials.py)")
    engine.add_argument("--instruments", default=s, metavar="ID:TICK,...",
                        help="instruments and tick sizes, e.g. 1:1,2:5 (default 1:1)")
    engine.add_argument("--instruments-file", default=s, metavar="FILE",
                        help="instrument reference data (TOML, format in lob/instruments.py; a sample is "
                             "examples/instruments.toml); replaces --instruments")
    engine.add_argument("--max-accounts", default=s, type=int, metavar="N",
                        help="(account, instrument) pairs the risk table holds (default 65536)")
    engine.add_argument("--max-orders", default=s, type=int,
                        help="order pool capacity: resting orders the engine holds, 208 bytes each, faulted in "
                             "at start (default 262144: 52 MiB)")
    engine.add_argument("--no-prefault", dest="prefault", action="store_false", default=s,
                        help="fault the order pools in as they are first used instead of at start (less memory "
                             "for a small book; page faults on the message path)")
    engine.add_argument("--idle", default=s,
                        help="engine loop idle strategy: yield, spin, sleep:NS, backoff[:MIN_NS[:MAX_NS]]")
    engine.add_argument("--fragment-limit", default=s, type=int, help="fragments per poll (default 16)")
    engine.add_argument("--tick-ms", default=s, type=float, metavar="MS",
                        help="interval of the engine's clock records: heartbeats and keep-alive timeouts (default 50)")
    engine.add_argument("--order-entry-window-kb", default=s, type=int, metavar="KB",
                        help="receiver window of each client's order-entry stream, 0: the driver's (default 16)")
    engine.add_argument("--order-entry-socket-buffer-kb", default=s, type=int, metavar="KB",
                        help="receive buffer of the order-entry UDP socket, 0: the driver's (default 4096; "
                             "the kernel caps it at net.core.rmem_max)")
    engine.add_argument("--retransmit-ring-kb", default=s, type=int, metavar="KB",
                        help="execution messages kept per session for RetransmitRequest (default 4096)")
    sessions = parser.add_argument_group("private publications")
    sessions.add_argument("--max-publications", default=s, type=int, metavar="N",
                          help="private publications at once (default 2 x sessions + 16)")
    sessions.add_argument("--publication-connect-timeout", default=s, type=float, metavar="SECONDS",
                          help="how long frames wait for a new publication's subscriber (default 5)")
    sessions.add_argument("--private-buffer-kb", default=s, type=int, metavar="KB",
                          help="what they may hold meanwhile, or while the client is back-pressured, per "
                               "transport, allocated as needed; a client that would overflow it is "
                               "disconnected (default 8192 + what a mass cancel of --max-orders answers: 21,760 "
                               "for 262,144 orders)")
    sessions.add_argument("--slow-consumer-timeout", default=s, type=float, metavar="SECONDS",
                          help="a client whose backlog on its private publication does not move this long is "
                               "disconnected as a slow consumer: its session ends (cancel-on-disconnect "
                               "applies) and it gets what it missed by RetransmitRequest after logging on "
                               "again (default 2)")
    sessions.add_argument("--private-term-kb", default=s, type=int, metavar="KB",
                          help="term length of each private publication whose response channel names no "
                               "term-length (a power of two, >= 64); the driver holds 3 terms per connected "
                               "client (default 1024: 3 MiB a client)")
    engine.add_argument("--status-interval", default=s, type=float, metavar="SECONDS",
                        help="seconds between status lines, 0: none (default 5)")
    engine.add_argument("--metrics-port", default=s, type=int, metavar="PORT",
                        help="serve Prometheus metrics on this port (default: none)")
    engine.add_argument("--metrics-host", default=s, help="address of the metrics endpoint (default 127.0.0.1)")
    engine.add_argument("--trace-file", default=s, metavar="PATH",
                        help="record each inbound message's receive, match and publish times into a ring "
                             "mapped from PATH, for benchmarks (lob/latency_trace.pyx; default: off)")
    engine.add_argument("--trace-capacity", default=s, type=int, metavar="N",
                        help="records in the trace ring, 48 bytes each (default 1048576)")
    journal = parser.add_argument_group("journal and snapshots")
    journal.add_argument("--journal", dest="journal_dir", default=s, metavar="DIR",
                         help="journal every inbound message in DIR and recover from it at start (default: none)")
    journal.add_argument("--journal-policy", default=s, choices=("none", "batch", "every"),
                         help="durability: none (survives a process crash), batch (group commit), "
                              "every (sync before publishing); default batch")
    journal.add_argument("--journal-segment-mb", default=s, type=int, metavar="MB", help="segment size (default 64)")
    journal.add_argument("--journal-batch-records", default=s, type=int, metavar="N",
                         help="batch policy: sync every N records (default 512)")
    journal.add_argument("--journal-batch-us", default=s, type=int, metavar="US",
                         help="batch policy: or every US microseconds (default 1000)")
    journal.add_argument("--snapshot-dir", default=s, metavar="DIR", help="default: <journal>/snapshots")
    journal.add_argument("--snapshot-interval", default=s, type=float, metavar="SECONDS",
                         help="scheduled snapshots; 0: only on SIGUSR1 and at exit (default 0)")


def from_args(args):
    """EngineConfig from parsed flags: defaults, then --config, then the flags given."""
    config = EngineConfig()
    if getattr(args, "config", None):
        load_file(args.config, config)
    given = vars(args)
    if "instruments" in given and ("instruments_file" in given or config.instruments_file):
        raise ValueError("give --instruments or an instruments file, not both")
    if "port_base" in given:
        config = config.with_ports(given["port_base"])
    for flag, attr in (("aeron_dir", "aeron_dir"), ("embedded_dir", "embedded_dir"),
                       ("driver_threading", "driver_threading"), ("driver_idle", "driver_idle"),
                       ("market_data_enabled", "market_data_enabled"), ("instruments", "instruments"),
                       ("max_orders", "max_orders"), ("prefault", "prefault"), ("idle", "idle"),
                       ("instruments_file", "instruments_file"), ("max_accounts", "max_accounts"),
                       ("fragment_limit", "fragment_limit"), ("credentials", "credentials"),
                       ("tick_ms", "tick_ms"), ("retransmit_ring_kb", "retransmit_ring_kb"),
                       ("max_publications", "max_publications"),
                       ("publication_connect_timeout", "publication_connect_timeout"),
                       ("private_buffer_kb", "private_buffer_kb"), ("slow_consumer_timeout", "slow_consumer_timeout"),
                       ("private_term_kb", "private_term_kb"), ("order_entry_window_kb", "order_entry_window_kb"),
                       ("order_entry_socket_buffer_kb", "order_entry_socket_buffer_kb"),
                       ("status_interval", "status_interval"), ("metrics_port", "metrics_port"),
                       ("metrics_host", "metrics_host"), ("journal_dir", "journal_dir"),
                       ("journal_policy", "journal_policy"), ("journal_segment_mb", "journal_segment_mb"),
                       ("journal_batch_records", "journal_batch_records"), ("journal_batch_us", "journal_batch_us"),
                       ("snapshot_dir", "snapshot_dir"), ("snapshot_interval", "snapshot_interval"),
                       ("recovery_enabled", "recovery_enabled"), ("recovery_interval", "recovery_interval"),
                       ("recovery_request_gap", "recovery_request_gap"),
                       ("recovery_levels_per_message", "recovery_levels_per_message"),
                       ("trace_file", "trace_file"), ("trace_capacity", "trace_capacity")):
        if flag in given:
            setattr(config, attr, given[flag])
    for prefix, attr in (("order_entry", "order_entry"), ("md", "market_data"), ("recovery", "recovery"),
                         ("recovery_request", "recovery_requests")):
        current = getattr(config, attr)
        setattr(config, attr, Channel(given.get(f"{prefix}_channel", current.channel),
                                      int(given.get(f"{prefix}_stream", current.stream_id))))
    if "drop_copy_channel" in given or "drop_copy_stream" in given:
        current = config.drop_copy or Channel(None, DROP_COPY_STREAM)
        channel = given.get("drop_copy_channel", current.channel)
        if channel is None:
            raise ValueError("--drop-copy-stream needs a drop copy channel (--drop-copy URI)")
        config.drop_copy = Channel(channel, int(given.get("drop_copy_stream", current.stream_id)))
    return validate(config)


def validate(config):
    from lob.transport.driver import DRIVER_IDLE_STRATEGIES, THREADING_MODES
    from lob.transport.idle import IdleStrategy
    from lob.instruments import InstrumentSpec
    if config.instruments_file:
        from lob.instruments import load as load_instruments
        config.instruments = load_instruments(config.instruments_file)
    elif not (isinstance(config.instruments, dict)
              and any(isinstance(v, InstrumentSpec) for v in config.instruments.values())):
        config.instruments = parse_instruments(config.instruments)
    if not 0 < int(config.max_accounts) < 1 << 31:
        raise ValueError(f"max_accounts {config.max_accounts} must be in 1..2**31-1")
    IdleStrategy(config.idle)   # raises ValueError on a bad spec
    if config.driver_idle not in DRIVER_IDLE_STRATEGIES:
        raise ValueError(f"driver idle strategy {config.driver_idle!r}: use one of {', '.join(DRIVER_IDLE_STRATEGIES)}")
    if config.driver_threading not in THREADING_MODES:
        raise ValueError(f"driver threading {config.driver_threading!r}: use one of {', '.join(THREADING_MODES)}")
    if not isinstance(config.prefault, bool):
        raise ValueError(f"prefault {config.prefault!r} must be true or false")
    if not 0 < int(config.max_orders) < 1 << 31:
        raise ValueError(f"max_orders {config.max_orders} must be in 1..2**31-1")
    if not 0 < int(config.fragment_limit) <= 1 << 16:
        raise ValueError(f"fragment_limit {config.fragment_limit} must be in 1..65536")
    streams = ([config.order_entry, config.market_data] + ([config.drop_copy] if config.drop_copy else [])
               + ([config.recovery, config.recovery_requests] if config.recovery_on else []))
    if len(set(streams)) != len(streams):
        raise ValueError("order entry, market data, the drop copy and market-data recovery need distinct "
                         "channel/stream pairs")
    if config.recovery_interval < 0 or config.recovery_request_gap < 0:
        raise ValueError("the recovery interval and request gap must be >= 0")
    if not 0 <= int(config.recovery_levels_per_message) <= 65535:
        raise ValueError(f"recovery levels per message {config.recovery_levels_per_message} must be in 0..65535")
    if config.tick_ms < 0:
        raise ValueError("tick_ms must be >= 0 (0: no engine clock records, so no heartbeats or timeouts)")
    if not 1 <= int(config.retransmit_ring_kb) <= 1 << 20:
        raise ValueError(f"retransmit_ring_kb {config.retransmit_ring_kb} must be in 1..1048576")
    if config.max_publications is not None and not 1 <= int(config.max_publications) <= 1 << 16:
        raise ValueError(f"max_publications {config.max_publications} must be in 1..65536")
    if config.publication_connect_timeout <= 0:
        raise ValueError("the publication connect timeout must be > 0")
    if config.private_buffer_kb is not None and not 1 <= int(config.private_buffer_kb) <= 1 << 20:
        raise ValueError(f"private_buffer_kb {config.private_buffer_kb} must be in 1..1048576")
    term_kb = int(config.private_term_kb)
    if not 64 <= term_kb <= 1 << 20 or term_kb & (term_kb - 1):
        raise ValueError(f"private_term_kb {config.private_term_kb} must be a power of two in 64..1048576")
    window_kb = int(config.order_entry_window_kb)
    if window_kb and not 4 <= window_kb <= 1 << 20:
        raise ValueError(f"order_entry_window_kb {window_kb} must be 0 or in 4..1048576")
    if not 0 <= int(config.order_entry_socket_buffer_kb) <= 1 << 20:
        raise ValueError(f"order_entry_socket_buffer_kb {config.order_entry_socket_buffer_kb} must be in 0..1048576")
    if not config.slow_consumer_timeout > 0:
        raise ValueError("the slow-consumer timeout must be > 0")
    if config.status_interval < 0:
        raise ValueError("status interval must be >= 0")
    if config.journal_policy not in ("none", "batch", "every"):
        raise ValueError(f"journal policy {config.journal_policy!r}: use none, batch or every")
    if not 1 <= int(config.journal_segment_mb) <= 1 << 16:
        raise ValueError(f"journal segment size {config.journal_segment_mb} MB must be in 1..65536")
    if not 1 <= int(config.trace_capacity) <= 1 << 28:
        raise ValueError(f"trace_capacity {config.trace_capacity} must be in 1..268435456")
    if config.snapshot_interval < 0:
        raise ValueError("snapshot interval must be >= 0")
    if config.snapshot_dir and not config.journal_dir:
        raise ValueError("snapshots need a journal (--journal DIR): a snapshot alone cannot be recovered from")
    return config
