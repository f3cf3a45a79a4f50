"""The `lob` command: one sub-command per tool, each in its own module.

A command module defines `add_arguments(parser)` and `run(args) -> int`; it is imported only when its
command runs, so `lob --help` stays fast and a tool's dependencies load only for that tool.
"""
import argparse
import importlib
import sys

COMMANDS = {
    "codegen": ("lob.codecs.cli", "generate Cython SBE codecs from a schema"),
    "decode": ("lob.decode", "print SBE frames from a file as JSON lines"),
    "engine": ("lob.service", "run the matching engine over Aeron"),
    "driver": ("lob.transport.driver", "run a standalone Aeron media driver"),
    "loadgen": ("lob.tools.loadgen", "send an SBE order workload to an engine and report latency"),
    "marketmaker": ("lob.tools.market_maker", "run the example market maker"),
    "replay": ("lob.tools.replay", "run a journal through an offline engine, or republish it over Aeron"),
    "record": ("lob.tools.record", "record an Aeron stream in the journal format"),
    "snapshot": ("lob.tools.snapshot_tool", "write a snapshot of a journal's engine state"),
    "admin": ("lob.tools.admin", "venue administration: instrument state, end of day"),
    "demo": ("lob.tools.demo", "engine + embedded driver + load generator over UDP, with a report"),
    "watch": ("lob.tools.watch", "a live terminal view of instruments from the market-data stream"),
    "plot": ("lob.tools.plot", "charts as PNG/SVG: latency percentiles of runs, a session's book"),
}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="lob", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (_, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    args, rest = parser.parse_known_args(argv)
    module_name, help_text = COMMANDS[args.command]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            parser.error(f"command {args.command!r} is not available in this build")
        raise
    command_parser = argparse.ArgumentParser(prog=f"lob {args.command}", description=help_text)
    module.add_arguments(command_parser)
    return module.run(command_parser.parse_args(rest)) or 0


if __name__ == "__main__":
    sys.exit(main())
