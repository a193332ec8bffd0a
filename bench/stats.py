"""Order statistics for small samples (nearest-rank: no interpolation between samples)."""

import math
import statistics
from collections.abc import Sequence


def percentile(samples: Sequence[float], pct: float) -> float:
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def median(samples: Sequence[float]) -> float:
    return statistics.median(samples) if samples else float("nan")


def ratio(value: float, baseline: float) -> float:
    return value / baseline if baseline else float("nan")
