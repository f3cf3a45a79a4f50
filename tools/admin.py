"""`lob admin`: venue administration from a session the credentials file marks admin=yes.

    lob admin --credentials FILE --session ID state INSTRUMENT halted|trading|closed
    lob admin --credentials FILE --session ID end-of-day [INSTRUMENT]      # no instrument: all of them

Logs on, sends the request (InstrumentStateRequest / EndOfDayRequest), prints the engine's AdminReport as
a JSON line and logs off. Exit code 0 when the request was carried out, 1 when the engine refused it
(the report's reason says why: NotAuthorized, UnknownInstrument, ...), 2 on a usage or connection error.
"""
import sys

STATES = {"trading": "Trading", "halted": "Halted", "closed": "Closed"}


def add_arguments(parser):
    from lob.client import connection

    connection.add_arguments(parser)
    connection.add_session_arguments(parser)
    parser.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS",
                        help="how long to wait for the engine's answer (default 10)")
    commands = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    state = commands.add_parser("state", help="set an instrument trading, halted or closed")
    state.add_argument("instrument", type=int)
    state.add_argument("state", choices=sorted(STATES))
    eod = commands.add_parser("end-of-day", help="expire every Day order (of one instrument, or all)")
    eod.add_argument("instrument", type=int, nargs="?", default=0)


def request(client, action, instrument, state=None):
    """Send one administration request; returns the AdminReport (a decoded dict)."""
    cl_ord_id = client.next_cl_ord_id()
    if action == "state":
        frame = client.messages.encode("InstrumentStateRequest", clOrdId=cl_ord_id, instrumentId=instrument,
                                       state=STATES[state])
    else:
        frame = client.messages.encode("EndOfDayRequest", clOrdId=cl_ord_id, instrumentId=instrument)
    client.send(frame)
    client.wait_for(lambda: any(m["_name"] == "AdminReport" and m["clOrdId"] == cl_ord_id for m in client.reports))
    return next(m for m in client.reports if m["_name"] == "AdminReport" and m["clOrdId"] == cl_ord_id)


def run(args):
    from lob.client import Client, connection
    from lob.decode import dumps

    try:
        config, credentials = connection.session_from_args(args)
    except (ValueError, OSError) as exc:
        print(f"lob admin: {exc}", file=sys.stderr)
        return 2
    try:
        with connection.connect(config) as conn, Client(credentials, aeron=conn.aeron, config=config, record=True,
                                                        market_data=False, connect_timeout=args.timeout,
                                                        **connection.session_options(args)) as client:
            report = request(client, args.action, args.instrument, getattr(args, "state", None))
    except Exception as exc:
        print(f"lob admin: {exc}", file=sys.stderr)
        return 2
    print(dumps({k: v for k, v in report.items() if not k.startswith("_") or k == "_name"}), flush=True)
    return 0 if report["reason"] == "None" else 1
