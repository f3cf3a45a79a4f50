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


def iter_execution(buffer):
    """Yield (session_id, transport, frame) for each routed frame; ValueError on a truncated frame."""
    view = memoryview(buffer).cast("B")
    offset, size = 0, len(view)
    while offset < size:
        if size - offset < EXECUTION_HEADER.size:
            raise ValueError(f"truncated execution frame header at offset {offset}")
        length, session_id, transport = EXECUTION_HEADER.unpack_from(view, offset)
        start = offset + EXECUTION_HEADER.size
        if start + length > size:
            raise ValueError(f"execution frame at offset {offset} claims {length} bytes, {size - start} remain")
        yield session_id, transport, bytes(view[start:start + length])
        offset = start + length


def iter_inbound(buffer):
    """Yield (session, timestamp_ns, frame) for each record; ValueError on a truncated record."""
    view = memoryview(buffer).cast("B")
    offset, size = 0, len(view)
    while offset < size:
        if size - offset < INBOUND_HEADER.size:
            raise ValueError(f"truncated inbound record header at offset {offset}")
        length, session, timestamp_ns = INBOUND_HEADER.unpack_from(view, offset)
        start = offset + INBOUND_HEADER.size
        if start + length > size:
            raise ValueError(f"inbound record at offset {offset} claims {length} bytes, {size - start} remain")
        yield session, timestamp_ns, bytes(view[start:start + length])
        offset = start + length


def iter_outbound(buffer):
    """Yield each frame of an outbound-framed buffer; ValueError on a truncated frame."""
    view = memoryview(buffer).cast("B")
    offset, size = 0, len(view)
    while offset < size:
        if size - offset < OUTBOUND_HEADER.size:
            raise ValueError(f"truncated outbound frame header at offset {offset}")
        (length,) = OUTBOUND_HEADER.unpack_from(view, offset)
        start = offset + OUTBOUND_HEADER.size
        if start + length > size:
            raise ValueError(f"outbound frame at offset {offset} claims {length} bytes, {size - start} remain")
        yield bytes(view[start:start + length])
        offset = start + length


def split_outbound(buffer):
    """All frames of an outbound-framed buffer as a list."""
    return list(iter_outbound(buffer))
