from lob.core cimport EngineCore


cdef class Engine:
    cdef EngineCore* core
    cdef dict _ticks
    cdef readonly unsigned int max_orders
