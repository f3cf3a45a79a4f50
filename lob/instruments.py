"""Instrument reference data: the TOML file the engine loads at start (`lob engine --instruments-file FILE`,
or `[engine] instruments_file` in the config). One table per instrument, named by its symbol:

    [instruments.ACME]
    id = 1                      # required: 1..2**32-1, unique
    tick = 100                  # price increment in price mantissa units (exponent -4); default 1
    lot = 10                    # order quantities are multiples of it; default 1
    band_percent = 5.0          # price band around the reference price, in percent (up to 2 decimals) ...
    band_ticks = 20             # ... or in ticks (not both); default: no band
    reference_price = 1500000   # the band's centre until the first trade (mantissa); default: none
    max_order_qty = 100000      # per order; default: no limit
    max_notional = 10000000000  # price mantissa x quantity per order; default: no limit
    algorithm = "price-time"    # or "pro-rata"
    min_allocation = 1          # pro-rata: smallest allocation, in lots
    stp = "None"                # self-trade prevention of orders that give none: None, CancelAggressor,
                                # CancelResting, CancelBoth, DecrementAndCancel
    state = "trading"           # or "halted", "closed" (admin requests change it while running)
    order_level = false         # also publish order-level market data (each displayed order's add,
                                # modify, delete, execute; an iceberg's displayed slice only)

The band applies to the aggressive side: a buy above reference + width or a sell below reference - width
is rejected (RiskPriceBand); a market order trades only inside the band. The reference is the last trade
price, or `reference_price` before the first trade; with neither, no band applies.

`lob engine --instruments 1:1,2:5` (id:tick pairs) stays for quick starts: those instruments have the
defaults above.
"""
import tomllib
from dataclasses import dataclass

ALGORITHMS = {"price-time": 0, "pro-rata": 1}
STATES = {"trading": 0, "halted": 1, "closed": 2}
STP_MODES = ("None", "CancelAggressor", "CancelResting", "CancelBoth", "DecrementAndCancel")
_MAX = 1 << 62


@dataclass(frozen=True)
class InstrumentSpec:
    id: int
    symbol: str = ""
    tick: int = 1
    lot: int = 1
    band_bp: int = 0            # band in basis points of the reference (band_percent x 100)
    band_ticks: int = 0
    reference_price: int | None = None
    max_order_qty: int = 0
    max_notional: int = 0
    algorithm: str = "price-time"
    min_allocation: int = 1
    stp: str = "None"
    state: str = "trading"
    order_level: bool = False

    def __post_init__(self):
        checks = (
            ("id", 0 < self.id < 1 << 32, "must be in 1..2**32-1"),
            ("tick", 0 < self.tick < _MAX, "must be positive"),
            ("lot", 0 < self.lot < _MAX, "must be positive"),
            ("band", not (self.band_bp and self.band_ticks), "give band_percent or band_ticks, not both"),
            ("band_percent", 0 <= self.band_bp <= 1_000_000, "must be in 0..10000"),
            ("band_ticks", 0 <= self.band_ticks < 1 << 31, "must be >= 0"),
            ("reference_price", self.reference_price is None or 0 < self.reference_price < _MAX,
             "must be a positive price mantissa"),
            ("max_order_qty", 0 <= self.max_order_qty < _MAX, "must be >= 0 (0: no limit)"),
            ("max_notional", 0 <= self.max_notional < _MAX, "must be >= 0 (0: no limit)"),
            ("algorithm", self.algorithm in ALGORITHMS, f"must be one of {', '.join(ALGORITHMS)}"),
            ("min_allocation", 0 < self.min_allocation < _MAX, "must be positive"),
            ("stp", self.stp in STP_MODES, f"must be one of {', '.join(STP_MODES)}"),
            ("state", self.state in STATES, f"must be one of {', '.join(STATES)}"),
            ("order_level", isinstance(self.order_level, bool), "must be true or false"),
        )
        for key, ok, message in checks:
            if not ok:
                raise ValueError(f"{key} {message}")

    def describe(self):
        name = f"{self.symbol} " if self.symbol else ""
        text = f"{name}{self.id} (tick {self.tick}"
        if self.lot != 1:
            text += f", lot {self.lot}"
        if self.band_bp:
            text += f", band {self.band_bp / 100:g}%"
        elif self.band_ticks:
            text += f", band {self.band_ticks} ticks"
        if self.algorithm != "price-time":
            text += f", {self.algorithm}"
        if self.state != "trading":
            text += f", {self.state}"
        if self.order_level:
            text += ", order-level market data"
        return text + ")"


