"""Image files on disk: the path map, the image roots, images.open and images.cutout on the demo's FITS files."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.nddata import Cutout2D
from astropy.wcs import WCS

from toolkit import (
    AsyncClient,
    FileNotAccessibleError,
    InvalidPathError,
    RecordNotFoundError,
    ValidationError,
)
from toolkit.demo import DemoSite
from toolkit.settings import Settings


async def _image_with_file(client: AsyncClient) -> tuple[int, str, Path]:
    for row in (await client.images.list(limit=40)).itertuples():
        local = await client.images.file_path(int(row.id))
        if local.exists():
            return int(row.id), str(row.path), local
    raise AssertionError("the demo site has no image file among its newest images")


async def _centre(client: AsyncClient, image_id: int) -> tuple[float, float]:
    """The image's recorded centre; the older schema has none, and the demo centres on the MS's phase centre."""
    image = await client.images.get(image_id)
    if image.center_ra_deg is not None and image.center_dec_deg is not None:
        return image.center_ra_deg, image.center_dec_deg
    assert image.ms_path is not None
    ms = await client.ms.get(image.ms_path)
    assert ms.phase_ra_deg is not None and ms.phase_dec_deg is not None
    return ms.phase_ra_deg, ms.phase_dec_deg


async def test_open_reads_the_mapped_file_by_id_digits_or_recorded_path(
    client: AsyncClient, any_site: DemoSite
) -> None:
    image_id, stored, local = await _image_with_file(client)
    assert stored.startswith("/stage/dsa110-contimg/") and local.is_relative_to(any_site.root / "stage")
    for ident in (image_id, str(image_id), stored):
        with await client.images.open(ident) as hdul:
            assert hdul[0].header["BUNIT"] == "Jy/beam" and hdul[0].data.shape[:2] == (1, 1)
            assert Path(hdul.filename()) == local
    with fits.open(local) as raw:
        centre = WCS(raw[0].header).celestial.pixel_to_world(127.5, 127.5)
    ra, dec = await _centre(client, image_id)
    assert centre.ra.deg == pytest.approx(ra, abs=1e-6) and centre.dec.deg == pytest.approx(dec, abs=1e-6)
    with pytest.raises(RecordNotFoundError):
        await client.images.open(10**9)


async def test_cutout_matches_astropy_on_the_same_plane(client: AsyncClient) -> None:
    image_id, _, local = await _image_with_file(client)
    centre_ra, centre_dec = await _centre(client, image_id)
    ra, dec = centre_ra + 0.2, centre_dec - 0.1
    ours = await client.images.cutout(image_id, ra, dec, 600)
    with fits.open(local) as raw:
        wcs = WCS(raw[0].header).celestial
        theirs = Cutout2D(raw[0].data[0, 0], SkyCoord(ra * u.deg, dec * u.deg), 600 * u.arcsec, wcs=wcs)
    np.testing.assert_array_equal(ours.data, theirs.data)
    assert ours.wcs.wcs.ctype[0] == "RA---SIN" and ours.shape == theirs.shape
    found = ours.wcs.pixel_to_world(*ours.position_cutout)
    assert found.separation(SkyCoord(ra * u.deg, dec * u.deg)).arcsec < 30  # within a pixel (28 arcsec)
    edge = await client.images.cutout(image_id, centre_ra, centre_dec + 0.95, 900)
    assert edge.shape[0] < edge.shape[1]  # trimmed at the image's top edge
    with pytest.raises(ValidationError, match="off the image"):
        await client.images.cutout(image_id, centre_ra + 40, centre_dec, 60)
    for bad in (
        (ra, dec, 0),
        (ra, dec, -5),
        (ra, dec, float("nan")),
        (ra, dec, 10**6),
        (ra, dec, -(2**63) - 1),  # beyond 64 bits: numpy's isfinite raised TypeError
        (ra, dec, 10**400),
        (ra, 95.0, 60),
        (10**400, dec, 60),
        (float("inf"), dec, 60),
    ):
        with pytest.raises(ValidationError):
            await client.images.cutout(image_id, *bad)


async def test_files_that_cannot_be_read_get_our_errors(site: DemoSite, tmp_path: Path) -> None:
    stage = site.root / "stage" / "images"
    outside = tmp_path / "outside.fits"
    fits.PrimaryHDU(np.zeros((4, 4), dtype=np.float32)).writeto(outside)
    (stage / "link-out.fits").symlink_to(outside)
    os.mkfifo(stage / "pipe.fits")
    (stage / "text.fits").write_text("not a FITS file\n")
    (stage / "empty.fits").write_bytes(b"")
    (stage / "folder.fits").mkdir()
    try:
        async with AsyncClient(**site.settings_kwargs()) as client:
            with pytest.raises(InvalidPathError, match="outside the image roots"):
                await client.images.open(str(outside))
            with pytest.raises(InvalidPathError):  # a link inside the roots to a file outside them
                await client.images.open("/stage/dsa110-contimg/images/link-out.fits")
            for name, message in (
                ("pipe.fits", "not a regular file"),  # a FIFO would block an open(): refused before
                ("folder.fits", "not a regular file"),
                ("text.fits", "not a readable FITS file"),
                ("empty.fits", "not a readable FITS file"),
                ("missing.fits", "does not exist"),
            ):
                with pytest.raises(FileNotAccessibleError, match=message):
                    await client.images.open(f"/stage/dsa110-contimg/images/{name}")
            with pytest.raises(ValidationError):
                await client.images.open("")
        # With no image roots, a file anywhere can be opened (the user's own process could anyway).
        async with AsyncClient(settings=Settings(products_db=site.products_db)) as client:
            with await client.images.open(str(outside)) as hdul:
                assert hdul[0].data.shape == (4, 4)
    finally:
        for name in ("link-out.fits", "pipe.fits", "text.fits", "empty.fits"):
            (stage / name).unlink()
        (stage / "folder.fits").rmdir()


def test_path_map_setting() -> None:
    env = {"CONTIMG_PATH_MAP": "/stage=/mnt/a, /stage/dsa110-contimg=/mnt/b", "PIPELINE_PRODUCTS_DB": "x.db"}
    settings = Settings.from_env(env)
    assert settings.local_path("/stage/dsa110-contimg/images/x.fits") == Path("/mnt/b/images/x.fits")
    assert settings.local_path("/stage/other/x.fits") == Path("/mnt/a/other/x.fits")
    assert settings.local_path("/stage") == Path("/mnt/a")
    assert settings.local_path("/stagecoach/x.fits") == Path("/stagecoach/x.fits")  # whole folder names only
    assert settings.local_path("/data/x.fits") == Path("/data/x.fits")
    for bad in ("relative=/mnt", "/stage", "/stage="):
        with pytest.raises(ValidationError, match="CONTIMG_PATH_MAP"):
            Settings.from_env({"CONTIMG_PATH_MAP": bad})
    assert Settings(path_map=(("/a", Path("/b")),)).local_path("/a/c") == Path("/b/c")
