"""Many sessions at once against `lob engine` over real Aeron UDP on 127.0.0.1: each logs on with its own
order-entry publication and its own private execution stream (with the venue's term length), and every
message of every session is answered exactly once. Counts only, never times."""
import secrets

import pytest

from lob.client import connection
from lob.tools import loadgen
from aeron_helpers import running_stack
from lob.tools.workload import WorkloadSpec, generate

SESSIONS = 8


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    path = tmp_path_factory.mktemp("creds") / "credentials.txt"
    path.write_text("".join(f"{2001 + k} LOADGEN {secrets.token_hex(32)} rate=1000000 burst=200000\n"
                            for k in range(SESSIONS)))
    yield from running_stack(instruments={1: 1}, credentials=str(path), engine_args=["--private-term-kb", "64"])


def test_eight_sessions_every_message_answered_once(stack):
    assert any("64 KiB terms: 192 KiB of driver memory per client" in line for line in stack.lines)
    spec = WorkloadSpec(orders=4_000, seed=5, sessions=SESSIONS)
    encoded = generate(spec).encode()
    with connection.connect(stack.config) as conn:
        generator = loadgen.LoadGenerator(conn.aeron, stack.config, encoded, stack.sessions())
        try:
            assert len({s.transport for s in generator.sessions}) == SESSIONS
            report, _ = generator.run(rate=20_000, drain_timeout=30.0)
        finally:
            generator.close()
    assert (report.sessions, generator.logged_off) == (SESSIONS, SESSIONS)
    assert (report.sent, report.lost, report.duplicated, report.exec_seq_gaps) == (4_000, 0, 0, 0)
    assert report.acked + report.rejected == 4_000
    assert (report.unknown_reports, report.terminations) == (0, 0)
    recv, session_of = generator.last_loop.recv_ns, encoded.workload.session
    answered = [0] * SESSIONS
    for i in range(len(encoded)):
        assert recv[i] > 0, f"message {i} of session {session_of[i]} unanswered"
        answered[session_of[i]] += 1
    assert answered == [sum(1 for k in session_of if k == s) for s in range(SESSIONS)] and min(answered) > 0
