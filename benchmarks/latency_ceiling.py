"""The latency ceiling of bench_e2e.py: raw Aeron shaped like the engine's traffic, in the engine's layout.

A pong process answers from a C fragment handler (lob.transport.echo.run_pong) the way the engine
answers: it subscribes where the engine takes orders (a unicast endpoint, stream 1001) and answers on its
own exclusive publication to the sender's response channel (a unicast endpoint of the sender, stream
1002, the private stream's term length), with the engine's average number and size of execution messages
per message. It attaches to the media driver embedded in the benchmark's process and is started like the
engine (its own process group, same session). The ping side (lob.transport.echo.run_ping_open) sends the
workload's own frame sizes open-loop at a rate and times each message from its scheduled send time to
its first answer, as the load generator times the engine. No matching, no SBE, no session layer: what is
left is Aeron, the driver, the scheduler and the platform.

    stack = CeilingStack(driver_dir, reply_size=51, replies_per_ping=1.4)
    figures = stack.measure(lengths, rate=50_000)       # {"p50_us", "p99_us", "p999_us", "max_us", ...}
    stack.closed_loop(size=69, seconds=1.0)             # {"per_s", "lost", "sent"}: the echo's throughput
    stack.pause(); stack.resume()                       # SIGSTOP / SIGCONT the pong between its runs
    stack.close()
"""
import argparse
import os
import signal
import subprocess
import sys

ORDER_ENTRY_STREAM = 1001
RESPONSE_STREAM = 1002


def channel(port, term_length=0):
    from lob.config import unicast_channel, with_term_length

    return with_term_length(unicast_channel("127.0.0.1", port), term_length)


def summarize(round_trips_ns, histogram=None):
    """Percentiles (µs) of round trips in ns, through an HdrHistogram like the load generator's."""
    from lob.tools.loadgen import latency_summary, new_histogram

    histogram = histogram if histogram is not None else new_histogram()
    for value in round_trips_ns:
        histogram.record_value(max(1, value))
    summary = latency_summary(histogram)
    return {key: summary.get(name) for name, key in
            (("p50", "p50_us"), ("p90", "p90_us"), ("p99", "p99_us"), ("p99.9", "p999_us"), ("max", "max_us"))}


class CeilingStack:
    """A pong process attached to the driver in `aeron_dir`, and this process's ping side."""

    def __init__(self, aeron_dir, *, reply_size, replies_per_ping, idle="yield", term_length=0,
                 order_entry_term_length=0, ready_timeout=30.0):
        from lob.transport.client import Client
        from lob.transport.driver import free_udp_ports

        self.reply_size = reply_size
        self.replies_per_ping = replies_per_ping
        self.idle = idle
        self.next_sequence = 0
        self.process = self.client = None
        in_port, out_port = free_udp_ports(2)
        try:
            self.process = subprocess.Popen(
                [sys.executable, os.path.abspath(__file__), "--aeron-dir", aeron_dir, "--in-port", str(in_port),
                 "--out-port", str(out_port), "--idle", idle, "--reply-size", str(reply_size),
                 "--replies-per-ping", repr(replies_per_ping), "--term-length", str(term_length)],
                stdout=subprocess.PIPE, text=True, process_group=0)
            if self.process.stdout.readline().strip() != "ready":
                raise RuntimeError("the ceiling's pong process did not start")
            self.client = Client(aeron_dir, client_name="bench-ceiling-ping")
            self.publication = self.client.add_exclusive_publication(channel(in_port, order_entry_term_length),
                                                                     ORDER_ENTRY_STREAM)
            self.subscription = self.client.add_subscription(channel(out_port), RESPONSE_STREAM)
            if not (self.publication.wait_connected(ready_timeout) and self.subscription.wait_connected(ready_timeout)):
                raise RuntimeError(f"ping and pong did not connect within {ready_timeout:g} s")
        except BaseException:
            self.close()
            raise

    def measure(self, lengths, rate, histogram=None):
        """One open-loop run of len(lengths) messages at `rate`: percentiles, counts and round trips."""
        from lob.transport.echo import run_ping_open

        r = run_ping_open(self.subscription, self.publication, lengths, rate, idle_strategy=self.idle,
                          first_sequence=self.next_sequence)
        self.next_sequence = r["next_sequence"]
        start, period, recv = r["start_ns"], r["period_ns"], r["recv_ns"]
        round_trips = [recv[i] - (start + int(i * period)) for i in range(r["sent"]) if recv[i]]
        figures = summarize(round_trips, histogram)
        answered = max(r["answered"], 1)
        figures.update(sent=r["sent"], lost=r["lost"], duplicated=r["duplicated"], unknown=r["unknown"],
                       back_pressure=r["back_pressure"],
                       replies_per_message=(r["answered"] + r["extra_replies"]) / answered,
                       achieved_per_s=r["answered"] / ((r["last_send_ns"] - start) / 1e9)
                       if r["last_send_ns"] > start else 0.0)
        return figures

    def closed_loop(self, size, seconds, window=256, warmup=0.25):
        """Messages a second answered with `window` `size`-byte messages in flight for `seconds` (after
        `warmup`), and the messages lost."""
        from lob.transport.echo import run_ping

        r = run_ping(self.subscription, self.publication, size, seconds, window=window, warmup=warmup,
                     idle_strategy=self.idle, first_sequence=self.next_sequence)
        self.next_sequence = r["next_sequence"]
        rate = r["measured_received"] / r["measured_seconds"] if r["measured_seconds"] else 0.0
        return {"per_s": rate, "lost": r["lost"], "sent": r["sent"]}

    def pause(self):
        """Stop the pong process (its idle loop must not compete with the engine's runs)."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self):
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)

    def close(self):
        from lob.transport.echo import send_stop

        try:
            if self.process is not None and self.process.poll() is None:
                self.resume()
                if self.client is not None:
                    send_stop(self.publication, timeout=2.0)
                try:
                    self.process.wait(10)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
        finally:
            if self.process is not None and self.process.stdout is not None:
                self.process.stdout.close()
            if self.client is not None:
                self.client.close()
                self.client = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _pong(argv=None):
    from lob.transport.client import Client
    from lob.transport.echo import run_pong

    parser = argparse.ArgumentParser(description="the latency ceiling's answering process")
    parser.add_argument("--aeron-dir", required=True)
    parser.add_argument("--in-port", type=int, required=True)
    parser.add_argument("--out-port", type=int, required=True)
    parser.add_argument("--idle", default="yield")
    parser.add_argument("--reply-size", type=int, required=True)
    parser.add_argument("--replies-per-ping", type=float, required=True)
    parser.add_argument("--term-length", type=int, default=0)
    args = parser.parse_args(argv)
    with Client(args.aeron_dir, client_name="bench-ceiling-pong") as client:
        # Subscribed as the engine subscribes to order entry (its default receiver window and socket buffer).
        from lob.config import EngineConfig, order_entry_subscription

        config = EngineConfig().with_ports(args.in_port)
        subscription = client.add_subscription(order_entry_subscription(config), ORDER_ENTRY_STREAM)
        publication = client.add_exclusive_publication(channel(args.out_port, args.term_length), RESPONSE_STREAM)
        print("ready", flush=True)
        # Paused (SIGSTOP) for minutes while the engine runs: no idle timeout of its own.
        result = run_pong(subscription, publication, idle_strategy=args.idle, idle_timeout=24 * 3600.0,
                          reply_size=args.reply_size, replies_per_ping=args.replies_per_ping)
    return 0 if result["failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(_pong())
