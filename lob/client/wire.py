"""Fixed-layout access to the lob SBE messages for hot loops.

The generated codec (`lob.sbe.messages`) encodes from keyword fields and decodes to dicts: right for
tools and tests, too slow per message in a load generator. This module asks the codec once where each
field lives (encode a message, change one field, see which bytes moved) and then reads and writes
frames with precompiled `struct` formats. Nothing here hard-codes an offset: a schema change that moves
a field is picked up at import, and a field the probe cannot place is an error at import.
"""
import struct

HEADER = struct.Struct("<HHHH")  # messageHeader: blockLength, templateId, schemaId, version
TEMPLATE_ID = struct.Struct("<H")
TEMPLATE_ID_OFFSET = 2
INT64_NULL = -(1 << 63)    # SBE's null of an optional int64 (PriceNull, QtyNull)

# Required fields of each message at neutral values; probing changes one field at a time.
BASE_FIELDS = {
    "NewOrderSingle": dict(clOrdId=0, account=0, instrumentId=0, side="Buy", ordType="Limit",
                           timeInForce="GoodTillCancel", flags=[], selfTradePrevention="None",
                           price={"mantissa": 0}, quantity=0, expireTime=0, stpGroup=0),
    "OrderCancelRequest": dict(clOrdId=0, origClOrdId=0, instrumentId=0, side="Buy"),
    "OrderCancelReplaceRequest": dict(clOrdId=0, origClOrdId=0, instrumentId=0, side="Buy",
                                      price={"mantissa": 0}, quantity=0),
    "OrderMassCancelRequest": dict(clOrdId=0, instrumentId=0, side="Both"),
}

# struct code per field and a second value for the probe (enums: another value name).
_PROBE = {
    "Q": 0x0102030405060708, "q": 0x0102030405060708, "I": 0x01020304, "i": 0x01020304,
    "H": 0x0102, "B": 0x01,
}
_ENUM_PROBE = {"side": "Sell", "ordType": "Market", "timeInForce": "ImmediateOrCancel",
               "selfTradePrevention": "CancelBoth"}
_COMPOSITE = ("price", "stopPrice")


def codec():
    from lob.sbe import messages

    return messages


class Layout:
    """Where fields sit in one message: `offsets[name]` (from the start of the frame) and struct codes.
    The header's template id is there too, as the pseudo-field "templateId"."""

    def __init__(self, name, template_id, template, offsets, codes):
        self.name = name
        self.template_id = template_id
        self.template = template
        self.length = len(template)
        self.offsets = offsets
        self.codes = codes

    def reader(self, *fields):
        """A Struct whose `unpack_from(frame)` returns `fields` (which must be in wire order)."""
        order = sorted(fields, key=self.offsets.__getitem__)
        if list(order) != list(fields):
            raise ValueError(f"{self.name}: list the fields in wire order: {order}")
        fmt, pos = "<", 0
        for f in fields:
            gap = self.offsets[f] - pos
            if gap < 0:
                raise ValueError(f"{self.name}: fields overlap at {f}")
            fmt += f"{gap}x" if gap else ""
            fmt += self.codes[f]
            pos = self.offsets[f] + struct.calcsize("<" + self.codes[f])
        return struct.Struct(fmt)

    def writer(self, field):
        return self.offsets[field], struct.Struct("<" + self.codes[field])


def probe_layout(messages, name, codes):
    """Find the offset of each field in `codes` ({field: struct code}) by encoding and diffing."""
    base = BASE_FIELDS[name]
    template = messages.encode(name, **base)
    template_id = messages.MESSAGES[name]
    if TEMPLATE_ID.unpack_from(template, TEMPLATE_ID_OFFSET)[0] != template_id:
        raise RuntimeError(f"{name}: the message header does not carry template id {template_id} at offset 2")
    offsets = {}
    for field, code in codes.items():
        if field in _ENUM_PROBE:
            value = _ENUM_PROBE[field]
        elif field in _COMPOSITE:
            value = {"mantissa": _PROBE[code]}
        else:
            value = _PROBE[code]
        changed = messages.encode(name, **{**base, field: value})
        diff = [i for i in range(len(template)) if template[i] != changed[i]]
        size = struct.calcsize("<" + code)
        if len(changed) != len(template) or not diff or diff[-1] - diff[0] >= size:
            raise RuntimeError(f"cannot locate {name}.{field} in the encoded message")
        offset = diff[0]
        if field not in _ENUM_PROBE and diff[-1] - diff[0] + 1 != size:
            raise RuntimeError(f"{name}.{field} is not {size} bytes wide in the encoded message")
        got = struct.unpack_from("<" + code, changed, offset)[0]
        if field not in _ENUM_PROBE and got != _PROBE[code]:
            raise RuntimeError(f"{name}.{field}: read back {got!r} at offset {offset}")
        offsets[field] = offset
    offsets["templateId"] = TEMPLATE_ID_OFFSET
    return Layout(name, template_id, template, offsets, {**codes, "templateId": "H"})


