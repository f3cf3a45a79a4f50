"""Where an open-loop run's round trips go: the load generator's times joined with the engine's trace.

Per message, four clocks (all CLOCK_MONOTONIC on one host): the load generator's scheduled send and
actual send (`send_ns`), the engine's receive, match and publish (lob.latency_trace, `lob engine
--trace-file`), and the load generator's receive (`recv_ns`). A message's round trip splits into

    send lag   scheduled -> offered by the load generator (its loop was late)
    inbound    offered -> the engine's fragment handler starts on it (client publication, driver, UDP,
               driver, the engine's image, the engine loop coming round to poll)
    engine     handler -> the poll's execution frames offered (matching of it and of the messages after
               it in the same poll, journal commit, routing to the private publications)
    outbound   offered -> the load generator's handler (driver, UDP, driver, the load generator's poll)

The engine's records are matched to the load generator's messages by transport (each session's order
entry publication) and order: a session's NewOrderSingle and OrderCancelRequest frames reach the engine
in the order they were sent.
"""
import statistics

COMPONENTS = ("send_lag", "inbound", "engine", "outbound")
APPLICATION_TEMPLATES = (1, 2)  # NewOrderSingle, OrderCancelRequest: what the workload sends
TRACE_FIELDS = ("received_ns", "matched_ns", "published_ns", "transport", "template_id", "index_in_poll",
                "poll_messages", "idle_polls", "exec_back_pressure", "md_back_pressure")


def join(records, transports, session_of, send_ns, recv_ns, start_ns, period_ns):
    """One row per answered message that the trace has: a dict of its times and the engine's counts.

    `records`: lob.latency_trace.read(); `transports[k]`: session k's order-entry Aeron session id;
    `session_of[i]`: message i's session (empty: all session 0)."""
    by_transport = {t: [] for t in transports}
    previous_bp = None
    for record in records:
        r = dict(zip(TRACE_FIELDS, record))
        # back-pressure events between this message's poll and the previous traced poll
        r["exec_bp_since"] = 0 if previous_bp is None else (r["exec_back_pressure"] - previous_bp) & 0xFFFFFFFF
        if r["index_in_poll"] == 0:
            previous_bp = r["exec_back_pressure"]
        if r["transport"] in by_transport and r["template_id"] in APPLICATION_TEMPLATES:
            by_transport[r["transport"]].append(r)
    positions = [0] * len(transports)
    rows = []
    unmatched = 0
    for i in range(len(send_ns)):
        k = session_of[i] if len(session_of) else 0
        mine = by_transport[transports[k]]
        j = positions[k]
        positions[k] += 1
        if j >= len(mine):
            unmatched += 1
            continue
        if not recv_ns[i] or not send_ns[i]:
            continue
        r = mine[j]
        scheduled = start_ns + int(i * period_ns)
        rows.append({
            "index": i, "session": k, "total": recv_ns[i] - scheduled,
            "send_lag": send_ns[i] - scheduled, "inbound": r["received_ns"] - send_ns[i],
            "engine": r["published_ns"] - r["received_ns"], "outbound": recv_ns[i] - r["published_ns"],
            "match": r["matched_ns"] - r["received_ns"], "index_in_poll": r["index_in_poll"],
            "poll_messages": r["poll_messages"], "idle_polls": r["idle_polls"], "exec_bp_since": r["exec_bp_since"],
            "received_ns": r["received_ns"],
        })
    extra = sum(max(0, len(by_transport[t]) - positions[k]) for k, t in enumerate(transports))
    # Over the measured messages only: the mass cancel that ends a run sends one report per resting order
    # in one burst, which a publication window can hold back without any message waiting for it.
    mine = [r for t in transports for r in by_transport[t]]
    held = ((max(r["exec_back_pressure"] for r in mine) - min(r["exec_back_pressure"] for r in mine))
            & 0xFFFFFFFF) if mine else 0
    return rows, {"unmatched": unmatched, "extra_engine_records": extra, "exec_frames_held_back": held}


