"""Record framing around SBE frames, shared by the engine, the journal, the transport and the tools.

Inbound (order entry; also the body of a journal record), little-endian:
    u32 length | u32 session | u64 timestamp_ns | SBE frame[length]
Outbound (execution reports, market data):
    u32 length | SBE frame[length]
"""
import struct

INBOUND_HEADER = struct.Struct("<IIQ")
OUTBOUND_HEADER = struct.Struct("<I")


def pack_inbound(frame, session=0, timestamp_ns=0):
    """One inbound record."""
    return INBOUND_HEADER.pack(len(frame), session, timestamp_ns) + bytes(frame)


def pack_outbound(frame):
    """One outbound-framed frame."""
    return OUTBOUND_HEADER.pack(len(frame)) + bytes(frame)


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
