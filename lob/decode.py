"""`lob decode PATH`: print SBE frames as JSON lines, from a journal, a snapshot or a framed file.

- A journal directory, or one segment file (it starts with "LOBJRNL\0"): one line per record, the
  decoded frame with `_seq`, `_timestamp_ns` and `_session` of its journal record.
- A snapshot file (it starts with "LOBSNAP\0"): one line per frame, after its checksum is verified.
- Any other file: inbound, execution (routed) or outbound framed records (see lob.framing). The framing
  is detected unless --inbound, --execution or --outbound says which: a framing fits when its records tile
  the whole file and every frame carries our schema id; if several fit, inbound files hold what clients
  and the engine send in (order entry, session requests, engine records), execution files what the engine
  sends to sessions, outbound files the rest (market data).
"""
import json
import os
import sys

from lob.framing import EXECUTION_HEADER, INBOUND_HEADER, OUTBOUND_HEADER, iter_execution, iter_inbound, iter_outbound

HEADER_LENGTH = 8
INBOUND_TEMPLATES = set(range(1, 10)) | set(range(40, 45)) | set(range(70, 80))
EXECUTION_TEMPLATES = {42, 44} | set(range(50, 70))
HEADERS = {"inbound": INBOUND_HEADER, "execution": EXECUTION_HEADER, "outbound": OUTBOUND_HEADER}


JOURNAL_MAGIC = b"LOBJRNL\x00"
SNAPSHOT_MAGIC = b"LOBSNAP\x00"


def add_arguments(parser):
    parser.add_argument("file", metavar="PATH",
                        help="journal directory or segment, snapshot, or framed SBE file ('-' reads standard input)")
    parser.add_argument("--from-seq", type=int, default=1, metavar="SEQ",
                        help="journals: start at this journal sequence (default 1)")
    framing = parser.add_mutually_exclusive_group()
    framing.add_argument("--inbound", action="store_true",
                         help="records are u32 length | u32 transport | u64 timestamp_ns | frame")
    framing.add_argument("--execution", action="store_true",
                         help="records are u32 length | u32 session | u32 transport | frame")
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
    """'inbound', 'execution' or 'outbound'; ValueError when the data fits none, or several equally."""
    if not data:
        return "outbound"
    fitting = {}
    for name, header in HEADERS.items():
        frames = _frames(data, header)
        if _fits(frames, schema_id):
            fitting[name] = frames
    if len(fitting) > 1:
        templates = lambda frames: {int.from_bytes(f[2:4], "little") for f in frames}
        fitting = {name: frames for name, frames in fitting.items()
                   if (name == "inbound") == (templates(frames) <= INBOUND_TEMPLATES)
                   and (name == "execution") == (templates(frames) <= EXECUTION_TEMPLATES)}
    if len(fitting) == 1:
        return next(iter(fitting))
    raise ValueError("cannot tell the framing of this file; say --inbound, --execution or --outbound")


def _json(value):
    """Bytes (var data: a snapshot's retransmission ring, a signature) as hex."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dumps(record):
    return json.dumps(record, default=_json)


def _decoded(decode, frame):
    try:
        return decode(frame)
    except Exception as exc:  # a frame the codec cannot read is still shown
        return {"_error": str(exc), "_length": len(frame), "_hex": frame.hex()}


def decode_lines(data, framing, decode, schema_id):
    if framing is None:
        framing = detect_framing(data, schema_id)
    if framing == "inbound":
        for transport, timestamp_ns, frame in iter_inbound(data):
            yield dumps({"_transport": transport, "_timestamp_ns": timestamp_ns, **_decoded(decode, frame)})
    elif framing == "execution":
        for session_id, transport, frame in iter_execution(data):
            yield dumps({"_session": session_id, "_transport": transport, **_decoded(decode, frame)})
    else:
        for frame in iter_outbound(data):
            yield dumps(_decoded(decode, frame))


def journal_lines(path, decode, from_seq=1):
    """A journal directory or a single segment file, one JSON line per record."""
    from lob.journal import SegmentView, check_segment, list_segments, read_journal

    if os.path.isdir(path):
        if not list_segments(path):
            raise ValueError(f"{path}: no journal segments (journal-<seq>.seg) in this directory")
        records = read_journal(path, from_seq)
    else:
        records = _segment_records(path, from_seq, SegmentView, check_segment)
    for seq, timestamp_ns, transport, frame in records:
        yield dumps({"_seq": seq, "_timestamp_ns": timestamp_ns, "_transport": transport,
                          **_decoded(decode, frame)})


def _segment_records(path, from_seq, SegmentView, check_segment):
    segment = SegmentView(path)
    try:
        end, _, _, _ = check_segment(segment, True, segment.first_seq)
        for record in segment.records(end):
            if record[0] >= from_seq:
                yield record
    finally:
        segment.close()


def snapshot_lines(data, path, decode):
    from lob.snapshot import check_snapshot, read_frames

    check_snapshot(data, path)
    for frame in read_frames(data):
        yield dumps(_decoded(decode, bytes(frame)))


def _kind(path):
    """"journal", "snapshot" or "framed", from the magic at the start of the file (or a directory)."""
    if os.path.isdir(path):
        return "journal"
    with open(path, "rb") as f:
        magic = f.read(8)
    if magic == JOURNAL_MAGIC:
        return "journal"
    if magic == SNAPSHOT_MAGIC:
        return "snapshot"
    if path.endswith(".seg") or path.endswith(".snap"):
        raise ValueError(f"{path}: named like a journal segment or snapshot but does not start with its magic")
    return "framed"


def run(args):
    from lob.journal import JournalError
    from lob.sbe import messages
    from lob.snapshot import SnapshotError

    framing = ("inbound" if args.inbound else "execution" if args.execution else "outbound" if args.outbound
               else None)
    try:
        kind = "framed" if args.file == "-" else _kind(args.file)
        if kind == "journal":
            lines = journal_lines(args.file, messages.decode, args.from_seq)
        elif args.file == "-":
            lines = decode_lines(sys.stdin.buffer.read(), framing, messages.decode, messages.SCHEMA_ID)
        else:
            with open(args.file, "rb") as f:
                data = f.read()
            lines = (snapshot_lines(data, args.file, messages.decode) if kind == "snapshot"
                     else decode_lines(data, framing, messages.decode, messages.SCHEMA_ID))
        for line in lines:
            print(line)
    except (ValueError, OSError, JournalError, SnapshotError) as exc:
        if isinstance(exc, BrokenPipeError):
            return 0
        print(f"lob decode: {exc}", file=sys.stderr)
        return 1
    return 0