class OrderEntryEncoder:
    """Writes NewOrderSingle (GTC limit) and OrderCancelRequest frames into a caller's buffer."""

    def __init__(self, messages=None):
        messages = messages or codec()
        self.messages = messages
        nos = probe_layout(messages, "NewOrderSingle", dict(
            clOrdId="Q", account="I", instrumentId="I", side="B", price="q", quantity="q"))
        ocr = probe_layout(messages, "OrderCancelRequest", dict(
            clOrdId="Q", origClOrdId="Q", instrumentId="I", side="B"))
        self.new_order = nos
        self.cancel = ocr
        self.new_order_length = nos.length
        self.cancel_length = ocr.length
        self._nos = self._packer(nos, ("clOrdId", "instrumentId", "side", "price", "quantity", "account"))
        self._ocr = self._packer(ocr, ("clOrdId", "origClOrdId", "instrumentId", "side"))
        typed = probe_layout(messages, "NewOrderSingle", dict(
            clOrdId="Q", account="I", instrumentId="I", side="B", ordType="B", selfTradePrevention="B",
            price="q", quantity="q", stopPrice="q", displayQty="q"))
        self._typed = self._packer(typed, ("clOrdId", "instrumentId", "side", "price", "quantity", "account",
                                           "ordType", "stopPrice", "displayQty", "selfTradePrevention"))
        self._limit, self._stop_limit = messages.ENUMS["OrdType"]["Limit"], messages.ENUMS["OrdType"]["StopLimit"]

    @staticmethod
    def _packer(layout, fields):
        """One struct over the whole frame: template bytes between fields are passed as constants."""
        fmt, pos, plan = "<", 0, []
        template = layout.template
        for f in sorted(fields, key=layout.offsets.__getitem__):
            off = layout.offsets[f]
            if off > pos:
                fmt += f"{off - pos}s"
                plan.append(template[pos:off])
            fmt += layout.codes[f]
            plan.append(fields.index(f))
            pos = off + struct.calcsize("<" + layout.codes[f])
        if pos < len(template):
            fmt += f"{len(template) - pos}s"
            plan.append(template[pos:])
        packer = struct.Struct(fmt)
        assert packer.size == len(template)
        return packer, plan

    def _pack(self, which, buf, offset, values):
        packer, plan = which
        packer.pack_into(buf, offset, *[values[p] if type(p) is int else p for p in plan])

    def pack_new_order(self, buf, offset, cl_ord_id, instrument, side, price, qty, account=0):
        self._pack(self._nos, buf, offset, (cl_ord_id, instrument, side, price, qty, account))

    def pack_typed_order(self, buf, offset, cl_ord_id, instrument, side, price, qty, account, stop_price,
                         display_qty, stp_mode):
        """A GTC limit (stop_price 0) or stop-limit order, an iceberg when display_qty > 0, with a
        SelfTradePrevention value (0: none)."""
        self._pack(self._typed, buf, offset, (
            cl_ord_id, instrument, side, price, qty, account, self._stop_limit if stop_price else self._limit,
            stop_price if stop_price else INT64_NULL, display_qty if display_qty else INT64_NULL, stp_mode))

    def pack_cancel(self, buf, offset, cl_ord_id, orig_cl_ord_id, instrument, side):
        self._pack(self._ocr, buf, offset, (cl_ord_id, orig_cl_ord_id, instrument, side))

