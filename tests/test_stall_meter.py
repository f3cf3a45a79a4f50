"""lob.tools.stalls: the platform stall meter benchmarks/bench_e2e.py prints beside its percentiles."""
import pytest

from lob.tools.stalls import measure


def test_every_gap_above_the_threshold_is_counted_and_summed():
    # A 1 ns threshold counts (nearly) every gap between two clock readings: together they are the run.
    r = measure(0.05, threads=2, threshold_us=0.001)
    assert len(r["threads"]) == 2
    for t in r["threads"]:
        assert t["stalls"] > 1000
        assert 0.999 < t["lost_fraction"] <= 1.0
        assert 0 <= t["stalls_over_1ms"] <= t["stalls"]
        assert t["max_us"] > 0
    assert r["stalls"] == max(t["stalls"] for t in r["threads"])
    assert r["max_us"] == max(t["max_us"] for t in r["threads"])


def test_a_threshold_longer_than_the_run_counts_nothing():
    r = measure(0.02, threads=1, threshold_us=10_000_000)
    assert (r["stalls"], r["stalls_over_1ms"], r["max_us"], r["lost_fraction"]) == (0, 0, 0.0, 0.0)


@pytest.mark.parametrize("kwargs", [{"seconds": 0}, {"threads": 0}, {"threshold_us": -1}])
def test_bad_arguments_are_refused(kwargs):
    with pytest.raises(ValueError, match="must be positive"):
        measure(**{"seconds": 0.01, **kwargs})
