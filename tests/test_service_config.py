"""Engine configuration: defaults, TOML file, command-line flags (each overriding the one before)."""
import argparse

import pytest

from lob import config
from lob.sbe import messages


def parse(*argv):
    parser = argparse.ArgumentParser()
    config.add_arguments(parser)
    return config.from_args(parser.parse_args(list(argv)))


def test_defaults():
    cfg = parse()
    assert cfg.aeron_dir is None and (cfg.driver_threading, cfg.driver_idle, cfg.idle) == ("shared", "yield", "yield")
    assert cfg.order_entry == config.Channel("aeron:udp?endpoint=127.0.0.1:40101", 1001)
    assert cfg.market_data == config.Channel("aeron:udp?control=127.0.0.1:40103|control-mode=dynamic", 1003)
    assert cfg.instruments == {1: 1} and cfg.market_data_enabled and cfg.metrics_port is None
    assert cfg.drop_copy is None and cfg.credentials is None and not hasattr(cfg, "execution")
    assert (cfg.tick_ms, cfg.retransmit_ring_kb, cfg.publication_connect_timeout, cfg.private_buffer_kb) == (
        50.0, 4096, 5.0, None)
    # 8 MiB plus a mass cancel's answer for every order of the pool: an ExecutionReportCanceled each
    assert messages.HEADER_LENGTH + messages.BLOCK_LENGTHS["ExecutionReportCanceled"] + 4 == config.BUFFERED_CANCEL_BYTES
    assert cfg.private_buffer_limit_kb() == 8192 + (262_144 * config.BUFFERED_CANCEL_BYTES + 1023) // 1024 == 21_760
    assert parse("--max-orders", "1024").private_buffer_limit_kb() == 8192 + 53
    assert parse("--private-buffer-kb", "100").private_buffer_limit_kb() == 100
    assert cfg.slow_consumer_timeout == 2.0
    assert cfg.publication_limit(10) == 36 and parse("--max-publications", "5").publication_limit(10) == 5


def test_client_channels_publish_orders_and_subscribe_to_market_data():
    channels = parse().client_channels()
    assert sorted(channels) == ["market_data", "order_entry", "recovery", "recovery_requests"]
    assert channels["recovery"] == config.Channel(
        "aeron:udp?endpoint=127.0.0.1:0|control=127.0.0.1:40105|control-mode=dynamic", 1005)
    assert channels["recovery_requests"] == config.Channel("aeron:udp?endpoint=127.0.0.1:40106", 1006)
    assert sorted(parse("--no-recovery").client_channels()) == ["market_data", "order_entry"]
    assert sorted(parse("--no-market-data").client_channels()) == ["market_data", "order_entry"]
    assert parse("--port-base", "30000").client_channels()["recovery_requests"].channel == \
        "aeron:udp?endpoint=127.0.0.1:30005"
    assert channels["order_entry"].channel == "aeron:udp?endpoint=127.0.0.1:40101"
    assert channels["market_data"] == config.Channel(
        "aeron:udp?endpoint=127.0.0.1:0|control=127.0.0.1:40103|control-mode=dynamic", 1003)
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
[channels.drop_copy]
channel = "aeron:udp?endpoint=127.0.0.1:45010"

[engine]
credentials = "sessions.txt"
tick_ms = 20
retransmit_ring_kb = 64
instruments = "1:1,2:5"
max_orders = 1000
prefault = false
idle = "backoff:1000:50000"

[status]
interval = 0

[metrics]
port = 9999

