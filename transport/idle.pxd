# Idle strategies for poll loops, inlined into the loops that cimport them.
#
# On a machine with fewer cores than busy threads (media driver, engine, clients) a loop that spins
# without giving the CPU away starves the others for whole scheduler slices, so every loop calls
# idle(&strategy, work_count) after each duty cycle: work_count > 0 resets the back-off, 0 idles.
from libc.stdint cimport uint32_t, uint64_t
from posix.time cimport nanosleep, timespec

cdef extern from *:
    """
    #include <sched.h>
    static inline void lob_cpu_relax(void)
    {
    #if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
    #elif defined(__aarch64__)
        __asm__ __volatile__("yield");
    #endif
    }
    /* Stop flags are written by another thread (a signal handler's thread) while a nogil loop reads them. */
    static inline int lob_load_flag(const int *flag) { return __atomic_load_n(flag, __ATOMIC_ACQUIRE); }
    static inline void lob_store_flag(int *flag, int value) { __atomic_store_n(flag, value, __ATOMIC_RELEASE); }
    """
    void lob_cpu_relax() noexcept nogil
    int lob_load_flag(const int* flag) noexcept nogil
    void lob_store_flag(int* flag, int value) noexcept nogil
    int sched_yield() noexcept nogil

cdef enum:
    IDLE_SPIN = 0
    IDLE_YIELD = 1
    IDLE_SLEEP = 2
    IDLE_BACKOFF = 3

ctypedef struct idle_strategy_t:
    int kind
    uint32_t max_spins
    uint32_t max_yields
    uint64_t min_park_ns
    uint64_t max_park_ns
    uint32_t spins
    uint32_t yields
    uint64_t park_ns


cdef inline void _park(uint64_t ns) noexcept nogil:
    cdef timespec ts
    ts.tv_sec = <long>(ns // 1000000000)
    ts.tv_nsec = <long>(ns % 1000000000)
    nanosleep(&ts, NULL)


cdef inline void idle_reset(idle_strategy_t* s) noexcept nogil:
    s.spins = 0
    s.yields = 0
    s.park_ns = s.min_park_ns


cdef inline void idle(idle_strategy_t* s, int work_count) noexcept nogil:
    if work_count > 0:
        if s.kind == IDLE_BACKOFF and (s.spins or s.yields):
            idle_reset(s)
        return
    if s.kind == IDLE_YIELD:
        sched_yield()
    elif s.kind == IDLE_SPIN:
        lob_cpu_relax()
    elif s.kind == IDLE_SLEEP:
        _park(s.min_park_ns)
    elif s.spins < s.max_spins:
        s.spins += 1
        lob_cpu_relax()
    elif s.yields < s.max_yields:
        s.yields += 1
        sched_yield()
    else:
        _park(s.park_ns)
        s.park_ns = s.park_ns * 2 if s.park_ns * 2 < s.max_park_ns else s.max_park_ns


cdef class IdleStrategy:
    cdef idle_strategy_t state
    cdef readonly str spec
