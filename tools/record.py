"""`lob record`: subscribe to an Aeron stream and write what arrives in the journal format.

Each message becomes a journal record with the sender's session id and the receive time, so
`lob replay` and `lob decode` read recordings exactly like engine journals.
"""
import signal
import sys
import threading
import time

from tqdm import tqdm

from lob.client.reassembly import MessagePoller
from lob.journal import JournalWriter


def add_arguments(parser):
    parser.add_argument("out", metavar="DIR", help="recording directory (continued if it exists)")
    parser.add_argument("--channel", default="aeron:udp?endpoint=127.0.0.1:40101",
                        help="subscription channel (default: the engine's order entry)")
    parser.add_argument("--stream", type=int, default=1001, help="stream id (default 1001)")
    parser.add_argument("--aeron-dir", metavar="DIR", help="use this running media driver (default: embed one)")
    parser.add_argument("--count", type=int, default=0, help="stop after this many messages (default: run until ^C)")
    parser.add_argument("--seconds", type=float, default=0, help="stop after this long (default: run until ^C)")
    parser.add_argument("--policy", default="batch", choices=("none", "batch", "every"), help="durability policy")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args):
    import pyaeron

    from lob.transport.driver import launch

    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    driver = launch(args.aeron_dir, attach=bool(args.aeron_dir))
    client = pyaeron.Aeron(dir=driver.dir)
    subscription = client.add_subscription(args.channel, args.stream)
    writer = JournalWriter(args.out, policy=args.policy)
    recorded = [0]

    def on_message(buffer, header):
        # Aeron session ids are signed 32-bit; the journal (like the engine) keeps them as uint32.
        writer.append(header.session_id & 0xFFFFFFFF, time.time_ns(), bytes(buffer))
        recorded[0] += 1

    messages = MessagePoller(subscription, on_message)
    print(f"recording {args.channel} stream {args.stream} into {args.out} from seq {writer.next_seq}",
          file=sys.stderr, flush=True)
    deadline = time.monotonic() + args.seconds if args.seconds > 0 else None
    try:
        with tqdm(unit="msg", disable=args.quiet, desc="record", file=sys.stderr) as bar:
            while not stop.is_set():
                before = recorded[0]
                messages.poll(256)
                if recorded[0] != before:
                    writer.commit()
                    bar.update(recorded[0] - before)
                else:
                    time.sleep(0.0005)
                if args.count and recorded[0] >= args.count:
                    break
                if deadline is not None and time.monotonic() >= deadline:
                    break
        print(f"recorded {recorded[0]:,} messages; journal continues at seq {writer.next_seq}", flush=True)
        return 0
    finally:
        writer.close()
        subscription.close()
        client.close()
        driver.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