def _share(rows, name):
    total = sum(r["total"] for r in rows)
    return sum(r[name] for r in rows) / total if total else 0.0


def summarize(rows, slowest_fraction=0.01):
    """Medians and means (µs) of each component for all messages and for the slowest fraction, which
    component dominates each of the slowest, and how they cluster in time."""
    if not rows:
        return {}
    ordered = sorted(rows, key=lambda r: r["total"])
    slow = ordered[int(len(ordered) * (1 - slowest_fraction)):] or ordered[-1:]

    def figures(group):
        out = {"messages": len(group)}
        for name in ("total",) + COMPONENTS + ("match",):
            values = [r[name] for r in group]
            out[name] = {"median_us": statistics.median(values) / 1000, "mean_us": statistics.fmean(values) / 1000}
        for name in COMPONENTS:
            out[name]["share"] = _share(group, name)
        for name in ("poll_messages", "idle_polls", "exec_bp_since"):
            values = [r[name] for r in group]
            out[name] = {"median": statistics.median(values), "max": max(values)}
        return out

    dominant = {name: 0 for name in COMPONENTS}
    for r in slow:
        dominant[max(COMPONENTS, key=lambda name: r[name])] += 1
    # episodes: slow messages whose engine receive times lie within 1 ms of the previous one's
    times = sorted(r["received_ns"] for r in slow)
    episodes = 1 + sum(1 for a, b in zip(times, times[1:]) if b - a > 1_000_000) if times else 0
    last = max(r["index"] for r in rows) or 1
    positions = sorted(r["index"] / last for r in slow)
    return {"all": figures(ordered), "slowest": figures(slow), "slowest_fraction": slowest_fraction,
            "slowest_position": {"first": positions[0], "median": positions[len(positions) // 2],
                                 "last": positions[-1]},
            "slowest_dominated_by": dominant, "slowest_episodes": episodes,
            "slowest_threshold_us": slow[0]["total"] / 1000}


def format_summary(summary, label=""):
    if not summary:
        return "    (no traced messages)"
    a, s = summary["all"], summary["slowest"]
    lines = [f"    where the time goes{label}: median µs (share of the summed round trips)",
             f"    {'':>16} {'total':>9} {'send lag':>15} {'inbound':>15} {'engine':>15} {'outbound':>15}"]
    for name, f in (("all", a), (f"slowest {summary['slowest_fraction']:.0%}", s)):
        cells = " ".join(f"{f[c]['median_us']:>8,.1f} ({f[c]['share']:>4.0%})" for c in COMPONENTS)
        lines.append(f"    {name:>16} {f['total']['median_us']:>9,.1f} {cells}")
    d = summary["slowest_dominated_by"]
    lines.append(f"    slowest {s['messages']:,} (>= {summary['slowest_threshold_us']:,.0f} µs), largest part: "
                 + ", ".join(f"{name} {d[name]}" for name in COMPONENTS)
                 + f"; {summary['slowest_episodes']} episode(s) more than 1 ms apart"
                 + (f"; where in the run: {summary['slowest_position']['first']:.0%} to "
                    f"{summary['slowest_position']['last']:.0%}, median {summary['slowest_position']['median']:.0%}"
                    if "slowest_position" in summary else ""))
    if "exec_frames_held_back" in summary:
        lines.append(f"    execution frames held back by back-pressure while the run's messages were answered: "
                     f"{summary['exec_frames_held_back']:,}")
    lines.append(f"    engine polls: messages per poll median {a['poll_messages']['median']} (slowest "
                 f"{s['poll_messages']['median']}, max {s['poll_messages']['max']}); matching one message "
                 f"median {a['match']['median_us']:.2f} µs (slowest {s['match']['median_us']:.2f}); private-stream "
                 f"back-pressure around the slowest: max {s['exec_bp_since']['max']} per poll")
    return "\n".join(lines)
