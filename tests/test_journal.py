"""The journal: record format, segment roll, reopen, torn-tail truncation, corruption detection."""
import os
import struct

import pytest

from lob.journal import (
    JournalCorruptError,
    JournalWriter,
    crc32c_of,
    list_segments,
    read_journal,
)

SEGMENT = 1 << 20
FILE_HEADER = 64
RECORD_HEADER = 32


def frame(i):
    return bytes([i % 251]) * (1 + i % 40)


def record_length(frame_length):
    return (RECORD_HEADER + frame_length + 7) & ~7


def write(directory, count, first=0, **kwargs):
    writer = JournalWriter(directory, segment_size=SEGMENT, **kwargs)
    seqs = [writer.append(100 + i % 3, 1_000 + i, frame(i)) for i in range(first, first + count)]
    writer.commit()
    writer.close()
    return seqs


def record_offset(index):
    """Offset of the index-th record of the first segment."""
    return FILE_HEADER + sum(record_length(len(frame(i))) for i in range(index))


def records_in_first_segment():
    fits, used = 0, FILE_HEADER
    while used + record_length(len(frame(fits))) <= SEGMENT:
        used += record_length(len(frame(fits)))
        fits += 1
    return fits


def test_crc32c_known_vectors():
    assert crc32c_of(b"123456789") == 0xE3069283
    assert crc32c_of(b"") == 0
    assert crc32c_of(bytes(32)) == 0x8A9136AA


def test_record_bytes_on_disk(tmp_path):
    write(tmp_path, 1)
    [path] = list_segments(tmp_path)
    data = open(path, "rb").read()
    assert len(data) == SEGMENT
    assert data[:8] == b"LOBJRNL\x00"
    assert struct.unpack_from("<IIQQ", data, 8) == (1, FILE_HEADER, 1, SEGMENT)
    body = struct.pack("<QQII", 1, 1_000, 100, 0) + frame(0)
    expected = struct.pack("<II", len(frame(0)), crc32c_of(body)) + body
    assert data[FILE_HEADER:FILE_HEADER + len(expected)] == expected
    assert data[FILE_HEADER + len(expected):] == bytes(SEGMENT - FILE_HEADER - len(expected))


def test_round_trip_across_segments_and_reopen(tmp_path):
    assert write(tmp_path, 30_000) == list(range(1, 30_001))
    assert len(list_segments(tmp_path)) == 2
    assert write(tmp_path, 5, first=30_000) == list(range(30_001, 30_006))
    records = list(read_journal(tmp_path))
    assert [r[0] for r in records] == list(range(1, 30_006))
    for seq, timestamp, session, data in (records[0], records[17_000], records[-1]):
        i = seq - 1
        assert (timestamp, session, data) == (1_000 + i, 100 + i % 3, frame(i))
    assert [r[0] for r in read_journal(tmp_path, from_seq=29_999)] == list(range(29_999, 30_006))


def test_finished_segments_are_shrunk(tmp_path):
    write(tmp_path, 30_000)
    first, last = list_segments(tmp_path)
    fits = records_in_first_segment()
    used = record_offset(fits)
    assert os.path.basename(first) == "journal-%020d.seg" % 1
    assert os.path.basename(last) == "journal-%020d.seg" % (fits + 1)
    assert os.path.getsize(first) == used
    assert os.path.getsize(last) == SEGMENT


@pytest.mark.parametrize("cut", [1, 8, 20])
def test_torn_tail_is_truncated_on_reopen(tmp_path, cut):
    write(tmp_path, 10)
    [path] = list_segments(tmp_path)
    torn = record_offset(9)
    with open(path, "r+b") as f:  # a write cut short: the last `cut` bytes of record 10 never landed
        end = torn + RECORD_HEADER + len(frame(9))
        f.seek(end - cut)
        f.write(bytes(cut))
    assert [r[0] for r in read_journal(tmp_path)] == list(range(1, 10))
    writer = JournalWriter(tmp_path, segment_size=SEGMENT)
    assert writer.torn_offset == torn
    assert writer.next_seq == 10
    assert writer.append(5, 5, b"replacement") == 10
    writer.close()
    assert list(read_journal(tmp_path))[-1] == (10, 5, 5, b"replacement")


def test_torn_tail_of_a_cut_file(tmp_path):
    write(tmp_path, 10)
    [path] = list_segments(tmp_path)
    os.truncate(path, record_offset(9) + 12)  # the file ends inside record 10's header
    assert [r[0] for r in read_journal(tmp_path)] == list(range(1, 10))
    assert write(tmp_path, 2, first=9) == [10, 11]
    assert [r[0] for r in read_journal(tmp_path)] == list(range(1, 12))
    assert os.path.getsize(list_segments(tmp_path)[0]) == record_offset(9)


def test_corrupt_record_in_the_middle_is_an_error(tmp_path):
    write(tmp_path, 10)
    [path] = list_segments(tmp_path)
    bad = record_offset(4)
    with open(path, "r+b") as f:
        f.seek(bad + RECORD_HEADER)
        f.write(b"\xff")
    with pytest.raises(JournalCorruptError) as err:
        list(read_journal(tmp_path))
    assert err.value.path == path
    assert err.value.offset == bad
    assert f"offset {bad}" in str(err.value) and "checksum" in str(err.value)
    with pytest.raises(JournalCorruptError):
        JournalWriter(tmp_path, segment_size=SEGMENT)


def test_corrupt_record_in_an_older_segment_is_an_error_even_at_its_end(tmp_path):
    write(tmp_path, 30_000)
    first = list_segments(tmp_path)[0]
    last_record = record_offset(records_in_first_segment() - 1)
    with open(first, "r+b") as f:
        f.seek(last_record + 16)  # its timestamp
        f.write(b"\x01\x02\x03")
    with pytest.raises(JournalCorruptError) as err:
        list(read_journal(tmp_path))
    assert (err.value.path, err.value.offset) == (first, last_record)


def test_not_a_journal(tmp_path):
    (tmp_path / "journal-00000000000000000001.seg").write_bytes(b"hello" * 100)
    with pytest.raises(JournalCorruptError, match="bad magic"):
        list(read_journal(tmp_path))


@pytest.mark.parametrize("policy,commits,expected_syncs", [
    ("none", 5, 0),
    ("every", 5, 5),
    ("batch", 5, 2),  # batch_records=8 with 4 records per commit: every second commit syncs
])
def test_durability_policies_sync_when_promised(tmp_path, policy, commits, expected_syncs):
    writer = JournalWriter(tmp_path, segment_size=SEGMENT, policy=policy, batch_records=8, batch_us=60_000_000)
    for c in range(commits):
        for i in range(4):
            writer.append(1, c * 4 + i, b"frame")
        writer.commit()
    assert writer.syncs == expected_syncs
    writer.close()


def test_bad_settings_are_refused(tmp_path):
    with pytest.raises(ValueError, match="durability policy"):
        JournalWriter(tmp_path, policy="sometimes")
    with pytest.raises(ValueError, match="segment_size"):
        JournalWriter(tmp_path, segment_size=12345)
