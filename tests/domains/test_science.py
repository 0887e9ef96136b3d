"""Science: variability metrics against hand-written definitions, properties, positions against astropy,
and client.sources on the demo site (whose variable sources and transient must be found)."""

from __future__ import annotations

import itertools
import math
import random

import numpy as np
import pandas as pd
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord, match_coordinates_sky
from astropy.table import Table
from hypothesis import example, given, settings
from hypothesis import strategies as st
from matplotlib.figure import Figure

from toolkit import AsyncClient, ValidationError, plots, science
from toolkit.demo import DemoSite


def frame_of(rows: list[tuple[str, float, float, float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["source_id", "mjd", "flux_jy", "flux_err_jy"])


def by_hand(f: list[float], s: list[float]) -> tuple[float, float, float, float]:
    """eta, V, max |Vs|, max |m| straight from the definitions, in plain Python."""
    n = len(f)
    if n == 1:
        return 0.0, 0.0, 0.0, 0.0
    w = [1 / e**2 for e in s]
    mean = lambda xs: sum(xs) / n  # noqa: E731
    eta = (
        n
        / (n - 1)
        * (
            mean([wi * fi * fi for wi, fi in zip(w, f, strict=True)])
            - mean([wi * fi for wi, fi in zip(w, f, strict=True)]) ** 2 / mean(w)
        )
    )
    mu = sum(f) / n
    v = math.sqrt(sum((x - mu) ** 2 for x in f) / (n - 1)) / mu
    pairs = list(itertools.combinations(range(n), 2))
    vs = max(abs(f[a] - f[b]) / math.sqrt(s[a] ** 2 + s[b] ** 2) for a, b in pairs)
    m = max(abs(2 * (f[a] - f[b]) / (f[a] + f[b])) for a, b in pairs)
    return eta, v, vs, m


def test_metrics_match_the_definitions() -> None:
    f, s = [1.0, 2.0, 4.0, 3.5], [0.1, 0.2, 0.1, 0.4]
    rows = [("A", float(i), fi, si) for i, (fi, si) in enumerate(zip(f, s, strict=True))] + [
        ("B", 0.0, 5.0, 0.5)
    ]
    out = science.variability(frame_of(rows), min_measurements=1).set_index("source_id")
    eta, v, vs, m = by_hand(f, s)
    assert out.loc["A", "eta"] == pytest.approx(eta, rel=1e-12)
    assert out.loc["A", "v"] == pytest.approx(v, rel=1e-12)
    assert out.loc["A", "vs_max_abs"] == pytest.approx(vs, rel=1e-12)
    assert out.loc["A", "m_max_abs"] == pytest.approx(m, rel=1e-12)
    assert out.loc["A", "weighted_mean_flux"] == pytest.approx(
        sum(x / e**2 for x, e in zip(f, s, strict=True)) / sum(1 / e**2 for e in s)
    )
    assert (out.loc["A", "max_flux"], out.loc["A", "min_flux"], out.loc["A", "n"]) == (4.0, 1.0, 4)
    assert tuple(out.loc["B", ["eta", "v", "vs_max_abs", "m_max_abs"]]) == (0.0, 0.0, 0.0, 0.0)
    assert list(science.variability(frame_of(rows))["source_id"]) == ["A"]  # min_measurements=2


def test_two_epoch_pairs_are_signed_and_thresholded() -> None:
    rows = [
        ("A", 1.0, 1.0, 0.05),
        ("A", 2.0, 2.0, 0.05),
        ("A", 3.0, 1.02, 0.05),
        ("B", 1.0, 1.0, 0.05),
        ("B", 2.0, 1.01, 0.05),
    ]
    sources, pairs = science.two_epoch(frame_of(rows))
    assert list(sources["source_id"]) == ["A"] and int(sources["n_pairs"].iloc[0]) == 2
    first = pairs.iloc[0]
    assert (first["mjd_a"], first["mjd_b"]) == (1.0, 2.0)
    assert first["vs"] == pytest.approx((1.0 - 2.0) / math.sqrt(0.05**2 * 2))
    assert first["m"] == pytest.approx(2 * (1.0 - 2.0) / 3.0)
    with pytest.raises(ValidationError, match="vs must be a positive number"):
        science.two_epoch(frame_of(rows), vs=-1)


def test_bad_errors_and_fluxes_never_give_inf() -> None:
    rows = [
        ("A", 1.0, 1.0, 0.0),  # zero error: no weight
        ("A", 2.0, 2.0, -0.1),  # negative error: no weight
        ("A", 3.0, 3.0, 0.1),
        ("A", 4.0, float("nan"), 0.1),  # no flux: dropped
        ("Z", 1.0, 1.0, 0.1),
        ("Z", 2.0, -1.0, 0.1),  # mean 0: V undefined; fluxes sum to 0: m undefined
    ]
    out = science.variability(frame_of(rows)).set_index("source_id")
    assert out.loc["A", "n"] == 3 and out.loc["A", "eta"] == 0.0  # one weighted measurement
    assert out.loc["A", "v"] == pytest.approx(by_hand([1.0, 2.0, 3.0], [1, 1, 1])[1])
    assert math.isnan(out.loc["Z", "v"]) and math.isnan(out.loc["Z", "m_max_abs"])
    assert not np.isinf(out.select_dtypes("number").to_numpy()).any()


@settings(max_examples=40, deadline=None)
# The case hypothesis found: nearly equal fluxes, where sums of squares cancelled (V 2e-8, truth 1e-16).
@example(points=[(0.010000000000000002, 1.0), (0.01, 1.0)], rnd=random.Random(0), scale=0.1015625)
@given(
    st.lists(st.tuples(st.floats(0.01, 10), st.floats(0.001, 1)), min_size=2, max_size=12),
    st.randoms(use_true_random=False),
    st.floats(0.1, 100),
)
def test_metrics_properties(points: list[tuple[float, float]], rnd: object, scale: float) -> None:
    rows = [("S", float(i), f, s) for i, (f, s) in enumerate(points)]
    base = science.variability(frame_of(rows)).iloc[0]
    shuffled = rows[:]
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    again = science.variability(
        frame_of([("S", float(i), f, s) for i, (_, _, f, s) in enumerate(shuffled)])
    ).iloc[0]
    for col in ("eta", "v", "vs_max_abs", "m_max_abs"):
        assert again[col] == pytest.approx(base[col], rel=1e-9, abs=1e-9)
    scaled = science.variability(frame_of([(a, t, f * scale, s * scale) for a, t, f, s in rows])).iloc[0]
    assert scaled["v"] == pytest.approx(base["v"], rel=1e-9, abs=1e-12)
    (fa, sa), (fb, sb) = points[0], points[1]
    vs_ab, m_ab = science._pair_metrics(np.array(fa), np.array(fb), np.array(sa), np.array(sb))
    vs_ba, m_ba = science._pair_metrics(np.array(fb), np.array(fa), np.array(sb), np.array(sa))
    assert abs(vs_ab) == pytest.approx(abs(vs_ba)) and abs(m_ab) == pytest.approx(abs(m_ba))


def test_blocked_pairs_equal_brute_force(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(5)
    rows = []
    for k in range(60):
        for t in range(int(rng.integers(1, 25))):
            # Every fifth source is faint, with fluxes below zero: the pair path for m, not the (max, min) one.
            flux = float(rng.lognormal(0, 0.5)) - (1.2 if k % 5 == 0 else 0.0)
            rows.append((f"S{k:02d}", float(t), flux, float(rng.uniform(0.01, 0.2))))
    monkeypatch.setattr(science, "PAIR_BLOCK_ELEMENTS", 700)  # many small blocks of mixed widths
    out = science.variability(frame_of(rows), min_measurements=1).set_index("source_id")
    frame = frame_of(rows)
    for name, group in frame.groupby("source_id"):
        eta, v, vs, m = by_hand(group["flux_jy"].tolist(), group["flux_err_jy"].tolist())
        assert out.loc[name, ["eta", "v", "vs_max_abs", "m_max_abs"]].tolist() == pytest.approx(
            [eta, v, vs, m], rel=1e-9
        )


# ------------------------------------------------------------------------------------- positions
@settings(max_examples=200, deadline=None)
@given(
    st.floats(0, 360, exclude_max=True),
    st.floats(-90, 90),
    st.floats(0, 360, exclude_max=True),
    st.floats(-90, 90),
)
def test_separation_agrees_with_astropy_to_a_milliarcsecond(
    ra1: float, dec1: float, ra2: float, dec2: float
) -> None:
    ours = science.separation_deg(ra1, dec1, ra2, dec2) * 3600
    theirs = SkyCoord(ra1 * u.deg, dec1 * u.deg).separation(SkyCoord(ra2 * u.deg, dec2 * u.deg)).arcsec
    assert abs(float(ours) - float(theirs)) < 1e-3


def test_cone_across_ra_zero_and_at_the_pole() -> None:
    positions = pd.DataFrame(
        {
            "source_id": ["east", "west", "far", "pole_a", "pole_b"],
            "ra_deg": [359.9995, 0.0004, 0.2, 10.0, 190.0],
            "dec_deg": [0.0, 0.0, 0.0, 89.9999, 89.9999],
        }
    )
    near_zero = science.cone(positions, 0.0, 0.0, 10.0)
    assert list(near_zero["source_id"]) == ["west", "east"]
    assert near_zero["sep_arcsec"].tolist() == pytest.approx([1.44, 1.8], abs=1e-6)
    at_pole = science.cone(positions, 100.0, 90.0, 1.0)
    assert set(at_pole["source_id"]) == {"pole_a", "pole_b"}
    for bad in (
        {"ra_deg": 0.0, "dec_deg": 91.0, "radius_arcsec": 1.0},
        {"ra_deg": 0.0, "dec_deg": 0.0, "radius_arcsec": -1.0},
    ):
        with pytest.raises(ValidationError):
            science.cone(positions, **bad)


def test_crossmatch_agrees_with_astropy() -> None:
    rng = np.random.default_rng(1)
    sources = pd.DataFrame(
        {
            "source_id": [f"S{i}" for i in range(500)],
            "ra_deg": rng.uniform(0, 360, 500),
            "dec_deg": rng.uniform(-89, 89, 500),
        }
    )
    catalog = pd.DataFrame(
        {
            "ra": sources["ra_deg"][:200] + rng.normal(0, 2e-4, 200),
            "dec": sources["dec_deg"][:200] + rng.normal(0, 2e-4, 200),
        }
    )
    catalog.loc[0, "ra"] = (catalog.loc[0, "ra"] + 1.0) % 360  # nothing near this one
    out = science.crossmatch(sources, catalog, radius_arcsec=5.0)
    idx, sep, _ = match_coordinates_sky(
        SkyCoord(catalog["ra"].to_numpy() * u.deg, catalog["dec"].to_numpy() * u.deg),
        SkyCoord(sources["ra_deg"].to_numpy() * u.deg, sources["dec_deg"].to_numpy() * u.deg),
    )
    close = sep.arcsec <= 5.0
    assert out["source_id"].isna().tolist() == (~close).tolist()
    assert out.loc[close, "source_id"].tolist() == sources["source_id"].to_numpy()[idx[close]].tolist()
    assert np.allclose(out.loc[close, "sep_arcsec"], sep.arcsec[close], atol=1e-3)
    table = Table.from_pandas(catalog)
    assert science.crossmatch(sources, table, 5.0)["source_id"].equals(out["source_id"])
    coords = SkyCoord(catalog["ra"].to_numpy() * u.deg, catalog["dec"].to_numpy() * u.deg)
    assert science.crossmatch(sources, coords, 5.0)["source_id"].equals(out["source_id"])
    with pytest.raises(ValidationError, match="ra_deg/dec_deg"):
        science.crossmatch(sources, pd.DataFrame({"x": [1.0]}), 5.0)


def test_to_astropy_has_units_and_coordinates() -> None:
    frame = pd.DataFrame({"source_id": ["a"], "ra_deg": [10.0], "dec_deg": [20.0], "sep_arcsec": [1.5]})
    table = science.to_astropy(frame)
    assert table["ra_deg"].unit == u.deg and table["sep_arcsec"].unit == u.arcsec
    assert table["coord"][0].separation(SkyCoord(10 * u.deg, 20 * u.deg)).arcsec < 1e-6


# ---------------------------------------------------------------------------------- on the demo site
async def test_demo_variables_and_transient_are_found(newer_client: AsyncClient, site: DemoSite) -> None:
    expected = {*site.variable_sources, site.transient_source}
    metrics = await newer_client.sources.variability()
    assert set(metrics.nlargest(len(expected), "eta")["source_id"]) == expected
    result = await newer_client.sources.eta_v()
    assert set(result.candidates["source_id"]) == expected
    sources, pairs = await newer_client.sources.two_epoch()
    assert expected <= set(sources["source_id"])
    assert ((pairs["vs"].abs() > 4.3) & (pairs["m"].abs() > 0.26)).all()
    assert isinstance(plots.plot_eta_v(result), Figure)
    assert isinstance(plots.plot_two_epoch(pairs), Figure)
    curve = await newer_client.sources.lightcurve(site.transient_source)
    fig = Figure()
    ax = fig.add_subplot()
    assert plots.plot_lightcurve(curve, ax=ax, time="date") is fig and ax.get_title() == site.transient_source


async def test_cone_and_crossmatch_on_the_demo_site(newer_client: AsyncClient) -> None:
    listing = await newer_client.sources.list()
    near_zero = await newer_client.sources.cone(0.0, float(listing["dec_deg"].iloc[0]), 1800.0)
    assert {0.0 <= ra < 1 or ra > 359 for ra in near_zero["ra_deg"]} == {True} and len(near_zero) >= 2
    expected = science.cone(listing, 0.0, float(listing["dec_deg"].iloc[0]), 1800.0)
    assert near_zero["source_id"].tolist() == expected["source_id"].tolist()
    matched = await newer_client.sources.crossmatch(listing[["ra_deg", "dec_deg"]].head(10), 1.0)
    assert matched["source_id"].tolist() == listing["source_id"].head(10).tolist()
    with pytest.raises(ValidationError, match="radius_arcsec must not be negative"):
        await newer_client.sources.cone(0.0, 0.0, -5.0)
    with pytest.raises(ValidationError, match=r"dec_deg must be within \[-90, 90\]"):
        await newer_client.sources.cone(0.0, 95.0, 5.0)
    with pytest.raises(ValidationError, match="unknown flux column"):
        await newer_client.sources.variability(flux="brightness")
