"""One trading session of the load generator: its own order-entry publication, its own private execution
stream, and the logon (Negotiate, Establish) and logoff (Terminate) around the measured run.

Logon and logoff run in Python with a FrameCollector on the private subscription; during the run the C
loop (lob.tools.loadgen_loop) takes the subscription over. Between Establish and Terminate the session
sends application messages only, so their implicit sequence numbers stay the engine's count of them.
"""
import secrets
import time

from lob import logon
from lob.config import with_term_length
from lob.sbe import messages

RESPONSE_STREAM_ID = 1002
# Our order-entry publication's term length: the engine's driver holds three terms of it per client
# (as many as the engine's private publication to us, lob.config private_term_kb).
ORDER_ENTRY_TERM_LENGTH = 256 << 10
DEFAULT_KEEP_ALIVE_MS = 30_000  # the run sends no heartbeats: the engine ends a session silent for 3x this


class LogonError(RuntimeError):
    pass


def response_channel(host, port):
    return f"aeron:udp?endpoint={host}:{port}"


class LoadSession:
    """Session `credentials` over `client` (a lob.transport Client): publishes to `order_entry` (a
    lob.config Channel) and receives on `response_channel(host, port)`. `logon()`, run, `terminate()`,
    `close()`. After logon, `next_seq` is the engine's next seqNum to this session and `next_recv_seq`
    the number of our next application message."""

    def __init__(self, client, credentials, order_entry, *, host, port, stream_id=RESPONSE_STREAM_ID,
                 keep_alive_ms=DEFAULT_KEEP_ALIVE_MS):
        from lob.transport.subscription import FrameCollector

        self.credentials = credentials
        self.session_id = credentials.session_id
        self.keep_alive_ms = keep_alive_ms
        self.channel = response_channel(host, port)
        self.stream_id = stream_id
        self.next_seq = self.next_recv_seq = 0
        self.established = False
        self.publication = self.subscription = None
        self._collector = FrameCollector()
        try:
            self.subscription = client.add_subscription(self.channel, stream_id)
            self.publication = client.add_exclusive_publication(
                with_term_length(order_entry.channel, ORDER_ENTRY_TERM_LENGTH), order_entry.stream_id)
        except BaseException:
            self.close()
            raise

    @property
    def transport(self):
        """The Aeron session id of our order-entry publication: what the engine routes by."""
        return self.publication.session_id & 0xFFFFFFFF

    def wait_connected(self, deadline):
        while not self.publication.is_connected:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.001)
        return True

    def logon(self, timeout=10.0):
        """Negotiate and Establish; LogonError names the reject reason, or what did not answer in time."""
        deadline = time.monotonic() + timeout
        who = f"session {self.session_id}"
        if not self.wait_connected(deadline):
            raise LogonError(f"{who}: no engine subscribed to order entry within {timeout:g}s")
        creds = self.credentials
        self._offer(logon.negotiate(creds, time.time_ns(), secrets.randbits(64), self.channel, self.stream_id),
                    deadline)
        reply = self._await(("NegotiationResponse", "NegotiationReject"), deadline)
        if reply is None:
            raise LogonError(f"{who}: no answer to Negotiate on {self.channel} stream {self.stream_id} within "
                             f"{timeout:g}s")
        if reply["_name"] == "NegotiationReject":
            raise LogonError(f"{who}: Negotiate rejected: {reply['reason']}")
        self._offer(logon.establish(creds, time.time_ns(), self.keep_alive_ms, 0), deadline)
        reply = self._await(("EstablishmentAck", "EstablishmentReject"), deadline)
        if reply is None:
            raise LogonError(f"{who}: no answer to Establish within {timeout:g}s")
        if reply["_name"] == "EstablishmentReject":
            raise LogonError(f"{who}: Establish rejected: {reply['reason']}")
        self.next_seq, self.next_recv_seq = reply["nextSeqNo"], reply["nextRecvSeqNo"]
        self.established = True
        return reply

    def terminate(self, timeout=5.0):
        """Send Terminate and wait for the engine's; its reason, or None when it did not come in time."""
        if not self.established:
            return None
        self.established = False
        deadline = time.monotonic() + timeout
        try:
            self._offer(logon.terminate(self.session_id), deadline)
        except LogonError:
            return None
        reply = self._await(("Terminate",), deadline)
        return reply["reason"] if reply is not None else None

    def close(self):
        if self.publication is not None and not self.publication.is_closed:
            self.publication.close()
        if self.subscription is not None and not self.subscription.is_closed:
            self.subscription.close()

    def _offer(self, frame, deadline):
        remaining = max(deadline - time.monotonic(), 0.001)
        try:
            self.publication.offer_retry(frame, timeout=remaining)
        except (TimeoutError, RuntimeError) as exc:
            raise LogonError(f"session {self.session_id}: could not send {messages.decode(frame)['_name']}: "
                             f"{exc}") from None

    def _await(self, names, deadline):
        """The first message named in `names` on our stream before `deadline` (others are skipped), or None."""
        self.subscription.set_collector(self._collector)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self.subscription.poll_until(self._collector, self._collector.count + 1, min(remaining, 0.1))
            for _, frame in self._collector.drain():
                decoded = messages.decode(frame)
                if decoded["_name"] in names:
                    return decoded
