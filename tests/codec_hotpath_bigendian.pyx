# cython: language_level=3
"""Hot-path accessor checks for the big-endian example schema (module `sbe_bigendian`)."""
from libc.stdint cimport uint8_t
from sbe_bigendian cimport *


def read_car(const uint8_t[::1] frame):
    cdef const uint8_t* h = &frame[0]
    cdef const uint8_t* p = h + HEADER_LENGTH
    cdef const uint8_t* g = p + messageHeader_blockLength(h)
    return {
        "blockLength": messageHeader_blockLength(h), "templateId": messageHeader_templateId(h),
        "serialNumber": Car_serialNumber(p), "modelYear": Car_modelYear(p),
        "someNumbers": [Car_someNumbers(p, i) for i in range(Car_someNumbers_LENGTH)],
        "capacity": Engine_capacity(p + Car_engine_OFFSET),
        "fuelFigures": groupSizeEncoding_numInGroup(g),
        "speed": Car_fuelFigures_speed(g + Car_fuelFigures_HEADER_LENGTH),
        "mpg": Car_fuelFigures_mpg(g + Car_fuelFigures_HEADER_LENGTH),
    }


def write_fields(bytearray frame, serial, year, float mpg):
    """Overwrite a few fields of an encoded Car in place."""
    cdef uint8_t* h = frame
    cdef uint8_t* p = h + HEADER_LENGTH
    Car_set_serialNumber(p, serial)
    Car_set_modelYear(p, year)
    Car_fuelFigures_set_mpg(p + messageHeader_blockLength(h) + Car_fuelFigures_HEADER_LENGTH, mpg)
