# The resolved Aeron C API (see aeron.pyx): `from lob.transport.aeron cimport api` and call
# `api.exclusive_publication_offer(...)` etc. from any nogil code.
from lob.transport.aeronc cimport lob_aeron_api_t

cdef lob_aeron_api_t api

# Raises AeronError (or DriverTimeout) built from aeron_errcode()/aeron_errmsg() of the calling thread.
cdef int raise_aeron_error(str what) except -1
