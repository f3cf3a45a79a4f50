# cython: boundscheck=False, wraparound=False
"""Platform stalls: the time a busy thread loses when nothing of ours is running (a hiccup meter).

One thread per CPU reads CLOCK_MONOTONIC in a tight loop for a while; any gap between two readings
above a threshold is time the thread was not running: the hypervisor took the virtual CPU, the kernel
ran an interrupt, a timer or another task. Round-trip percentiles on a shared virtual machine cannot be
better than what these stalls allow, so benchmarks/bench_e2e.py measures them before its runs.
"""
import threading

from libc.stdint cimport int64_t
from posix.time cimport CLOCK_MONOTONIC, clock_gettime, timespec


cdef inline int64_t monotonic_ns() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return <int64_t>ts.tv_sec * 1000000000LL + ts.tv_nsec


ctypedef struct stall_counts_t:
    int64_t stalls          # gaps above the threshold
    int64_t stalls_over_1ms
    int64_t lost_ns         # their total length
    int64_t max_ns
    int64_t elapsed_ns


cdef void spin(int64_t duration_ns, int64_t threshold_ns, stall_counts_t* c) noexcept nogil:
    cdef int64_t start = monotonic_ns(), last = start, now, gap
    while True:
        now = monotonic_ns()
        gap = now - last
        last = now
        if gap > threshold_ns:
            c.stalls += 1
            c.lost_ns += gap
            if gap > 1000000:
                c.stalls_over_1ms += 1
            if gap > c.max_ns:
                c.max_ns = gap
        if now - start >= duration_ns:
            break
    c.elapsed_ns = now - start


cdef class _Spinner:
    cdef stall_counts_t counts
    cdef int64_t duration_ns, threshold_ns

    def __init__(self, int64_t duration_ns, int64_t threshold_ns):
        self.duration_ns, self.threshold_ns = duration_ns, threshold_ns

    def run(self):
        with nogil:
            spin(self.duration_ns, self.threshold_ns, &self.counts)

    def result(self):
        c = self.counts
        return {"stalls": c.stalls, "stalls_over_1ms": c.stalls_over_1ms, "max_us": c.max_ns / 1000.0,
                "lost_fraction": c.lost_ns / <double>c.elapsed_ns if c.elapsed_ns else 0.0}


def measure(double seconds=2.0, int threads=2, double threshold_us=50.0):
    """Spin `threads` threads for `seconds`; returns {"threads": [per-thread counts], "seconds",
    "threshold_us", and the worst thread's "stalls", "stalls_over_1ms", "max_us", "lost_fraction"}."""
    if seconds <= 0 or threads < 1 or threshold_us <= 0:
        raise ValueError("seconds, threads and threshold_us must be positive")
    spinners = [_Spinner(<int64_t>(seconds * 1e9), <int64_t>(threshold_us * 1e3)) for _ in range(threads)]
    workers = [threading.Thread(target=s.run, name="lob-stall-meter") for s in spinners]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    results = [s.result() for s in spinners]
    worst = {key: max(r[key] for r in results) for key in ("stalls", "stalls_over_1ms", "max_us", "lost_fraction")}
    return {"seconds": seconds, "threshold_us": threshold_us, "threads": results, **worst}
