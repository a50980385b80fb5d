from __future__ import annotations

from lexi_maint.run.memory import CgroupLevel, MemoryReading, read_memory, tightest


def test_tightest_picks_the_highest_ratio_among_limited_levels() -> None:
    levels = [
        CgroupLevel("/a/b/job.service", current=600, high=1000, max=2000),
        CgroupLevel("/a/b", current=900, high=None, max=1000),
        CgroupLevel("/a", current=950, high=None, max=None),
        CgroupLevel("/", current=None, high=None, max=None),
    ]
    reading = tightest(levels)
    assert reading == MemoryReading(900, 1000, "cgroup /a/b memory.max")
    assert reading.ratio == 0.9


def test_no_limits_means_no_cgroup_reading() -> None:
    assert tightest([CgroupLevel("/", current=5, high=None, max=None)]) is None


def test_read_memory_returns_a_sane_reading() -> None:
    reading = read_memory()
    assert reading.limit > 0
    assert 0 <= reading.used <= reading.limit * 2
    assert reading.source
