"""The load generator's receive path (lob.tools.loadgen_loop) on real encoded lean execution frames, fed to
it directly (no Aeron): which frame answers which message, exact counts, bytes and sequence checks."""
from lob.sbe import messages
from lob.tools.loadgen_loop import LoadLoop
from lob.tools.workload import CANCEL, NEW, generate

T = 1_700_000_000_000_000_000


def aeron_framed(length):
    return (32 + length + 31) // 32 * 32


def new(seq, cl):
    return messages.encode("ExecutionReportNew", seqNum=seq, transactTime=T, clOrdId=cl, orderId=cl + 100)


def trade(seq, cl, liquidity):
    return messages.encode("ExecutionReportTrade", seqNum=seq, transactTime=T, clOrdId=cl, orderId=cl + 100,
                           tradeId=7, lastPx={"mantissa": 1_000_000}, lastQty=5, leavesQty=0, liquidity=liquidity)


def canceled(seq, cl, orig=0, reason="UserRequest"):
    return messages.encode("ExecutionReportCanceled", seqNum=seq, transactTime=T, clOrdId=cl, origClOrdId=orig,
                           orderId=orig + 100, reason=reason)


def rejected(seq, cl, reason="UnknownInstrument"):
    return messages.encode("ExecutionReportRejected", seqNum=seq, transactTime=T, clOrdId=cl, reason=reason)


def cancel_reject(seq, cl, orig):
    return messages.encode("OrderCancelReject", seqNum=seq, transactTime=T, clOrdId=cl, origClOrdId=orig, orderId=0,
                           responseTo="Cancel", reason="UnknownOrder")


def message_reject(seq, ref_cl, reason="Throttled", ref_seq=0):
    return messages.encode("MessageReject", seqNum=seq, transactTime=T, refSeqNo=ref_seq, refClOrdId=ref_cl,
                           refTemplateId=1, refLength=61, reason=reason)


def replaced(seq, cl, orig):
    return messages.encode("ExecutionReportReplaced", seqNum=seq, transactTime=T, clOrdId=cl, origClOrdId=orig,
                           orderId=cl + 100, price={"mantissa": 1}, orderQty=1, leavesQty=1)


def triggered(seq, cl):
    return messages.encode("ExecutionReportTriggered", seqNum=seq, transactTime=T, clOrdId=cl, orderId=cl + 100)


def heartbeat(next_seq):
    return messages.encode("Sequence", nextSeqNo=next_seq)


def detached(workload, next_seqs):
    return LoadLoop(workload.encode(), None, None, next_seqs)


def first_of(workload, kind, session=None):
    return next(i for i in range(len(workload))
                if workload.kind[i] == kind and (session is None or workload.session[i] == session))


def test_each_lean_template_answers_its_message_with_exact_counts_and_bytes():
    w = generate(orders=200, seed=3)
    base = w.spec.first_cl_ord_id
    new_i = first_of(w, NEW)
    cancel_i = first_of(w, CANCEL)
    other_new = next(i for i in range(len(w)) if w.kind[i] == NEW and i != new_i)
    other_cancel = next(i for i in range(len(w)) if w.kind[i] == CANCEL and i != cancel_i)
    throttled = next(i for i in range(len(w)) if w.kind[i] == NEW and i not in (new_i, other_new))
    frames = [
        new(5, base + new_i),                                    # answers a new order
        trade(6, base + new_i, "Removed"),                       # a fill we took: counted, no answer
        trade(7, base + other_new, "Added"),                     # a fill of a resting order: counted
        canceled(8, base + cancel_i, orig=w.orig_cl_ord_id[cancel_i]),   # answers a cancel
        rejected(9, base + other_new),                           # answers a new order, negatively
        cancel_reject(10, base + other_cancel, w.orig_cl_ord_id[other_cancel]),         # answers a cancel
        canceled(11, base + new_i, reason="ImmediateOrCancel"),  # the engine canceled an order: no answer
        message_reject(12, base + throttled),                    # answers the throttled message
        heartbeat(13),                                           # counted, not an answer
        new(13, base + new_i),                                   # a second answer: duplicate
    ]
    loop = detached(w, [5])
    for frame in frames:
        loop.feed(0, frame)
    c = loop.counts()
    assert (c["answered"], c["acked"], c["rejected"], c["duplicated"]) == (5, 2, 3, 1)
    assert (c["trade_reports"], c["trades"], c["unsolicited_cancels"]) == (2, 1, 1)
    assert (c["message_rejects"], c["heartbeats"], c["exec_seq_gaps"], c["unknown_reports"]) == (1, 1, 0, 0)
    assert c["reports_received"] == len(frames)
    assert c["report_bytes"] == sum(len(f) for f in frames)
    assert c["report_framed_bytes"] == sum(aeron_framed(len(f)) for f in frames)
    answered = {new_i, cancel_i, other_new, other_cancel, throttled}
    assert [i for i, r in enumerate(loop.responses) if r] == sorted(answered)
    assert loop.responses[new_i] == 2
    assert all(loop.recv_ns[i] > 0 for i in answered)
    assert loop.next_seqs() == [14]


