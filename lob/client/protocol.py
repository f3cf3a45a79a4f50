"""The client side of a trading session (FIXP pattern), without a transport: unit-testable with frames.

    Negotiate -> NegotiationResponse -> Establish -> EstablishmentAck -> application messages

`SessionProtocol` is fed every decoded frame from the session's private stream (`on_message`) and the
clock (`tick`); it sends session frames through the `send(frame) -> bool` callable it was given and
returns the execution messages to hand on, in the engine's sequence, each exactly once.

- Outbound sequence: application messages are numbered implicitly from the nextSeqNo given at
  Establish; `app_sent()` counts one. Sequence(nextSeqNo) goes out when nothing was sent for the
  keep-alive interval.
- Inbound sequence: `InboundSequence` (lob.client.sequencer) orders and de-duplicates; holes, whether
  seen in the seqNums, announced by the engine's Sequence or by EstablishmentAck.nextSeqNo, are asked
  for with RetransmitRequest (again after `retransmit_timeout` if unanswered).
- Terminate from the engine is answered with Terminate(Finished); the session is then lost. A lost
  session (engine Terminate, `lost()` called by the transport, or nothing heard for 3 keep-alive
  intervals) is negotiated and established again (fresh nonce and timestamp, Establish with our
  nextSeqNo) every `retry_interval` until it succeeds or a reject says it never will. When the client
  is the one that noticed, it first sends Terminate: the engine may still hold the session on our
  transport, and it does not negotiate an established session (SessionInUse).
- Before the first establishment every reject or timeout is final (`error`, state FAILED).
"""
import secrets
import time

from lob import logon

from .sequencer import InboundSequence

IDLE = "Idle"
NEGOTIATING = "Negotiating"
ESTABLISHING = "Establishing"
ESTABLISHED = "Established"
LOST = "Lost"                  # was established; negotiating again as soon as it can
TERMINATING = "Terminating"    # we sent Terminate and wait for the engine's
CLOSED = "Closed"
FAILED = "Failed"

# Rejects no retry can cure.
FATAL_REASONS = frozenset(("UnknownSession", "InvalidSignature", "InvalidKeepAlive", "InvalidResponseChannel"))
RETRANSMIT_REQUEST_TEMPLATE = 43


class ClientError(RuntimeError):
    pass


class SessionError(ClientError):
    pass


class NotEstablished(SessionError):
    pass


class LogonRejected(SessionError):
    """The engine refused Negotiate or Establish; `reason` is the Reason value name."""

    def __init__(self, step, reason, session_id):
        super().__init__(f"session {session_id}: {step} rejected: {reason}")
        self.step = step
        self.reason = reason


class LogonTimeout(SessionError, TimeoutError):
    pass


