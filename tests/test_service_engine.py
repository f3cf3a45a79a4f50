"""`lob engine` end to end: a subprocess with its own embedded driver, fed over UDP on 127.0.0.1 by
pyaeron publications that log on as trading sessions, answering on each session's private execution
stream and on the market-data stream. (Session behaviour: test_service_sessions.py.)"""
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request

import pytest
from engine_helpers import nos
from aeron_helpers import ROOT, WAIT, EngineProcess, OrderEntrySession, free_port_base, wait_until
from lob.engine import pool_bytes

from lob.credentials import for_tests

from lob.sbe.messages import decode, encode
from lob.transport.driver import MediaDriver, free_udp_ports

PRICE_EXPONENT = -4


def price(mantissa):
    return {"mantissa": mantissa, "exponent": PRICE_EXPONENT}


def new_order(cl_ord_id, side, px, qty, instrument=1, account=7):
    return nos(cl_ord_id, side, px, qty, instrumentId=instrument, account=account, timeInForce="Day")


def without_time(message):
    return {k: v for k, v in message.items() if k not in ("transactTime", "requestTimestamp")}


@pytest.fixture
def engine():
    with EngineProcess(instruments="1:1,2:5") as process:
        process.wait_ready()
        yield process


def logged_on(engine, session_id=1001, **kwargs):
    """A client of `engine` logged on as `session_id`, its logon frames already taken off `reports`."""
    s = OrderEntrySession(engine.client_channels(), engine.credentials[session_id], **kwargs)
    try:
        s.logon()
    except BaseException:
        s.close()
        raise
    del s.reports[:2]
    return s


@pytest.fixture
def session(engine):
    s = logged_on(engine)
    try:
        yield s
    finally:
        s.close()


def test_banner_names_the_channels_and_never_a_secret(engine):
    cfg = engine.config
    banner = engine.output
    assert (f"  order entry  {cfg.order_entry.channel}|rcv-wnd=16384|so-rcvbuf=4194304 stream "
            f"{cfg.order_entry.stream_id}\n") in banner
    assert f"{cfg.market_data.channel} stream {cfg.market_data.stream_id}" in banner
    assert "embedded (shared threading, yield idle, 4 MiB terms)" in banner and engine.embedded_dir in banner
    assert "1 (tick 1), 2 (tick 5)" in banner
    assert f"  sessions     4 from {engine.credentials_path}; ticks every 50 ms, 4096 KiB retransmission ring each" in banner
    assert "  executions   private publication per logged-on transport (at most 24; " in banner
    assert "  drop copy    off" in banner and "stream 1002" not in banner
    assert "; 1024 KiB terms: 3,072 KiB of driver memory per client)" in banner
    pools = re.search(r"\n  pools        ([\d,]+) MiB faulted in at start in \d+\.\d\d s: ([\d,]+) MiB for ([\d,]+) "
                      r"orders \(([\d,]+) bytes an order\) \+ ([\d,]+) MiB of account table; --max-orders ([\d,]+) "
                      r"would take ([\d,]+) MiB\n", banner)
    assert pools, banner
    orders = int(pools[3].replace(",", ""))
    assert orders == cfg.max_orders
    assert int(pools[4].replace(",", "")) == round(pool_bytes(orders) / orders)
    assert int(pools[6].replace(",", "")) == max(4 * orders, 1 << 20)
    for creds in engine.credentials.values():
        assert creds.secret.hex() not in banner


def test_new_order_gets_the_exact_execution_report_and_book_update(engine, session):
    before = time.time_ns()
    session.send(new_order(41, "Buy", 100, 10))
    reports, md = session.wait_reports(1, md=1)
    after = time.time_ns()
    assert len(reports) == 1
    ack = decode(reports[0])
    assert without_time(ack) == {"_name": "ExecutionReportNew", "_template_id": 60, "_schema_id": 1, "_version": 1,
                                 "seqNum": 1, "clOrdId": 41, "orderId": 1}
    assert before <= ack["transactTime"] <= after   # stamped by the transport at receive time
    assert [without_time(decode(m)) for m in md] == [{
        "_name": "BookUpdate", "_template_id": 20, "_schema_id": 1, "_version": 1, "seqNum": 1,
        "instrumentId": 1,
        "levels": [{"action": "New", "side": "Buy", "price": price(100), "quantity": 10, "orderCount": 1}]}]
    assert decode(md[0])["transactTime"] == ack["transactTime"]


