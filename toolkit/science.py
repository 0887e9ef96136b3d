"""Variability and positions: pure, vectorised functions over frames (no I/O, no event loop).

Definitions follow ASKAP VAST's vast-tools. For a source with N measurements f_i, errors s_i and weights
w_i = 1/s_i^2 (<x> the mean over the N measurements):

- eta = N/(N-1) * (<w f^2> - <w f>^2 / <w>);  V = std(f, ddof=1) / mean(f);  one measurement: eta = V = 0.
- chi2 = sum w_i (f_i - weighted mean)^2, so eta is chi2 / (N_w - 1) (N_w: the measurements with a usable
  error), the reduced chi^2 about a constant flux;
  ``is_variable`` is V > 0.1, the pipeline API's flag.
- for a pair of epochs a, b (a the earlier): Vs = (f_a - f_b) / sqrt(s_a^2 + s_b^2), m = 2 (f_a - f_b) / (f_a + f_b).

Edge cases, chosen so that nothing crashes and nothing is a silent inf:
- a measurement without a finite flux is dropped;
- a measurement whose error is missing, zero or negative has no weight: it is left out of eta and of every
  Vs, but still counts for V and m (which use no errors);
- V is NaN where the mean flux is 0; m is NaN for a pair whose fluxes sum to 0; eta and V are NaN for a
  source with no weighted measurement.

No Python code runs per source: sums use ``np.bincount``; the pair metrics are computed for blocks of sources
at once on padded (source x epoch x epoch) arrays, whose size is bounded so memory stays flat.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .arguments import is_finite_number
from .errors import ValidationError

if TYPE_CHECKING:
    from astropy.coordinates import SkyCoord
    from astropy.table import Table

# Elements per padded (sources x epochs x epochs) block: ~8 MB per float64 temporary.
PAIR_BLOCK_ELEMENTS = 1_000_000
VS_DEFAULT = 4.3
M_DEFAULT = 0.26
# The pipeline API's is_variable: V (fractional variability, std / mean) above 0.1.
IS_VARIABLE_V = 0.1


# ------------------------------------------------------------------------------ shaping the input
@dataclass(frozen=True)
class _Sorted:
    """Measurements sorted by source then MJD, with each row's source code and rank within its source."""

    names: np.ndarray  # source ids, by code
    code: np.ndarray
    rank: np.ndarray
    counts: np.ndarray
    mjd: np.ndarray
    flux: np.ndarray
    err: np.ndarray  # NaN where the error gives no weight


