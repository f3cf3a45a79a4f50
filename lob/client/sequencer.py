"""The engine's sequence on a session's private stream, as the client receives it (no transport here).

Every execution message carries the session's `seqNum`, from 1 without holes. `InboundSequence` hands
messages on in that order exactly once: a message ahead of a hole is held until the hole is filled, a
message already handed on (a live copy after its retransmission, or the other way round) is dropped.
It also says which range to ask the engine for (`want_request`) and follows the Retransmission header
that precedes replayed frames.
"""


class InboundSequence:
    def __init__(self, next_seq=1, max_request=10000):
        self.next_seq = next_seq        # the seqNum to hand on next
        self.engine_next = next_seq     # the engine's next seqNum as far as we know (seen or announced)
        self.max_request = max_request  # the engine's max_retransmit: larger holes are asked for in parts
        self.held = {}                  # seqNum -> item that arrived ahead of a hole
        self.gaps_detected = 0          # times a hole was discovered
        self.retransmitted = 0          # frames received after a Retransmission header
        self.duplicates = 0             # frames dropped as already handed on (or already held)
        self.lost = 0                   # seqNums the engine could not send again (no longer retained)
        self.resets = 0                 # times the engine's sequence went backwards and was adopted
        self.replay_left = 0            # frames of the current retransmission still to come
        self.request = None             # (fromSeqNo, count) asked for and not answered yet
        self.request_time = None

    def reset(self, next_seq):
        """Start over at `next_seq` (a fresh session, or the engine's sequence went backwards)."""
        self.next_seq = self.engine_next = next_seq
        self.held.clear()
        self.replay_left = 0
        self.request = self.request_time = None

    def is_new(self, seq):
        return seq >= self.next_seq and seq not in self.held

    def receive(self, seq, item):
        """A sequenced message arrived; returns the items to hand on now, in order."""
        if self.replay_left:
            self.replay_left -= 1
            self.retransmitted += 1
            if not self.replay_left:
                self.request = self.request_time = None
        if seq < self.next_seq or seq in self.held:
            self.duplicates += 1
            return []
        if seq == self.next_seq:
            if seq + 1 > self.engine_next:
                self.engine_next = seq + 1
            self.next_seq += 1
            return [item] + self._drain() if self.held else [item]
        if seq >= self.engine_next:
            if seq > self.engine_next:
                self.gaps_detected += 1
            self.engine_next = seq + 1
        self.held[seq] = item
        return []

    def announce(self, next_seq):
        """The engine says its next seqNum is `next_seq` (Sequence heartbeat, EstablishmentAck)."""
        if next_seq > self.engine_next:
            self.gaps_detected += 1
            self.engine_next = next_seq
            return True
        return False

    def on_retransmission(self, from_seq, count):
        self.replay_left = count
        if not count:
            self.request = self.request_time = None

    def on_request_too_large(self):
        """The engine allows fewer frames per request than we asked for: ask for half as many."""
        if self.request is not None:
            self.max_request = max(1, self.request[1] // 2)
            self.request = self.request_time = None

    def on_request_failed(self):
        """The engine refused the outstanding request (range no longer retained): skip that range."""
        if self.request is None:
            return []
        from_seq, count = self.request
        self.request = self.request_time = None
        end = from_seq + count
        for s in range(max(from_seq, self.next_seq), end):
            if s not in self.held:
                self.lost += 1
        if end > self.next_seq:
            self.next_seq = end
            for s in [s for s in self.held if s < end]:
                del self.held[s]
        return self._drain()

    def _drain(self):
        out = []
        held = self.held
        while self.next_seq in held:
            out.append(held.pop(self.next_seq))
            self.next_seq += 1
        return out

    def missing(self):
        """The first hole as (fromSeqNo, count), at most max_request long, or None."""
        end = min(self.held) if self.held else self.engine_next
        if end <= self.next_seq:
            return None
        return self.next_seq, min(end - self.next_seq, self.max_request)

    def want_request(self, now, timeout):
        """The range to ask for now, or None (nothing missing, a replay under way, or a request pending
        for less than `timeout` seconds). Marks it as asked."""
        if self.replay_left:
            return None
        if self.request is not None and now - self.request_time < timeout:
            return None
        wanted = self.missing()
        if wanted is not None:
            self.request, self.request_time = wanted, now
        else:
            self.request = self.request_time = None
        return wanted
