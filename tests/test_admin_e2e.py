"""`lob admin` against `lob engine` over real Aeron UDP on 127.0.0.1: an admin session halts an instrument,
then a client's order in it is rejected InstrumentHalted; a session without admin=yes is refused."""
import json
import os
import subprocess
import sys

from lob import credentials
from lob.client import Client

from aeron_helpers import ROOT, EngineProcess

WAIT = 30.0
TRADER, ADMIN = 301, 399


def lob_admin(driver_dir, port_base, credentials_path, session, *action):
    command = [sys.executable, "-m", "lob.cli", "admin", "--aeron-dir", driver_dir, "--port-base", str(port_base),
               "--credentials", credentials_path, "--session", str(session), *action]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=WAIT * 2)


def test_lob_admin_halts_an_instrument_and_orders_are_then_rejected(tmp_path):
    from lob.transport.driver import MediaDriver

    sessions = credentials.for_tests([TRADER]) + credentials.for_tests([ADMIN], admin=True)
    path = str(tmp_path / "credentials.txt")
    with open(path, "w") as f:
        f.write(credentials.dumps(sessions))
    driver = MediaDriver()
    engine = client = None
    try:
        engine = EngineProcess("--credentials", path, "--max-orders", "1024", "--no-prefault", instruments="1:1,2:1",
                               attach_dir=driver.dir)
        engine.wait_ready()
        result = lob_admin(driver.dir, engine.port_base, path, ADMIN, "state", "1", "halted")
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout.strip().splitlines()[-1])
        assert {k: report[k] for k in ("_name", "refTemplateId", "instrumentId", "count", "reason")} == {
            "_name": "AdminReport", "refTemplateId": 80, "instrumentId": 1, "count": 0, "reason": "None"}

        refused = lob_admin(driver.dir, engine.port_base, path, TRADER, "end-of-day")
        assert refused.returncode == 1 and json.loads(refused.stdout)["reason"] == "NotAuthorized"

        client = Client(sessions[0], aeron_dir=driver.dir, config=engine.config, connect_timeout=WAIT, record=True)
        halted = client.place(1, "Buy", 10, price=100)
        trading = client.place(2, "Buy", 10, price=100)
        client.wait_for(lambda: halted.status != "PendingNew" and trading.status != "PendingNew", WAIT)
        assert [(m["_name"], m["clOrdId"], m.get("reason")) for m in client.reports] == [
            ("ExecutionReportRejected", halted.cl_ord_id, "InstrumentHalted"),
            ("ExecutionReportNew", trading.cl_ord_id, None)]
    finally:
        if client is not None:
            client.close()
        if engine is not None:
            engine.terminate()
            engine.close()
        driver.close()
