from cpython.object cimport PyObject
from libc.stdint cimport uint8_t

from lob.core cimport EngineCore, OutBuf

# Output helpers shared with lob.replay: huge-page advice for a large fresh buffer, a copy into bytes,
# and a bytes object lent to the core as its execution output for the length of a run.
cdef void advise_huge(uint8_t* p, size_t length) noexcept nogil
cdef bytes copy_out(const uint8_t* data, size_t length)
cdef PyObject* lend_bytes(EngineCore* core, size_t guess, OutBuf* saved) except NULL
cdef object take_back_bytes(EngineCore* core, PyObject* out, OutBuf* saved)


cdef class Engine:
    cdef EngineCore* core
    cdef dict _ticks
    cdef dict _specs            # id -> lob.instruments.InstrumentSpec
    cdef object _accounts       # lob.accounts.AccountRules
    cdef readonly unsigned int max_orders
    cdef list _credentials      # SessionCredentials by slot - 1
    cdef object _verify_error   # the last exception a signature check raised (it counts as invalid)
