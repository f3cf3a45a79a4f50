"""`lob replay` (offline and --publish), `lob record` and `lob decode` on journals and snapshots, as commands."""
import glob
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading

import pytest
from aeron_helpers import ROOT, WAIT, free_port_base
from engine_helpers import decode_stream
from journal_helpers import INSTRUMENTS as INSTRUMENTS_DICT
from journal_helpers import TEST_CREDENTIALS, book_state, inbound, new_engine, traffic, write_journal

from lob import credentials
from lob.engine import Engine

from lob.journal import list_segments, read_journal
from lob.sbe import messages
from lob.snapshot import read_frames, write_snapshot
from lob.transport.driver import DEFAULT_ROOT

INSTRUMENTS = "1:1,7:5"


def lob(*args, timeout=WAIT):
    return subprocess.run([sys.executable, "-m", "lob.cli", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def stream():
    return traffic(5_000, seed=3)


@pytest.fixture
def creds(tmp_path):
    path = tmp_path / "credentials.txt"
    path.write_text(credentials.dumps(TEST_CREDENTIALS))
    return path


@pytest.fixture
def journal(tmp_path, stream):
    directory = tmp_path / "journal"
    write_journal(directory, stream)
    return directory


def test_offline_replay_writes_what_engine_process_writes(tmp_path, journal, stream, creds):
    engine = new_engine()
    expected = engine.process(inbound(stream))
    digest = hashlib.sha256(expected).hexdigest()
    for name in ("a", "b"):
        result = lob("replay", journal, "--out", tmp_path / name, "--instruments", INSTRUMENTS, "--quiet",
                     "--credentials", creds)
        assert result.returncode == 0, result.stderr
        assert (tmp_path / name).read_bytes() == expected
        lines = result.stdout.splitlines()
        assert len(lines) == 3
        assert re.fullmatch(r"replayed 5,006 records \(journal seq 1\.\.5006\) in \d+\.\d{3} s: [\d,]+ msg/s", lines[0])
        assert lines[1] == f"execution stream: {len(expected):,} bytes -> {tmp_path / name}, sha256 {digest}"
        assert lines[2] == (f"engine: {engine.live_orders:,} resting orders, next order id {engine.next_order_id}, "
                            f"next trade id {engine.next_trade_id}")


def test_offline_replay_without_out_still_prints_the_digest(journal, stream, creds):
    result = lob("replay", journal, "--instruments", INSTRUMENTS, "--quiet", "--credentials", creds)
    assert result.returncode == 0, result.stderr
    expected = new_engine().process(inbound(stream))
    assert result.stdout.splitlines()[1] == (f"execution stream: {len(expected):,} bytes, "
                                             f"sha256 {hashlib.sha256(expected).hexdigest()}")


def test_offline_replay_without_credentials_logs_nobody_on(journal, stream):
    result = lob("replay", journal, "--instruments", INSTRUMENTS, "--quiet")
    assert result.returncode == 0, result.stderr
    expected = Engine(INSTRUMENTS_DICT).process(inbound(stream))
    assert result.stdout.splitlines()[1] == (f"execution stream: {len(expected):,} bytes, "
                                             f"sha256 {hashlib.sha256(expected).hexdigest()}")
    assert "NegotiationReject" in {m["_name"] for m in decode_stream(expected)}


def test_offline_replay_from_a_snapshot(tmp_path, journal, stream, creds):
    engine = new_engine()
    engine.process(inbound(stream[:3_210]))
    snapshot = write_snapshot(engine, tmp_path / "snapshots", 3_210)
    expected = engine.process(inbound(stream[3_210:]))
    result = lob("replay", journal, "--snapshot", snapshot, "--out", tmp_path / "tail", "--quiet", "--credentials", creds)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "tail").read_bytes() == expected
    assert result.stdout.startswith("replayed 1,796 records (journal seq 3211..5006) in ")


def test_offline_replay_shows_a_progress_bar(journal):
    result = lob("replay", journal, "--instruments", INSTRUMENTS)
    assert result.returncode == 0
    assert "replay: 100%" in result.stderr


def test_replay_of_a_corrupt_journal_names_file_and_offset(tmp_path, journal):
    [path] = list_segments(journal)
    data = bytearray(open(path, "rb").read())
    offset = 64
    for _ in range(2_500):   # the 2,501st record
        offset += (32 + int.from_bytes(data[offset:offset + 4], "little") + 7) & ~7
    data[offset + 33] ^= 0x40
    open(path, "wb").write(bytes(data))
    result = lob("replay", journal, "--out", tmp_path / "out", "--instruments", INSTRUMENTS, "--quiet")
    assert result.returncode == 1
    assert result.stderr == f"lob replay: {path}: corrupt journal record at offset {offset}: checksum mismatch\n"


def test_replay_of_no_journal(tmp_path):
    result = lob("replay", tmp_path, "--quiet")
    assert result.returncode == 2
    assert result.stderr == f"lob replay: no journal segments in {tmp_path}\n"


def test_republish_without_a_subscriber_gives_up(tmp_path, journal):
    port = free_port_base(1)
    result = lob("replay", journal, "--publish", "--channel", f"aeron:udp?endpoint=127.0.0.1:{port}",
                 "--connect-timeout", "0.5", "--quiet")
    assert result.returncode == 1
    assert result.stderr == f"lob replay: no subscriber on aeron:udp?endpoint=127.0.0.1:{port} stream 1001\n"


class Recorder:
    """`lob record` in a subprocess; stopped (and its driver directory removed) however the test ends."""

    def __init__(self, directory, channel, stream, count):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "lob.cli", "record", str(directory), "--channel", channel, "--stream", str(stream),
             "--count", str(count), "--quiet"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.stdout, self.stderr = [], []
        self.started = threading.Event()
        self.readers = [threading.Thread(target=self._read, args=(pipe, lines), daemon=True)
                        for pipe, lines in ((self.process.stdout, self.stdout), (self.process.stderr, self.stderr))]
        for reader in self.readers:
            reader.start()

    def _read(self, pipe, lines):
        for line in pipe:
            lines.append(line)
            if line.startswith("recording "):
                self.started.set()
        self.started.set()

    def wait_recording(self):
        assert self.started.wait(WAIT) and self.stderr, "lob record did not start"
        return self.stderr[0]

    def wait(self):
        code = self.process.wait(WAIT)
        for reader in self.readers:
            reader.join(WAIT)
        return code

    def driver_dirs(self):
        return glob.glob(os.path.join(DEFAULT_ROOT, f"lob-aeron-*-{self.process.pid}-*"))

    def close(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(WAIT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for directory in self.driver_dirs():
            shutil.rmtree(directory, ignore_errors=True)


@pytest.mark.parametrize("speed", ["0", "1"])
def test_record_what_replay_republishes_over_udp(tmp_path, stream, speed):
    messages_ = stream[:400]
    source = tmp_path / "source"
    write_journal(source, messages_)
    channel, stream_id = f"aeron:udp?endpoint=127.0.0.1:{free_port_base(1)}", 3001
    recording = tmp_path / "recording"
    recorder = Recorder(recording, channel, stream_id, len(messages_))
    try:
        assert recorder.wait_recording() == f"recording {channel} stream {stream_id} into {recording} from seq 1\n"
        result = lob("replay", source, "--publish", "--channel", channel, "--stream", stream_id, "--speed", speed,
                     "--quiet")
        assert result.returncode == 0, result.stderr
        assert re.fullmatch(r"republished 400 frames in \d+\.\d{3} s \([\d,]+/s\)\n", result.stdout)
        assert recorder.wait() == 0, "".join(recorder.stderr)
        assert recorder.stdout == ["recorded 400 messages; journal continues at seq 401\n"]
    finally:
        recorder.close()
    recorded = list(read_journal(recording))
    assert [r[0] for r in recorded] == list(range(1, 401))
    assert [r[3] for r in recorded] == [frame for _, _, frame in messages_]
    assert len({r[2] for r in recorded}) == 1                       # one publication: one Aeron session
    assert [r[1] for r in recorded] == sorted(r[1] for r in recorded)  # receive times
    assert recorder.driver_dirs() == []


def json_ready(message):
    """A decoded message as `lob decode` prints it: bytes (var data) as hex."""
    return {k: v.hex() if isinstance(v, bytes) else v for k, v in message.items()}


def decoded(frame):
    """What `lob decode` shows for a frame: the decoded message, or why it cannot be decoded."""
    try:
        return messages.decode(frame)
    except ValueError as exc:
        return {"_error": str(exc), "_length": len(frame), "_hex": frame.hex()}


def test_decode_a_journal_and_one_of_its_segments(tmp_path, stream):
    directory = tmp_path / "journal"
    write_journal(directory, stream[:40])
    expected = [{"_seq": i + 1, "_timestamp_ns": t, "_transport": s, **json_ready(decoded(f))}
                for i, (s, t, f) in enumerate(stream[:40])]
    for path in (directory, list_segments(directory)[0]):
        result = lob("decode", path)
        assert result.returncode == 0, result.stderr
        assert [json.loads(line) for line in result.stdout.splitlines()] == expected
    result = lob("decode", directory, "--from-seq", "38")
    assert [json.loads(line) for line in result.stdout.splitlines()] == expected[37:]
    assert [e["_name"] for e in expected[:6]] == ["Negotiate", "Establish"] * 3
    assert {e.get("_name") for e in expected} == {"Negotiate", "Establish", "NewOrderSingle", "OrderCancelRequest",
                                                   "OrderCancelReplaceRequest", None}
    assert [e for e in expected if "_error" in e] == [{
        "_seq": 26, "_timestamp_ns": stream[25][1], "_transport": stream[25][0], "_length": 3, "_hex": "010203",
        "_error": "buffer too short: the message header needs 8 bytes at offset 0, 3 left"}]


def test_decode_a_snapshot(tmp_path, stream):
    engine = new_engine()
    engine.process(inbound(stream[:300]))
    path = write_snapshot(engine, tmp_path, 300)
    result = lob("decode", path)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert lines == [json_ready(messages.decode(bytes(f))) for f in read_frames(open(path, "rb").read())]
    assert [line["_name"] for line in lines[:3]] == ["SnapshotHeader", "SnapshotInstrument", "SnapshotInstrument"]
    assert [line["_name"] for line in lines[3:19]] == ["SnapshotSession"] * 16
    accounts = sum(line["_name"] == "SnapshotAccount" for line in lines)
    assert accounts == len(engine.accounts())
    assert lines[0]["journalSeq"] == 300 and lines[0]["orderCount"] == engine.live_orders == len(lines) - 19 - accounts
    assert book_state(engine)["live_orders"] == sum(line["_name"] == "SnapshotOrder" for line in lines)


def test_decode_refuses_damaged_journals_and_snapshots(tmp_path, stream):
    directory = tmp_path / "journal"
    write_journal(directory, stream[:10])
    [segment] = list_segments(directory)
    with open(segment, "r+b") as f:
        f.seek(64 + 40)
        f.write(b"\xee")
    result = lob("decode", directory)
    assert result.returncode == 1
    assert result.stderr == f"lob decode: {segment}: corrupt journal record at offset 64: checksum mismatch\n"

    engine = new_engine()
    engine.process(inbound(stream[:50]))
    snapshot = write_snapshot(engine, tmp_path, 50)
    os.truncate(snapshot, os.path.getsize(snapshot) - 3)
    result = lob("decode", snapshot)
    assert result.returncode == 1
    assert result.stderr == f"lob decode: {snapshot}: truncated (no trailer)\n"

    bogus = tmp_path / "bogus.snap"
    bogus.write_bytes(b"\x00" * 64)
    result = lob("decode", bogus)
    assert result.returncode == 1
    assert result.stderr == (f"lob decode: {bogus}: named like a journal segment or snapshot but does not start "
                             f"with its magic\n")

    empty = tmp_path / "empty"
    empty.mkdir()
    result = lob("decode", empty)
    assert result.returncode == 1
    assert result.stderr == f"lob decode: {empty}: no journal segments (journal-<seq>.seg) in this directory\n"
