"""`lob decode FILE`: print each SBE frame of an inbound- or outbound-framed file as one JSON line.

The framing (see lob.framing) is detected unless --inbound or --outbound says which: a framing fits when
its records tile the whole file and every frame carries our schema id; if both fit, inbound files hold
order-entry templates and outbound files the rest.
"""
import json
import sys

from lob.framing import INBOUND_HEADER, OUTBOUND_HEADER, iter_inbound, iter_outbound

HEADER_LENGTH = 8
ORDER_ENTRY_TEMPLATES = range(1, 10)


def add_arguments(parser):
    parser.add_argument("file", metavar="FILE", help="framed SBE file ('-' reads standard input)")
    framing = parser.add_mutually_exclusive_group()
    framing.add_argument("--inbound", action="store_true",
                         help="records are u32 length | u32 session | u64 timestamp_ns | frame")
    framing.add_argument("--outbound", action="store_true", help="records are u32 length | frame")


def _frames(data, header):
    """Frames of `data` under a framing, or None if the framing does not tile the data."""
    frames, offset = [], 0
    while offset < len(data):
        if len(data) - offset < header.size:
            return None
        length = header.unpack_from(data, offset)[0]
        offset += header.size
        if length > len(data) - offset:
            return None
        frames.append(data[offset:offset + length])
        offset += length
    return frames


def _fits(frames, schema_id):
    return frames is not None and all(
        len(f) >= HEADER_LENGTH and int.from_bytes(f[4:6], "little") == schema_id for f in frames)


def detect_framing(data, schema_id):
    """'inbound' or 'outbound'; ValueError when the data fits neither or both equally."""
    inbound, outbound = _frames(data, INBOUND_HEADER), _frames(data, OUTBOUND_HEADER)
    fits_in, fits_out = _fits(inbound, schema_id), _fits(outbound, schema_id)
    if fits_in and fits_out:
        order_entry = lambda frames: all(int.from_bytes(f[2:4], "little") in ORDER_ENTRY_TEMPLATES for f in frames)
        fits_in, fits_out = order_entry(inbound), not order_entry(outbound)
    if fits_in != fits_out:
        return "inbound" if fits_in else "outbound"
    if not data:
        return "outbound"
    raise ValueError("cannot tell the framing of this file; say --inbound or --outbound")


def _decoded(decode, frame):
    try:
        return decode(frame)
    except Exception as exc:  # a frame the codec cannot read is still shown
        return {"_error": str(exc), "_length": len(frame), "_hex": frame.hex()}


def decode_lines(data, framing, decode, schema_id):
    if framing is None:
        framing = detect_framing(data, schema_id)
    if framing == "inbound":
        for session, timestamp_ns, frame in iter_inbound(data):
            yield json.dumps({"_session": session, "_timestamp_ns": timestamp_ns, **_decoded(decode, frame)})
    else:
        for frame in iter_outbound(data):
            yield json.dumps(_decoded(decode, frame))


def run(args):
    from lob.sbe import messages

    if args.file == "-":
        data = sys.stdin.buffer.read()
    else:
        with open(args.file, "rb") as f:
            data = f.read()
    framing = "inbound" if args.inbound else "outbound" if args.outbound else None
    try:
        for line in decode_lines(data, framing, messages.decode, messages.SCHEMA_ID):
            print(line)
    except ValueError as exc:
        print(f"lob decode: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        pass
    return 0
