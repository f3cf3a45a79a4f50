"""Accounts bound to sessions: the credentials option `accounts=` names the accounts a session's orders may
name; another account is rejected AccountNotPermitted and changes nothing; without the option any account."""
import pytest

from engine_helpers import decode_stream, er, logon_records, nos
from lob import credentials
from lob.credentials import CredentialsError
from lob.engine import Engine
from lob.framing import pack_inbound

SECRET = "6f1c0e9d4b2a8c7e5f3d1b9a7c5e3f1d"


def test_the_option_is_parsed_sorted_and_written_back():
    sessions = credentials.parse(f"1001 ACME {SECRET} accounts=7,2,7\n1002 BETA {SECRET}\n")
    assert [s.accounts for s in sessions] == [(2, 7), ()]
    assert credentials.parse(credentials.dumps(sessions)) == sessions
    assert "accounts=2,7" in credentials.dumps(sessions)


@pytest.mark.parametrize("value", ["x", "1,,2", "-1", "4294967296", ""])
def test_bad_account_lists_name_the_line(value):
    with pytest.raises(CredentialsError, match="credentials:2: .*accounts"):
        credentials.parse(f"1001 ACME {SECRET}\n1002 BETA {SECRET} accounts={value}\n")


def engine():
    sessions = credentials.for_tests([1], accounts=(1, 2)) + credentials.for_tests([2])
    e = Engine({1: 1}, sessions=sessions)
    e.process(logon_records(1) + logon_records(2))
    return e


def send(e, frame, session, timestamp=2_000):
    return decode_stream(e.process(pack_inbound(frame, session, timestamp)), sequences=False)


def test_an_order_for_an_account_the_session_may_not_trade_is_rejected():
    e = engine()
    assert send(e, nos(1, account=3), 1) == [
        er("Rejected", "Rejected", clOrdId=1, reason="AccountNotPermitted")]
    assert send(e, nos(2, account=0), 1)[0]["reason"] == "AccountNotPermitted"
    assert e.live_orders == 0 and e.orders(1) == []
    assert send(e, nos(3, account=2), 1) == [er("New", "New", clOrdId=3, orderId=1)]
    assert send(e, nos(4, account=1, instrumentId=99), 1)[0]["reason"] == "UnknownInstrument"


def test_a_session_without_the_option_trades_any_account():
    e = engine()
    assert [m["_name"] for a in (0, 3, 2 ** 32 - 1) for m in send(e, nos(a + 10, account=a), 2)] == [
        "ExecutionReportNew"] * 3
