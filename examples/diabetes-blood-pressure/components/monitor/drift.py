"""Standard drift statistics between the training data (reference) and a new batch (current), with scipy.

- numeric columns: the population stability index (PSI) over ten quantile bins of the reference, and the
  two-sample Kolmogorov-Smirnov test;
- categorical columns: the PSI over the categories, Pearson's chi-squared test of the two samples' category
  counts, the Jensen-Shannon distance (base 2: 0 same, 1 disjoint) and the share of unseen categories.

Missing values are left out of the distributions; their rates are reported on their own. A column is judged
drifted only when the shift is both large (PSI) and unlikely to be chance (the test's p-value): on a large
batch the tests call a negligible shift significant, on a small one the PSI is noisy.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import stats
from scipy.spatial.distance import jensenshannon

BINS = 10
# Proportions are floored at this before the PSI's logarithm, so that an empty bin or a new category counts as a
# large shift rather than an infinite one (the usual convention).
SMALLEST_SHARE = 1e-4
SHOWN_UNSEEN = 5  # unseen categories listed by name in the report


@dataclass(frozen=True)
class Thresholds:
    psi: float  # PSI at or above this is a large shift (0.1: moderate, 0.2 and more: significant)
    p_value: float  # a test's p-value below this is unlikely to be chance
    missing_rate_increase: float  # the batch's missing rate above the reference's by more than this
    unseen_rate: float  # share of a categorical's filled batch values that training never saw
    rmse_ratio: float  # the batch's RMSE above this multiple of the model's test RMSE


@dataclass(frozen=True)
class ColumnDrift:
    name: str
    kind: str  # numeric | categorical | prediction
    psi: float | None  # None: nothing to compare (every batch value missing)
    test: str  # ks | chi2
    statistic: float | None
    p_value: float | None
    drifted: bool
    missing_rate_reference: float
    missing_rate_batch: float
    missing_rate_increased: bool
    js_distance: float | None = None
    unseen_rate: float | None = None
    unseen_values: tuple[str, ...] = ()
    unseen_too_many: bool = False

    def as_json(self) -> dict[str, object]:
        return {key: list(value) if isinstance(value, tuple) else value for key, value in asdict(self).items()}


def shares(counts: np.ndarray) -> np.ndarray:
    return np.maximum(counts / max(counts.sum(), 1), SMALLEST_SHARE)


def population_stability_index(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
    """PSI = Σ (current share - reference share) · ln(current share / reference share), over the same bins."""
    expected, actual = shares(reference_counts), shares(current_counts)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def quantile_bin_counts(reference: np.ndarray, current: np.ndarray, bins: int = BINS) -> tuple[np.ndarray, np.ndarray]:
    """Counts of both samples in the reference's quantile bins; repeated edges (few distinct values) merge bins."""
    inner = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)[1:-1]))
    reference_bins = np.searchsorted(inner, reference, side="right")
    current_bins = np.searchsorted(inner, current, side="right")
    size = len(inner) + 1
    return np.bincount(reference_bins, minlength=size), np.bincount(current_bins, minlength=size)


def missing_rate(values: pd.Series) -> float:
    return float(values.isna().mean()) if len(values) else 0.0


def drift_flags(psi: float | None, p_value: float | None, thresholds: Thresholds) -> bool:
    return psi is not None and p_value is not None and psi >= thresholds.psi and p_value < thresholds.p_value


def numeric_drift(
    name: str, reference: pd.Series, current: pd.Series, thresholds: Thresholds, kind: str = "numeric"
) -> ColumnDrift:
    filled_reference = reference.dropna().to_numpy(dtype=float)
    filled_current = current.dropna().to_numpy(dtype=float)
    psi = statistic = p_value = None
    if len(filled_reference) and len(filled_current):
        psi = population_stability_index(*quantile_bin_counts(filled_reference, filled_current))
        test = stats.ks_2samp(filled_reference, filled_current)
        statistic, p_value = float(test.statistic), float(test.pvalue)
    return ColumnDrift(
        name=name,
        kind=kind,
        psi=psi,
        test="ks",
        statistic=statistic,
        p_value=p_value,
        drifted=drift_flags(psi, p_value, thresholds),
        **missing_rates(reference, current, thresholds),
    )


def missing_rates(reference: pd.Series, current: pd.Series, thresholds: Thresholds) -> dict[str, object]:
    before, now = missing_rate(reference), missing_rate(current)
    return {
        "missing_rate_reference": before,
        "missing_rate_batch": now,
        "missing_rate_increased": now - before > thresholds.missing_rate_increase,
    }


def categorical_drift(name: str, reference: pd.Series, current: pd.Series, thresholds: Thresholds) -> ColumnDrift:
    """The categories compared as text, as the model's encoder sees them."""
    reference_counts = reference.dropna().astype(str).value_counts()
    current_counts = current.dropna().astype(str).value_counts()
    categories = reference_counts.index.union(current_counts.index)
    expected = reference_counts.reindex(categories, fill_value=0).to_numpy()
    actual = current_counts.reindex(categories, fill_value=0).to_numpy()
    unseen = current_counts[~current_counts.index.isin(reference_counts.index)]
    unseen_rate = float(unseen.sum() / current_counts.sum()) if current_counts.sum() else 0.0
    psi = statistic = p_value = js = None
    if expected.sum() and actual.sum():
        psi = population_stability_index(expected, actual)
        js = float(jensenshannon(expected / expected.sum(), actual / actual.sum(), base=2))
        if len(categories) > 1:
            test = stats.chi2_contingency(np.vstack([expected, actual]))
            statistic, p_value = float(test.statistic), float(test.pvalue)
        else:  # one category on both sides: nothing has moved
            statistic, p_value = 0.0, 1.0
    return ColumnDrift(
        name=name,
        kind="categorical",
        psi=psi,
        test="chi2",
        statistic=statistic,
        p_value=p_value,
        drifted=drift_flags(psi, p_value, thresholds),
        js_distance=js,
        unseen_rate=unseen_rate,
        unseen_values=tuple(unseen.index[:SHOWN_UNSEEN]),
        unseen_too_many=unseen_rate > thresholds.unseen_rate,
        **missing_rates(reference, current, thresholds),
    )
