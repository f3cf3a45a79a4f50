"""`lob engine` end to end: a subprocess with its own embedded driver, fed over UDP on 127.0.0.1 by
pyaeron publications (each its own Aeron session), answering on the execution and market-data streams."""
import os
import re
import signal
import time
import urllib.request

import pytest
from aeron_helpers import WAIT, EngineProcess, OrderEntrySession, free_port_base, wait_until

from lob.sbe.messages import decode, encode
from lob.transport.driver import MediaDriver, free_udp_ports

PRICE_EXPONENT = -4


def price(mantissa):
    return {"mantissa": mantissa, "exponent": PRICE_EXPONENT}


def new_order(cl_ord_id, side, px, qty, instrument=1, account=7):
    return encode("NewOrderSingle", clOrdId=cl_ord_id, account=account, instrumentId=instrument, side=side,
                  ordType="Limit", timeInForce="Day", flags=set(), selfTradePrevention="None",
                  price={"mantissa": px}, quantity=qty, stopPrice={"mantissa": None}, displayQty=None)


def report(seq, session, cl_ord_id, order_id, side, px, qty, *, exec_type="New", status="New", liquidity="None",
           last_px=None, last_qty=0, leaves=None, cum=0, trade_id=0, account=7, instrument=1):
    """The ExecutionReport the venue owes for a Day limit order, without transactTime."""
    return {"_name": "ExecutionReport", "_template_id": 10, "_schema_id": 1, "_version": 0, "seqNum": seq,
            "sessionId": session, "account": account, "clOrdId": cl_ord_id, "origClOrdId": 0, "orderId": order_id,
            "instrumentId": instrument, "side": side, "ordType": "Limit", "timeInForce": "Day",
            "execType": exec_type, "ordStatus": status, "reason": "None", "liquidity": liquidity,
            "price": price(px), "orderQty": qty, "lastPx": None if last_px is None else price(last_px),
            "lastQty": last_qty, "leavesQty": qty - cum if leaves is None else leaves, "cumQty": cum,
            "tradeId": trade_id}


def without_time(message):
    return {k: v for k, v in message.items() if k != "transactTime"}


def mine(reports, session):
    return [r for r in reports if r.get("sessionId") == session]


@pytest.fixture
def engine():
    with EngineProcess(instruments="1:1,2:5") as process:
        process.wait_ready()
        yield process


@pytest.fixture
def session(engine):
    s = OrderEntrySession(engine.client_channels())
    try:
        s.wait_connected()
        yield s
    finally:
        s.close()


def test_banner_names_the_channels(engine):
    cfg = engine.config
    banner = engine.output
    for channel in (cfg.order_entry, cfg.execution, cfg.market_data):
        assert f"{channel.channel} stream {channel.stream_id}" in banner
    assert "embedded (shared threading, yield idle, 4 MiB terms)" in banner and engine.embedded_dir in banner
    assert "1 (tick 1), 2 (tick 5)" in banner
    assert re.search(r"; pools faulted in: \d+ MiB in \d+\.\d\d s\n", banner)


def test_new_order_gets_the_exact_execution_report_and_book_update(engine, session):
    before = time.time_ns()
    session.send(new_order(41, "Buy", 100, 10))
    reports, md = session.wait_reports(1, md=1)
    after = time.time_ns()
    assert len(reports) == 1
    ack = decode(reports[0])
    assert without_time(ack) == report(1, session.session_id, 41, 1, "Buy", 100, 10)
    assert before <= ack["transactTime"] <= after   # stamped by the transport at receive time
    assert [without_time(decode(m)) for m in md] == [{
        "_name": "BookUpdate", "_template_id": 20, "_schema_id": 1, "_version": 0, "seqNum": 1,
        "instrumentId": 1,
        "levels": [{"action": "New", "side": "Buy", "price": price(100), "quantity": 10, "orderCount": 1}]}]
    assert decode(md[0])["transactTime"] == ack["transactTime"]


