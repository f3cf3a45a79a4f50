from lob.transport.aeronc cimport aeron_context_t, aeron_t


cdef class Client:
    cdef aeron_context_t* context
    cdef aeron_t* aeron
    cdef readonly str aeron_dir
    cdef readonly str client_name
    cdef object _resources
    cdef object __weakref__

    cdef int ensure_open(self) except -1
    cdef void track(self, object resource)
