"""Image files: where a recorded image is on this machine, opening it as FITS, its sky plane and cutouts.

Blocking functions, run by ``client.images`` in a worker thread (one crossing per call). astropy is
imported inside them, so importing the toolkit does not import astropy.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .arguments import is_finite_number
from .errors import FileNotAccessibleError, InvalidPathError, ValidationError
from .settings import ENV_IMAGE_ROOTS, ENV_PATH_MAP, Settings

if TYPE_CHECKING:
    from astropy.io.fits import HDUList
    from astropy.nddata import Cutout2D
    from astropy.wcs import WCS

# A cutout is at most this wide (degrees of sky): DSA-110 fields are about 3 deg across.
MAX_CUTOUT_ARCSEC = 10 * 3600.0


def checked_path(settings: Settings, stored: str) -> Path:
    """The image's file on this machine (``path_map`` applied), refused when ``image_roots`` are set and the
    file, symbolic links resolved, lies outside all of them."""
    if not isinstance(stored, str) or not stored.strip() or "\x00" in stored:
        raise ValidationError(f"an image path is a non-empty string, got {stored!r}")
    local = settings.local_path(stored)
    if settings.image_roots:
        real = Path(os.path.realpath(local))
        roots = [Path(os.path.realpath(root)) for root in settings.image_roots]
        if not any(real == root or real.is_relative_to(root) for root in roots):
            raise InvalidPathError(
                f"{local} is outside the image roots ({', '.join(map(str, settings.image_roots))}); add its "
                f"folder to {ENV_IMAGE_ROOTS} to read it"
            )
    return local


def _regular_file(path: Path, stored: str, settings: Settings) -> None:
    """Refuse what is not a readable regular file before opening it (a FIFO would block the open)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError as exc:
        hint = (
            ""
            if settings.path_map
            else f" (if the pipeline's disks are mounted elsewhere here, set {ENV_PATH_MAP})"
        )
        shown = str(path) if str(path) == stored else f"{path} (recorded as {stored})"
        raise FileNotAccessibleError(f"image file {shown} does not exist{hint}") from exc
    except OSError as exc:
        raise FileNotAccessibleError(f"image file {path} cannot be read: {exc.strerror}") from exc
    if not stat.S_ISREG(mode):
        raise FileNotAccessibleError(f"image file {path} is not a regular file")
    if not os.access(path, os.R_OK):
        raise FileNotAccessibleError(f"image file {path} is not readable by this user")


def open_fits(settings: Settings, stored: str) -> HDUList:
    """The image's FITS file, opened (memory-mapped: data are read when used)."""
    from astropy.io import fits

    path = checked_path(settings, stored)
    _regular_file(path, stored, settings)
    try:
        hdul = fits.open(path, memmap=True, mode="readonly")
    except Exception as exc:  # astropy raises OSError, ValueError, ... for a damaged file
        raise FileNotAccessibleError(f"{path} is not a readable FITS file: {exc}") from exc
    try:
        hdul.verify("silentfix")  # a non-standard card is fixed in memory, never in the file
        has_image = any(getattr(h, "is_image", False) for h in hdul)
    except Exception as exc:  # VerifyError and the like: close what was opened, then say so
        hdul.close()
        raise FileNotAccessibleError(f"{path} is not a readable FITS file: {exc}") from exc
    if not has_image:
        hdul.close()
        raise FileNotAccessibleError(f"{path} holds no image HDU")
    return hdul


def sky_plane(hdul: HDUList) -> tuple[np.ndarray, WCS | None]:
    """The first image HDU's first 2-D plane (radio images are often 4-D: Stokes, frequency, Dec, RA) and
    its celestial WCS (None when the header has none)."""
    from astropy.wcs import WCS, FITSFixedWarning

    hdu = next(
        (h for h in hdul if getattr(h, "is_image", False) and h.data is not None and h.data.ndim >= 2), None
    )
    if hdu is None:
        raise FileNotAccessibleError("the FITS file has no image with two or more axes")
    data = hdu.data
    while data.ndim > 2:
        data = data[0]
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        try:
            wcs = WCS(hdu.header).celestial
        except Exception:  # astropy raises many kinds on a broken WCS header; it means "no WCS"
            return data, None
    return data, (wcs if wcs.has_celestial and wcs.naxis == 2 else None)


def cutout(settings: Settings, stored: str, ra_deg: float, dec_deg: float, size_arcsec: float) -> Cutout2D:
    """A square cutout ``size_arcsec`` wide around a position, with its WCS; the data are copied, so the
    file is closed before this returns."""
    import astropy.units as u
    from astropy.coordinates import SkyCoord
    from astropy.nddata import Cutout2D, NoOverlapError

    with open_fits(settings, stored) as hdul:
        data, wcs = sky_plane(hdul)
        if wcs is None:
            raise ValidationError(f"{stored} has no celestial WCS: a cutout needs one")
        position = SkyCoord(ra_deg * u.deg, dec_deg * u.deg, frame="icrs")
        x, y = wcs.world_to_pixel(position)
        ny, nx = data.shape
        if not (np.isfinite(x) and np.isfinite(y) and -0.5 <= x < nx - 0.5 and -0.5 <= y < ny - 0.5):
            centre = wcs.pixel_to_world((nx - 1) / 2, (ny - 1) / 2)
            raise ValidationError(
                f"RA {ra_deg:.5f}, Dec {dec_deg:.5f} is off the image {stored} (its centre is RA "
                f"{centre.ra.deg:.4f}, Dec {centre.dec.deg:.4f}; it is {nx} x {ny} pixels)"
            )
        try:
            return Cutout2D(
                np.asarray(data), position, size_arcsec * u.arcsec, wcs=wcs, mode="trim", copy=True
            )
        except (NoOverlapError, ValueError) as exc:  # ValueError: a cutout the image's WCS cannot place
            raise ValidationError(f"no cutout of {stored} at RA {ra_deg}, Dec {dec_deg}: {exc}") from exc


def check_cutout_size(size_arcsec: Any) -> float:
    if not is_finite_number(size_arcsec):  # np.isfinite raised TypeError on an int beyond 64 bits
        raise ValidationError(f"size_arcsec must be a finite number, got {size_arcsec!r}")
    if not 0 < size_arcsec <= MAX_CUTOUT_ARCSEC:
        raise ValidationError(
            f"size_arcsec must be above 0 and at most {MAX_CUTOUT_ARCSEC:,.0f}, got {size_arcsec}"
        )
    return float(size_arcsec)
