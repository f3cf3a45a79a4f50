"""Crash recovery end to end: `lob engine --journal` fed over Aeron UDP, killed with SIGKILL, restarted.

The journal is the truth of what a crashed engine accepted: an offline Engine fed exactly the journal's
records (the client's frames and the engine's own EngineStart / EngineTick / TransportLost records) is
the uncrashed reference. After every restart the engine must say it recovered all of them, publish on
the client's private stream for each later record exactly the reference's frames (byte for byte,
sequence numbers and timestamps included), and end with the reference's books. One client (a fixed
Aeron session id, logged on as trading session 1001 again after every restart, continuing its
sequence) sends a seeded workload; after a kill it resends from the first message the journal does not
hold.
"""
import random
import re
import signal
import time

import pyaeron
import pytest
from aeron_helpers import WAIT, EngineProcess, free_port_base, wait_until
from journal_helpers import book_state, traffic

from lob import logon
from lob.engine import Engine
from lob.framing import iter_execution, pack_inbound
from lob.journal import read_journal
from lob.snapshot import load_snapshot
from lob.transport.driver import MediaDriver, free_udp_ports

INSTRUMENTS = {1: 1, 7: 5}
SESSION_ID = 1001
TRANSPORT = 0x2468ACE
RESPONSE_STREAM = 2001
LOGON_TEMPLATES = (40, 41)
RECOVERED = re.compile(r"recovered from (?:no snapshot|snapshot (\S+) \(seq (\d+)\)) \+ (\d+) journal records, "
                       r"at journal seq (\d+) in \d+\.\d+ s")


def template_of(frame):
    return int.from_bytes(frame[2:4], "little") if len(frame) >= 8 else None


class Client:
    """A market maker with a fixed transport: one embedded driver for the whole test and, per engine
    process, an order-entry publication and a subscription on its response channel; it logs on with
    Establish(nextSeqNo 0), continuing its sequence."""

    def __init__(self, creds):
        self.creds = creds
        self.driver = MediaDriver()
        self.aeron = pyaeron.Aeron(dir=self.driver.dir)
        self.publication = self.subscription = None
        self.reports = []

    def connect(self, engine):
        channels = engine.client_channels()
        self.reports = []
        response = f"aeron:udp?endpoint=127.0.0.1:{free_udp_ports(1)[0]}"
        self.subscription = self.aeron.add_subscription(response, RESPONSE_STREAM)
        self.publication = self.aeron.add_exclusive_publication(
            f"{channels['order_entry'].channel}|session-id={TRANSPORT}", channels["order_entry"].stream_id)
        assert wait_until(lambda: self.publication.is_connected), "not connected"
        self.send(logon.negotiate(self.creds, time.time_ns(), random.getrandbits(63), response, RESPONSE_STREAM))
        self.send(logon.establish(self.creds, time.time_ns(), 30_000, 0))
        self.wait_reports(2)
        assert [template_of(r) for r in self.reports[:2]] == [50, 52], self.reports

    def _on_report(self, buffer, header):
        self.reports.append(bytes(buffer))

    def poll(self):
        return self.subscription.poll(self._on_report, 256)

    def send(self, frame):
        deadline = time.monotonic() + WAIT
        while not self.publication.offer(frame):
            assert time.monotonic() < deadline, "order entry stayed back-pressured"
            if not self.poll():
                time.sleep(0)

    def wait_reports(self, count):
        assert wait_until(lambda: self.poll() >= 0 and len(self.reports) >= count, interval=0.0005), (
            f"{len(self.reports)} of {count} execution reports arrived")

    def disconnect(self):
        self.poll()
        for resource in (self.publication, self.subscription):
            if resource is not None:
                resource.close()
        self.publication = self.subscription = None

    def close(self):
        try:
            self.aeron.close()
        finally:
            self.driver.close()


def journal_records(directory):
    return list(read_journal(directory))


def client_frames(records):
    """The workload frames the journal holds (the client's, without its logons)."""
    return [r[3] for r in records if r[2] == TRANSPORT and template_of(r[3]) not in LOGON_TEMPLATES]


def reference_reports(records, creds):
    """Per journal sequence, the frames an engine that never crashed routes to the client's transport."""
    engine = Engine(INSTRUMENTS, sessions=creds)
    reports = {}
    for seq, timestamp, transport, frame in records:
        routed = engine.process(pack_inbound(frame, transport, timestamp))
        reports[seq] = [f for _, t, f in iter_execution(routed) if t == TRANSPORT]
    engine.take_market_data()
    return engine, reports