def _sorted(frame: pd.DataFrame, source: str, flux: str, err: str) -> _Sorted:
    for column in (source, "mjd", flux, err):
        if column not in frame:
            raise ValidationError(f"the measurements frame has no {column!r} column")
    f = pd.to_numeric(frame[flux], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    keep = np.isfinite(f) & frame[source].notna().to_numpy(dtype=bool)
    codes, names = pd.factorize(frame[source][keep], sort=True)
    mjd = pd.to_numeric(frame["mjd"][keep], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    order = np.lexsort((mjd, codes))
    code = np.asarray(codes)[order]
    counts = np.bincount(code, minlength=len(names))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    s = pd.to_numeric(frame[err][keep], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)[order]
    s[~(s > 0)] = np.nan
    return _Sorted(
        names=np.asarray(names, dtype=object),
        code=code,
        rank=np.arange(len(code)) - starts[code],
        counts=counts,
        mjd=mjd[order],
        flux=f[keep][order],
        err=s,
    )


# ------------------------------------------------------------------------------ per-source metrics
def _per_source(d: _Sorted) -> pd.DataFrame:
    k = len(d.names)

    def total(values: np.ndarray) -> np.ndarray:
        return np.bincount(d.code, weights=values, minlength=k)

    n = d.counts.astype("float64")
    f = d.flux
    weighted = np.isfinite(d.err)
    w = np.where(weighted, 1.0 / np.where(weighted, d.err, 1.0) ** 2, 0.0)
    sw = total(w)
    with np.errstate(divide="ignore", invalid="ignore"):
        # Two passes (deviations from the means), not sums of squares: those cancel catastrophically for
        # nearly constant fluxes (hypothesis found V = 2e-8 where the truth is 1e-16).
        wmean = np.where(sw > 0, total(w * f) / np.where(sw > 0, sw, 1.0), np.nan)
        mean = total(f) / n
    maxf = np.full(k, -np.inf)
    np.maximum.at(maxf, d.code, f)
    minf = np.full(k, np.inf)
    np.minimum.at(minf, d.code, f)
    return _metrics(
        d.names, n, mean, wmean,
        weighted_n=total(weighted.astype("float64")),
        squares=total((f - mean[d.code]) ** 2),
        chi2=total(w * (f - np.nan_to_num(wmean)[d.code]) ** 2),
        highest=maxf, lowest=minf,
    )  # fmt: skip


def _metrics(
    names: Any,
    n: np.ndarray,
    mean: np.ndarray,
    wmean: np.ndarray,
    *,
    weighted_n: np.ndarray,
    squares: np.ndarray,
    chi2: np.ndarray,
    highest: np.ndarray,
    lowest: np.ndarray,
) -> pd.DataFrame:
    """The per-source frame from each source's count, means and second-pass sums (``squares``: the sum of
    (f - mean)^2; ``chi2``: of w (f - weighted mean)^2), computed here or by the database. ``mean``,
    ``wmean``, ``highest`` and ``lowest`` become the answer's columns without a copy: arrays no one else holds."""
    with np.errstate(divide="ignore", invalid="ignore"):
        # <w f^2> - <w f>^2 / <w> = (1/N) sum w (f - weighted mean)^2, so eta = sum w (f - wmean)^2 / (N - 1)
        chi2 = np.where(weighted_n == 0, np.nan, chi2)
        eta = np.where(weighted_n == 1, 0.0, chi2 / (weighted_n - 1))
        std = np.where(n == 1, 0.0, np.sqrt(squares / (n - 1)))
        v = np.where(n == 1, 0.0, np.where(mean == 0, np.nan, std / mean))
    return pd.DataFrame(
        {
            "source_id": pd.array(names, dtype="str"),
            "n": n.astype("int64"),
            "mean_flux": mean,
            "weighted_mean_flux": wmean,
            "max_flux": highest,
            "min_flux": lowest,
            "std_flux_jy": std,
            "eta": eta,
            "v": v,
            "chi2": chi2,
            "chi2_reduced": eta.copy(),  # its own array: an edit of one column must not change the other
        },
        copy=False,  # not consolidated into one block: that copy doubled the answer's memory for a moment
    )


# The columns of the database's per-source sums (``sources.variability(pairs=False)``), in order.
SUMS_COLUMNS = ["source_id", "n", "mean", "wmean", "lowest", "highest", "weighted_n", "squares", "chi2"]


def variability_from_sums(sums: pd.DataFrame, *, min_measurements: int = 2) -> pd.DataFrame:
    """:func:`variability` without the pair columns, from the per-source sums the database computed
    (``SUMS_COLUMNS``); sorted by source id as that function sorts.

    One row a source, so at survey scale this is the call's whole memory: the ids stay Arrow strings (sorted
    by Arrow in code-point order, as Python sorts), a column is reordered only when the database did not
    already return them in order, and no frame is copied. At 100,000 sources the peak above the sums fell
    from 24 MiB to 10 MiB, the answer's own size."""
    ids = sums["source_id"].array
    order = np.asarray(ids.argsort(kind="stable"))
    in_order = bool((order == np.arange(len(order))).all())  # SQLite's GROUP BY walks the index in order

    def column(name: str, *, kept: bool = False) -> np.ndarray:
        """``kept``: the answer holds it as it is, so it must be an array of its own (not a view of
        ``sums``, which may be read-only or the caller's)."""
        values = pd.to_numeric(sums[name], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        if not in_order:
            reordered: np.ndarray = values[order]
            return reordered
        return values.copy() if kept else values

    out = _metrics(
        ids if in_order else ids.take(order), column("n"), column("mean", kept=True),
        column("wmean", kept=True), weighted_n=column("weighted_n"), squares=column("squares"),
        chi2=np.nan_to_num(column("chi2")),  # no weighted row: the database's SUM is NULL
        highest=column("highest", kept=True), lowest=column("lowest", kept=True),
    )  # fmt: skip
    return _flagged(out, min_measurements)


def _flagged(out: pd.DataFrame, min_measurements: int) -> pd.DataFrame:
    with np.errstate(invalid="ignore"):
        out["is_variable"] = np.nan_to_num(out["v"].to_numpy(), nan=0.0) > IS_VARIABLE_V
    kept = out["n"].to_numpy() >= min_measurements
    if kept.all():  # the usual case: no second copy of the answer
        return out
    return out[kept].reset_index(drop=True)


def _blocks(counts: np.ndarray) -> list[tuple[int, int, int]]:
    """(first source, last source + 1, padded width) blocks whose padded pair arrays stay under the budget.

    Sources are visited in order of count so that a block pads to its own widest source, not the site's.
    """
    out: list[tuple[int, int, int]] = []
    start = 0
    k = len(counts)
    while start < k:
        width = max(1, int(counts[start]))
        end = start + 1
        while end < k:
            wider = max(width, int(counts[end]))
            if (end + 1 - start) * wider * wider > PAIR_BLOCK_ELEMENTS:
                break
            width, end = wider, end + 1
        out.append((start, end, width))
        start = end
    return out


def _pair_blocks(d: _Sorted) -> Any:
    """Yield (source codes, F, S, MJD) padded blocks: rows = sources, columns = epochs, NaN padding."""
    by_count = np.argsort(d.counts, kind="stable")
    position = np.empty_like(by_count)
    position[by_count] = np.arange(len(by_count))
    row_order = np.argsort(position[d.code], kind="stable")  # rows grouped in by-count source order
    sorted_counts = d.counts[by_count]
    row_starts = np.concatenate([[0], np.cumsum(sorted_counts)])
    for first, last, width in _blocks(sorted_counts):
        rows = row_order[row_starts[first] : row_starts[last]]
        local = position[d.code[rows]] - first
        shape = (last - first, width)
        fluxes, errors, mjds = (np.full(shape, np.nan) for _ in range(3))
        fluxes[local, d.rank[rows]] = d.flux[rows]
        errors[local, d.rank[rows]] = d.err[rows]
        mjds[local, d.rank[rows]] = d.mjd[rows]
        yield by_count[first:last], fluxes, errors, mjds


def _pair_metrics(
    fa: np.ndarray, fb: np.ndarray, sa: np.ndarray, sb: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    with np.errstate(divide="ignore", invalid="ignore"):
        vs = (fa - fb) / np.sqrt(sa * sa + sb * sb)
        total = fa + fb
        m = np.where(total == 0, np.nan, 2 * (fa - fb) / total)
    return vs, m


def _largest_pair_metrics(fluxes: np.ndarray, errors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row of a padded block: the largest |Vs| and |m| over its epoch pairs (NaN where none is defined).

    Only the upper triangle (a < b) is computed, in place where possible: this loop is the whole cost of
    ``variability`` (100 epochs are 4,950 pairs per source).
    """
    a, b = np.triu_indices(fluxes.shape[1], k=1)
    if not len(a):
        return np.full(len(fluxes), np.nan), np.full(len(fluxes), np.nan)
    fa, fb = fluxes[:, a], fluxes[:, b]
    diff = np.abs(fa - fb)
    var = errors * errors
    scratch = var[:, a]
    scratch += var[:, b]
    np.sqrt(scratch, out=scratch)
    with np.errstate(divide="ignore", invalid="ignore"):
        np.divide(diff, scratch, out=scratch)
        vs = np.fmax.reduce(scratch, axis=1)  # fmax skips NaN (pairs without weight, padding)
        # Where every flux is positive, |m| grows with f_a and falls with f_b, so its largest value is the
        # (max, min) pair: no pair loop needed. Other rows (a flux <= 0) take the pairs.
        hi, lo = np.fmax.reduce(fluxes, axis=1), np.fmin.reduce(fluxes, axis=1)
        m = 2 * (hi - lo) / (hi + lo)
        rest = ~(lo > 0)
        if rest.any():
            total = np.abs(fa[rest] + fb[rest])
            total[total == 0] = np.nan  # m is undefined where the fluxes sum to 0
            m[rest] = 2 * np.fmax.reduce(diff[rest] / total, axis=1)
    return vs, m


def variability(
    frame: pd.DataFrame,
    *,
    source: str = "source_id",
    flux: str = "flux_jy",
    err: str = "flux_err_jy",
    min_measurements: int = 2,
) -> pd.DataFrame:
    """Per source: n, mean / weighted mean / max / min flux, ``std_flux_jy`` (ddof=1), eta, V, ``chi2``
    (sum of w (f - weighted mean)^2), ``chi2_reduced`` (chi2 / (N_w - 1), N_w the measurements with an error: eta), the largest |Vs| and
    |m| over its epoch pairs (0 for a source with one measurement), and ``is_variable``: V > 0.1, the
    pipeline API's flag. Sorted by source id."""
    d = _sorted(frame, source, flux, err)
    out = _per_source(d)
    vs_max = np.zeros(len(d.names))
    m_max = np.zeros(len(d.names))
    for codes, fluxes, errors, _ in _pair_blocks(d):
        vs_max[codes], m_max[codes] = _largest_pair_metrics(fluxes, errors)
    single = d.counts == 1
    vs_max[single] = 0.0
    m_max[single] = 0.0
    out["vs_max_abs"] = vs_max
    out["m_max_abs"] = m_max
    return _flagged(out, min_measurements)


def two_epoch(
    frame: pd.DataFrame,
    *,
    vs: float = VS_DEFAULT,
    m: float = M_DEFAULT,
    source: str = "source_id",
    flux: str = "flux_jy",
    err: str = "flux_err_jy",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(candidate sources, candidate pairs): the pairs with |Vs| > vs and |m| > m, a the earlier epoch."""
    check_two_epoch_thresholds(vs, m)
    d = _sorted(frame, source, flux, err)
    # A candidate is kept as the sorted rows of its two epochs (16 bytes), and its columns are built once at
    # the end: two_epoch's answer is the one thing here that grows with the table (3M pairs at 10M rows).
    starts = np.concatenate([[0], np.cumsum(d.counts)[:-1]]).astype(np.intp)  # each source's first row
    found_a: list[np.ndarray] = []
    found_b: list[np.ndarray] = []
    for codes, fluxes, errors, _ in _pair_blocks(d):
        a, b = np.triu_indices(fluxes.shape[1], k=1)
        pair_vs, pair_m = _pair_metrics(fluxes[:, a], fluxes[:, b], errors[:, a], errors[:, b])
        with np.errstate(invalid="ignore"):
            rows, cols = np.nonzero((np.abs(pair_vs) > vs) & (np.abs(pair_m) > m))
        del pair_vs, pair_m
        found_a.append(starts[codes[rows]] + a[cols])
        found_b.append(starts[codes[rows]] + b[cols])
    first = np.concatenate(found_a) if found_a else np.zeros(0, dtype=np.intp)
    second = np.concatenate(found_b) if found_b else np.zeros(0, dtype=np.intp)
    del found_a, found_b
    # (source, mjd_a, mjd_b) order; lexsort is stable, so equal MJDs keep the order the pairs were found in
    order = np.lexsort((d.mjd[second], d.mjd[first], d.code[first]))
    first, second = first[order], second[order]
    del order
    code = d.code[first]
    pair_vs, pair_m = _pair_metrics(d.flux[first], d.flux[second], d.err[first], d.err[second])
    pairs = pd.DataFrame(
        {
            "source_id": _names_at(d.names, code),
            "mjd_a": d.mjd[first],
            "mjd_b": d.mjd[second],
            "flux_a": d.flux[first],
            "flux_b": d.flux[second],
            "vs": pair_vs,
            "m": pair_m,
        }
    )
    counted = np.bincount(code, minlength=len(d.names))
    has = np.flatnonzero(counted)
    vs_max, m_max = np.zeros(len(d.names)), np.zeros(len(d.names))
    np.maximum.at(vs_max, code, np.abs(pair_vs))
    np.maximum.at(m_max, code, np.abs(pair_m))
    sources = pd.DataFrame(
        {
            "source_id": pd.array(d.names[has], dtype="str"),
            "n_pairs": counted[has].astype("int64"),
            "vs_max_abs": vs_max[has],
            "m_max_abs": m_max[has],
        }
    )
    return sources, pairs


def _names_at(names: np.ndarray, codes: np.ndarray) -> Any:
    """``names[codes]`` as a pandas string array built by Arrow from the few names (half the memory of
    one Python reference per row, and no Python string per row)."""
    import pyarrow as pa

    dictionary = pa.array([str(n) for n in names], type=pa.large_string())
    strings = pa.DictionaryArray.from_arrays(pa.array(codes.astype("int32")), dictionary)
    return pd.array(strings.cast(pa.large_string()), dtype="str")


@dataclass(frozen=True)
class EtaVResult:
    """eta-V thresholds and the sources above both."""

    eta_cutoff: float
    v_cutoff: float
    eta_fit: tuple[float, float]  # (mu, sigma) of log10 eta after clipping
    v_fit: tuple[float, float]
    eta_sigma: float
    v_sigma: float
    metrics: pd.DataFrame  # every source's variability metrics
    candidates: pd.DataFrame

    def _repr_html_(self) -> str:
        head = (
            f"<b>eta-V</b>: eta &gt; {self.eta_cutoff:.4g} ({self.eta_sigma:g} sigma), "
            f"V &gt; {self.v_cutoff:.4g} ({self.v_sigma:g} sigma): {len(self.candidates)} of "
            f"{len(self.metrics)} sources"
        )
        return head + str(self.candidates.head(20).to_html(index=False))


MAX_SIGMA = 50.0


def log_gaussian_cutoff(values: np.ndarray, n_sigma: float) -> tuple[float, tuple[float, float]]:
    """10^(mu + n sigma) of a Gaussian fitted to log10(values) after 3-sigma clipping (MAD-based std)."""
    from astropy.stats import sigma_clip
    from scipy.stats import norm

    positive = values[np.isfinite(values) & (values > 0)]
    if len(positive) < 3:
        raise ValidationError(f"eta-V needs at least 3 sources with positive metrics, got {len(positive)}")
    clipped = sigma_clip(np.log10(positive), sigma=3, stdfunc="mad_std", maxiters=None)
    kept = np.asarray(clipped.compressed(), dtype="float64")
    mu, sigma = norm.fit(kept)
    return float(10 ** (mu + n_sigma * sigma)), (float(mu), float(sigma))


def eta_v(metrics: pd.DataFrame, *, eta_sigma: float = 2.0, v_sigma: float = 2.0) -> EtaVResult:
    """Cutoffs from the eta and V distributions of ``metrics`` (the output of :func:`variability`)."""
    # Beyond ~50 sigma the cutoff 10**(mu + n sigma) is no longer a finite number.
    _check_positive(eta_sigma, "eta_sigma", allow_zero=True, high=MAX_SIGMA)
    _check_positive(v_sigma, "v_sigma", allow_zero=True, high=MAX_SIGMA)
    eta_cut, eta_fit = log_gaussian_cutoff(metrics["eta"].to_numpy(dtype="float64"), eta_sigma)
    v_cut, v_fit = log_gaussian_cutoff(metrics["v"].to_numpy(dtype="float64"), v_sigma)
    candidates = metrics[(metrics["eta"] > eta_cut) & (metrics["v"] > v_cut)].reset_index(drop=True)
    return EtaVResult(eta_cut, v_cut, eta_fit, v_fit, eta_sigma, v_sigma, metrics, candidates)


# ------------------------------------------------------------------------------------- positions
# What one measurement costs while the science calls compute (the four columns read through Arrow, the
# frame, and numpy's temporaries), measured at about 200 bytes; the margin keeps the peak under the budget.
BYTES_PER_ROW = 256


def group_ends(counts: Sequence[int], budget_rows: int) -> list[int]:
    """Where each group of consecutive sources ends (exclusive indexes into ``counts``, their measurements
    per source) when each group adds up to at most ``budget_rows``. A source is never split (its pairs need
    every epoch): a source with more rows than the budget is a group of its own."""
    ends: list[int] = []
    rows = 0
    start = 0
    for i, n in enumerate(counts):
        if i > start and rows + n > budget_rows:
            ends.append(i)
            start, rows = i, 0
        rows += n
    if len(counts) > start:
        ends.append(len(counts))
    return ends


def group_sources(counts: Sequence[tuple[str, int]], budget_rows: int) -> list[list[str]]:
    """Consecutive groups of the source ids in ``counts`` (in the database's own order of source ids) whose
    measurements add up to at most ``budget_rows`` (:func:`group_ends`)."""
    ids = [source_id for source_id, _ in counts]
    ends = group_ends([n for _, n in counts], budget_rows)
    return [ids[start:end] for start, end in zip([0, *ends][:-1], ends, strict=True)]


def chunk_sources(
    counts: pd.DataFrame | Sequence[tuple[Any, int]], budget_rows: int
) -> list[tuple[str, str]]:
    """:func:`group_ends`' groups as (first, last) source ids, so that ``BETWEEN first AND last`` reads a
    group as one index range (every source of the table is in some group). ``counts`` is a frame of
    (``source_id``, ``n``) as the database's GROUP BY gives it, or rows of them, in the database's order of
    ids; a row without an id is left out. Only the groups' ends become Python strings."""
    if not isinstance(counts, pd.DataFrame):
        counts = pd.DataFrame(list(counts), columns=["source_id", "n"], dtype=object)
    counts = counts[counts["source_id"].notna()]
    ids = counts["source_id"]
    ends = group_ends(pd.to_numeric(counts["n"]).to_numpy(dtype="int64").tolist(), budget_rows)
    return [
        (str(ids.iat[start]), str(ids.iat[end - 1])) for start, end in zip([0, *ends][:-1], ends, strict=True)
    ]


# What one candidate pair costs at most while its group is computed: two row numbers and their sort order
# (24 bytes), then the pairs frame's seven columns (about 60); the margin covers a caller's copy.
BYTES_PER_PAIR = 96


def pair_weighted(counts: Sequence[tuple[str, int]]) -> list[tuple[str, int]]:
    """``counts`` weighed for :func:`group_sources` by what a source's two-epoch part can cost: its rows
    plus, in rows' worth of memory, every one of its n(n-1)/2 epoch pairs being a candidate. So a group
    of whole sources stays under the budget with its answer, not just with the rows it reads."""
    weighed = []
    for source_id, n in counts:
        pairs = n * (n - 1) // 2
        weighed.append((source_id, n - (-pairs * BYTES_PER_PAIR // BYTES_PER_ROW)))  # rounded up
    return weighed


# The smallest error whose square (and the sum of two) is a normal float64, with room to spare.
_SMALLEST_SQUARABLE = 1e-150


# The columns of per-source bounds, as the database's GROUP BY gives them (domains.sources.per_source_counts).
BOUND_COLUMNS = ("source_id", "n", "lowest", "highest", "smallest")


def two_epoch_possible(
    bounds: pd.DataFrame | Sequence[Sequence[Any]], *, vs: float, m: float
) -> list[tuple[str, int]]:
    """(source id, count) of the sources that can have an epoch pair with |Vs| > vs and |m| > m, from
    ``bounds`` (a frame of :data:`BOUND_COLUMNS`, or rows of them): each source's count, lowest and highest
    flux and smallest usable error, which the database computed: the rows of the other sources are never
    read.

    Any pair has |f_a - f_b| <= highest - lowest and sqrt(s_a^2 + s_b^2) >= sqrt(2) smallest error; where
    every flux is positive, |m| is largest for the (highest, lowest) pair. A source with no usable error
    (none, or only values that are not numbers, which the pair loop drops too) has no Vs at all. A flux
    bound that is not a finite number (a damaged cell the database compared as text, an infinity) proves
    nothing, and that source is read."""
    if not isinstance(bounds, pd.DataFrame):
        bounds = pd.DataFrame(list(bounds), columns=list(BOUND_COLUMNS), dtype=object)
    if not len(bounds):
        return []

    def numbers(name: str) -> np.ndarray:
        return pd.to_numeric(bounds[name], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)

    lo, hi, small = numbers("lowest"), numbers("highest"), numbers("smallest")
    no_error = np.isnan(small)
    margin = 1 - 1e-9  # the pair loop rounds differently: never drop a source on its last bit
    with np.errstate(all="ignore"):
        spread = hi - lo
        known = np.isfinite(lo) & np.isfinite(hi) & np.isfinite(spread)
        no_vs = known & no_error
        # Below ~1e-154 an error's square underflows in the pair loop (sqrt(s_a^2 + s_b^2) can come out 0,
        # and |Vs| inf): such an error bounds nothing, as hypothesis found with errors of 1e-238 and 1e-300.
        usable = (small >= _SMALLEST_SQUARABLE) & np.isfinite(small)
        small_vs = known & usable & (spread / (np.sqrt(2.0) * small) <= vs * margin)
        small_m = known & (lo > 0) & (2 * spread / (hi + lo) <= m * margin)
    keep = ~(no_vs | small_vs | small_m) & bounds["source_id"].notna().to_numpy(dtype=bool)
    kept = np.flatnonzero(keep)
    ids = bounds["source_id"].to_numpy(dtype=object)[kept]
    counts = pd.to_numeric(bounds["n"]).to_numpy(dtype="int64")[kept]
    return [(str(i), int(n)) for i, n in zip(ids, counts, strict=True)]


def check_position(ra_deg: float, dec_deg: float) -> None:
    for value, name in ((ra_deg, "ra_deg"), (dec_deg, "dec_deg")):
        if not is_finite_number(value):
            raise ValidationError(f"{name} must be a finite number of degrees, got {value!r}")
    if not -90.0 <= dec_deg <= 90.0:
        raise ValidationError(f"dec_deg must be within [-90, 90], got {dec_deg}")


def check_radius(radius_arcsec: float) -> None:
    if not is_finite_number(radius_arcsec):
        raise ValidationError(f"radius_arcsec must be a finite number, got {radius_arcsec!r}")
    if radius_arcsec < 0:
        raise ValidationError(f"radius_arcsec must not be negative, got {radius_arcsec}")


def separation_deg(ra1: Any, dec1: Any, ra2: Any, dec2: Any) -> np.ndarray:
    """Great-circle distance in degrees (Vincenty's formula, as astropy: exact at 0, at 180 and at the poles)."""
    l1, b1, l2, b2 = (np.radians(np.asarray(x, dtype="float64")) for x in (ra1, dec1, ra2, dec2))
    dl = l2 - l1
    sb1, cb1, sb2, cb2 = np.sin(b1), np.cos(b1), np.sin(b2), np.cos(b2)
    num1 = cb2 * np.sin(dl)
    num2 = cb1 * sb2 - sb1 * cb2 * np.cos(dl)
    den = sb1 * sb2 + cb1 * cb2 * np.cos(dl)
    return np.asarray(np.degrees(np.arctan2(np.hypot(num1, num2), den)))


def cone(positions: pd.DataFrame, ra_deg: float, dec_deg: float, radius_arcsec: float) -> pd.DataFrame:
    """Rows of ``positions`` (ra_deg, dec_deg columns) within the radius, nearest first, with ``sep_arcsec``."""
    check_position(ra_deg, dec_deg)
    check_radius(radius_arcsec)
    sep = separation_deg(ra_deg, dec_deg, positions["ra_deg"], positions["dec_deg"]) * 3600.0
    found = positions.assign(sep_arcsec=sep)[sep <= radius_arcsec]
    return found.sort_values("sep_arcsec", kind="stable", ignore_index=True)


def _unit_vectors(ra_deg: np.ndarray, dec_deg: np.ndarray) -> np.ndarray:
    ra, dec = np.radians(ra_deg), np.radians(dec_deg)
    return np.column_stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)])


def catalog_positions(catalog: Any) -> tuple[np.ndarray, np.ndarray]:
    """(ra_deg, dec_deg) arrays from a DataFrame (ra_deg/dec_deg or ra/dec columns), an astropy Table or a
    SkyCoord."""
    if hasattr(catalog, "ra") and hasattr(catalog, "dec") and hasattr(catalog, "frame"):  # SkyCoord
        icrs = catalog.icrs
        return np.atleast_1d(icrs.ra.deg).astype("float64"), np.atleast_1d(icrs.dec.deg).astype("float64")
    names = list(getattr(catalog, "colnames", None) or getattr(catalog, "columns", []))
    for ra_name, dec_name in (("ra_deg", "dec_deg"), ("ra", "dec"), ("RA", "DEC"), ("RAJ2000", "DEJ2000")):
        if ra_name in names and dec_name in names:
            try:
                ra = np.asarray(catalog[ra_name], dtype="float64")
                dec = np.asarray(catalog[dec_name], dtype="float64")
            except (TypeError, ValueError, OverflowError) as exc:
                raise ValidationError(
                    f"catalog columns {ra_name}/{dec_name} must hold numbers: {exc}"
                ) from exc
            if not (np.all(np.isfinite(dec)) and np.all(np.abs(dec) <= 90)):
                raise ValidationError(f"catalog column {dec_name} has values outside [-90, 90] or missing")
            return ra, dec
    raise ValidationError(
        "a catalog needs ra_deg/dec_deg (or ra/dec) columns in degrees, or is an astropy SkyCoord; "
        f"got columns {names}"
    )


def crossmatch(sources: pd.DataFrame, catalog: Any, radius_arcsec: float) -> pd.DataFrame:
    """For each catalog row, the nearest source within the radius: catalog_index, source_id, the source's
    position and sep_arcsec (NA where no source is that close)."""
    from scipy.spatial import cKDTree

    check_radius(radius_arcsec)
    ra, dec = catalog_positions(catalog)
    out = pd.DataFrame({"catalog_index": np.arange(len(ra)), "ra_deg": ra, "dec_deg": dec})
    source_ids = pd.array([None] * len(ra), dtype="str")
    seps = np.full(len(ra), np.nan)
    if len(sources) and len(ra):
        tree = cKDTree(_unit_vectors(sources["ra_deg"].to_numpy(float), sources["dec_deg"].to_numpy(float)))
        chord = 2 * np.sin(np.radians(radius_arcsec / 3600.0) / 2)
        distance, index = tree.query(_unit_vectors(ra, dec), k=1, distance_upper_bound=chord * (1 + 1e-9))
        hit = np.isfinite(distance)
        idx = index[hit]
        seps[hit] = (
            separation_deg(
                ra[hit],
                dec[hit],
                sources["ra_deg"].to_numpy(float)[idx],
                sources["dec_deg"].to_numpy(float)[idx],
            )
            * 3600.0
        )
        source_ids[hit] = sources["source_id"].to_numpy(dtype=object)[idx]
    return out.assign(source_id=source_ids, sep_arcsec=seps)


# -------------------------------------------------------------------------------------- astropy
def to_skycoord(frame: pd.DataFrame) -> SkyCoord:
    """The frame's positions (ra_deg, dec_deg) as an ICRS SkyCoord."""
    import astropy.units as u
    from astropy.coordinates import SkyCoord

    ra, dec = catalog_positions(frame)
    return SkyCoord(ra=ra * u.deg, dec=dec * u.deg, frame="icrs")


def to_astropy(frame: pd.DataFrame) -> Table:
    """The frame as an astropy Table, with degrees on position columns and a ``coord`` SkyCoord column."""
    import astropy.units as u
    from astropy.table import Table

    table = Table.from_pandas(frame.reset_index(drop=True))
    for name in table.colnames:
        if name.endswith("_deg"):
            table[name].unit = u.deg
        elif name.endswith("_arcsec"):
            table[name].unit = u.arcsec
    if {"ra_deg", "dec_deg"} <= set(frame.columns):
        table["coord"] = to_skycoord(frame)
    return table


def check_two_epoch_thresholds(vs: float, m: float) -> None:
    _check_positive(vs, "vs")
    _check_positive(m, "m")


def _check_positive(value: float, name: str, *, allow_zero: bool = False, high: float | None = None) -> None:
    ok = is_finite_number(value)
    if not ok or value < 0 or (value == 0 and not allow_zero):
        raise ValidationError(f"{name} must be a positive number, got {value!r}")
    if high is not None and value > high:
        raise ValidationError(f"{name} must be at most {high:g}, got {value!r}")


FLUX_COLUMNS: dict[str, str] = {
    "flux_jy": "flux_err_jy",
    "peak_jyb": "peak_err_jyb",
    "normalized_flux_jy": "normalized_flux_err_jy",
}


def flux_and_error(flux: str) -> tuple[str, str]:
    if not isinstance(flux, str) or flux not in FLUX_COLUMNS:
        raise ValidationError(f"unknown flux column {flux!r}; choose one of {', '.join(FLUX_COLUMNS)}")
    return flux, FLUX_COLUMNS[flux]


def needed_columns(flux: str) -> Sequence[str]:
    flux, err = flux_and_error(flux)
    return ["source_id", "mjd", flux, err]
