"""Summary figures of measured times, shared by the benchmark scripts."""

from __future__ import annotations

import statistics
from typing import Sequence


def median_p95(times_s: Sequence[float]) -> tuple[float, float]:
    """Median and 95th percentile (inclusive method; a single sample is both)."""
    median = statistics.median(times_s)
    p95 = statistics.quantiles(times_s, n=20, method="inclusive")[18] if len(times_s) > 1 else times_s[0]
    return median, p95
