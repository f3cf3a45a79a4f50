"""Crash recovery end to end: `lob engine --journal` fed over Aeron UDP, killed with SIGKILL, restarted.

The journal is the truth of what a crashed engine accepted: an offline Engine fed exactly the journal's
records is the uncrashed reference. After every restart the engine must say it recovered all of them,
publish for each later record exactly the reference's execution reports (byte for byte, sequence
numbers and timestamps included), and end with the reference's books. One client session (a fixed
Aeron session id, so its orders stay its own across restarts) sends a seeded workload; after a kill it
resends from the first message the journal does not hold.
"""
import random
import re
import signal
import time

import pyaeron
import pytest
from aeron_helpers import WAIT, EngineProcess, free_port_base, wait_until
from journal_helpers import book_state, traffic

from lob.engine import Engine
from lob.framing import pack_inbound, split_outbound
from lob.journal import read_journal
from lob.snapshot import load_snapshot
from lob.transport.driver import MediaDriver

INSTRUMENTS = {1: 1, 7: 5}
SESSION = 0x2468ACE
RECOVERED = re.compile(r"recovered from (?:no snapshot|snapshot (\S+) \(seq (\d+)\)) \+ (\d+) journal records, "
                       r"at journal seq (\d+) in \d+\.\d+ s")


class Client:
    """A market maker with a fixed session id: one embedded driver for the whole test and, per engine
    process, an order-entry publication and an execution-report subscription."""

    def __init__(self):
        self.driver = MediaDriver()
        self.aeron = pyaeron.Aeron(dir=self.driver.dir)
        self.publication = self.subscription = None
        self.reports = []

    def connect(self, engine):
        channels = engine.client_channels()
        self.reports = []
        self.publication = self.aeron.add_exclusive_publication(
            f"{channels['order_entry'].channel}|session-id={SESSION}", channels["order_entry"].stream_id)
        self.subscription = self.aeron.add_subscription(channels["execution"].channel,
                                                        channels["execution"].stream_id)
        assert wait_until(lambda: self.publication.is_connected and self.subscription.is_connected), "not connected"

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


def reference_reports(records):
    """Per journal sequence, the execution reports an engine that never crashed publishes for it."""
    engine = session_engine(INSTRUMENTS)
    reports = {}
    for seq, timestamp, session, frame in records:
        reports[seq] = split_outbound(engine.process(pack_inbound(frame, session, timestamp)))
    engine.take_market_data()
    return engine, reports


class Run:
    """Engine processes one after another on one journal, and the client feeding them `messages`."""

    def __init__(self, tmp_path, messages):
        self.journal = str(tmp_path / "journal")
        self.messages = messages
        self.client = Client()
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
        [line] = [line for line in self.engine.lines if line.startswith("recovered from ")]
        match = RECOVERED.fullmatch(line)
        assert match, line
        path, covered, replayed, last = match.groups()
        assert (path, int(covered or 0), int(replayed), int(last)) == (
            snapshot and snapshot[0], snapshot[1] if snapshot else 0, len(before) - (snapshot[1] if snapshot else 0),
            len(before)), line
        self.client.connect(self.engine)
        self.incarnations.append((len(before) + 1, self.client.reports))
        return len(before)

    def send(self, first, count):
        for session, timestamp, frame in self.messages[first:first + count]:
            self.client.send(frame)

    def crash(self):
        self.engine.process.send_signal(signal.SIGKILL)
        assert self.engine.process.wait(WAIT) == -signal.SIGKILL
        self.client.disconnect()
        self.engine.close()
        self.engine = None
        records = journal_records(self.journal)
        # What the engine accepted is a prefix of what was sent, all from the one session.
        assert [(r[2], r[3]) for r in records] == [(SESSION, frame) for _, _, frame in self.messages[:len(records)]]
        return len(records)

    def wait_journaled(self, count):
        assert wait_until(lambda: len(journal_records(self.journal)) >= count, interval=0.005)

    def finish(self):
        """Wait for every report, stop the engine cleanly; check reports and books against the reference."""
        self.wait_journaled(len(self.messages))
        records = journal_records(self.journal)
        assert [(r[2], r[3]) for r in records] == [(SESSION, frame) for _, _, frame in self.messages]
        reference, reports = reference_reports(records)
        first, received = self.incarnations[-1]
        expected = [frame for seq in range(first, len(records) + 1) for frame in reports[seq]]
        self.client.wait_reports(len(expected))
        self.client.disconnect()
        assert self.engine.terminate(signal.SIGTERM) == 0, self.engine.output
        # Every process published a prefix of the reference's reports for the records it processed; the
        # last one published all of them.
        for index, (start, published) in enumerate(self.incarnations):
            end = self.incarnations[index + 1][0] if index + 1 < len(self.incarnations) else len(records) + 1
            owed = [frame for seq in range(start, end) for frame in reports[seq]]
            assert published == owed[:len(published)], f"engine process {index + 1}"
        assert received == expected
        [line] = [line for line in self.engine.lines if line.startswith("snapshot ")]
        final, covered = load_snapshot(line.split()[1].rstrip(":"))
        assert covered == len(records)
        assert book_state(final) == book_state(reference)
        return reference, expected

    def close(self):
        if self.engine is not None:
            self.engine.close()
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
    messages = traffic(1_600, seed=4, sessions=(SESSION,))
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
    messages = traffic(900, seed=8, sessions=(SESSION,))
    run = run_factory(messages)
    run.start("batch")
    run.send(0, 400)
    run.wait_journaled(400)
    _, reports = reference_reports(journal_records(run.journal))
    run.client.wait_reports(sum(len(r) for r in reports.values()))
    run.engine.process.send_signal(signal.SIGUSR1)
    assert wait_until(lambda: any(line.startswith("snapshot ") for line in run.engine.lines))
    [line] = [line for line in run.engine.lines if line.startswith("snapshot ")]
    path = line.split()[1].rstrip(":")
    snapshot, covered = load_snapshot(path)
    assert covered == 400
    assert line.startswith(f"snapshot {path}: {snapshot.live_orders} orders in ")
    run.send(400, 250)
    accepted = run.crash()
    assert accepted >= 400
    run.start("none", snapshot=(path, 400))
    run.send(accepted, len(messages) - accepted)
    run.finish()
