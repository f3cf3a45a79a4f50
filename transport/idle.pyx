"""Idle strategies for poll loops: what a loop does when a duty cycle found no work.

Specs (command line, config file): `yield` (default: sched_yield), `spin` (busy spin with a CPU pause
hint; only with a core to spare), `sleep:NS` (park NS nanoseconds), `backoff[:MIN_NS[:MAX_NS]]` (spin 10
times, yield 20 times, then park from MIN_NS doubling up to MAX_NS; defaults 1 µs and 1 ms).
"""

DEFAULT = "yield"
KINDS = ("spin", "yield", "sleep", "backoff")


cdef class IdleStrategy:
    """A parsed idle strategy; nogil loops copy `.state` and call `idle(&state, work_count)`."""

    def __init__(self, str spec=DEFAULT):
        parts = spec.strip().lower().split(":")
        kind, args = parts[0], parts[1:]
        try:
            numbers = [int(a.replace("_", "")) for a in args]
        except ValueError:
            raise ValueError(f"idle strategy {spec!r}: arguments must be integers (nanoseconds)") from None
        self.state.max_spins = 10
        self.state.max_yields = 20
        self.state.min_park_ns = 1_000
        self.state.max_park_ns = 1_000_000
        if kind in ("yield", "yielding") and not numbers:
            self.state.kind = IDLE_YIELD
        elif kind in ("spin", "busy-spin", "busy_spin") and not numbers:
            self.state.kind = IDLE_SPIN
        elif kind in ("sleep", "sleep-ns", "sleeping") and len(numbers) <= 1:
            self.state.kind = IDLE_SLEEP
            self.state.min_park_ns = numbers[0] if numbers else 1_000_000
        elif kind == "backoff" and len(numbers) <= 2:
            self.state.kind = IDLE_BACKOFF
            if numbers:
                self.state.min_park_ns = numbers[0]
            if len(numbers) > 1:
                self.state.max_park_ns = numbers[1]
        else:
            raise ValueError(
                f"unknown idle strategy {spec!r}: use yield, spin, sleep:NS or backoff[:MIN_NS[:MAX_NS]]")
        if self.state.min_park_ns == 0 or self.state.max_park_ns < self.state.min_park_ns:
            raise ValueError(f"idle strategy {spec!r}: park times must satisfy 0 < MIN_NS <= MAX_NS")
        idle_reset(&self.state)
        self.spec = spec

    @property
    def kind(self):
        return KINDS[self.state.kind]

    def idle(self, int work_count=0):
        """One idle step (releases the GIL)."""
        with nogil:
            idle(&self.state, work_count)

    def reset(self):
        idle_reset(&self.state)

    def __repr__(self):
        return f"IdleStrategy({self.spec!r})"


def parse(spec):
    """An IdleStrategy from a spec string (an IdleStrategy is returned unchanged)."""
    return spec if isinstance(spec, IdleStrategy) else IdleStrategy(spec)
