"""Crash recovery: the newest valid snapshot, then the journal from the next sequence.

The engine is a deterministic function of its inbound sequence, so replaying the journal tail into the
snapshot's state gives exactly the engine that crashed: same books, same next ids and sequences, and
from then on byte-identical reports. Replay output is dropped (it was published before the crash, or
the crash came between journaling and publishing): each session keeps its application messages in its
retransmission ring, which the snapshot holds and the replay refills, so a client that logs on again
asks for what it missed (RetransmitRequest) and gets it byte for byte.
"""
from dataclasses import dataclass

from lob.engine import Engine
from lob.instruments import ticks_of
from lob.journal import JournalError, list_segments, segment_first_seq
from lob.replay import replay_journal
from lob.snapshot import latest_snapshot


@dataclass
class Recovered:
    engine: Engine
    snapshot_path: str | None
    snapshot_seq: int       # journal sequence the snapshot covers (0: no snapshot)
    replayed: int           # journal records replayed after it
    last_seq: int           # last journal sequence now reflected in the engine

    def describe(self):
        source = f"snapshot {self.snapshot_path} (seq {self.snapshot_seq})" if self.snapshot_path else "no snapshot"
        return f"recovered from {source} + {self.replayed} journal records, at journal seq {self.last_seq}"


def recover(journal_dir, snapshot_dir=None, instruments=None, max_orders=1 << 20, market_data=True,
            log=None, progress=None, sessions=(), ring_bytes=1 << 22, **risk):
    """`sessions`: the credentials the engine runs with (lob.credentials); the journal's logons are checked
    against them again, so the same credentials file gives the same engine. `instruments`: {id: tick} or
    {id: lob.instruments.InstrumentSpec}; `risk`: accounts=, max_accounts= (lob.engine.Engine's)."""
    engine, snapshot_seq, path = (latest_snapshot(snapshot_dir, log=log, max_orders=max_orders,
                                                  market_data=market_data, sessions=sessions, ring_bytes=ring_bytes,
                                                  instruments=instruments, **risk)
                                  if snapshot_dir else (None, 0, None))
    if engine is None:
        engine = Engine(instruments=instruments, max_orders=max_orders, market_data=market_data, sessions=sessions,
                        ring_bytes=ring_bytes, **risk)
    elif instruments is not None and engine.instruments != ticks_of(instruments) and log is not None:
        log(f"the snapshot's instruments {engine.instruments} replace the configured {ticks_of(instruments)}")
    segments = list_segments(journal_dir)
    if segments and segment_first_seq(segments[0]) > snapshot_seq + 1:
        raise JournalError(f"{segments[0]}: the journal starts at seq {segment_first_seq(segments[0])} "
                           f"but the state covers only up to seq {snapshot_seq}: records are missing")
    replayed, last_seq = replay_journal(engine, journal_dir, from_seq=snapshot_seq + 1, progress=progress)
    if last_seq < snapshot_seq:
        if segments:
            raise JournalError(f"{journal_dir}: the journal ends at seq {last_seq}, before the snapshot's "
                               f"seq {snapshot_seq}")
        last_seq = snapshot_seq
    return Recovered(engine, path, snapshot_seq, replayed, last_seq)
