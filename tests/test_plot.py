"""`lob plot latency` and `lob plot book`: what the charts hold (through the functions that return the
figure), the images the command writes (format and pixel size), and clear errors for bad input."""
import struct
import subprocess
import sys

import pytest
from aeron_helpers import ROOT, WAIT
from engine_helpers import cancel, logon_records, nos
from journal_helpers import TEST_CREDENTIALS, write_journal

from lob import credentials
from lob.framing import iter_inbound, pack_inbound
from lob.tools.plot_book import book_figure, book_series, busiest, market_data_frames
from lob.tools.plot_latency import (DistributionError, latency_figure, parse_distribution, percentile_label,
                                    read_distribution)

# What HdrHistogram's output_percentile_distribution(out, 1000) writes for the values 10, 20, ..., 100 µs
# (recorded in ns), cut to a few rows: the format `lob loadgen --hdr-out` writes.
HDR_TEXT = """\
       Value     Percentile TotalCount 1/(1-Percentile)

      10.000 0.000000000000          1           1.00
      50.000 0.500000000000          5           2.00
      90.000 0.900000000000          9          10.00
     100.000 0.990000000000         10         100.00
     100.000 1.000000000000         10
#[Mean    =       55.000, StdDeviation   =       28.723]
#[Max     =      100.000, TotalCount     =       10.000]
#[Buckets =           26, SubBuckets     =         2048]
"""


def lob(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "lob.cli", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=WAIT)