def test_lean_frame_sizes_are_what_the_byte_counts_assume():
    # Header 8 + block: the sizes the report's bytes-per-message figures are made of.
    frames = {"New": new(1, 1), "Trade": trade(1, 1, "Added"), "Canceled": canceled(1, 1), "Rejected": rejected(1, 1),
              "CancelReject": cancel_reject(1, 1, 1), "MessageReject": message_reject(1, 1), "Sequence": heartbeat(1)}
    sizes = {name: len(frame) for name, frame in frames.items()}
    assert sizes == {"New": 40, "Trade": 73, "Canceled": 49, "Rejected": 33, "CancelReject": 50,
                     "MessageReject": 49, "Sequence": 16}
    assert {n: aeron_framed(s) for n, s in sizes.items()} == {
        "New": 96, "Trade": 128, "Canceled": 96, "Rejected": 96, "CancelReject": 96, "MessageReject": 96,
        "Sequence": 64}


def test_a_template_of_the_wrong_kind_or_a_foreign_client_order_id_is_unknown():
    w = generate(orders=100, seed=4)
    base = w.spec.first_cl_ord_id
    cancel_i = first_of(w, CANCEL)
    new_i = first_of(w, NEW)
    loop = detached(w, [1])
    loop.feed(0, new(1, base + cancel_i))             # New does not answer a cancel request
    loop.feed(0, rejected(2, base + cancel_i))
    loop.feed(0, cancel_reject(3, base + new_i, 0))   # OrderCancelReject does not answer a new order
    loop.feed(0, new(4, base + 100))                  # past the workload
    loop.feed(0, new(5, base - 1))
    loop.feed(0, replaced(6, base + new_i, base + cancel_i))     # the workload never replaces
    loop.feed(0, b"\x01\x02")                          # shorter than a message header
    loop.feed(0, new(7, base + new_i)[:20])           # cut short: not read, not an answer
    c = loop.counts()
    assert c["unknown_reports"] == 8
    assert (c["answered"], c["duplicated"], c["exec_seq_gaps"]) == (0, 0, 0)
    assert c["reports_received"] == 8
    assert bytes(loop.responses) == bytes(100)


