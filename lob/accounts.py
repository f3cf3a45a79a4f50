"""Per-account risk limits from the engine's TOML config:

    [accounts.default]          # every account not listed below
    max_open_orders = 100       # live orders per instrument; 0 or absent: no limit
    max_position = 5000         # |bought - sold| per instrument, counting fills; 0 or absent: no limit

    [accounts.7]
    max_open_orders = 10

A new order is rejected (RiskMaxOpenOrders) when its account already has max_open_orders live orders in
the instrument, and (RiskMaxPosition) when filling it completely could take the account's position in the
instrument beyond max_position either way. A listed account takes the keys it gives, the default's for
the rest.
"""
from dataclasses import dataclass, field

_KEYS = ("max_open_orders", "max_position")


@dataclass(frozen=True)
class AccountLimits:
    max_open_orders: int = 0
    max_position: int = 0


@dataclass(frozen=True)
class AccountRules:
    default: AccountLimits = AccountLimits()
    accounts: dict = field(default_factory=dict)    # account id -> AccountLimits

    def limits(self, account):
        return self.accounts.get(account, self.default)


def parse(tables, source="config"):
    """AccountRules from the [accounts] section's tables; ValueError names the file, table and key."""
    if not isinstance(tables, dict):
        raise ValueError(f"{source}: [accounts] must hold tables ([accounts.default], [accounts.N])")

    def limits(name, table, base):
        where = f"{source}: [accounts.{name}]"
        if not isinstance(table, dict):
            raise ValueError(f"{where}: must be a table")
        values = {}
        for key, value in table.items():
            if key not in _KEYS:
                raise ValueError(f"{where}: unknown key {key!r} (use {', '.join(_KEYS)})")
            bound = 1 << 32 if key == "max_open_orders" else 1 << 62
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < bound:
                raise ValueError(f"{where}: key {key!r} must be a whole number >= 0 (0: no limit)")
            values[key] = value
        return AccountLimits(**{k: values.get(k, getattr(base, k)) for k in _KEYS})

    default = limits("default", tables.get("default", {}), AccountLimits())
    accounts = {}
    for name, table in tables.items():
        if name == "default":
            continue
        try:
            account = int(name)
        except ValueError:
            raise ValueError(f"{source}: [accounts.{name}]: accounts are numbers (or 'default')") from None
        if not 0 <= account < 1 << 32:
            raise ValueError(f"{source}: [accounts.{name}]: accounts are 0..2**32-1")
        accounts[account] = limits(name, table, default)
    return AccountRules(default, accounts)
