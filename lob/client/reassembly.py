"""Whole messages from a pyaeron subscription, however many frames they took.

A message longer than one frame's payload (the channel's MTU less the 32-byte frame header: 1,376 bytes
by default) crosses the network as fragments. pyaeron 0.1.0's `Subscription.poll` with `assemble=True`
(its default) consumes such fragments without ever calling the handler, so a large BookUpdate (a sweep
or a mass cancel changing many levels) would be lost without a gap in the sequence numbers until the
next message arrived. `MessagePoller` polls with `assemble=False` and joins the fragments itself, per
image (Aeron delivers the fragments of one image in order, and never interleaves two messages of one
image).
"""

BEGIN = 0x80
END = 0x40
UNFRAGMENTED = BEGIN | END


class MessagePoller:
    """`poll()` calls `handler(message, header)` once per whole message of `subscription` (`message` is a
    buffer valid during the call, as pyaeron's own buffers are; `header` is that of its last fragment)."""

    def __init__(self, subscription, handler):
        self.subscription = subscription
        self.handler = handler
        self.reassembled = 0        # messages that arrived in more than one fragment
        self.orphaned = 0           # fragments whose message began before this subscription saw it
        self._partial = {}          # image session id -> the fragments so far

    def poll(self, fragment_limit=256):
        """The number of fragments read."""
        return self.subscription.poll(self._on_fragment, fragment_limit, assemble=False)

    def _on_fragment(self, buffer, header):
        flags = header.flags & UNFRAGMENTED
        if flags == UNFRAGMENTED:
            self.handler(buffer, header)
            return
        image = header.session_id
        if flags == BEGIN:
            self._partial[image] = bytearray(bytes(buffer))
            return
        partial = self._partial.get(image)
        if partial is None:
            self.orphaned += 1
            return
        partial += bytes(buffer)
        if flags == END:
            del self._partial[image]
            self.reassembled += 1
            self.handler(memoryview(partial), header)

    def close(self):
        self._partial.clear()
        self.subscription.close()

    @property
    def is_connected(self):
        return self.subscription.is_connected

    @property
    def is_closed(self):
        return self.subscription.is_closed
