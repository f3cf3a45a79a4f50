from libc.stdint cimport uint8_t

from lob.core cimport EngineCore

# Output helpers shared with lob.replay: huge-page advice for a large fresh buffer, and a copy into bytes.
cdef void advise_huge(uint8_t* p, size_t length) noexcept nogil
cdef bytes copy_out(const uint8_t* data, size_t length)


cdef class Engine:
    cdef EngineCore* core
    cdef dict _ticks
    cdef readonly unsigned int max_orders
