# cython: language_level=3
"""Hot-path accessor checks for example-schema.xml (module `sbe_example`): a whole Car is read and
written with the cdef accessors only; the tests compare with the generated Python decode/encode."""
from libc.stdint cimport uint8_t, uint32_t
from libc.string cimport memcpy
from sbe_example cimport *


cdef str _chars(const uint8_t* p, Py_ssize_t n):
    return bytes((<const char*>p)[:n]).rstrip(b"\0").decode("ascii")


cdef dict _engine(const uint8_t* p):
    cdef const uint8_t* b = p + Engine_booster_OFFSET
    return {
        "capacity": Engine_capacity(p), "numCylinders": Engine_numCylinders(p), "maxRpm": Engine_maxRpm(),
        "manufacturerCode": "".join(chr(Engine_manufacturerCode(p, i)) for i in range(Engine_manufacturerCode_LENGTH)),
        "fuel": Engine_fuel()[:Engine_fuel_LENGTH].decode(), "efficiency": Engine_efficiency(p),
        "boosterEnabled": "T" if Engine_boosterEnabled(p) == BooleanType_T else "F",
        "booster": {"BoostType": {BoostType_TURBO: "TURBO", BoostType_SUPERCHARGER: "SUPERCHARGER",
                                  BoostType_NITROUS: "NITROUS", BoostType_KERS: "KERS"}[Booster_BoostType(b)],
                    "horsePower": Booster_horsePower(b)},
    }


def read_car(const uint8_t[::1] frame):
    cdef const uint8_t* h = &frame[0]
    cdef const uint8_t* p = h + HEADER_LENGTH
    cdef const uint8_t* q
    cdef Py_ssize_t i, j, n, m, bl, bl2, length
    extras = Car_extras(p)
    d = {
        "serialNumber": Car_serialNumber(p), "modelYear": Car_modelYear(p),
        "available": "T" if Car_available(p) == BooleanType_T else "F",
        "code": chr(Car_code(p)),
        "someNumbers": [Car_someNumbers(p, i) for i in range(Car_someNumbers_LENGTH)],
        "vehicleCode": _chars(p + Car_vehicleCode_OFFSET, Car_vehicleCode_LENGTH),
        "extras": [name for name, bit in (("sunRoof", OptionalExtras_sunRoof_BIT),
                                          ("sportsPack", OptionalExtras_sportsPack_BIT),
                                          ("cruiseControl", OptionalExtras_cruiseControl_BIT)) if (extras >> bit) & 1],
        "discountedModel": chr(Car_discountedModel()),
        "engine": _engine(p + Car_engine_OFFSET),
    }
    p += messageHeader_blockLength(h)
    n = groupSizeEncoding_numInGroup(p)
    bl = groupSizeEncoding_blockLength(p)
    p += Car_fuelFigures_HEADER_LENGTH
    figures = []
    for i in range(n):
        q = p
        p += bl
        length = Car_fuelFigures_usageDescription_length(p)
        figures.append({"speed": Car_fuelFigures_speed(q), "mpg": Car_fuelFigures_mpg(q),
                        "usageDescription": (<const char*>p + Car_fuelFigures_usageDescription_HEADER_LENGTH)[:length].decode()})
        p += Car_fuelFigures_usageDescription_HEADER_LENGTH + length
    d["fuelFigures"] = figures
    n = groupSizeEncoding_numInGroup(p)
    bl = groupSizeEncoding_blockLength(p)
    p += Car_performanceFigures_HEADER_LENGTH
    performance = []
    for i in range(n):
        entry = {"octaneRating": Car_performanceFigures_octaneRating(p)}
        p += bl
        m = groupSizeEncoding_numInGroup(p)
        bl2 = groupSizeEncoding_blockLength(p)
        p += Car_performanceFigures_acceleration_HEADER_LENGTH
        entry["acceleration"] = []
        for j in range(m):
            entry["acceleration"].append({"mph": Car_performanceFigures_acceleration_mph(p),
                                          "seconds": Car_performanceFigures_acceleration_seconds(p)})
            p += bl2
        performance.append(entry)
    d["performanceFigures"] = performance
    for name in ("manufacturer", "model", "activationCode"):
        length = varStringEncoding_length(p)
        d[name] = (<const char*>p + varStringEncoding_ENCODED_LENGTH)[:length].decode()
        p += varStringEncoding_ENCODED_LENGTH + length
    d["_end"] = p - h
    return d


