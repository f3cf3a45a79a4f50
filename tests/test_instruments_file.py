"""The reference-data file, the [accounts] config section and the engine flags that load them."""
import argparse

import pytest

from lob import config, credentials
from lob.accounts import AccountLimits, AccountRules, parse as parse_accounts
from lob.instruments import InstrumentSpec, load, parse


def cli(*flags):
    parser = argparse.ArgumentParser()
    config.add_arguments(parser)
    return config.from_args(parser.parse_args(list(flags)))


def test_the_sample_file_loads():
    specs = load("examples/instruments.toml")
    assert specs[1] == InstrumentSpec(1, "ACME", tick=100, band_bp=500, reference_price=1500000, max_order_qty=100000,
                                      max_notional=1000000000000, order_level=True)
    assert specs[1].describe().endswith(", order-level market data)") and not specs[2].order_level
    assert specs[2].algorithm == "pro-rata" and specs[2].lot == 10 and specs[2].stp == "CancelAggressor"
    assert specs[3].state == "halted"


@pytest.mark.parametrize("text, message", [
    ("[instruments.A]\ntick = 1\n", "[instruments.A]: key 'id' is missing"),
    ("[instruments.A]\nid = 1\ntick = 0\n", "[instruments.A]: key tick must be positive"),
    ("[instruments.A]\nid = 1\nlot = 'x'\n", "[instruments.A]: key 'lot' must be a whole number"),
    ("[instruments.A]\nid = 1\nband_percent = 1.234\n", "key 'band_percent' must be a number with at most 2 decimals"),
    ("[instruments.A]\nid = 1\nband_percent = 1\nband_ticks = 2\n", "give band_percent or band_ticks, not both"),
    ("[instruments.A]\nid = 1\nalgorithm = 'fifo'\n", "key algorithm must be one of price-time, pro-rata"),
    ("[instruments.A]\nid = 1\nstate = 'open'\n", "key state must be one of trading, halted, closed"),
    ("[instruments.A]\nid = 1\ncolour = 1\n", "[instruments.A]: unknown key 'colour'"),
    ("[instruments.A]\nid = 1\norder_level = 'yes'\n", "[instruments.A]: key order_level must be true or false"),
    ("[instruments.A]\nid = 1\n[instruments.B]\nid = 1\n", "[instruments.B]: id 1 is also A"),
    ("x = 1\n", "unknown top-level key(s) x"),
    ("[instruments.A\n", "refs.toml: "),
])
def test_errors_name_the_file_and_key(tmp_path, text, message):
    path = tmp_path / "refs.toml"
    path.write_text(text)
    with pytest.raises(ValueError) as exc:
        load(str(path))
    assert message in str(exc.value) and str(path) in str(exc.value)


def test_a_missing_file():
    with pytest.raises(ValueError, match="instruments file nowhere.toml does not exist"):
        load("nowhere.toml")


def test_engine_flags_and_config(tmp_path):
    cfg = cli("--instruments-file", "examples/instruments.toml", "--max-accounts", "100")
    assert sorted(cfg.instruments) == [1, 2, 3] and cfg.max_accounts == 100
    with pytest.raises(ValueError, match="not both"):
        cli("--instruments-file", "examples/instruments.toml", "--instruments", "1:1")
    path = tmp_path / "engine.toml"
    path.write_text('[engine]\ninstruments_file = "examples/instruments.toml"\n'
                    '[accounts.default]\nmax_open_orders = 5\n[accounts.7]\nmax_position = 10\n')
    cfg = cli("--config", str(path))
    assert cfg.instruments[1].symbol == "ACME"
    assert cfg.accounts == AccountRules(AccountLimits(5, 0), {7: AccountLimits(5, 10)})


@pytest.mark.parametrize("tables, message", [
    ({"x": {}}, "[accounts.x]: accounts are numbers"),
    ({"7": {"max_orders": 1}}, "[accounts.7]: unknown key 'max_orders'"),
    ({"default": {"max_position": -1}}, "[accounts.default]: key 'max_position' must be a whole number >= 0"),
])
def test_account_errors(tables, message):
    with pytest.raises(ValueError) as exc:
        parse_accounts(tables, "engine.toml")
    assert f"engine.toml: {message}" in str(exc.value)


def test_admin_option_in_credentials():
    text = credentials.dumps(credentials.for_tests([5], admin=True) + credentials.for_tests([6]))
    assert [c.admin for c in credentials.parse(text)] == [True, False]
    with pytest.raises(credentials.CredentialsError, match="admin must be yes or no"):
        credentials.parse(text.replace("admin=yes", "admin=maybe"))
