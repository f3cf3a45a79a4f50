"""Where a client finds the engine: channels from `lob.config`, a media driver to talk through, and the
trading session it logs on as (`--credentials FILE --session ID`, lob.credentials).

Driver choice, in order: `--aeron-dir` (or `[driver] dir` in the config file) attaches to that running
driver; otherwise a driver already running in Aeron's default directory (`lob driver`) is used;
otherwise the client embeds its own driver for as long as it runs. Sharing the engine's driver is the
fast path: two drivers on one host each spend a core moving the same packets.
"""
import argparse

import pyaeron

from lob import config as lob_config


def add_arguments(parser):
    """The flags a client needs (the same names and file format as `lob engine`)."""
    s = argparse.SUPPRESS
    parser.add_argument("--config", metavar="FILE", default=None, help="TOML configuration file (as for lob engine)")
    group = parser.add_argument_group("connection")
    group.add_argument("--aeron-dir", default=s, metavar="DIR",
                       help="attach to the media driver running in DIR (default: the driver in Aeron's default "
                            "directory if one runs, else an embedded one)")
    group.add_argument("--order-entry-channel", default=s, metavar="URI")
    group.add_argument("--order-entry-stream", default=s, type=int, metavar="ID")
    group.add_argument("--md-channel", default=s, metavar="URI", help="the engine's market-data channel")
    group.add_argument("--md-stream", default=s, type=int, metavar="ID")
    group.add_argument("--recovery-channel", default=s, metavar="URI",
                       help="the engine's market-data recovery channel (book snapshots)")
    group.add_argument("--recovery-stream", default=s, type=int, metavar="ID")
    group.add_argument("--recovery-request-channel", default=s, metavar="URI",
                       help="where to send snapshot requests")
    group.add_argument("--recovery-request-stream", default=s, type=int, metavar="ID")
    group.add_argument("--no-recovery", dest="recovery_enabled", action="store_false", default=s,
                       help="the engine publishes no book snapshots (a book that misses a message goes stale)")
    group.add_argument("--port-base", default=s, type=int, metavar="PORT",
                       help="the engine's default channels on ports PORT to PORT+5 of 127.0.0.1")
    # No execution channel: each session's messages come on the response channel it names at Negotiate.


def add_session_arguments(parser, default_keep_alive_ms=1000):
    """The flags naming the trading session and where the engine sends its messages."""
    group = parser.add_argument_group("session")
    group.add_argument("--credentials", metavar="FILE",
                       help="credentials file (lob.credentials format) holding this session's secret "
                            "(default: the sample examples/credentials.txt, for local runs only)")
    group.add_argument("--session", type=int, metavar="ID",
                       help="session id to log on as (default: the first session in the file)")
    group.add_argument("--response-channel", metavar="URI",
                       help="where the engine sends this session's messages (default: aeron:udp?endpoint="
                            "127.0.0.1:<a free port>; aeron:ipc with a stream of its own when sharing the "
                            "engine's driver)")
    group.add_argument("--response-stream", type=int, default=1002, metavar="ID", help="default 1002")
    group.add_argument("--keep-alive-ms", type=int, default=default_keep_alive_ms, metavar="MS",
                       help=f"heartbeat interval asked for at Establish (default {default_keep_alive_ms})")


def session_credentials(args):
    """The SessionCredentials the flags name; ValueError (lob.credentials.CredentialsError) if none."""
    from lob import credentials
    from lob.tools import examples

    path = args.credentials or examples.credentials_path()
    sessions = credentials.load(path)
    if args.session is None:
        return sessions[0]
    for entry in sessions:
        if entry.session_id == args.session:
            return entry
    raise credentials.CredentialsError(f"{path}: no session {args.session}")


def session_from_args(args):
    """(EngineConfig, SessionCredentials) the flags name: what a session tool needs to log on. ValueError
    or OSError (a missing or bad file) names what is wrong."""
    return config_from_args(args), session_credentials(args)


def session_options(args):
    """Client keywords from the session flags."""
    return dict(response_channel=args.response_channel, response_stream_id=args.response_stream,
                keep_alive_ms=args.keep_alive_ms)


def config_from_args(args):
    return lob_config.from_args(args)


class Connection:
    """A media driver (attached or embedded) and an Aeron client on it; close() releases both."""

    def __init__(self, config=None, aeron_dir=None, *, embed=None):
        self.config = config if config is not None else lob_config.EngineConfig()
        self.channels = self.config.client_channels()
        self.driver = None
        aeron_dir = aeron_dir or self.config.aeron_dir
        if aeron_dir is None and not embed and pyaeron.is_driver_active(pyaeron.default_path(), 200):
            aeron_dir = pyaeron.default_path()
        if aeron_dir is None:
            from lob.transport.driver import MediaDriver

            self.driver = MediaDriver()
            aeron_dir = self.driver.dir
        self.dir = aeron_dir
        try:
            self.aeron = pyaeron.Aeron(dir=aeron_dir)
        except BaseException:
            self._close_driver()
            raise

    def describe(self):
        return self.driver.describe() if self.driver is not None else f"attached to {self.dir}"

    def _close_driver(self):
        if self.driver is not None:
            self.driver.close()
            self.driver = None

    def close(self):
        try:
            if self.aeron is not None and not self.aeron.is_closed:
                self.aeron.close()
            self.aeron = None
        finally:
            self._close_driver()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def connect(config=None, aeron_dir=None, **kwargs):
    return Connection(config, aeron_dir, **kwargs)
