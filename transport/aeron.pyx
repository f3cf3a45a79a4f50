"""The Aeron C client API, resolved at import from pyaeron's shared object.

pyaeron's extension module contains the whole Aeron C client (every `aeron_*` symbol is exported) but
its wheel ships no headers and no linkable library. This module opens that already-loaded object with
`dlopen(path, RTLD_NOW | RTLD_NOLOAD)`, looks up every function lob uses (the list is in aeronc.h) and
checks the Aeron version, so a pyaeron built on another Aeron fails here, at import, with the missing
symbol or the two versions named, never later with a corrupted struct.
"""
from libc.stdint cimport int64_t
from lob.transport.aeronc cimport (
    LOB_AERON_SYMBOL_COUNT, LOB_AERON_VERSION_MAJOR, LOB_AERON_VERSION_MINOR, AERON_CLIENT_ERROR_DRIVER_TIMEOUT,
    lob_aeron_api_t, lob_aeron_api_set, lob_aeron_symbols,
)

cdef extern from "<dlfcn.h>" nogil:
    enum:
        RTLD_NOW
        RTLD_NOLOAD
    void* dlopen(const char* filename, int flags)
    void* dlsym(void* handle, const char* symbol)
    int dlclose(void* handle)
    char* dlerror()

import pyaeron._pyaeron as _pyaeron_extension


class AeronError(RuntimeError):
    """An Aeron C call failed; carries aeron_errcode() as `errcode`."""

    def __init__(self, message, errcode=0):
        super().__init__(message)
        self.errcode = errcode


class DriverTimeout(AeronError):
    """No media driver answered in the driver timeout (none running at that directory?)."""


class AeronLoadError(ImportError):
    """pyaeron's shared object cannot provide the Aeron C API lob.transport was written for."""


class AeronVersionError(AeronLoadError):
    """pyaeron bundles an Aeron whose version differs from the one aeronc.h was transcribed from."""


EXPECTED_VERSION = (LOB_AERON_VERSION_MAJOR, LOB_AERON_VERSION_MINOR)
SYMBOLS = tuple(lob_aeron_symbols[i].name.decode() for i in range(LOB_AERON_SYMBOL_COUNT))


cdef str _dlerror():
    cdef char* message = dlerror()
    return message.decode("utf-8", "replace") if message != NULL else "unknown error"


cdef str _resolve(lob_aeron_api_t* table, str path, int major, int minor):
    cdef bytes encoded = path.encode()
    cdef void* handle = dlopen(encoded, RTLD_NOW | RTLD_NOLOAD)
    cdef void* fn
    if handle == NULL:
        raise AeronLoadError(f"cannot open {path} ({_dlerror()}); it must already be loaded (import pyaeron first)")
    missing = []
    try:
        for i in range(LOB_AERON_SYMBOL_COUNT):
            dlerror()
            fn = dlsym(handle, lob_aeron_symbols[i].name)
            if fn == NULL:
                missing.append(lob_aeron_symbols[i].name.decode())
            else:
                lob_aeron_api_set(table, lob_aeron_symbols[i].offset, fn)
    finally:
        dlclose(handle)  # balances RTLD_NOLOAD's reference; the object stays loaded by its importer
    if missing:
        raise AeronLoadError(
            f"{path} does not export {', '.join(missing)}: lob.transport needs the Aeron C client "
            f"{major}.{minor} API ({len(missing)} of {LOB_AERON_SYMBOL_COUNT} symbols missing)")
    found = (table.version_major(), table.version_minor())
    full = table.version_full().decode("utf-8", "replace")
    if found != (major, minor):
        raise AeronVersionError(
            f"lob.transport declares the Aeron {major}.{minor} C API but {path} contains Aeron {full}; "
            f"install the pyaeron version pinned in requirements.txt or update transport/aeronc.h")
    return full


def probe(str path, expected=EXPECTED_VERSION):
    """Run the import-time resolution and version check against `path` into a scratch table.

    Returns aeron_version_full() of that object; raises AeronLoadError / AeronVersionError exactly as the
    import of this module would.
    """
    cdef lob_aeron_api_t scratch
    return _resolve(&scratch, path, expected[0], expected[1])


LIBRARY = _pyaeron_extension.__file__
VERSION = _resolve(&api, LIBRARY, LOB_AERON_VERSION_MAJOR, LOB_AERON_VERSION_MINOR)
VERSION_NUMBER = f"{api.version_major()}.{api.version_minor()}.{api.version_patch()}"


cdef int raise_aeron_error(str what) except -1:
    cdef int code = api.errcode()
    message = f"{what}: {api.errmsg().decode('utf-8', 'replace')} (aeron errcode {code})"
    if code == AERON_CLIENT_ERROR_DRIVER_TIMEOUT or code == -AERON_CLIENT_ERROR_DRIVER_TIMEOUT:
        raise DriverTimeout(message, code)
    raise AeronError(message, code)


def version():
    """aeron_version_full() of the Aeron C client in use, e.g. "aeron version=1.53.0 commit=..."."""
    return VERSION


def version_number():
    """"major.minor.patch" of the Aeron C client in use."""
    return VERSION_NUMBER


def errmsg():
    """aeron_errmsg() of the calling thread (the last Aeron error on this thread)."""
    return api.errmsg().decode("utf-8", "replace")


def nano_clock():
    """aeron_nano_clock(): monotonic nanoseconds."""
    return api.nano_clock()


def is_driver_active(str aeron_dir, int64_t timeout_ms=5000):
    """True when a media driver is heart-beating in `aeron_dir`."""
    return bool(api.is_driver_active(aeron_dir.encode(), timeout_ms, NULL))