def png_size(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


# ---- latency -------------------------------------------------------------------------------------------

def test_parses_a_percentile_distribution():
    dist = parse_distribution(HDR_TEXT, name="run")
    assert dist.values == [10.0, 50.0, 90.0, 100.0, 100.0]
    assert dist.percentiles == [0.0, 0.5, 0.9, 0.99, 1.0]
    assert dist.total_count == 10
    assert dist.summary == {"Mean": 55.0, "StdDeviation": 28.723, "Max": 100.0, "TotalCount": 10.0,
                            "Buckets": 26.0, "SubBuckets": 2048.0}
    assert (dist.value_at(0.5), dist.value_at(0.99), dist.max) == (50.0, 100.0, 100.0)   # rows of the file
    assert dist.value_at(0.75) == 75.0                          # between rows: interpolated
    assert dist.value_at(0.95) == pytest.approx(90 + 10 * 0.05 / 0.09)


def test_parses_the_csv_form():
    text = '"Value","Percentile","TotalCount","1/(1-Percentile)"\n10.000,0.000000000000,1,1.00\n' \
           '20.000,0.500000000000,2,2.00\n20.000,1.000000000000,2,Infinity\n'
    dist = parse_distribution(text)
    assert (dist.values, dist.percentiles, dist.total_count) == ([10.0, 20.0, 20.0], [0.0, 0.5, 1.0], 2)


def test_reads_what_the_load_generator_writes(tmp_path):
    from lob.tools.loadgen import new_histogram, write_percentile_distribution

    histogram = new_histogram()
    for microseconds in range(1, 1001):
        histogram.record_value(microseconds * 1000)
    write_percentile_distribution(histogram, tmp_path / "run.hdr")
    dist = read_distribution(tmp_path / "run.hdr")
    assert dist.name == "run"
    assert dist.total_count == 1000
    assert dist.percentiles[0] == 0.0 and dist.percentiles[-1] == 1.0
    assert len(dist.values) > 20
    for value, percentile in zip(dist.values, dist.percentiles):   # 1..1000 µs uniformly: p x 1000 µs
        assert abs(value - max(percentile * 1000, 1)) <= 2, (value, percentile)
    assert dist.max == round(histogram.get_max_value() / 1000, 3)
    assert dist.summary["TotalCount"] == 1000


@pytest.mark.parametrize("text, message", [
    ("", "empty, or no percentile distribution header"),
    ("hello world\n", "line 1: expected the header 'Value Percentile TotalCount"),
    ("       Value     Percentile TotalCount 1/(1-Percentile)\n", "a header but no rows"),
    (HDR_TEXT.replace("50.000 0.5", "50.000 x.5"), "line 4: not a number in '50.000 x.5"),
    (HDR_TEXT.replace("      50.000 0.500000000000          5           2.00", "50 0.5"),
     "line 4: expected 3 or 4 columns"),
    (HDR_TEXT.replace("0.500000000000", "1.500000000000"), "line 4: percentile 1.500000000000 is outside 0..1"),
    (HDR_TEXT.replace("      90.000 0.9", "      40.000 0.9"), "line 5: values, percentiles and counts must not"),
])
def test_malformed_distributions_say_where(text, message):
    with pytest.raises(DistributionError) as error:
        parse_distribution(text, source="f.hdr")
    assert message in str(error.value)
    assert str(error.value).startswith("f.hdr")


def test_missing_binary_and_directory_files(tmp_path):
    with pytest.raises(DistributionError, match="missing.hdr: no such file"):
        read_distribution(tmp_path / "missing.hdr")
    with pytest.raises(DistributionError, match="is a directory"):
        read_distribution(tmp_path)
    (tmp_path / "bin.hdr").write_bytes(b"\xff\xfe\x00\x81")
    with pytest.raises(DistributionError, match="bin.hdr: not text"):
        read_distribution(tmp_path / "bin.hdr")


def test_percentile_axis_labels():
    assert [percentile_label(x) for x in (1, 10, 100, 1000, 10_000, 1_000_000)] == \
        ["0%", "90%", "99%", "99.9%", "99.99%", "99.9999%"]


def test_latency_figure_has_one_curve_per_run():
    fast = parse_distribution(HDR_TEXT, name="fast")
    slow = parse_distribution(HDR_TEXT.replace("     100.000", "     400.000").replace("=      100.000", "=      400.000"),
                              name="slow")
    figure = latency_figure([fast, slow], title="two runs", width_px=800, height_px=400)
    axes = figure.axes[0]
    lines = axes.get_lines()
    assert [line.get_label() for line in lines] == [
        "fast: 10 samples, p99 100.0, max 100.0 µs", "slow: 10 samples, p99 400.0, max 400.0 µs"]
    # x is 1 / (1 - percentile); the 100% row is off a log axis and not drawn
    assert list(lines[0].get_xdata()) == pytest.approx([1.0, 2.0, 10.0, 100.0])
    assert list(lines[0].get_ydata()) == [10.0, 50.0, 90.0, 100.0]
    assert list(lines[1].get_ydata()) == [10.0, 50.0, 90.0, 400.0]
    assert axes.get_xscale() == "log" and axes.get_xlim() == pytest.approx((1, 100))
    assert [t.get_text() for t in axes.get_xticklabels()] == ["0%", "90%", "99%"]
    assert (axes.get_title(), axes.get_xlabel(), axes.get_ylabel()) == ("two runs", "percentile", "latency (µs)")
    assert tuple(figure.get_size_inches() * figure.dpi) == (800, 400)
    assert axes.get_yscale() == "linear" and axes.get_ylim()[0] == 0
    log_axes = latency_figure([fast], log_values=True).axes[0]
    assert log_axes.get_yscale() == "log"
    assert log_axes.yaxis.get_major_formatter()(1000, 0) == "1,000"


def test_plot_latency_command_writes_png_and_svg(tmp_path):
    (tmp_path / "a.hdr").write_text(HDR_TEXT)
    (tmp_path / "b.hdr").write_text(HDR_TEXT)
    result = lob("plot", "latency", "a.hdr", "b.hdr", "--label", "closed loop", "--out", "lat.png", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "closed loop: 10 samples, p50 50.0 p99 100.0 p99.9 100.0 max 100.0 µs",
        "b: 10 samples, p50 50.0 p99 100.0 p99.9 100.0 max 100.0 µs",
        "wrote lat.png (1000x600 px)"]
    assert png_size(tmp_path / "lat.png") == (1000, 600)
    result = lob("plot", "latency", "a.hdr", "--out", "lat.svg", "--size", "640x480", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    svg = (tmp_path / "lat.svg").read_text()
    assert svg.lstrip().startswith("<?xml") and 'width="460.8pt" height="345.6pt"' in svg   # 640x480 px at 100 dpi


@pytest.mark.parametrize("args, message", [
    (["missing.hdr"], "lob plot latency: missing.hdr: no such file"),
    (["bad.hdr"], "lob plot latency: bad.hdr, line 1: expected the header"),
    (["a.hdr", "--out", "lat.jpg"], "lob plot latency: --out lat.jpg: the name must end in .png or .svg"),
    (["a.hdr", "--size", "big"], "lob plot latency: --size 'big': expected WIDTHxHEIGHT in pixels"),
    (["a.hdr", "--label", "x", "--label", "y"], "lob plot latency: 2 --label for 1 file(s)"),
])
def test_plot_latency_command_errors(tmp_path, args, message):
    (tmp_path / "a.hdr").write_text(HDR_TEXT)
    (tmp_path / "bad.hdr").write_text("not a histogram\n")
    result = lob("plot", "latency", *args, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == message or result.stderr.startswith(message)
    assert not (tmp_path / "latency.png").exists()


# ---- book ----------------------------------------------------------------------------------------------

T0 = 1_700_000_000_000_000_000
SECOND = 1_000_000_000


def session_records():
    """Session 1 logs on, then builds and trades a small book of instrument 1, one second apart, and
    places one order on instrument 2."""
    records = list(iter_inbound(logon_records(1, timestamp=T0)))
    orders = [
        nos(1, "Buy", 990, 10),     # t=1: bid 990
        nos(2, "Sell", 1010, 20),   # t=2: ask 1010
        nos(3, "Buy", 1000, 5),     # t=3: bid 1000
        nos(4, "Sell", 1000, 8),    # t=4: trades 5 at 1000 (seller aggressor), rests 3 at 1000: ask 1000, bid 990
        nos(5, "Buy", 1010, 10),    # t=5: trades 3 at 1000 and 7 at 1010: ask 1010 (13 left)
        cancel(6, 1, "Buy"),        # t=6: bid side empty
        nos(7, "Buy", 500, 1, instrumentId=2),   # t=7: instrument 2
    ]
    return records + [(1, T0 + (i + 1) * SECOND, frame) for i, frame in enumerate(orders)]


@pytest.fixture
def journal(tmp_path):
    directory = tmp_path / "journal"
    write_journal(directory, session_records())
    (tmp_path / "credentials.txt").write_text(credentials.dumps(TEST_CREDENTIALS))
    return directory


def fresh_engine():
    from lob.engine import Engine

    return Engine(instruments={1: 1, 2: 1}, sessions=TEST_CREDENTIALS)


def test_book_series_from_the_replayed_market_data(journal):
    series = book_series(market_data_frames(fresh_engine(), journal, batch_records=3))
    one = series[1]
    assert [(t - T0) // SECOND for t in one.times] == [1, 2, 3, 4, 5, 6]
    assert one.best_bids == [990, 990, 1000, 990, 990, None]
    assert one.best_asks == [None, 1010, 1010, 1000, 1010, 1010]
    assert [(t - T0) // SECOND for t in one.trade_times] == [4, 5, 5]
    assert one.trade_prices == [1000, 1000, 1010]
    assert one.trade_quantities == [5, 3, 7]
    assert one.trade_sides == ["Sell", "Buy", "Buy"]
    assert (one.updates, one.volume, one.messages) == (6, 15, 9)
    assert series[2].best_bids == [500] and series[2].messages == 1
    assert busiest(series) == 1


def test_book_figure_draws_bid_ask_trades_and_volume(journal):
    series = book_series(market_data_frames(fresh_engine(), journal))[1]
    figure = book_figure(series, width_px=900, height_px=500, buckets=5)
    prices, volume = figure.axes
    bid, ask = prices.get_lines()
    assert (bid.get_label(), ask.get_label()) == ("best bid", "best ask")
    assert list(bid.get_xdata()) == [0, 1, 2, 3, 4, 5, 5]           # seconds from the first message
    assert list(bid.get_ydata()) == pytest.approx([0.099, 0.099, 0.1, 0.099, 0.099, float("nan"), float("nan")],
                                                  nan_ok=True)    # prices: mantissa x 10^-4
    assert list(ask.get_ydata()) == pytest.approx([float("nan"), 0.101, 0.101, 0.1, 0.101, 0.101, 0.101],
                                                  nan_ok=True)
    (trades,) = prices.collections
    assert trades.get_label() == "trades (3)"
    assert [tuple(point) for point in trades.get_offsets().round(6).tolist()] == [(3, 0.1), (4, 0.1), (4, 0.101)]
    buyer, seller = volume.containers
    assert buyer.get_label() == "buyer aggressor" and seller.get_label() == "seller aggressor"
    assert [bar.get_height() for bar in buyer] == [0, 0, 0, 0, 10]   # 5 buckets of 1 s; t=4 is in the last
    assert [bar.get_height() for bar in seller] == [0, 0, 0, 5, 0]
    assert prices.get_title() == "Instrument 1: 6 book updates, 3 trades, volume 15"
    assert tuple(figure.get_size_inches() * figure.dpi) == (900, 500)


def test_plot_book_command(tmp_path, journal):
    result = lob("plot", "book", journal, "--credentials", tmp_path / "credentials.txt", "--instruments", "1:1,2:1",
                 "--out", tmp_path / "book.png", "--size", "600x400")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "instrument 1: 6 book updates, 3 trades, volume 15 (also in the session: 2)",
        f"wrote {tmp_path / 'book.png'} (600x400 px)"]
    assert png_size(tmp_path / "book.png") == (600, 400)
    result = lob("plot", "book", journal, "--credentials", tmp_path / "credentials.txt", "--instruments", "1:1,2:1",
                 "--instrument", "2", "--out", tmp_path / "two.png")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "instrument 2: 1 book updates, 0 trades, volume 0 (also in the session: 1)"
    assert png_size(tmp_path / "two.png") == (1200, 700)


def test_plot_book_from_a_snapshot_starts_from_its_book(tmp_path, journal):
    from lob.snapshot import write_snapshot

    records = session_records()
    engine = fresh_engine()
    engine.process(b"".join(pack_inbound(f, t, ts) for t, ts, f in records[:-4]))   # up to t=3
    snapshot = write_snapshot(engine, tmp_path / "snapshots", journal_seq=len(records) - 4)
    result = lob("plot", "book", journal, "--credentials", tmp_path / "credentials.txt", "--instruments", "1:1,2:1",
                 "--snapshot", snapshot, "--out", tmp_path / "book.png")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "instrument 1: 3 book updates, 3 trades, volume 15 (also in the session: 2)"


@pytest.mark.parametrize("args, message", [
    (["nowhere"], "lob plot book: nowhere: no such directory"),
    (["empty"], "lob plot book: empty: no journal segments (journal-*.seg)"),
    (["journal", "--instrument", "9"], "lob plot book: --instrument 9: the engine has instruments 1, 2"),
    (["journal", "--instrument", "2", "--credentials", "missing.txt"], "lob plot book: "),
])
def test_plot_book_command_errors(tmp_path, journal, args, message):
    (tmp_path / "empty").mkdir()
    result = lob("plot", "book", *args, "--instruments", "1:1,2:1", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(message)
    assert not (tmp_path / "book.png").exists()


def test_plot_book_without_the_sessions_says_why_nothing_traded(tmp_path, journal):
    result = lob("plot", "book", journal, "--instruments", "1:1,2:1", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == (f"lob plot book: {journal}: the session produced no market data (wrong --instruments "
                             f"or --credentials? without the engine's sessions no order is accepted)\n")


def test_plot_book_names_a_corrupt_journal(tmp_path, journal):
    (segment,) = journal.glob("journal-*.seg")
    data = bytearray(segment.read_bytes())
    data[64 + 40] ^= 0xFF          # inside the first record's frame: its CRC no longer matches
    segment.write_bytes(bytes(data))
    result = lob("plot", "book", journal, "--credentials", tmp_path / "credentials.txt", "--instruments", "1:1,2:1",
                 "--out", tmp_path / "book.png")
    assert result.returncode == 2
    assert result.stderr.startswith("lob plot book: ") and "journal-" in result.stderr