_KEYS = {"id", "tick", "lot", "band_percent", "band_ticks", "reference_price", "max_order_qty", "max_notional",
         "algorithm", "min_allocation", "stp", "state", "order_level"}
_INTEGERS = ("id", "tick", "lot", "band_ticks", "reference_price", "max_order_qty", "max_notional", "min_allocation")


def parse(data, source="instruments"):
    """{id: InstrumentSpec} from a parsed TOML document; ValueError names the file, table and key."""
    unknown = set(data) - {"instruments"}
    if unknown:
        raise ValueError(f"{source}: unknown top-level key(s) {', '.join(sorted(unknown))} (use [instruments.SYMBOL])")
    tables = data.get("instruments")
    if not isinstance(tables, dict) or not tables:
        raise ValueError(f"{source}: no instruments (one [instruments.SYMBOL] table each)")
    specs = {}
    for symbol, table in tables.items():
        where = f"{source}: [instruments.{symbol}]"
        if not isinstance(table, dict):
            raise ValueError(f"{where}: must be a table")
        bad = set(table) - _KEYS
        if bad:
            raise ValueError(f"{where}: unknown key {sorted(bad)[0]!r} (use {', '.join(sorted(_KEYS))})")
        if "id" not in table:
            raise ValueError(f"{where}: key 'id' is missing")
        for key in _INTEGERS:
            if key in table and (not isinstance(table[key], int) or isinstance(table[key], bool)):
                raise ValueError(f"{where}: key {key!r} must be a whole number, not {table[key]!r}")
        for key in ("algorithm", "stp", "state"):
            if key in table and not isinstance(table[key], str):
                raise ValueError(f"{where}: key {key!r} must be a string")
        fields = {k: v for k, v in table.items() if k != "band_percent"}
        if "band_percent" in table:
            percent = table["band_percent"]
            if isinstance(percent, bool) or not isinstance(percent, (int, float)) or round(percent * 100) != percent * 100:
                raise ValueError(f"{where}: key 'band_percent' must be a number with at most 2 decimals")
            if percent <= 0:
                raise ValueError(f"{where}: key 'band_percent' must be > 0")
            fields["band_bp"] = round(percent * 100)
        if fields.get("band_ticks", 1) <= 0:
            raise ValueError(f"{where}: key 'band_ticks' must be > 0")
        for key in ("algorithm", "state"):
            if key in fields:
                fields[key] = fields[key].lower()
        try:
            spec = InstrumentSpec(symbol=symbol, **fields)
        except ValueError as exc:
            raise ValueError(f"{where}: key {exc}") from None
        if spec.id in specs:
            raise ValueError(f"{where}: id {spec.id} is also {specs[spec.id].symbol}")
        specs[spec.id] = spec
    if len(specs) > 65535:
        raise ValueError(f"{source}: at most 65535 instruments")
    return specs


def load(path):
    """{id: InstrumentSpec} from a reference-data file."""
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise ValueError(f"instruments file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: {exc}") from None
    return parse(data, str(path))


def specs_of(instruments):
    """{id: InstrumentSpec} from {id: tick}, {id: InstrumentSpec} or None (instrument 1, tick 1)."""
    if instruments is None:
        return {1: InstrumentSpec(1)}
    out = {}
    for key, value in dict(instruments).items():
        if isinstance(value, InstrumentSpec):
            if value.id != int(key):
                raise ValueError(f"instrument {key} is given the reference data of {value.id}")
            out[int(key)] = value
        else:
            out[int(key)] = InstrumentSpec(int(key), tick=int(value))
    return out


def ticks_of(instruments):
    """{id: tick} of any form specs_of takes."""
    return {i: s.tick for i, s in specs_of(instruments).items()}