def test_a_cross_between_two_sessions_shows_on_market_data(engine, session):
    seller = logged_on(engine, 1002)
    try:
        session.send(new_order(1, "Buy", 100, 10))
        session.wait_reports(1)
        seller.send(new_order(1, "Sell", 99, 4))
        seller.wait_reports(2, md=3)
        # The bid appears, trades 4 at the maker's price, shrinks to 6.
        md = [without_time(decode(m)) for m in seller.md]
        assert [(m["_name"], m["seqNum"]) for m in md] == [("BookUpdate", 1), ("Trade", 2), ("BookUpdate", 3)]
        assert md[0]["levels"] == [{"action": "New", "side": "Buy", "price": price(100), "quantity": 10,
                                    "orderCount": 1}]
        assert {k: md[1][k] for k in ("instrumentId", "tradeId", "price", "quantity", "aggressorSide")} == {
            "instrumentId": 1, "tradeId": 1, "price": price(100), "quantity": 4, "aggressorSide": "Sell"}
        assert md[2]["levels"] == [{"action": "Change", "side": "Buy", "price": price(100), "quantity": 6,
                                    "orderCount": 1}]
    finally:
        seller.close()


def test_malformed_frames_are_rejected_and_the_engine_keeps_serving(engine, session):
    garbage = [b"\x01\x02\x03", new_order(1, "Buy", 1, 1)[:20], bytes([0, 0, 99, 0, 1, 0, 1, 0]) + bytes(8)]
    for frame in garbage:
        session.send(frame)
    session.send(new_order(5, "Sell", 101, 3, instrument=2, account=2))   # off the 5-tick grid of instrument 2
    session.send(new_order(6, "Sell", 105, 3, instrument=2, account=2))
    reports = [without_time(decode(r)) for r in session.wait_reports(5)[0]]
    header = {"_schema_id": 1, "_version": 1}
    reject = {"_name": "MessageReject", "_template_id": 69, **header, "refClOrdId": 0}
    assert reports == [
        {**reject, "seqNum": 1, "refSeqNo": 1, "refTemplateId": 0, "refLength": 3, "reason": "MalformedFrame"},
        {**reject, "seqNum": 2, "refSeqNo": 2, "refTemplateId": 1, "refLength": 20, "reason": "MalformedFrame"},
        {**reject, "seqNum": 3, "refSeqNo": 3, "refTemplateId": 99, "refLength": 16, "reason": "UnknownTemplate"},
        {"_name": "ExecutionReportRejected", "_template_id": 64, **header, "seqNum": 4, "clOrdId": 5,
         "reason": "PriceOffTick"},
        {"_name": "ExecutionReportNew", "_template_id": 60, **header, "seqNum": 5, "clOrdId": 6, "orderId": 1}]


