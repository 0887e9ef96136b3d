"""Small real FITS files for the newest demo images: 4-D like the pipeline's (RA, Dec, frequency, Stokes),
with a SIN-projection WCS on the image's centre, the recorded noise, and a restoring-beam-sized Gaussian at
each source measured in the image that lies in its field, and at a few field sources the photometry does
not follow (forced photometry measures catalogue sources only; the demo's photometry is not tied to fields).

The pipeline records its paths under ``/stage/dsa110-contimg``; the demo writes the files under the site's
own ``stage`` folder, and the site's settings map one to the other (``path_map``), as a user whose disks
are mounted elsewhere would. Each file draws from its own random stream, so the tables stay as they were.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np

from .naming import IMAGE_ROOT

STAGE_PREFIX = IMAGE_ROOT.rsplit("/", 1)[0]  # /stage/dsa110-contimg
N_FILES = 16
PIXELS = 256
FIELD_SOURCES = 6


def stage_folder(root: Path) -> Path:
    return root / "stage"


def write_image_files(root: Path, products_db: Path, seed: int, n_files: int = N_FILES) -> int:
    """Write FITS files for the ``n_files`` newest images; returns how many were written."""
    from astropy.io import fits

    with sqlite3.connect(f"file:{products_db}?mode=ro", uri=True) as conn:
        columns = (
            "id, path, ms_path, center_ra_deg, center_dec_deg, imsize_x, cellsize_arcsec, noise_jy, "
            "beam_major_arcsec, beam_minor_arcsec, beam_pa_deg, freq_ghz, created_at"
        )
        names = [c.strip() for c in columns.split(",")]
        present = {row[1] for row in conn.execute("PRAGMA table_info(images)")}
        select = ", ".join(c if c in present else f"NULL AS {c}" for c in names)
        images = conn.execute(
            f"SELECT {select} FROM images ORDER BY created_at DESC, id DESC LIMIT ?", [n_files]
        ).fetchall()
        written = 0
        for row in images:
            image = dict(zip(names, row, strict=True))
            if image["center_ra_deg"] is None:  # the older schema records no centre: its MS's phase centre
                centre = conn.execute(
                    "SELECT ra_deg, dec_deg FROM ms_index WHERE path = ?", [image["ms_path"]]
                )
                image["center_ra_deg"], image["center_dec_deg"] = centre.fetchone() or (None, None)
            sources = conn.execute(
                "SELECT ra_deg, dec_deg, COALESCE(flux_jy, peak_jyb) FROM photometry WHERE image_path = ?",
                [image["path"]],
            ).fetchall()
            target = stage_folder(root) / image["path"].removeprefix(STAGE_PREFIX).lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            fits.HDUList([_hdu(image, sources, np.random.default_rng([seed, int(image["id"])]))]).writeto(
                target, overwrite=True
            )
            written += 1
    return written


def _hdu(
    image: dict[str, object], sources: list[tuple[float, float, float]], rng: np.random.Generator
) -> object:
    from astropy.io import fits
    from astropy.wcs import WCS

    ra0 = float(image["center_ra_deg"] or 0.0)  # type: ignore[arg-type]
    dec0 = float(image["center_dec_deg"] or 54.57)  # type: ignore[arg-type]
    # The recorded field of view, drawn with fewer, larger pixels (the files stay small).
    field_arcsec = float(image["imsize_x"] or 2400) * float(image["cellsize_arcsec"] or 3.0)  # type: ignore[arg-type]
    cell = field_arcsec / PIXELS
    wcs = WCS(naxis=4)
    wcs.wcs.ctype = ["RA---SIN", "DEC--SIN", "FREQ", "STOKES"]
    wcs.wcs.crval = [ra0, dec0, float(image["freq_ghz"] or 1.405) * 1e9, 1.0]  # type: ignore[arg-type]
    wcs.wcs.crpix = [PIXELS / 2 + 0.5, PIXELS / 2 + 0.5, 1.0, 1.0]
    wcs.wcs.cdelt = [-cell / 3600.0, cell / 3600.0, 2.5e8, 1.0]
    wcs.wcs.cunit = ["deg", "deg", "Hz", ""]
    noise = float(image["noise_jy"] or 1e-3)  # type: ignore[arg-type]
    plane = rng.normal(0.0, noise, (PIXELS, PIXELS))
    bmaj = float(image["beam_major_arcsec"] or 15.0)  # type: ignore[arg-type]
    sigma = max(bmaj / 2.355 / cell, 0.8)
    yy, xx = np.mgrid[0:PIXELS, 0:PIXELS]
    celestial = wcs.celestial
    field = [
        (x, y, flux)
        for x, y, flux in rng.uniform(
            [20, 20, 15 * noise], [PIXELS - 20, PIXELS - 20, 150 * noise], (FIELD_SOURCES, 3)
        )
    ]
    for ra, dec, flux in sources:
        if flux is None or ra is None or dec is None:
            continue
        x, y = celestial.wcs_world2pix([[ra, dec]], 0)[0]
        if np.isfinite(x) and np.isfinite(y) and -5 < x < PIXELS + 5 and -5 < y < PIXELS + 5:
            field.append((x, y, flux))
    for x, y, flux in field:
        plane += flux * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma**2))
    header = wcs.to_header()
    header["BUNIT"] = "Jy/beam"
    header["BMAJ"] = bmaj / 3600.0
    header["BMIN"] = float(image["beam_minor_arcsec"] or bmaj) / 3600.0  # type: ignore[arg-type]
    header["BPA"] = float(image["beam_pa_deg"] or 0.0)  # type: ignore[arg-type]
    header["TELESCOP"] = "DSA-110"
    header["OBJECT"] = Path(str(image["path"])).name
    header["COMMENT"] = "contimg-toolkit demo image: simulated noise and sources"
    return fits.PrimaryHDU(plane.astype(np.float32)[np.newaxis, np.newaxis], header=header)
