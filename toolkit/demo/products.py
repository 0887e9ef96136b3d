"""Images (four per imaged MS plus mosaics) and forced photometry (variable sources and one transient)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..mjd import mjd_to_unix
from ..vocab import IMAGE_TYPES
from .naming import DSA110_DEC, IMAGE_ROOT, MS_ROOT, py, source_name
from .observations import Observations
from .site import DemoSize

# The pipeline's products carry the odd surprise; the demo plants a few on purpose.
N_VARIABLE_FRACTION = 0.01
TRANSIENT_SOURCE_INDEX = 7


@dataclass(frozen=True)
class Images:
    data: dict[str, Any]
    peak: np.ndarray  # peak brightness per image row (image_qa reports it)


@dataclass(frozen=True)
class Photometry:
    data: dict[str, Any]
    variable_sources: tuple[str, ...]
    transient_source: str


def images(obs: Observations, size: DemoSize, rng: np.random.Generator) -> Images:
    ms = obs.data
    imaged = obs.reached("imaged")
    n = size.n_images
    n_mosaic = max(2, n // 200)
    n_regular = n - n_mosaic
    types = [t for t in IMAGE_TYPES if t != "mosaic"]  # mosaics are made below, from many MS
    owner = imaged[np.arange(n_regular) % len(imaged)]
    kind = [types[min(i // len(imaged), len(types) - 1)] for i in range(n_regular)]
    ms_paths: list[str | None] = [ms["path"][i] for i in owner]
    paths = [
        f"{ms['path'][i].replace(MS_ROOT, IMAGE_ROOT).removesuffix('.ms')}.img.{t}.fits"
        for i, t in zip(owner, kind, strict=True)
    ]
    mid = np.asarray(ms["mid_mjd"])[owner]
    created = mjd_to_unix(mid) + rng.uniform(900, 3600, n_regular)
    # Mosaics combine many MS: no single ms_path.
    mos_mid = np.sort(rng.choice(mid, n_mosaic))
    paths += [f"{IMAGE_ROOT}/mosaics/mosaic_{i:04d}.fits" for i in range(n_mosaic)]
    ms_paths += [None] * n_mosaic
    kind += ["mosaic"] * n_mosaic
    created = np.concatenate([created, mjd_to_unix(mos_mid) + 7200])
    # Nothing is made in the future: the newest images came in just before "now" (the last MS ends 30
    # minutes before it), so the demo's "last night" ends at the newest image.
    created = np.minimum(created, np.floor(mjd_to_unix(float(np.max(ms["end_mjd"])))) + 1500)
    owner_all = np.concatenate([owner, np.full(n_mosaic, -1)])

    noise = rng.lognormal(np.log(1.1e-3), 0.25, n)
    bad = rng.random(n) < 0.06
    noise[bad] *= rng.uniform(2.5, 6, bad.sum())
    noise[np.array(kind) == "mosaic"] /= 3
    beam_major = rng.normal(16.0, 1.5, n)
    beam_major[rng.random(n) < 0.03] *= 2.2
    beam_minor = beam_major * rng.uniform(0.55, 0.95, n)
    peak = rng.lognormal(np.log(0.8), 0.5, n)
    ra = np.where(owner_all >= 0, np.asarray(ms["ra_deg"])[owner_all], rng.uniform(0, 360, n))
    dec = np.where(owner_all >= 0, np.asarray(ms["dec_deg"])[owner_all], DSA110_DEC)
    order = np.argsort(created, kind="stable")
    missing_noise = rng.random(n) < 0.02
    missing_beam = rng.random(n) < 0.02
    data = {
        "id": list(range(1, n + 1)),
        "path": [paths[i] for i in order],
        "ms_path": [ms_paths[i] for i in order],
        "created_at": created[order].tolist(),
        "type": [kind[i] for i in order],
        "beam_major_arcsec": py(beam_major[order], missing_beam),
        "noise_jy": py(noise[order], missing_noise),
        "pbcor": [int(kind[i] in ("pbcor", "mosaic")) for i in order],
        "format": ["fits"] * n,
        "beam_minor_arcsec": py(beam_minor[order], missing_beam),
        "beam_pa_deg": py(rng.uniform(-90, 90, n), missing_beam),
        "dynamic_range": (peak[order] / noise[order]).tolist(),
        "field_name": [f"drift_{int(r // 15):02d}h" for r in ra[order]],
        "center_ra_deg": ra[order].tolist(),
        "center_dec_deg": dec[order].tolist(),
        "imsize_x": [2400] * n,
        "imsize_y": [2400] * n,
        "cellsize_arcsec": [3.0] * n,
        "freq_ghz": [1.405] * n,
        "bandwidth_mhz": [187.5] * n,
        "integration_sec": [300.0] * n,
    }
    return Images(data, peak[order])


def photometry(obs: Observations, imgs: Images, size: DemoSize, rng: np.random.Generator) -> Photometry:
    img = imgs.data
    main = [i for i, t in enumerate(img["type"]) if t == "image"]
    ms_mid = dict(zip(obs.data["path"], obs.data["mid_mjd"], strict=True))
    mjd_of_main = np.array([ms_mid[img["ms_path"][i]] for i in main])
    order = np.argsort(mjd_of_main, kind="stable")
    main = [main[i] for i in order]
    mjd_of_main = mjd_of_main[order]

    ns, ne = size.n_sources, size.n_epochs
    block = max(1, len(main) // ne)
    src = np.repeat(np.arange(ns), ne)
    epoch = np.tile(np.arange(ne), ns)
    image_idx = np.minimum((epoch * len(main)) // ne + (src % block), len(main) - 1)
    image_rows = np.asarray(main)[image_idx]
    mjd = mjd_of_main[image_idx] + rng.uniform(-1e-4, 1e-4, src.size)

    ra = rng.uniform(0, 360, ns)
    ra[:3] = [359.9995, 0.0004, 0.2]  # sources either side of RA 0/360
    dec = DSA110_DEC + rng.uniform(-1.5, 1.5, ns)
    names = [source_name(r, d) for r, d in zip(ra, dec, strict=True)]
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in seen:
            names[i] = f"{name}_{i}"
        seen[names[i]] = i
    base = rng.lognormal(np.log(0.02), 0.9, ns)
    n_var = max(3, int(ns * N_VARIABLE_FRACTION))
    variable = rng.choice(np.setdiff1d(np.arange(ns), [TRANSIENT_SOURCE_INDEX]), n_var, replace=False)
    base[variable] = np.maximum(base[variable], 0.03)

    true = base[src].copy()
    factor = np.ones(src.size)
    for k, s in enumerate(variable):
        rows = src == s
        phase = epoch[rows] / ne * 2 * math.pi * (1 + k % 3)
        factor[rows] = 1 + 0.6 * np.sin(phase + k)
    true *= factor
    t_rows = src == TRANSIENT_SOURCE_INDEX
    base[TRANSIENT_SOURCE_INDEX] = 0.05
    onset = int(ne * 0.6)
    true[t_rows] = np.where(epoch[t_rows] >= onset, 0.05 * np.exp(-(epoch[t_rows] - onset) / (ne / 5)), 0.0)

    err = np.sqrt((0.03 * true) ** 2 + 0.0012**2)
    flux = true + rng.normal(0, 1, src.size) * err
    peak = flux * rng.normal(0.95, 0.02, src.size)
    peak_err = err * 1.05
    null_flux = rng.random(src.size) < 0.02
    null_err = rng.random(src.size) < 0.01
    norm = flux / rng.normal(1.0, 0.01, src.size)
    n = src.size
    data = {
        "id": list(range(1, n + 1)),
        "source_id": [names[s] for s in src],
        "image_path": [img["path"][i] for i in image_rows],
        "ra_deg": (ra[src] + rng.normal(0, 1e-4, n)).tolist(),
        "dec_deg": (dec[src] + rng.normal(0, 1e-4, n)).tolist(),
        "nvss_flux_mjy": (base[src] * 1000 * 1.02).tolist(),
        "peak_jyb": peak.tolist(),
        "peak_err_jyb": peak_err.tolist(),
        "flux_jy": py(flux, null_flux),
        "flux_err_jy": py(err, null_flux | null_err),
        "normalized_flux_jy": py(norm, null_flux),
        "normalized_flux_err_jy": py(err, null_flux | null_err),
        "measured_at": (mjd_to_unix(mjd) + 600).tolist(),
        "mjd": mjd.tolist(),
        "mosaic_path": [None] * n,
        "snr": (flux / err).tolist(),
        "local_rms": (err * 0.9).tolist(),
        "rms_jy": err.tolist(),
        "sep_from_center_deg": rng.uniform(0, 1.6, n).tolist(),
        "quality_flag": np.where(np.abs(flux / err) > 5, "good", "low_snr").tolist(),
        "flags": [""] * n,
    }
    return Photometry(
        data,
        variable_sources=tuple(sorted(names[s] for s in variable)),
        transient_source=names[TRANSIENT_SOURCE_INDEX],
    )
