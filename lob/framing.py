"""Record framing around SBE frames, shared by the engine, the journal, the transport and the tools.

Inbound (order entry; also the body of a journal record), little-endian:
    u32 length | u32 transport | u64 timestamp_ns | SBE frame[length]
Execution (the engine's execution and session messages, routed):
    u32 length | u32 session id | u32 transport | SBE frame[length]
Outbound (market data, and any plain list of frames):
    u32 length | SBE frame[length]

`transport` is the Aeron session id of a client's order-entry publication (0: the engine itself, or on
the execution side: nobody connected, the frame is only retained). `session id` is the trading session.
"""
import struct

INBOUND_HEADER = struct.Struct("<IIQ")
OUTBOUND_HEADER = struct.Struct("<I")
EXECUTION_HEADER = struct.Struct("<III")


def pack_inbound(frame, session=0, timestamp_ns=0):
    """One inbound record."""
    return INBOUND_HEADER.pack(len(frame), session, timestamp_ns) + bytes(frame)


def pack_outbound(frame):
    """One outbound-framed frame."""
    return OUTBOUND_HEADER.pack(len(frame)) + bytes(frame)


def pack_execution(frame, session_id=0, transport=0):
    """One routed execution frame."""
    return EXECUTION_HEADER.pack(len(frame), session_id, transport) + bytes(frame)


def _iter_records(buffer, header, framing):
    """Yield (header fields, frame) for each record of `buffer`; ValueError on a truncated record."""
    view = memoryview(buffer).cast("B")
    offset, size = 0, len(view)
    while offset < size:
        if size - offset < header.size:
            raise ValueError(f"truncated {framing} header at offset {offset}")
        fields = header.unpack_from(view, offset)
        start = offset + header.size
        if start + fields[0] > size:
            raise ValueError(f"{framing} at offset {offset} claims {fields[0]} bytes, {size - start} remain")
        yield fields, bytes(view[start:start + fields[0]])
        offset = start + fields[0]


def iter_execution(buffer):
    """Yield (session_id, transport, frame) for each routed frame; ValueError on a truncated frame."""
    for (_, session_id, transport), frame in _iter_records(buffer, EXECUTION_HEADER, "execution frame"):
        yield session_id, transport, frame


def iter_inbound(buffer):
    """Yield (transport, timestamp_ns, frame) for each record; ValueError on a truncated record."""
    for (_, transport, timestamp_ns), frame in _iter_records(buffer, INBOUND_HEADER, "inbound record"):
        yield transport, timestamp_ns, frame


def iter_outbound(buffer):
    """Yield each frame of an outbound-framed buffer; ValueError on a truncated frame."""
    for _, frame in _iter_records(buffer, OUTBOUND_HEADER, "outbound frame"):
        yield frame


def split_outbound(buffer):
    """All frames of an outbound-framed buffer as a list."""
    return list(iter_outbound(buffer))