[publications]
max = 8
connect_timeout = 2.5
buffer_kb = 256
slow_consumer_timeout = 0.75
""")
    cfg = parse("--config", str(path))
    assert cfg.order_entry == config.Channel("aeron:udp?endpoint=127.0.0.1:45000", 11)
    assert not cfg.market_data_enabled
    assert cfg.drop_copy == config.Channel("aeron:udp?endpoint=127.0.0.1:45010", 1004)
    assert (cfg.credentials, cfg.tick_ms, cfg.retransmit_ring_kb) == ("sessions.txt", 20, 64)
    assert (cfg.max_publications, cfg.publication_connect_timeout, cfg.private_buffer_kb) == (8, 2.5, 256)
    assert cfg.slow_consumer_timeout == 0.75
    assert (cfg.driver_threading, cfg.driver_idle, cfg.idle) == ("dedicated", "backoff", "backoff:1000:50000")
    assert (cfg.instruments, cfg.max_orders, cfg.status_interval, cfg.metrics_port) == ({1: 1, 2: 5}, 1000, 0, 9999)
    assert cfg.prefault is False and parse().prefault is True and parse("--no-prefault").prefault is False
    cfg = parse("--config", str(path), "--order-entry-stream", "12", "--instruments", "7:2", "--max-orders", "5",
                "--metrics-port", "9000", "--idle", "yield", "--credentials", "other.txt", "--drop-copy-stream", "9",
                "--tick-ms", "10", "--retransmit-ring-kb", "8", "--max-publications", "3",
                "--publication-connect-timeout", "1", "--private-buffer-kb", "16", "--slow-consumer-timeout", "3")
    assert cfg.order_entry == config.Channel("aeron:udp?endpoint=127.0.0.1:45000", 12)
    assert cfg.drop_copy == config.Channel("aeron:udp?endpoint=127.0.0.1:45010", 9)
    assert (cfg.credentials, cfg.tick_ms, cfg.retransmit_ring_kb) == ("other.txt", 10, 8)
    assert (cfg.max_publications, cfg.publication_connect_timeout, cfg.private_buffer_kb) == (3, 1, 16)
    assert cfg.slow_consumer_timeout == 3
    assert (cfg.instruments, cfg.max_orders, cfg.metrics_port, cfg.idle) == ({7: 2}, 5, 9000, "yield")


def test_port_base_moves_the_default_channels():
    cfg = parse("--port-base", "41000", "--md-stream", "77")
    assert [c.channel.split("127.0.0.1:")[1][:5] for c in (cfg.order_entry, cfg.market_data)] == ["41000", "41002"]
    assert cfg.market_data.stream_id == 77


def test_drop_copy_flag():
    cfg = parse("--drop-copy", "aeron:udp?endpoint=127.0.0.1:45020")
    assert cfg.drop_copy == config.Channel("aeron:udp?endpoint=127.0.0.1:45020", 1004)
    with pytest.raises(ValueError, match="needs a drop copy channel"):
        parse("--drop-copy-stream", "5")


@pytest.mark.parametrize("text, error", [
    ("[engine]\nbogus = 1\n", "unknown key 'bogus'"),
    ("[nope]\n", "unknown section"),
    ("[channels.orders]\nstream = 1\n", "unknown channel"),
    ("[channels.execution]\nstream = 1002\n", "unknown channel"),
    ("[channels.drop_copy]\nstream = 5\n", "needs a channel"),
    ("[channels.drop_copy]\nchannel = \"aeron:ipc\"\nenabled = true\n", "unknown keys"),
    ("[publications]\nmaximum = 1\n", "unknown key 'maximum'"),
    ("[engine]\ninstruments = \"1:x\"\n", "instruments"),
    ("[engine]\nprefault = \"yes\"\n", "prefault 'yes' must be true or false"),
    ("[publications]\nslow_consumer_timeout = -1\n", "slow-consumer timeout must be > 0"),
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
        parse("--md-channel", "aeron:udp?endpoint=127.0.0.1:40101", "--md-stream", "1001")
    with pytest.raises(ValueError, match="distinct"):
        parse("--drop-copy", "aeron:udp?endpoint=127.0.0.1:40101", "--drop-copy-stream", "1001")


@pytest.mark.parametrize("flags", [("--idle", "busy"), ("--driver-idle", "fast"), ("--max-orders", "0"),
                                   ("--fragment-limit", "0"), ("--tick-ms", "-1"), ("--retransmit-ring-kb", "0"),
                                   ("--max-publications", "0"), ("--publication-connect-timeout", "0"),
                                   ("--private-buffer-kb", "0"), ("--slow-consumer-timeout", "0")])
def test_bad_flags_are_refused(flags):
    with pytest.raises(ValueError):
        parse(*flags)


def test_client_flags_name_the_recovery_channels():
    from lob.client import connection

    parser = argparse.ArgumentParser()
    connection.add_arguments(parser)

    def channels(*argv):
        return connection.config_from_args(parser.parse_args(list(argv))).client_channels()

    given = channels("--recovery-channel", "aeron:udp?control=127.0.0.1:45000|control-mode=dynamic",
                     "--recovery-stream", "77", "--recovery-request-channel", "aeron:udp?endpoint=127.0.0.1:45001",
                     "--recovery-request-stream", "78")
    assert given["recovery"] == config.Channel(
        "aeron:udp?endpoint=127.0.0.1:0|control=127.0.0.1:45000|control-mode=dynamic", 77)
    assert given["recovery_requests"] == config.Channel("aeron:udp?endpoint=127.0.0.1:45001", 78)
    assert sorted(channels("--no-recovery")) == ["market_data", "order_entry"]
    assert channels("--port-base", "46000")["recovery_requests"] == config.Channel("aeron:udp?endpoint=127.0.0.1:46005", 1006)


def test_pools_private_terms_and_trace_defaults_and_flags(tmp_path):
    cfg = parse()
    assert (cfg.max_orders, cfg.private_term_kb, cfg.trace_file, cfg.trace_capacity) == (262_144, 1024, None, 1 << 20)
    cfg = parse("--private-term-kb", "64", "--trace-file", str(tmp_path / "t"), "--trace-capacity", "4096")
    assert (cfg.private_term_kb, cfg.trace_file, cfg.trace_capacity) == (64, str(tmp_path / "t"), 4096)
    (tmp_path / "c.toml").write_text("[publications]\nterm_kb = 2048\n")
    assert parse("--config", str(tmp_path / "c.toml")).private_term_kb == 2048
    assert config.with_term_length("aeron:udp?endpoint=h:1", 65536) == "aeron:udp?endpoint=h:1|term-length=65536"
    assert config.with_term_length("aeron:ipc", 65536) == "aeron:ipc?term-length=65536"
    assert config.with_term_length("aeron:udp?endpoint=h:1|term-length=131072", 65536).count("term-length") == 1


@pytest.mark.parametrize("flags, error", [
    (("--private-term-kb", "100"), "private_term_kb 100 must be a power of two in 64..1048576"),
    (("--private-term-kb", "32"), "private_term_kb 32 must be a power of two"),
    (("--trace-capacity", "0"), "trace_capacity 0 must be in 1..268435456"),
])
def test_bad_term_and_trace_flags_are_refused(flags, error):
    with pytest.raises(ValueError, match=error):
        parse(*flags)


def test_order_entry_subscription_gets_a_receiver_window_and_socket_buffer(tmp_path):
    cfg = parse()
    assert (cfg.order_entry_window_kb, cfg.order_entry_socket_buffer_kb) == (16, 4096)
    assert config.order_entry_subscription(cfg) == "aeron:udp?endpoint=127.0.0.1:40101|rcv-wnd=16384|so-rcvbuf=4194304"
    assert config.order_entry_subscription(parse("--order-entry-window-kb", "0", "--order-entry-socket-buffer-kb",
                                                 "0")) == "aeron:udp?endpoint=127.0.0.1:40101"
    own = parse("--order-entry-channel", "aeron:udp?endpoint=127.0.0.1:40101|rcv-wnd=65536")
    assert config.order_entry_subscription(own) == "aeron:udp?endpoint=127.0.0.1:40101|rcv-wnd=65536|so-rcvbuf=4194304"
    assert config.order_entry_subscription(parse("--order-entry-channel", "aeron:ipc")) == "aeron:ipc"
    (tmp_path / "c.toml").write_text("[engine]\norder_entry_window_kb = 32\n")
    assert parse("--config", str(tmp_path / "c.toml")).order_entry_window_kb == 32
    with pytest.raises(ValueError, match="order_entry_window_kb 2 must be 0 or in 4..1048576"):
        parse("--order-entry-window-kb", "2")
