"""The load generator's choice of sessions: the sample credentials file and --session-ids."""
import pytest

from lob.tools import examples
from lob.tools.loadgen import load_credentials, select_sessions


def test_the_sample_credentials_serve_the_benchmarks():
    sessions = load_credentials()
    assert load_credentials(examples.credentials_path()) == sessions
    ids = [c.session_id for c in sessions]
    assert ids[:8] == list(range(1001, 1009)) and len(set(ids)) == len(ids)
    # bench_e2e's closed loop runs at a few hundred thousand messages a second: no throttling there.
    assert all(c.rate >= 1_000_000 and c.burst >= 100_000 for c in sessions)
    assert [c.session_id for c in sessions if not c.cancel_on_disconnect] == [1101]


def test_session_ids_pick_sessions_in_the_order_given():
    sessions = load_credentials()
    assert select_sessions(sessions, None) == sessions
    assert [c.session_id for c in select_sessions(sessions, "1101, 1002")] == [1101, 1002]
    with pytest.raises(ValueError, match="5, 6 not in the credentials file"):
        select_sessions(sessions, "1001,5,6")
    with pytest.raises(ValueError, match="comma-separated numbers"):
        select_sessions(sessions, "1001,x")
