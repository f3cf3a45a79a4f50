"""Replay determinism, journaled processing, and recovery: snapshot + journal tail, torn tails, corruption."""
import io
import os
import struct

import pytest
from journal_helpers import INSTRUMENTS, SESSIONS, TEST_CREDENTIALS, book_state, inbound, new_engine, traffic, write_journal

from lob.journal import JournalCorruptError, JournalError, JournalWriter, list_segments, read_journal
from lob.recovery import recover
from lob.replay import process_journaled, replay_journal, replay_journal_bytes
from lob.snapshot import write_snapshot

SEGMENT = 1 << 20
COUNT = 16_000    # about 1.3 MB of journal: two segments of 1 MiB
RECORDS = COUNT + 2 * len(SESSIONS)   # the traffic logs its sessions on first


@pytest.fixture(scope="module")
def stream():
    return traffic(COUNT, seed=1)


@pytest.fixture(scope="module")
def reference(stream):
    """What an engine that never stopped answers to the whole stream."""
    engine = new_engine()
    return engine.process(inbound(stream)), engine.take_market_data(), book_state(engine)


@pytest.fixture
def journal(tmp_path, stream):
    directory = tmp_path / "journal"
    assert write_journal(directory, stream, segment_size=SEGMENT) == RECORDS
    return str(directory)


def record_offsets(path):
    """Offsets of the records of one segment file."""
    data = open(path, "rb").read()
    offsets, offset = [], 64
    while offset + 32 <= len(data):
        length = struct.unpack_from("<I", data, offset)[0]
        if length == 0:
            break
        offsets.append(offset)
        offset += (32 + length + 7) & ~7
    return offsets


def engine_after(stream, count):
    engine = new_engine()
    engine.process(inbound(stream[:count]))
    engine.take_market_data()
    return engine


def test_the_journal_holds_the_stream(journal, stream):
    assert len(list_segments(journal)) == 2
    assert [(s, t, f) for _, t, s, f in read_journal(journal)] == [(s, t, f) for s, t, f in stream]
    assert [r[0] for r in read_journal(journal)] == list(range(1, RECORDS + 1))


def test_replaying_a_journal_twice_gives_identical_output_equal_to_engine_process(journal, reference):
    expected_exec, _, expected_state = reference
    outputs, progress = [], []
    for _ in range(2):
        engine, out = new_engine(), io.BytesIO()
        assert replay_journal(engine, journal, out=out, progress=progress.append) == (RECORDS, RECORDS)
        outputs.append(out.getvalue())
        assert book_state(engine) == expected_state
    assert outputs[0] == outputs[1] == expected_exec
    first_segment = len(record_offsets(list_segments(journal)[0]))
    assert progress == [first_segment, RECORDS] * 2

    engine = new_engine()
    assert replay_journal_bytes(engine, journal) == (RECORDS, RECORDS, expected_exec)
    assert book_state(engine) == expected_state


def test_replay_from_a_sequence(journal, stream):
    start = 7_001
    engine = engine_after(stream, start - 1)
    expected = engine.process(inbound(stream[start - 1:]))
    replayed = engine_after(stream, start - 1)
    out = io.BytesIO()
    assert replay_journal(replayed, journal, from_seq=start, out=out) == (RECORDS - start + 1, RECORDS)
    assert out.getvalue() == expected
    assert book_state(replayed) == book_state(engine)
    replayed = engine_after(stream, start - 1)
    assert replay_journal_bytes(replayed, journal, from_seq=start) == (RECORDS - start + 1, RECORDS, expected)