cdef uint8_t* _data(uint8_t* p, bytes value):
    Car_manufacturer_set_length(p, len(value))
    memcpy(p + Car_manufacturer_HEADER_LENGTH, <const char*>value, len(value))
    return p + Car_manufacturer_HEADER_LENGTH + len(value)


def write_car():
    """The Car of the fixed byte vector in the tests, written with setters only."""
    cdef bytearray out = bytearray(200)
    cdef uint8_t* h = out
    cdef uint8_t* p = h + HEADER_LENGTH
    cdef uint8_t* e = p + Car_engine_OFFSET
    cdef Py_ssize_t i
    messageHeader_set_blockLength(h, Car_BLOCK_LENGTH)
    messageHeader_set_templateId(h, Car_TEMPLATE_ID)
    messageHeader_set_schemaId(h, SCHEMA_ID)
    messageHeader_set_version(h, SCHEMA_VERSION)
    Car_set_serialNumber(p, 1234)
    Car_set_modelYear(p, 2013)
    Car_set_available(p, BooleanType_T)
    Car_set_code(p, Model_A)
    for i in range(Car_someNumbers_LENGTH):
        Car_set_someNumbers(p, i, i + 1)
    for i in range(6):
        Car_set_vehicleCode(p, i, b"abcdef"[i])
    Car_set_extras(p, (1 << OptionalExtras_sunRoof_BIT) | (1 << OptionalExtras_cruiseControl_BIT))
    Engine_set_capacity(e, 2000)
    Engine_set_numCylinders(e, 4)
    for i in range(3):
        Engine_set_manufacturerCode(e, i, b"123"[i])
    Engine_set_efficiency(e, 35)
    Engine_set_boosterEnabled(e, BooleanType_T)
    Booster_set_BoostType(e + Engine_booster_OFFSET, BoostType_NITROUS)
    Booster_set_horsePower(e + Engine_booster_OFFSET, 200)
    p += Car_BLOCK_LENGTH
    groupSizeEncoding_set_blockLength(p, Car_fuelFigures_BLOCK_LENGTH)
    groupSizeEncoding_set_numInGroup(p, 1)
    p += Car_fuelFigures_HEADER_LENGTH
    Car_fuelFigures_set_speed(p, 30)
    Car_fuelFigures_set_mpg(p, 35.5)
    p = _data(p + Car_fuelFigures_BLOCK_LENGTH, b"Urban")
    groupSizeEncoding_set_blockLength(p, Car_performanceFigures_BLOCK_LENGTH)
    groupSizeEncoding_set_numInGroup(p, 1)
    p += Car_performanceFigures_HEADER_LENGTH
    Car_performanceFigures_set_octaneRating(p, 95)
    p += Car_performanceFigures_BLOCK_LENGTH
    groupSizeEncoding_set_blockLength(p, Car_performanceFigures_acceleration_BLOCK_LENGTH)
    groupSizeEncoding_set_numInGroup(p, 2)
    p += Car_performanceFigures_acceleration_HEADER_LENGTH
    for mph, seconds in ((30, 4.0), (60, 7.5)):
        Car_performanceFigures_acceleration_set_mph(p, mph)
        Car_performanceFigures_acceleration_set_seconds(p, seconds)
        p += Car_performanceFigures_acceleration_BLOCK_LENGTH
    p = _data(p, b"Honda")
    p = _data(p, b"Civic")
    p = _data(p, b"abc")
    return bytes(out[:p - h])
