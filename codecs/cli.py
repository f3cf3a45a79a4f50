"""`lob codegen SCHEMA --out DIR [--module NAME]`: generate the Cython codec of any SBE schema."""
import sys

from . import generate_file
from .schema import SchemaError


def add_arguments(parser):
    parser.add_argument("schema", metavar="SCHEMA", help="SBE message schema (XML)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder (created if missing)")
    parser.add_argument("--module", metavar="NAME",
                        help="module name: writes DIR/NAME.pxd and DIR/NAME.pyx "
                             "(default: the schema's package attribute made into an identifier)")


def run(args):
    try:
        paths = generate_file(args.schema, args.out, args.module,
                              warn=lambda text: print(f"lob codegen: warning: {text}", file=sys.stderr))
    except SchemaError as exc:
        print(f"lob codegen: error: {exc}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as exc:
        print(f"lob codegen: error: {exc}", file=sys.stderr)
        return 2
    for path in paths:
        print(path)
    return 0
