"""HDR percentile curves: read HdrHistogram percentile distributions and draw them on one chart.

The input is the standard text HdrHistogram's `outputPercentileDistribution` prints (what `lob loadgen
--hdr-out`, `lob demo --hdr-out` and `benchmarks/bench_e2e.py --hdr-dir` write, values in µs): a header
naming the columns Value, Percentile, TotalCount, 1/(1-Percentile), one row per percentile step, and
`#[...]` summary lines. Its CSV form (HdrHistogram's `useCsvFormat`) is read too.

The percentile axis is 1/(1 - percentile) on a log scale, as HdrHistogram's own plotter draws it, so
each decade of the axis is one more nine: 90%, 99%, 99.9%, ...
"""
import math
import os
import re
from dataclasses import dataclass, field

COLUMNS = ("Value", "Percentile", "TotalCount")
SUMMARY = re.compile(r"#\[\s*(\w+)\s*=\s*([-+0-9.eE]+)\s*(?:,\s*(\w+)\s*=\s*([-+0-9.eE]+))?\s*\]")


class DistributionError(ValueError):
    """A file that is not an HdrHistogram percentile distribution; the message names the file and line."""


@dataclass
class Distribution:
    """One run: values (µs) at each percentile (0..1) of the distribution, and its summary lines."""
    name: str
    values: list = field(default_factory=list)
    percentiles: list = field(default_factory=list)
    total_count: int = 0
    summary: dict = field(default_factory=dict)   # Mean, Max, TotalCount, ... from the `#[...]` lines

    @property
    def max(self):
        return self.summary.get("Max", self.values[-1] if self.values else None)

    def value_at(self, percentile):
        """The value at `percentile` (0..1): a row's value where the file has that percentile, else
        interpolated linearly between the rows around it (the file holds only its rows)."""
        previous = None
        for value, p in zip(self.values, self.percentiles):
            if p >= percentile:
                if previous is None or p == percentile or p == previous[1]:
                    return value
                v0, p0 = previous
                return v0 + (value - v0) * (percentile - p0) / (p - p0)
            previous = (value, p)
        return self.values[-1]


def read_distribution(path, name=None):
    """The Distribution in the file at `path`; DistributionError if it is missing or malformed."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise DistributionError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise DistributionError(f"{path}: is a directory, not a percentile distribution file") from None
    except UnicodeDecodeError:
        raise DistributionError(f"{path}: not text; expected an HdrHistogram percentile distribution") from None
    except OSError as exc:
        raise DistributionError(f"{path}: {exc.strerror}") from None
    return parse_distribution(text, source=path, name=name or os.path.splitext(os.path.basename(path))[0])


def parse_distribution(text, source="<text>", name=None):
    dist = Distribution(name=name or source)
    header = None
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped:
            continue
        where = f"{source}, line {number}"
        if stripped.startswith("#"):
            for match in SUMMARY.finditer(stripped):
                for key, value in ((match.group(1), match.group(2)), (match.group(3), match.group(4))):
                    if key:
                        dist.summary[key] = float(value)
            continue
        csv = "," in stripped
        cells = [c.strip().strip('"') for c in stripped.split(",")] if csv else stripped.split()
        if header is None:
            if tuple(cells[:3]) != COLUMNS:
                raise DistributionError(f"{where}: expected the header 'Value Percentile TotalCount "
                                        f"1/(1-Percentile)' of an HdrHistogram percentile distribution, "
                                        f"found {stripped[:60]!r}")
            header = cells
            continue
        if len(cells) not in (3, 4):
            raise DistributionError(f"{where}: expected 3 or 4 columns (value, percentile, count, "
                                    f"1/(1-percentile)), found {len(cells)}")
        try:
            value, percentile, count = float(cells[0]), float(cells[1]), int(cells[2])
        except ValueError:
            raise DistributionError(f"{where}: not a number in {stripped[:60]!r}") from None
        if not 0.0 <= percentile <= 1.0 or math.isnan(value):
            raise DistributionError(f"{where}: percentile {cells[1]} is outside 0..1")
        if dist.percentiles and (percentile < dist.percentiles[-1] or value < dist.values[-1]
                                 or count < dist.total_count):
            raise DistributionError(f"{where}: values, percentiles and counts must not decrease")
        dist.values.append(value)
        dist.percentiles.append(percentile)
        dist.total_count = count
    if header is None:
        raise DistributionError(f"{source}: empty, or no percentile distribution header "
                                f"('Value Percentile TotalCount 1/(1-Percentile)')")
    if not dist.values:
        raise DistributionError(f"{source}: a header but no rows (an empty histogram: the run recorded nothing)")
    return dist


def percentile_axis_position(percentile):
    """x of a percentile on the chart: 1 / (1 - percentile). None for 100% (off the log axis)."""
    return None if percentile >= 1.0 else 1.0 / (1.0 - percentile)


def percentile_label(x):
    """'99.9%' for x = 1000: the percentile at an axis position."""
    if x <= 1:
        return "0%"
    nines = round(math.log10(x))
    if abs(10 ** nines - x) < 1e-9 * x:
        return f"{100 - 100 / x:.{max(nines - 2, 0)}f}%"
    return f"{100 - 100 / x:g}%"


def latency_figure(distributions, *, title=None, width_px=1000, height_px=600, dpi=100, log_values=False):
    """A matplotlib Figure with one percentile curve per Distribution (no pyplot: no global state, no
    display). Each line's label is the run's name with its count and p99 / max."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    if not distributions:
        raise ValueError("no distributions to plot")
    figure = Figure(figsize=(width_px / dpi, height_px / dpi), dpi=dpi)
    axes = figure.add_subplot()
    widest = 10.0
    for dist in distributions:
        points = [(percentile_axis_position(p), v) for p, v in zip(dist.percentiles, dist.values) if p < 1.0]
        xs = [x for x, _ in points]
        ys = [v for _, v in points]
        widest = max(widest, xs[-1] if xs else 10.0)
        axes.plot(xs, ys, linewidth=1.5,
                  label=f"{dist.name}: {dist.total_count:,} samples, p99 {dist.value_at(0.99):,.1f}, "
                        f"max {dist.max:,.1f} µs")
    decades = max(1, math.ceil(math.log10(widest) - 1e-9))
    axes.set_xscale("log")
    axes.set_xlim(1, 10 ** decades)
    axes.xaxis.set_major_locator(FixedLocator([10 ** k for k in range(decades + 1)]))
    axes.xaxis.set_minor_locator(NullLocator())
    axes.xaxis.set_major_formatter(FuncFormatter(lambda x, _: percentile_label(x)))
    if log_values:
        axes.set_yscale("log")
    else:
        axes.set_ylim(bottom=0)
    axes.yaxis.set_major_formatter(FuncFormatter(lambda y, _: f"{y:,.0f}" if y >= 1 else f"{y:g}"))
    axes.set_xlabel("percentile")
    axes.set_ylabel("latency (µs)")
    axes.set_title(title or "Latency by percentile")
    axes.grid(True, which="major", linestyle=":", linewidth=0.8)
    axes.legend(loc="best", fontsize="small")
    figure.tight_layout()
    return figure