def test_burst_larger_than_the_publication_window_arrives_complete_and_in_order():
    # The client names a response channel with 64 KiB terms: the engine's private publication to it holds
    # 192 KiB and its flow-control window is 32 KiB, about 650 reports of 48 bytes; the burst is 3000
    # orders. The client only reads reports when its own order entry is back-pressured, so the engine
    # holds the reports its publication cannot take in the transport's buffer (1 MiB) until it reads.
    base = free_port_base(3)
    with EngineProcess("--order-entry-channel", f"aeron:udp?endpoint=127.0.0.1:{base}|term-length=65536",
                       port_base=base) as engine:
        engine.wait_ready()
        session = OrderEntrySession(engine.client_channels(), engine.credentials[1001], market_data=False,
                                    response_params={"term-length": 65536})
        try:
            session.logon()
            count = 3000
            for i in range(count):   # non-crossing: sells at 1000-1006, buys at 500-506
                session.send(new_order(i + 1, "Buy" if i % 2 else "Sell", (500 if i % 2 else 1000) + i % 7, 1))
            reports = [decode(r) for r in session.wait_reports(count + 2)[0][2:]]
            assert len(reports) == count
            assert [r["seqNum"] for r in reports] == list(range(1, count + 1))
            assert [r["clOrdId"] for r in reports] == list(range(1, count + 1))
            assert {r["_name"] for r in reports} == {"ExecutionReportNew"}
        finally:
            session.close()
        assert engine.terminate() == 0
    stopped = [line for line in engine.lines if line.startswith("lob engine stopped")]
    messages_in = count + 2
    assert stopped and f"in {messages_in} " in stopped[0] and f"out exec {count + 2} " in stopped[0]
    back_pressure = int(re.search(r"back-pressure exec (\d+)", stopped[0]).group(1))
    assert back_pressure > 0   # reports waited for the subscriber instead of being dropped
    assert "slow consumers disconnected 0 " in stopped[0]


def test_sigterm_leaves_no_process_and_no_driver_directory(engine, session):
    session.send(new_order(1, "Buy", 100, 1))
    session.wait_reports(1)
    assert os.path.isdir(engine.embedded_dir)
    assert engine.terminate(signal.SIGTERM) == 0
    assert engine.process.poll() == 0
    assert not os.path.exists(engine.embedded_dir)
    assert any(line.startswith("lob engine stopped: in 3 ") for line in engine.lines)   # logon and the order


def test_sigint_is_a_clean_shutdown_too(engine):
    assert engine.terminate(signal.SIGINT) == 0
    assert not os.path.exists(engine.embedded_dir)


def test_attached_engine_leaves_the_drivers_directory(tmp_path):
    with MediaDriver() as driver:
        with EngineProcess(attach_dir=driver.dir) as engine:
            engine.wait_ready()
            assert f"attached to {driver.dir}" in engine.output
            session = logged_on(engine, driver_dir=driver.dir)
            try:
                session.send(new_order(9, "Sell", 50, 2))
                assert decode(session.wait_reports(1)[0][0])["_name"] == "ExecutionReportNew"
            finally:
                session.close()
            assert engine.terminate() == 0
        assert os.path.isdir(driver.dir)