def test_two_sessions_cross_and_both_get_their_reports(engine, session):
    seller = OrderEntrySession(engine.client_channels())
    try:
        seller.wait_connected()
        buyer = session
        assert buyer.session_id != seller.session_id
        buyer.send(new_order(1, "Buy", 100, 10))
        buyer.wait_reports(1)
        seller.send(new_order(1, "Sell", 99, 4))
        # Every subscriber sees the whole execution stream; each client keeps its own session's reports.
        for client in (buyer, seller):
            client.wait_reports(4, md=3)
        assert buyer.reports == seller.reports
        reports = [decode(r) for r in buyer.reports]
        assert [without_time(r) for r in mine(reports, buyer.session_id)] == [
            report(1, buyer.session_id, 1, 1, "Buy", 100, 10),
            report(3, buyer.session_id, 1, 1, "Buy", 100, 10, exec_type="Trade", status="PartiallyFilled",
                   liquidity="Added", last_px=100, last_qty=4, cum=4, trade_id=1)]
        assert [without_time(r) for r in mine(reports, seller.session_id)] == [
            report(2, seller.session_id, 1, 2, "Sell", 99, 4),
            report(4, seller.session_id, 1, 2, "Sell", 99, 4, exec_type="Trade", status="Filled",
                   liquidity="Removed", last_px=100, last_qty=4, cum=4, trade_id=1)]
        # Market data reflects the book: the bid appears, trades 4 at the maker's price, shrinks to 6.
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
    garbage = [b"\x01\x02\x03", encode("NewOrderSingle", clOrdId=1, account=1, instrumentId=1, side="Buy",
                                       ordType="Limit", timeInForce="Day", flags=set(),
                                       selfTradePrevention="None", price={"mantissa": 1}, quantity=1,
                                       stopPrice={"mantissa": None}, displayQty=None)[:20],
               bytes([0, 0, 99, 0, 1, 0, 0, 0]) + bytes(8)]
    for frame in garbage:
        session.send(frame)
    session.send(new_order(5, "Sell", 101, 3, instrument=2, account=2))   # off the 5-tick grid of instrument 2
    session.send(new_order(6, "Sell", 105, 3, instrument=2, account=2))
    reports = [decode(r) for r in session.wait_reports(5)[0]]
    assert [r["_name"] for r in reports] == ["MessageReject"] * 3 + ["ExecutionReport"] * 2
    assert [r["seqNum"] for r in reports] == [1, 2, 3, 4, 5]
    assert all(r["sessionId"] == session.session_id and r["reason"] != "None" for r in reports[:4])
    assert [(r["refTemplateId"], r["refLength"], r["reason"]) for r in reports[:3]] == [
        (0, 3, "MalformedFrame"), (1, 20, "MalformedFrame"), (99, 16, "UnknownTemplate")]
    assert (reports[3]["execType"], reports[3]["ordStatus"], reports[3]["reason"]) == (
        "Rejected", "Rejected", "PriceOffTick")
    assert without_time(reports[4]) == report(5, session.session_id, 6, 1, "Sell", 105, 3, account=2,
                                              instrument=2)


def test_burst_larger_than_the_publication_window_arrives_complete_and_in_order():
    # 64 KiB terms: the execution log holds 192 KiB and its flow-control window is 32 KiB, about 260
    # reports of 123 bytes; the burst is 3000 orders. The client only reads reports when its own order
    # entry is back-pressured, so the engine must wait on the execution stream.
    base = free_port_base(3)
    term = "|term-length=65536"
    with EngineProcess("--order-entry-channel", f"aeron:udp?endpoint=127.0.0.1:{base}{term}",
                       "--exec-channel", f"aeron:udp?control=127.0.0.1:{base + 1}|control-mode=dynamic|fc=min{term}",
                       port_base=base) as engine:
        engine.wait_ready()
        session = OrderEntrySession(engine.client_channels())
        try:
            session.wait_connected()
            count = 3000
            for i in range(count):   # non-crossing: sells at 1000-1006, buys at 500-506
                session.send(new_order(i + 1, "Buy" if i % 2 else "Sell", (500 if i % 2 else 1000) + i % 7, 1))
            reports = [decode(r) for r in session.wait_reports(count)[0]]
            assert len(reports) == count
            assert [r["seqNum"] for r in reports] == list(range(1, count + 1))
            assert [r["clOrdId"] for r in reports] == list(range(1, count + 1))
            assert {(r["execType"], r["ordStatus"]) for r in reports} == {("New", "New")}
        finally:
            session.close()
        assert engine.terminate() == 0
    stopped = [line for line in engine.lines if line.startswith("lob engine stopped")]
    assert stopped and f"in {count} " in stopped[0] and f"out exec {count} " in stopped[0]
    back_pressure = int(re.search(r"back-pressure exec (\d+)", stopped[0]).group(1))
    assert back_pressure > 0   # the engine waited for the subscriber instead of dropping reports


