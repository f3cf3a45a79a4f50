"""Fixed SBE byte vectors worked out by hand from the spec, shared by the codec tests."""


def hexbytes(text):
    """Bytes from hex written in groups with comments: 'a0 b1  # x' lines."""
    return bytes.fromhex(" ".join(line.split("#")[0] for line in text.splitlines()))


NEW_ORDER = dict(clOrdId=0x0102030405060708, account=7, instrumentId=42, side="Sell", ordType="Limit",
                 timeInForce="ImmediateOrCancel", flags=["PostOnly"], selfTradePrevention="CancelResting",
                 price={"mantissa": 1234500}, quantity=10, expireTime=0x65a0bc00, stpGroup=9)
NEW_ORDER_BYTES = hexbytes("""
    3d 00  01 00  01 00  01 00      # header: blockLength 61, templateId 1, schemaId 1, version 1
    08 07 06 05 04 03 02 01         # clOrdId uint64
    07 00 00 00                     # account uint32 7
    2a 00 00 00                     # instrumentId uint32 42
    02                              # side Sell
    02                              # ordType Limit
    03                              # timeInForce ImmediateOrCancel
    01                              # flags: PostOnly = bit 0
    02                              # selfTradePrevention CancelResting
    44 d6 12 00 00 00 00 00         # price.mantissa int64 1234500 = 0x12d644 (exponent is constant)
    0a 00 00 00 00 00 00 00         # quantity int64 10
    00 00 00 00 00 00 00 80         # stopPrice.mantissa: int64 null = -2^63
    00 00 00 00 00 00 00 80         # displayQty: int64 null
    00 bc a0 65                     # expireTime uint32 seconds 0x65a0bc00
    09 00 00 00                     # stpGroup uint32 9
""")


BOOK_UPDATE_BYTES = hexbytes("""
    14 00  14 00  01 00  01 00      # header: blockLength 20, templateId 20, schemaId 1, version 1
    07 00 00 00 00 00 00 00         # seqNum 7
    08 07 06 05 04 03 02 01         # transactTime
    03 00 00 00                     # instrumentId 3
    16 00  02 00                    # levels dimension: blockLength 22, numInGroup 2
    00  01                          # [0] action New, side Buy
    40 42 0f 00 00 00 00 00         #     price.mantissa 1000000
    32 00 00 00 00 00 00 00         #     quantity 50
    02 00 00 00                     #     orderCount 2
    02  02                          # [1] action Delete, side Sell
    50 69 0f 00 00 00 00 00         #     price.mantissa 1010000
    00 00 00 00 00 00 00 00         #     quantity 0
    00 00 00 00                     #     orderCount 0
""")
BOOK_UPDATE = dict(seqNum=7, transactTime=0x0102030405060708, instrumentId=3, levels=[
    {"action": "New", "side": "Buy", "price": {"mantissa": 1000000, "exponent": -4}, "quantity": 50, "orderCount": 2},
    {"action": "Delete", "side": "Sell", "price": {"mantissa": 1010000, "exponent": -4}, "quantity": 0,
     "orderCount": 0}])


CAR = dict(
    serialNumber=1234, modelYear=2013, available="T", code="A", someNumbers=[1, 2, 3, 4, 5], vehicleCode="abcdef",
    extras=["sunRoof", "cruiseControl"], discountedModel="C",
    engine={"capacity": 2000, "numCylinders": 4, "maxRpm": 9000, "manufacturerCode": "123", "fuel": "Petrol",
            "efficiency": 35, "boosterEnabled": "T", "booster": {"BoostType": "NITROUS", "horsePower": 200}},
    fuelFigures=[{"speed": 30, "mpg": 35.5, "usageDescription": "Urban"}],
    performanceFigures=[{"octaneRating": 95, "acceleration": [{"mph": 30, "seconds": 4.0},
                                                              {"mph": 60, "seconds": 7.5}]}],
    manufacturer="Honda", model="Civic", activationCode="abc")

CAR_BYTES = hexbytes("""
    31 00  01 00  01 00  00 00      # header: blockLength 49, templateId 1, schemaId 1, version 0
    d2 04 00 00 00 00 00 00         # serialNumber 1234
    dd 07                           # modelYear 2013
    01                              # available T
    41                              # code 'A'
    01 00 00 00  02 00 00 00  03 00 00 00  04 00 00 00  05 00 00 00   # someNumbers uint32[5]
    61 62 63 64 65 66               # vehicleCode "abcdef"
    05                              # extras sunRoof (bit 0) | cruiseControl (bit 2)
                                    # discountedModel: constant, not on the wire
    d0 07  04  31 32 33  23  01     # engine: capacity 2000, numCylinders 4, "123", efficiency 35, boosterEnabled T
    4e  c8                          #   booster: 'N' NITROUS, horsePower 200
    06 00  01 00                    # fuelFigures: blockLength 6, numInGroup 1
    1e 00  00 00 0e 42              #   speed 30, mpg 35.5f = 0x420e0000
    05 00 00 00  55 72 62 61 6e     #   usageDescription "Urban" (uint32 length)
    01 00  01 00                    # performanceFigures: blockLength 1, numInGroup 1
    5f                              #   octaneRating 95
    06 00  02 00                    #   acceleration: blockLength 6, numInGroup 2
    1e 00  00 00 80 40              #     mph 30, seconds 4.0f
    3c 00  00 00 f0 40              #     mph 60, seconds 7.5f
    05 00 00 00  48 6f 6e 64 61     # manufacturer "Honda"
    05 00 00 00  43 69 76 69 63     # model "Civic"
    03 00 00 00  61 62 63           # activationCode "abc"
""")

CAR_BIG_ENDIAN_BYTES = hexbytes("""
    00 31  00 01  00 01  00 00      # header, big-endian
    00 00 00 00 00 00 04 d2         # serialNumber 1234
    07 dd  01  41                   # modelYear 2013, available T, code 'A'
    00 00 00 01  00 00 00 02  00 00 00 03  00 00 00 04  00 00 00 05
    61 62 63 64 65 66  05           # vehicleCode, extras
    07 d0  04  31 32 33  23  01  4e  c8
    00 06  00 01                    # fuelFigures dimension
    00 1e  42 0e 00 00              #   speed 30, mpg 35.5f
    00 00 00 05  55 72 62 61 6e     #   usageDescription "Urban"
    00 01  00 01  5f                # performanceFigures dimension, octaneRating 95
    00 06  00 02                    #   acceleration dimension
    00 1e  40 80 00 00              #     30, 4.0f
    00 3c  40 f0 00 00              #     60, 7.5f
    00 00 00 05  48 6f 6e 64 61
    00 00 00 05  43 69 76 69 63
    00 00 00 03  61 62 63
""")