class Run:
    """Engine processes one after another on one journal, and the client feeding them `messages`."""

    def __init__(self, tmp_path, messages):
        self.journal = str(tmp_path / "journal")
        self.messages = messages
        self.creds = None
        self.client = None
        self.engine = self.port_base = None
        self.incarnations = []   # (first journal seq it processed, reports it published)

    def start(self, policy, snapshot=None):
        """Start an engine on the journal; check what it says it recovered; connect the client."""
        before = journal_records(self.journal)
        port_base = free_port_base(3)
        while port_base == self.port_base:  # the client's publication keeps its session id: a new channel
            port_base = free_port_base(3)
        self.port_base = port_base
        self.engine = EngineProcess("--journal", self.journal, "--journal-policy", policy,
                                    instruments="1:1,7:5", port_base=port_base)
        self.engine.wait_ready()
        if self.client is None:
            self.creds = list(self.engine.credentials.values())   # the same for every process
            self.client = Client(self.engine.credentials[SESSION_ID])
        [line] = [line for line in self.engine.lines if line.startswith("recovered from ")]
        match = RECOVERED.fullmatch(line)
        assert match, line
        path, covered, replayed, last = match.groups()
        assert (path, int(covered or 0), int(replayed), int(last)) == (
            snapshot and snapshot[0], snapshot[1] if snapshot else 0, len(before) - (snapshot[1] if snapshot else 0),
            len(before)), line
        self.client.connect(self.engine)
        self.incarnations.append((len(before) + 1, self.client.reports))
        return len(client_frames(before))

    def send(self, first, count):
        for session, timestamp, frame in self.messages[first:first + count]:
            self.client.send(frame)

    def crash(self):
        self.engine.process.send_signal(signal.SIGKILL)
        assert self.engine.process.wait(WAIT) == -signal.SIGKILL
        self.client.disconnect()
        self.engine.close()
        self.engine = None
        # What the engine accepted is a prefix of what was sent.
        accepted = client_frames(journal_records(self.journal))
        assert accepted == [frame for _, _, frame in self.messages[:len(accepted)]]
        return len(accepted)

    def wait_journaled(self, count):
        assert wait_until(lambda: len(client_frames(journal_records(self.journal))) >= count, interval=0.005)

    def finish(self):
        """Wait for every report, stop the engine cleanly; check reports and books against the reference."""
        self.wait_journaled(len(self.messages))
        records = journal_records(self.journal)
        assert client_frames(records) == [frame for _, _, frame in self.messages]
        _, reports = reference_reports(records, self.creds)
        first, received = self.incarnations[-1]
        expected = [frame for seq in range(first, len(records) + 1) for frame in reports[seq]]
        self.client.wait_reports(len(expected))
        self.client.disconnect()
        assert self.engine.terminate(signal.SIGTERM) == 0, self.engine.output
        # The engine kept journaling (ticks, the client's TransportLost) until it stopped.
        records = journal_records(self.journal)
        reference, reports = reference_reports(records, self.creds)
        # Every process published a prefix of the reference's reports for the records it processed; the
        # last one published all of them.
        for index, (start, published) in enumerate(self.incarnations):
            end = self.incarnations[index + 1][0] if index + 1 < len(self.incarnations) else len(records) + 1
            owed = [frame for seq in range(start, end) for frame in reports[seq]]
            assert published == owed[:len(published)], f"engine process {index + 1}"
        assert received[:len(expected)] == expected
        [line] = [line for line in self.engine.lines if line.startswith("snapshot ")]
        final, covered = load_snapshot(line.split()[1].rstrip(":"), sessions=self.creds)
        assert covered == len(records)
        assert book_state(final) == book_state(reference)
        return reference, expected

    def close(self):
        if self.engine is not None:
            self.engine.close()
        if self.client is not None:
            self.client.close()


@pytest.fixture
def run_factory(tmp_path):
    runs = []

    def make(messages):
        runs.append(Run(tmp_path, messages))
        return runs[-1]

    yield make
    for run in runs:
        run.close()


def test_sigkill_at_random_points_then_restart_matches_an_uncrashed_engine(run_factory):
    rng = random.Random(20240611)
    messages = traffic(1_600, seed=4, sessions=(TRANSPORT,), logon=False)
    run = run_factory(messages)
    accepted = 0
    for policy in ("none", "batch", "every", "batch"):
        assert run.start(policy) == accepted
        burst = rng.randrange(100, 400)
        run.send(accepted, burst)
        time.sleep(rng.choice([0, 0, 0.002, 0.02]))  # mostly while the burst is still arriving
        accepted = run.crash()
        assert accepted <= len(messages)
    assert 0 < accepted < len(messages)
    run.start("batch")
    run.send(accepted, len(messages) - accepted)
    run.finish()


def test_sigusr1_snapshot_then_sigkill_restarts_from_the_snapshot(run_factory):
    messages = traffic(900, seed=8, sessions=(TRANSPORT,), logon=False)
    run = run_factory(messages)
    run.start("batch")
    run.send(0, 400)
    run.wait_journaled(400)
    _, reports = reference_reports(journal_records(run.journal), run.creds)
    run.client.wait_reports(sum(len(r) for r in reports.values()))
    run.engine.process.send_signal(signal.SIGUSR1)
    assert wait_until(lambda: any(line.startswith("snapshot ") for line in run.engine.lines))
    [line] = [line for line in run.engine.lines if line.startswith("snapshot ")]
    path = line.split()[1].rstrip(":")
    snapshot, covered = load_snapshot(path, sessions=run.creds)
    records = journal_records(run.journal)
    assert len(client_frames(records[:covered])) == 400
    assert line.startswith(f"snapshot {path}: {snapshot.live_orders} orders in ")
    run.send(400, 250)
    accepted = run.crash()
    assert accepted >= 400
    run.start("none", snapshot=(path, covered))
    run.send(accepted, len(messages) - accepted)
    run.finish()
