"""Engine configuration: defaults, TOML file, command-line flags (each overriding the one before)."""
import argparse

import pytest

from lob import config


def parse(*argv):
    parser = argparse.ArgumentParser()
    config.add_arguments(parser)
    return config.from_args(parser.parse_args(list(argv)))


def test_defaults():
    cfg = parse()
    assert cfg.aeron_dir is None and (cfg.driver_threading, cfg.driver_idle, cfg.idle) == ("shared", "yield", "yield")
    assert cfg.order_entry == config.Channel("aeron:udp?endpoint=127.0.0.1:40101", 1001)
    assert cfg.execution == config.Channel("aeron:udp?control=127.0.0.1:40102|control-mode=dynamic|fc=min,t:100ms", 1002)
    assert cfg.market_data == config.Channel("aeron:udp?control=127.0.0.1:40103|control-mode=dynamic", 1003)
    assert cfg.instruments == {1: 1} and cfg.market_data_enabled and cfg.metrics_port is None


def test_client_channels_subscribe_to_the_fanout_publications():
    channels = parse().client_channels()
    assert channels["order_entry"].channel == "aeron:udp?endpoint=127.0.0.1:40101"
    assert channels["execution"] == config.Channel(
        "aeron:udp?endpoint=127.0.0.1:0|control=127.0.0.1:40102|control-mode=dynamic", 1002)
    assert config.subscriber_channel("aeron:udp?endpoint=127.0.0.1:5000") == "aeron:udp?endpoint=127.0.0.1:5000"
    assert config.subscriber_channel("aeron:ipc") == "aeron:ipc"


def test_file_then_flags(tmp_path):
    path = tmp_path / "engine.toml"
    path.write_text("""
[driver]
threading = "dedicated"
idle = "backoff"

[channels.order_entry]
channel = "aeron:udp?endpoint=127.0.0.1:45000"
stream = 11
[channels.market_data]
enabled = false

[engine]
instruments = "1:1,2:5"
max_orders = 1000
prefault = false
idle = "backoff:1000:50000"

[status]
interval = 0

[metrics]
port = 9999
""")
    cfg = parse("--config", str(path))
    assert cfg.order_entry == config.Channel("aeron:udp?endpoint=127.0.0.1:45000", 11)
    assert cfg.execution.stream_id == 1002 and not cfg.market_data_enabled
    assert (cfg.driver_threading, cfg.driver_idle, cfg.idle) == ("dedicated", "backoff", "backoff:1000:50000")
    assert (cfg.instruments, cfg.max_orders, cfg.status_interval, cfg.metrics_port) == ({1: 1, 2: 5}, 1000, 0, 9999)
    assert cfg.prefault is False and parse().prefault is True and parse("--no-prefault").prefault is False
    cfg = parse("--config", str(path), "--order-entry-stream", "12", "--instruments", "7:2", "--max-orders", "5",
                "--metrics-port", "9000", "--idle", "yield")
    assert cfg.order_entry == config.Channel("aeron:udp?endpoint=127.0.0.1:45000", 12)
    assert (cfg.instruments, cfg.max_orders, cfg.metrics_port, cfg.idle) == ({7: 2}, 5, 9000, "yield")


def test_port_base_moves_all_three_channels():
    cfg = parse("--port-base", "41000", "--md-stream", "77")
    assert [c.channel.split("127.0.0.1:")[1][:5] for c in (cfg.order_entry, cfg.execution, cfg.market_data)] == [
        "41000", "41001", "41002"]
    assert cfg.market_data.stream_id == 77


@pytest.mark.parametrize("text, error", [
    ("[engine]\nbogus = 1\n", "unknown key 'bogus'"),
    ("[nope]\n", "unknown section"),
    ("[channels.orders]\nstream = 1\n", "unknown channel"),
    ("[channels.execution]\nenabled = false\n", "unknown keys"),
    ("[engine]\ninstruments = \"1:x\"\n", "instruments"),
    ("[engine]\nprefault = \"yes\"\n", "prefault 'yes' must be true or false"),
])
def test_bad_files_are_refused(tmp_path, text, error):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match=error):
        parse("--config", str(path))


def test_instruments():
    assert config.parse_instruments("1:1, 2:5,3") == {1: 1, 2: 5, 3: 1}
    assert config.parse_instruments({"4": 10}) == {4: 10}
    for bad in ("", "0:1", "1:0", "a"):
        with pytest.raises(ValueError):
            config.parse_instruments(bad)


def test_streams_must_differ():
    with pytest.raises(ValueError, match="distinct"):
        parse("--exec-channel", "aeron:udp?endpoint=127.0.0.1:40101", "--exec-stream", "1001")


@pytest.mark.parametrize("flags", [("--idle", "busy"), ("--driver-idle", "fast"), ("--max-orders", "0"),
                                   ("--fragment-limit", "0")])
def test_bad_flags_are_refused(flags):
    with pytest.raises(ValueError):
        parse(*flags)