def test_sigterm_leaves_no_process_and_no_driver_directory(engine, session):
    session.send(new_order(1, "Buy", 100, 1))
    session.wait_reports(1)
    assert os.path.isdir(engine.embedded_dir)
    assert engine.terminate(signal.SIGTERM) == 0
    assert engine.process.poll() == 0
    assert not os.path.exists(engine.embedded_dir)
    assert any(line.startswith("lob engine stopped: in 1 ") for line in engine.lines)


def test_sigint_is_a_clean_shutdown_too(engine):
    assert engine.terminate(signal.SIGINT) == 0
    assert not os.path.exists(engine.embedded_dir)


def test_attached_engine_leaves_the_drivers_directory(tmp_path):
    with MediaDriver() as driver:
        with EngineProcess(attach_dir=driver.dir) as engine:
            engine.wait_ready()
            assert f"attached to {driver.dir}" in engine.output
            session = OrderEntrySession(engine.client_channels(), driver_dir=driver.dir)
            try:
                session.wait_connected()
                session.send(new_order(9, "Sell", 50, 2))
                assert decode(session.wait_reports(1)[0][0])["execType"] == "New"
            finally:
                session.close()
            assert engine.terminate() == 0
        assert os.path.isdir(driver.dir)


def test_metrics_endpoint_and_status_line():
    (port,) = free_udp_ports(1)   # a port free for UDP is very likely free for TCP too
    with EngineProcess("--metrics-port", str(port)) as engine:
        engine.wait_ready()
        session = OrderEntrySession(engine.client_channels())
        try:
            session.wait_connected()
            session.send(new_order(1, "Buy", 100, 5))
            session.send(new_order(2, "Sell", 100, 5))
            session.send(new_order(3, "Sell", 0, 5))
            session.send(b"\xff")
            session.wait_reports(6)
        finally:
            session.close()

        def scrape():
            return urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()

        assert wait_until(lambda: 'lob_messages_in_total{type="NewOrderSingle"} 3.0' in scrape(), WAIT, 0.05)
        text = scrape()
        for line in ('lob_messages_in_total{type="other"} 1.0', 'lob_trades_total 1.0',
                     'lob_rejects_total{reason="MalformedFrame"} 1.0', 'lob_rejects_total{reason="InvalidPrice"} 1.0',
                     'lob_messages_out_total{type="ExecutionReport"} 5.0', 'lob_published_total{stream="execution"} 6.0',
                     'lob_service_time_seconds_count 4.0', 'lob_back_pressure_events_total{stream="execution"} 0.0'):
            assert line in text, line
        assert wait_until(lambda: any(line.startswith("in 4 ") for line in engine.lines), WAIT, 0.05)
        assert engine.terminate() == 0


def test_in_process_service_serves_and_cleans_up():
    import io
    import threading

    from lob.config import EngineConfig
    from lob.service import EngineService

    cfg = EngineConfig(instruments={3: 1}, status_interval=0).with_ports(free_port_base(3))
    out = io.StringIO()
    stop = threading.Event()
    service = EngineService(cfg, out=out)
    try:
        service.start()
        server = threading.Thread(target=lambda: setattr(service, "exit_code", service.serve(stop)))
        server.start()
        session = OrderEntrySession(cfg.client_channels())
        try:
            session.wait_connected()
            session.send(new_order(1, "Buy", 10, 1, instrument=3))
            assert decode(session.wait_reports(1)[0][0])["instrumentId"] == 3
        finally:
            session.close()
        stop.set()
        server.join(WAIT)
        assert not server.is_alive() and service.exit_code == 0
    finally:
        service.close()
    assert not os.path.exists(service.driver.dir)
    assert "lob engine ready" in out.getvalue() and "lob engine stopped: in 1 " in out.getvalue()