@pytest.mark.parametrize("policy", ["none", "batch", "every"])
def test_process_journaled_answers_like_engine_process_and_journals_everything(tmp_path, stream, reference, policy):
    expected_exec, expected_md, expected_state = reference
    messages = stream[:3000] if policy == "every" else stream
    if policy == "every":
        reference_engine = new_engine()
        expected_exec = reference_engine.process(inbound(messages))
        expected_md, expected_state = reference_engine.take_market_data(), book_state(reference_engine)
    engine = new_engine()
    writer = JournalWriter(tmp_path, segment_size=SEGMENT, policy=policy, batch_records=100, batch_us=10 ** 9)
    try:
        assert process_journaled(engine, writer, inbound(messages), batch=7) == expected_exec
        assert writer.next_seq == len(messages) + 1
        commits = -(-len(messages) // 7)
        # batch: a group commit once 100 records are pending, i.e. at every 15th commit of 7; a segment
        # rollover syncs the finished segment on the spot and starts the count of pending records afresh
        rollovers = len(list_segments(tmp_path)) - 1
        if policy == "batch":
            assert commits // 15 - rollovers <= writer.syncs <= commits // 15
        else:
            assert writer.syncs == {"none": 0, "every": commits}[policy]
    finally:
        writer.close()
    assert engine.take_market_data() == expected_md
    assert book_state(engine) == expected_state
    assert [(s, t, f) for _, t, s, f in read_journal(tmp_path)] == [(s, t, f) for s, t, f in messages]


@pytest.mark.parametrize("covered", [0, 4_321, RECORDS])
def test_snapshot_plus_journal_tail_equals_full_replay(tmp_path, journal, stream, covered):
    snapshots = tmp_path / "snapshots"
    snapshot_path = write_snapshot(engine_after(stream, covered), snapshots, covered)
    recovered = recover(journal, snapshots, instruments=INSTRUMENTS, max_orders=4096, sessions=TEST_CREDENTIALS)
    assert (recovered.snapshot_path, recovered.snapshot_seq, recovered.replayed, recovered.last_seq) == (
        snapshot_path, covered, RECORDS - covered, RECORDS)
    assert recovered.describe() == (f"recovered from snapshot {snapshot_path} (seq {covered}) + {RECORDS - covered} "
                                    f"journal records, at journal seq {RECORDS}")
    full = new_engine()
    replay_journal(full, journal)
    assert book_state(recovered.engine) == book_state(full)

    more = inbound(traffic(2_000, seed=77, first_cl_ord_id=50_000, start_ns=stream[-1][1] + 1))
    full.take_market_data()
    assert recovered.engine.process(more) == full.process(more)
    assert recovered.engine.take_market_data() == full.take_market_data()
    assert book_state(recovered.engine) == book_state(full)


def test_recovery_without_a_snapshot_replays_everything(journal, reference):
    recovered = recover(journal, None, instruments=INSTRUMENTS, max_orders=4096, sessions=TEST_CREDENTIALS)
    assert (recovered.snapshot_path, recovered.snapshot_seq, recovered.replayed, recovered.last_seq) == (
        None, 0, RECORDS, RECORDS)
    assert recovered.describe() == f"recovered from no snapshot + {RECORDS} journal records, at journal seq {RECORDS}"
    assert book_state(recovered.engine) == reference[2]


def test_recovery_of_nothing(tmp_path):
    recovered = recover(tmp_path / "journal", tmp_path / "snapshots", instruments={4: 1}, sessions=TEST_CREDENTIALS)
    assert (recovered.snapshot_seq, recovered.replayed, recovered.last_seq) == (0, 0, 0)
    assert recovered.engine.instruments == {4: 1} and recovered.engine.live_orders == 0


def test_recovery_from_a_snapshot_alone(tmp_path, stream):
    engine = engine_after(stream, 900)
    write_snapshot(engine, tmp_path / "snapshots", 900)
    recovered = recover(tmp_path / "journal", tmp_path / "snapshots", instruments=INSTRUMENTS, max_orders=4096, sessions=TEST_CREDENTIALS)
    assert (recovered.snapshot_seq, recovered.replayed, recovered.last_seq) == (900, 0, 900)
    assert book_state(recovered.engine) == book_state(engine)


def test_a_damaged_snapshot_falls_back_to_an_older_one_and_a_longer_tail(tmp_path, journal, stream, reference):
    snapshots = tmp_path / "snapshots"
    older = write_snapshot(engine_after(stream, 3_000), snapshots, 3_000)
    newer = write_snapshot(engine_after(stream, 9_000), snapshots, 9_000)
    with open(newer, "r+b") as f:
        f.truncate(os.path.getsize(newer) - 1)
    log = []
    recovered = recover(journal, snapshots, instruments=INSTRUMENTS, max_orders=4096, log=log.append, sessions=TEST_CREDENTIALS)
    assert log == [f"skipping {newer}: truncated (no trailer)"]
    assert (recovered.snapshot_path, recovered.snapshot_seq, recovered.replayed, recovered.last_seq) == (
        older, 3_000, RECORDS - 3_000, RECORDS)
    assert book_state(recovered.engine) == reference[2]


@pytest.mark.parametrize("landed", [0, 24, 36])
def test_a_torn_last_record_is_dropped_and_the_journal_continues(tmp_path, journal, stream, landed):
    """Of the last record's checked bytes (seq onwards) only the first `landed` reached the disk."""
    last_segment = list_segments(journal)[-1]
    torn = record_offsets(last_segment)[-1]
    data = open(last_segment, "rb").read()
    end = torn + 32 + struct.unpack_from("<I", data, torn)[0]
    assert data[torn + 8 + landed:end].strip(b"\0")
    with open(last_segment, "r+b") as f:
        f.seek(torn + 8 + landed)
        f.write(bytes(end - torn - 8 - landed))

    recovered = recover(journal, None, instruments=INSTRUMENTS, max_orders=4096, sessions=TEST_CREDENTIALS)
    assert (recovered.replayed, recovered.last_seq) == (RECORDS - 1, RECORDS - 1)
    assert book_state(recovered.engine) == book_state(engine_after(stream, RECORDS - 1))

    writer = JournalWriter(journal, segment_size=SEGMENT, first_seq=recovered.last_seq + 1)
    assert (writer.torn_offset, writer.next_seq) == (torn, RECORDS)
    session, timestamp, frame = stream[-1]
    assert writer.append(session, timestamp, frame) == RECORDS
    writer.close()
    assert [r[0] for r in read_journal(journal)] == list(range(1, RECORDS + 1))
    again = recover(journal, None, instruments=INSTRUMENTS, max_orders=4096, sessions=TEST_CREDENTIALS)
    assert book_state(again.engine) == book_state(engine_after(stream, RECORDS))


def test_a_journal_cut_inside_its_last_record(tmp_path, journal, stream):
    last_segment = list_segments(journal)[-1]
    torn = record_offsets(last_segment)[-1]
    os.truncate(last_segment, torn + 20)
    recovered = recover(journal, None, instruments=INSTRUMENTS, max_orders=4096, sessions=TEST_CREDENTIALS)
    assert (recovered.replayed, recovered.last_seq) == (RECORDS - 1, RECORDS - 1)
    writer = JournalWriter(journal, segment_size=SEGMENT, first_seq=RECORDS)
    assert writer.next_seq == RECORDS
    writer.close()
    assert os.path.getsize(last_segment) == torn   # cut at its last valid record, continued in a new segment
    assert os.path.basename(list_segments(journal)[-1]) == f"journal-{RECORDS:020d}.seg"


@pytest.mark.parametrize("where", ["first segment", "last segment"])
def test_a_corrupt_record_in_the_middle_is_an_error_naming_file_and_offset(journal, where):
    path = list_segments(journal)[0 if where == "first segment" else -1]
    offsets = record_offsets(path)
    bad = offsets[len(offsets) // 2]
    with open(path, "r+b") as f:
        f.seek(bad + 40)
        byte = f.read(1)
        f.seek(bad + 40)
        f.write(bytes([byte[0] ^ 1]))
    with pytest.raises(JournalCorruptError) as err:
        recover(journal, None, instruments=INSTRUMENTS, max_orders=4096, sessions=TEST_CREDENTIALS)
    assert (err.value.path, err.value.offset) == (path, bad)
    assert str(err.value) == f"{path}: corrupt journal record at offset {bad}: checksum mismatch"
    with pytest.raises(JournalCorruptError):
        JournalWriter(journal, segment_size=SEGMENT)


def test_a_journal_that_starts_after_the_state_is_an_error(tmp_path, stream):
    directory = tmp_path / "journal"
    writer = JournalWriter(directory, segment_size=SEGMENT, first_seq=501)
    writer.append(*stream[0])
    writer.close()
    with pytest.raises(JournalError) as err:
        recover(directory, tmp_path / "snapshots", instruments=INSTRUMENTS, sessions=TEST_CREDENTIALS)
    assert str(err.value) == (f"{list_segments(directory)[0]}: the journal starts at seq 501 but the state covers "
                              f"only up to seq 0: records are missing")


def test_replay_of_frames_larger_than_its_staging_buffer(tmp_path, stream):
    big = bytes([1, 0, 99, 0, 1, 0, 0, 0]) + bytes(300_000)   # an unknown template, 300 kB long
    messages = stream[:50] + [(12, stream[49][1] + 1, big)] + stream[50:100] + [(13, stream[99][1] + 1, big)]
    write_journal(tmp_path, messages)
    expected = new_engine().process(inbound(messages))
    out = io.BytesIO()
    assert replay_journal(new_engine(), tmp_path, out=out) == (102, 102)
    assert out.getvalue() == expected


def test_a_segment_left_half_made_by_a_crash_is_ignored(tmp_path, journal, stream):
    # A crash while a new segment was being set up leaves it under its temporary name, without a header.
    stale = os.path.join(journal, f"journal-{RECORDS + 1:020d}.seg.tmp")
    open(stale, "wb").write(bytes(SEGMENT))
    recovered = recover(journal, None, instruments=INSTRUMENTS, max_orders=4096, sessions=TEST_CREDENTIALS)
    assert (recovered.replayed, recovered.last_seq) == (RECORDS, RECORDS)
    writer = JournalWriter(journal, segment_size=SEGMENT, first_seq=RECORDS + 1)
    assert writer.append(*stream[0]) == RECORDS + 1
    writer.close()
    assert [r[0] for r in read_journal(journal)][-2:] == [RECORDS, RECORDS + 1]