def run_engine_command(*args):
    return subprocess.run([sys.executable, "-m", "lob.cli", "engine", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=WAIT)


def test_lob_engine_needs_credentials_and_says_so(tmp_path):
    result = run_engine_command("--port-base", str(free_port_base(3)))
    assert result.returncode == 2
    assert result.stderr.startswith("lob engine: --credentials FILE is required: the trading sessions")
    result = run_engine_command("--credentials", str(tmp_path / "missing.txt"))
    assert (result.returncode, result.stderr) == (2, f"lob engine: credentials file {tmp_path / 'missing.txt'} "
                                                     f"does not exist\n")
    bad = tmp_path / "bad.txt"
    secret = "ab" * 16
    bad.write_text(f"1001 ACME {secret}\n1002 BETA {secret} rate=x\n")
    result = run_engine_command("--credentials", str(bad))
    assert (result.returncode, result.stderr) == (2, f"lob engine: {bad}:2: rate and burst must be whole numbers\n")
    assert secret not in result.stdout + result.stderr


def test_metrics_endpoint_and_status_line():
    (port,) = free_udp_ports(1)   # a port free for UDP is very likely free for TCP too
    with EngineProcess("--metrics-port", str(port)) as engine:
        engine.wait_ready()
        session = logged_on(engine)
        try:
            session.send(new_order(1, "Buy", 100, 5))
            session.send(new_order(2, "Sell", 100, 5))
            session.send(new_order(3, "Sell", 0, 5))
            session.send(b"\xff")
            session.send(encode("EngineTick", reserved=0))
            session.wait_reports(6)
            intruder = OrderEntrySession(engine.client_channels(), engine.credentials[1001], market_data=False)
            try:
                intruder.wait_connected()
                intruder.negotiate()    # session 1001 is bound to the first client: a claim rejected
                intruder.send(new_order(9, "Buy", 100, 5))   # unauthenticated
                intruder.wait_reports(2)
                assert [decode(r)["reason"] for r in intruder.reports] == ["SessionInUse", "NotEstablished"]
            finally:
                intruder.close()
        finally:
            session.close()

        def scrape():
            return urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()

        assert wait_until(lambda: 'lob_messages_in_total{type="NewOrderSingle"} 4.0' in scrape(), WAIT, 0.05)
        text = scrape()
        for line in ('lob_messages_in_total{type="other"} 1.0', 'lob_messages_in_total{type="Negotiate"} 2.0',
                     'lob_messages_in_total{type="EngineTick"} 1.0', 'lob_trades_total 1.0',
                     'lob_rejects_total{reason="MalformedFrame"} 1.0', 'lob_rejects_total{reason="InvalidPrice"} 1.0',
                     'lob_rejects_total{reason="SessionInUse"} 1.0',
                     'lob_messages_out_total{type="ExecutionReportNew"} 2.0',
                     'lob_messages_out_total{type="ExecutionReportTrade"} 2.0',
                     'lob_messages_out_total{type="EstablishmentAck"} 1.0',
                     'lob_session_claims_rejected_total 1.0', 'lob_unauthenticated_messages_total 1.0',
                     'lob_throttled_total 0.0', 'lob_forged_engine_records_total 1.0',
                     'lob_engine_records_total{kind="start"} 1.0',
                     'lob_private_publications_total{event="opened"} 2.0',
                     'lob_messages_out_total{type="NegotiationReject"} 1.0',
                     'lob_rejects_total{reason="NotEstablished"} 1.0', 'lob_sessions_established 1.0',
                     'lob_published_total{stream="execution"} 10.0', 'lob_published_total{stream="drop_copy"} 0.0',
                     'lob_service_time_seconds_count 8.0', 'lob_back_pressure_events_total{stream="execution"} 0.0'):
            assert line in text, line
        assert re.search(r"lob_engine_records_total\{kind=\"tick\"\} [1-9]", text)
        assert wait_until(lambda: any(line.startswith("in 9 ") for line in engine.lines), WAIT, 0.05)
        line = next(line for line in engine.lines if line.startswith("in 9 "))
        assert " | sessions 1 established, 1 claims rejected, 1 unauthenticated, 0 throttled | " in line
        assert line.endswith(" | forged 1"), line
        assert engine.terminate() == 0


def test_in_process_service_serves_and_cleans_up():
    import io
    import threading

    from lob.config import EngineConfig
    from lob.service import EngineService

    cfg = EngineConfig(instruments={3: 1}, status_interval=0).with_ports(free_port_base(3))
    creds = for_tests([7])
    out = io.StringIO()
    stop = threading.Event()
    service = EngineService(cfg, out=out, sessions=creds)
    try:
        service.start()
        server = threading.Thread(target=lambda: setattr(service, "exit_code", service.serve(stop)))
        server.start()
        session = OrderEntrySession(cfg.client_channels(), creds[0])
        try:
            session.logon()
            session.send(new_order(1, "Buy", 10, 1, instrument=3))
            assert decode(session.wait_reports(3)[0][2])["_name"] == "ExecutionReportNew"
        finally:
            session.close()
        stop.set()
        server.join(WAIT)
        assert not server.is_alive() and service.exit_code == 0
    finally:
        service.close()
    assert not os.path.exists(service.driver.dir)
    assert "lob engine ready" in out.getvalue() and "lob engine stopped: in 3 " in out.getvalue()