class SessionProtocol:
    def __init__(self, credentials, response_channel, response_stream_id, *, send, keep_alive_ms=1000,
                 next_seq_out=0, next_seq_in=None, clock_ns=time.time_ns, logon_timeout=10.0,
                 retransmit_timeout=2.0, retry_interval=0.5, relogon_timeout=2.0, max_retransmit=10000,
                 can_send=lambda: True, on_state=None, on_not_applied=None, on_terminate=None):
        self.credentials = credentials
        self.session_id = credentials.session_id
        self.response_channel = response_channel
        self.response_stream_id = response_stream_id
        self.keep_alive_ms = keep_alive_ms
        self.keep_alive = keep_alive_ms / 1000.0
        self._send = send
        self._can_send = can_send
        self._clock_ns = clock_ns
        self.logon_timeout = logon_timeout
        self.retransmit_timeout = retransmit_timeout
        self.retry_interval = retry_interval
        self.relogon_timeout = relogon_timeout
        self.next_seq_out = next_seq_out        # 0 until the first Establish: the engine tells
        self.inbound = InboundSequence(next_seq_in or 1, max_retransmit)
        self._adopt_inbound = next_seq_in is None
        self.state = IDLE
        self.error = None
        self.establishments = 0
        self.persistent = False                 # established once: from now on a lost session is retried
        self.not_applied = []                   # (fromSeqNo, count) of every NotApplied
        self.terminations = []                  # why the session was lost each time (engine Terminate reasons, ...)
        self.on_state = on_state
        self.on_not_applied = on_not_applied
        self.on_terminate = on_terminate
        self._last_timestamp = 0
        self._deadline = None
        self._next_attempt = None
        self._last_sent = self._last_heard = 0.0

    # -- sequence state ------------------------------------------------------------------------
    @property
    def next_seq_in(self):
        return self.inbound.next_seq

    @property
    def established(self):
        return self.state == ESTABLISHED

    def app_sent(self, now):
        self.next_seq_out += 1
        self._last_sent = now

    # -- steps ---------------------------------------------------------------------------------
    def _set_state(self, state):
        if state != self.state:
            self.state = state
            if self.on_state:
                self.on_state(state)

    def _timestamp(self):
        # Strictly increasing: the engine refuses a requestTimestamp not above the last it accepted.
        self._last_timestamp = max(self._clock_ns(), self._last_timestamp + 1)
        return self._last_timestamp

    def _emit(self, frame, now):
        ok = self._send(frame)
        if ok:
            self._last_sent = now
        return ok

    def _answer_timeout(self):
        # Negotiating again: a Negotiate sent while the engine was still going away is simply lost.
        return self.relogon_timeout if self.persistent else self.logon_timeout

    def start(self, now):
        """Send Negotiate (first logon, or again after the session was lost)."""
        self.error = None
        frame = logon.negotiate(self.credentials, self._timestamp(), secrets.randbits(64), self.response_channel,
                                self.response_stream_id)
        self._deadline = now + self._answer_timeout()
        self._last_heard = now
        self._set_state(NEGOTIATING)
        if not self._emit(frame, now):
            self._retry_or_fail(now, LogonTimeout(f"session {self.session_id}: could not send Negotiate"))

    def _establish(self, now):
        frame = logon.establish(self.credentials, self._timestamp(), self.keep_alive_ms, self.next_seq_out)
        self._deadline = now + self._answer_timeout()
        self._set_state(ESTABLISHING)
        if not self._emit(frame, now):
            self._retry_or_fail(now, LogonTimeout(f"session {self.session_id}: could not send Establish"))

    def terminate(self, now):
        """End the session (Terminate(Finished)); the engine answers with its own Terminate."""
        if self.state in (ESTABLISHED, ESTABLISHING, NEGOTIATING):
            self._deadline = now + self.logon_timeout
            self._set_state(TERMINATING)
            if self._emit(logon.terminate(self.session_id, "Finished"), now):
                return True
        self._set_state(CLOSED)
        return False

    def lost(self, now, why="transport lost", reason="TransportLost"):
        """The transport says the engine is gone (its stream's image went away), or it has been silent.
        The engine may still hold the session on our transport (it refuses to negotiate an established
        session), so it is told to end it first; a Terminate it does not expect changes nothing."""
        if self.state in (ESTABLISHED, ESTABLISHING, NEGOTIATING):
            self.terminations.append(why)
            if self.state == ESTABLISHED:
                self._emit(logon.terminate(self.session_id, reason), now)
            self._retry_or_fail(now, SessionError(f"session {self.session_id}: {why}"))

    def _retry_or_fail(self, now, error):
        """After a first establishment the session is negotiated again later, unless it cannot be."""
        retry = self.persistent and self.state not in (TERMINATING, CLOSED)
        if isinstance(error, LogonRejected) and error.reason in FATAL_REASONS:
            retry = False
        if retry:
            self._next_attempt = now + self.retry_interval
            self._set_state(LOST)
        else:
            if self.state == ESTABLISHING:
                # Negotiated but never established: let the session go, or it stays bound to our transport.
                self._emit(logon.terminate(self.session_id, "Finished"), now)
            self.error = error
            self._set_state(FAILED)

    # -- input ---------------------------------------------------------------------------------
    def on_message(self, message, item, now):
        """One decoded frame from the private stream; `item` is what to hand on for an execution
        message. Returns the items to hand on now, in sequence."""
        self._last_heard = now
        name = message["_name"]
        seq = message.get("seqNum")
        if seq is not None:
            out = []
            if name == "MessageReject" and message["refTemplateId"] == RETRANSMIT_REQUEST_TEMPLATE \
                    and (seq == 0 or self.inbound.is_new(seq)):
                if message["reason"] == "RetransmitTooLarge":
                    self.inbound.on_request_too_large()   # asked again in smaller parts
                else:
                    out = self.inbound.on_request_failed()
            if seq == 0:  # not sequenced: the sender had no established session
                return out + [item]
            return out + self._sequenced(seq, item, now)
        handler = getattr(self, "_on_" + name, None)
        if handler is not None:
            handler(message, now)
        self._request_missing(now)
        return []

    def _sequenced(self, seq, item, now):
        out = self.inbound.receive(seq, item)
        self._request_missing(now)
        return out

    def _request_missing(self, now):
        if self.state != ESTABLISHED:
            return
        wanted = self.inbound.want_request(now, self.retransmit_timeout)
        if wanted is not None:
            from_seq, count = wanted
            self._emit(logon.retransmit_request(self.session_id, self._timestamp(), from_seq, count), now)

    def _on_NegotiationResponse(self, m, now):
        if self.state == NEGOTIATING and m["sessionId"] == self.session_id:
            self._establish(now)

    def _on_NegotiationReject(self, m, now):
        if self.state == NEGOTIATING:
            if m["reason"] == "SessionInUse" and self.persistent:
                # Still established on our own transport (the engine missed nothing we noticed): end that
                # first. Bound to another transport, the engine ignores our Terminate.
                self._emit(logon.terminate(self.session_id, "Finished"), now)
            self._retry_or_fail(now, LogonRejected("Negotiate", m["reason"], self.session_id))

    def _on_EstablishmentAck(self, m, now):
        if self.state != ESTABLISHING:
            return
        if self.next_seq_out == 0:
            self.next_seq_out = m["nextRecvSeqNo"]
        self.keep_alive_ms = m["keepAliveIntervalMs"] or self.keep_alive_ms
        self.keep_alive = self.keep_alive_ms / 1000.0
        engine_next = m["nextSeqNo"]
        if self._adopt_inbound and not self.establishments:
            self.inbound.reset(engine_next)
        elif engine_next < self.inbound.next_seq:
            # The engine's sequence went backwards (it lost its journal's tail): start over from its.
            self.inbound.resets += 1
            self.inbound.reset(engine_next)
        else:
            self.inbound.announce(engine_next)
        self.establishments += 1
        self.persistent = True
        self._deadline = None
        self._set_state(ESTABLISHED)

    def _on_EstablishmentReject(self, m, now):
        if self.state != ESTABLISHING:
            return
        if m["reason"] == "SequenceTooLow" and self.persistent:
            # The engine holds more of our messages than we counted: continue where it is.
            self.next_seq_out = 0
        self._retry_or_fail(now, LogonRejected("Establish", m["reason"], self.session_id))

    def _on_Sequence(self, m, now):
        if self.state == ESTABLISHED:
            self.inbound.announce(m["nextSeqNo"])

    def _on_Retransmission(self, m, now):
        self.inbound.on_retransmission(m["fromSeqNo"], m["count"])

    def _on_NotApplied(self, m, now):
        self.not_applied.append((m["fromSeqNo"], m["count"]))
        if self.on_not_applied:
            self.on_not_applied(m["fromSeqNo"], m["count"])

    def _on_Terminate(self, m, now):
        reason = m["reason"]
        if self.state == TERMINATING:
            self._set_state(CLOSED)
            return
        if self.state not in (ESTABLISHED, ESTABLISHING):
            return  # the answer to a Terminate of an earlier session
        self.terminations.append(reason)
        if self.on_terminate:
            self.on_terminate(reason)
        self._emit(logon.terminate(self.session_id, "Finished"), now)
        self._retry_or_fail(now, SessionError(f"session {self.session_id}: terminated by the engine: {reason}"))

    # -- time ----------------------------------------------------------------------------------
    def tick(self, now):
        state = self.state
        if state == ESTABLISHED:
            if now - self._last_heard > 3 * self.keep_alive:
                self.lost(now, "nothing heard from the engine for 3 keep-alive intervals", "KeepAliveTimeout")
                return
            if now - self._last_sent >= self.keep_alive:
                self._emit(logon.sequence(self.next_seq_out), now)
            self._request_missing(now)
        elif state in (NEGOTIATING, ESTABLISHING, TERMINATING):
            if now > self._deadline:
                if state == TERMINATING:
                    self._set_state(CLOSED)
                else:
                    step = "Negotiate" if state == NEGOTIATING else "Establish"
                    self._retry_or_fail(now, LogonTimeout(
                        f"session {self.session_id}: no answer to {step} within {self._answer_timeout()}s"))
        elif state == LOST:
            if now >= self._next_attempt and self._can_send():
                self.start(now)
