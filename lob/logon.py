"""Signed session frames a client sends to log on: Negotiate and Establish (and the plain session frames
around them). Shared by the client library, the load generator, the tests and the benchmarks."""
from lob.framing import pack_inbound
from lob.sbe import messages

DEFAULT_CHANNEL = "aeron:udp?endpoint=127.0.0.1:40999"


def negotiate(creds, request_timestamp, nonce, response_channel, response_stream_id):
    signature = creds.sign_negotiate(request_timestamp, nonce, response_channel, response_stream_id)
    return messages.encode("Negotiate", sessionId=creds.session_id, firm=creds.firm,
                           requestTimestamp=request_timestamp, nonce=nonce, responseStreamId=response_stream_id,
                           signature=list(signature), responseChannel=response_channel)


def establish(creds, request_timestamp, keep_alive_ms, next_seq_no):
    signature = creds.sign_establish(request_timestamp, keep_alive_ms, next_seq_no)
    return messages.encode("Establish", sessionId=creds.session_id, requestTimestamp=request_timestamp,
                           keepAliveIntervalMs=keep_alive_ms, nextSeqNo=next_seq_no, signature=list(signature))


def sequence(next_seq_no):
    return messages.encode("Sequence", nextSeqNo=next_seq_no)


def retransmit_request(session_id, request_timestamp, from_seq_no, count):
    return messages.encode("RetransmitRequest", sessionId=session_id, requestTimestamp=request_timestamp,
                           fromSeqNo=from_seq_no, count=count)


def terminate(session_id, reason="Finished"):
    return messages.encode("Terminate", sessionId=session_id, reason=reason)


def logon_records(creds, transport, timestamp, keep_alive_ms=60000, next_seq_no=1, channel=DEFAULT_CHANNEL,
                  stream_id=1, nonce=None):
    """Inbound records (lob.framing) of Negotiate + Establish for an in-process engine: what a client on
    `transport` sends to log on at `timestamp` (ns, the records' clock and request timestamps)."""
    timestamp = max(timestamp, 2)
    nonce = creds.session_id if nonce is None else nonce
    return (pack_inbound(negotiate(creds, timestamp - 1, nonce, channel, stream_id), transport, timestamp)
            + pack_inbound(establish(creds, timestamp, keep_alive_ms, next_seq_no), transport, timestamp))
