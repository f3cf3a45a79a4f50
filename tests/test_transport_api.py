"""The Aeron C API resolution (symbols, version), error reporting and idle strategies."""
import ctypes.util
import os
import subprocess
import sys

import pytest
from aeron_helpers import ROOT, client, media_driver  # noqa: F401  (fixtures)

from lob.transport import aeron
from lob.transport.idle import IdleStrategy, parse


def libc_path():
    path = ctypes.util.find_library("c")
    loaded = [line.split()[-1] for line in open("/proc/self/maps") if "libc.so" in line or "libc-" in line]
    return loaded[0] if loaded else path


def test_version_is_the_one_the_declarations_were_written_for():
    major, minor = aeron.EXPECTED_VERSION
    assert f"version={major}.{minor}." in aeron.version()
    assert aeron.probe(aeron.LIBRARY) == aeron.version()
    assert "aeron_subscription_poll" in aeron.SYMBOLS and "aeron_fragment_assembler_handler" in aeron.SYMBOLS


def test_a_different_aeron_version_is_refused_with_both_versions_named():
    major, minor = aeron.EXPECTED_VERSION
    with pytest.raises(aeron.AeronVersionError) as info:
        aeron.probe(aeron.LIBRARY, expected=(major, minor - 1))
    message = str(info.value)
    assert f"Aeron {major}.{minor - 1} C API" in message and aeron.version() in message


def test_a_library_without_the_symbols_is_refused_naming_them():
    with pytest.raises(aeron.AeronLoadError) as info:
        aeron.probe(libc_path())
    assert "does not export aeron_version_full" in str(info.value)
    assert "aeron_subscription_poll" in str(info.value)


def test_a_library_that_is_not_loaded_is_refused():
    with pytest.raises(aeron.AeronLoadError, match="cannot open"):
        aeron.probe(os.path.join(ROOT, "no-such-library.so"))


def test_import_fails_clearly_when_pyaeron_lacks_the_api():
    # The import-time path itself: point pyaeron's extension at libc before lob.transport loads.
    code = ("import pyaeron._pyaeron as p, sys; p.__file__ = sys.argv[1]\n"
            "try:\n    import lob.transport.aeron\nexcept ImportError as e:\n    print(type(e).__name__, e)\n")
    out = subprocess.run([sys.executable, "-c", code, libc_path()], capture_output=True, text=True, timeout=60)
    assert out.stdout.startswith("AeronLoadError"), out.stdout + out.stderr
    assert "does not export aeron_version_full" in out.stdout


def test_no_driver_is_a_driver_timeout(tmp_path):
    from lob.transport.client import Client
    with pytest.raises(aeron.DriverTimeout) as info:
        Client(str(tmp_path), driver_timeout_ms=200)
    assert str(tmp_path) in str(info.value)


def test_a_bad_channel_reports_aerons_error(client):
    with pytest.raises(aeron.AeronError) as info:
        client.add_subscription("aeron:udp?endpoint=no-such-host.invalid:1", 1)
    assert info.value.errcode != 0
    assert "no-such-host.invalid" in str(info.value)


@pytest.mark.parametrize("spec, kind", [("yield", "yield"), ("spin", "spin"), ("sleep:1000", "sleep"),
                                        ("sleep", "sleep"), ("backoff", "backoff"),
                                        ("backoff:1000:100000", "backoff")])
def test_idle_strategy_specs(spec, kind):
    strategy = parse(spec)
    assert strategy.kind == kind
    for _ in range(40):  # exercise every back-off stage once
        strategy.idle(0)
    strategy.idle(1)
    assert parse(strategy) is strategy


@pytest.mark.parametrize("spec", ["bogus", "sleep:x", "backoff:10:1", "yield:5", "sleep:0"])
def test_bad_idle_strategy_specs(spec):
    with pytest.raises(ValueError):
        IdleStrategy(spec)