def test_sequence_gaps_per_session_and_heartbeats_that_reveal_them():
    w = generate(orders=300, seed=5, sessions=2)
    base = w.spec.first_cl_ord_id
    a = [i for i in range(len(w)) if w.kind[i] == NEW and w.session[i] == 0][:3]
    b = [i for i in range(len(w)) if w.kind[i] == NEW and w.session[i] == 1][:3]
    loop = detached(w, [10, 1])
    loop.feed(0, new(10, base + a[0]))
    loop.feed(1, new(1, base + b[0]))     # each session numbers its own stream
    loop.feed(0, new(11, base + a[1]))
    loop.feed(1, new(3, base + b[1]))     # 2 went missing: one gap
    loop.feed(1, heartbeat(4))            # in step again
    loop.feed(0, heartbeat(14))           # 12 and 13 never came: one gap, revealed by the heartbeat
    loop.feed(0, new(14, base + a[2]))
    loop.feed(1, message_reject(0, 0, reason="NotEstablished"))   # seqNum 0: outside the sequence
    c = loop.counts()
    assert c["exec_seq_gaps"] == 2
    assert (c["heartbeats"], c["message_rejects"], c["answered"]) == (2, 1, 5)
    assert loop.next_seqs() == [15, 4]


def test_a_report_on_the_wrong_session_stream_does_not_answer():
    w = generate(orders=300, seed=6, sessions=2)
    base = w.spec.first_cl_ord_id
    i = first_of(w, NEW, session=1)
    loop = detached(w, [1, 1])
    loop.feed(0, new(1, base + i))         # session 0's stream names session 1's order
    assert loop.counts()["unknown_reports"] == 1 and loop.counts()["answered"] == 0
    loop.feed(1, new(1, base + i))
    assert loop.counts()["answered"] == 1


def test_mass_cancel_reports_session_frames_and_terminate():
    w = generate(orders=50, seed=7, sessions=2)
    base, n = w.spec.first_cl_ord_id, len(w)
    loop = detached(w, [1, 1])
    for k in range(2):
        loop.feed(k, messages.encode("OrderMassCancelReport", seqNum=1, transactTime=T, clOrdId=base + n + k,
                                     instrumentId=0, canceledCount=3, reason="None"))
    loop.feed(0, messages.encode("OrderMassCancelReport", seqNum=2, transactTime=T, clOrdId=base + n + 1,
                                 instrumentId=0, canceledCount=0, reason="None"))   # session 1's id on session 0
    loop.feed(1, messages.encode("NotApplied", fromSeqNo=3, count=2))
    loop.feed(1, messages.encode("Terminate", sessionId=1002, reason="KeepAliveTimeout"))
    c = loop.counts()
    assert (c["mass_cancel_reports"], c["unknown_reports"]) == (2, 1)
    assert (c["session_frames"], c["terminations"]) == (1, 1)
    assert c["last_terminate_reason"] == 53   # KeepAliveTimeout


def test_triggered_stops_and_self_trade_prevention_are_counted_never_taken_for_answers():
    w = generate(orders=300, seed=5, stop_share=0.2, iceberg_share=0.2, stp_accounts=3)
    base = w.spec.first_cl_ord_id
    stop_i = next(i for i in range(len(w)) if w.kind[i] == NEW and w.stop_price[i])
    new_i = next(i for i in range(len(w)) if w.kind[i] == NEW and i != stop_i)
    cancel_i = first_of(w, CANCEL)
    frames = [
        new(1, base + stop_i),                                      # the stop's answer
        triggered(2, base + stop_i),                                # later: its stop was reached
        new(3, base + new_i),
        canceled(4, base + new_i, reason="SelfTradePrevented"),     # STP canceled our order
        replaced(5, base + stop_i, base + stop_i),                  # DecrementAndCancel restated one
        canceled(6, base + cancel_i, orig=w.orig_cl_ord_id[cancel_i], reason="UserRequest"),   # answers
        triggered(7, base + cancel_i),                              # a cancel request is no stop
        triggered(8, base + len(w)),                                # not ours
    ]
    loop = detached(w, [1])
    for frame in frames:
        loop.feed(0, frame)
    c = loop.counts()
    assert (c["answered"], c["acked"], c["duplicated"], c["exec_seq_gaps"]) == (3, 3, 0, 0)
    assert (c["triggered"], c["stp_cancels"], c["stp_restated"], c["unsolicited_cancels"]) == (1, 1, 1, 0)
    assert c["unknown_reports"] == 2
    assert loop.next_seqs() == [9]
