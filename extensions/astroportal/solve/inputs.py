"""What may be solved: an image (JPEG, PNG, GIF, TIFF), a FITS image, or an x/y source list.

Everything is checked here, before a submission is queued, so that a bad file is an answer to its sender and
never a worker's problem: empty, too large, not an image, a corrupt FITS file, and images that declare more
pixels than `services.solve.max_megapixels` (a decompression bomb: a small PNG that decodes to giga-pixels)
are refused with a message saying what is wrong. The pixel count is read from the header, before decoding.
"""

from __future__ import annotations

import io
import ipaddress
import socket
import warnings
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import numpy as np
from astroportal.config import Config
from astroportal.errors import ApiError

PREVIEW_MAX_SIDE = 1600
FITS_MAGIC = b"SIMPLE  ="
IMAGE_MAGICS = {b"\xff\xd8\xff": "JPEG", b"\x89PNG\r\n\x1a\n": "PNG", b"GIF87a": "GIF", b"GIF89a": "GIF",
                b"II*\x00": "TIFF", b"MM\x00*": "TIFF"}


@dataclass
class CheckedInput:
    """An accepted input: how the worker hands it to solve-field, its size in pixels and a preview JPEG."""

    data: bytes
    input_format: str  # image | fits | xylist
    width: int
    height: int
    preview: bytes | None


def limits(cfg: Config) -> tuple[int, float]:
    """(largest upload in bytes, largest image in megapixels) from services.solve."""
    max_mb = float(cfg.get("services.solve.max_upload_mb") or 50)
    max_mpx = float(cfg.get("services.solve.max_megapixels") or 250)
    return int(max_mb * 1024 * 1024), max_mpx


def check_size(cfg: Config, size: int) -> None:
    max_bytes, _ = limits(cfg)
    if size == 0:
        raise ApiError(400, "the file is empty: choose the image file again and re-send it")
    if size > max_bytes:
        raise ApiError(413, f"the file has {size / 1048576:.2f} MB, more than the limit of "
                            f"{max_bytes / 1048576:g} MB (services.solve.max_upload_mb); send a smaller or "
                            "compressed image, or an x/y source list")


def _check_pixels(cfg: Config, width: int, height: int, what: str) -> None:
    _, max_mpx = limits(cfg)
    if width < 16 or height < 16:
        raise ApiError(400, f"the {what} is only {width} x {height} pixels: too small to hold a star field")
    if width * height > max_mpx * 1e6:
        raise ApiError(400, f"the {what} declares {width} x {height} pixels ({width * height / 1e6:.0f} "
                            f"megapixels), more than the limit of {max_mpx:g} megapixels "
                            "(services.solve.max_megapixels), a decompression bomb or simply too large; it is "
                            "refused before being decoded")


def _preview_from_array(pixels: np.ndarray) -> bytes:
    """A JPEG of a 2-D array with a robust stretch (stars visible on the sky background)."""
    from PIL import Image

    arr = np.nan_to_num(np.asarray(pixels, dtype=np.float32))
    lo, hi = np.percentile(arr[:: max(1, arr.shape[0] // 512), :: max(1, arr.shape[1] // 512)], [5, 99.7])
    scaled = np.clip((arr - lo) / max(hi - lo, 1e-12), 0, 1)
    img = Image.fromarray((np.arcsinh(scaled * 10) / np.arcsinh(10) * 255).astype(np.uint8))
    return _jpeg(img)


def _jpeg(img) -> bytes:
    img.thumbnail((PREVIEW_MAX_SIDE, PREVIEW_MAX_SIDE))
    out = io.BytesIO()
    img.convert("L" if img.mode in ("L", "I", "F", "I;16") else "RGB").save(out, "JPEG", quality=85)
    return out.getvalue()


def check_fits(cfg: Config, data: bytes) -> CheckedInput:
    """A FITS file whose first image (primary or extension) is at least 2-D and complete."""
    from astropy.io import fits

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with fits.open(io.BytesIO(data), memmap=False, lazy_load_hdus=False) as hdul:
                image = next((h for h in hdul if h.header.get("NAXIS", 0) >= 2 and h.is_image), None)
                if image is None:
                    raise ApiError(400, "the FITS file holds no image (no HDU with two axes); send the image "
                                        "itself, or an x/y list through the API")
                width, height = int(image.header["NAXIS1"]), int(image.header["NAXIS2"])
                _check_pixels(cfg, width, height, "FITS image")
                pixels = image.data
                if pixels is None or pixels.shape[-2:] != (height, width):
                    raise ValueError("the data does not match the header's NAXIS1/NAXIS2")
                while pixels.ndim > 2:  # a cube: its first plane
                    pixels = pixels[0]
                preview = _preview_from_array(pixels)
    except ApiError:
        raise
    except Exception as exc:  # noqa: BLE001 - astropy raises many kinds on damaged files
        raise ApiError(400, f"the FITS file is corrupt or truncated ({exc.__class__.__name__}: {exc}); "
                            "export it again from your software and re-send it") from None
    return CheckedInput(data, "fits", width, height, preview)


def check_image(cfg: Config, data: bytes, kind: str) -> CheckedInput:
    """A JPEG/PNG/GIF/TIFF image, its size read from the header before anything is decoded."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            width, height = img.size
            _check_pixels(cfg, width, height, f"{kind} image")
            if kind == "JPEG":  # decode at a reduced size: the preview is all that is kept of the pixels
                img.draft(img.mode, (PREVIEW_MAX_SIDE, PREVIEW_MAX_SIDE))
            img.load()
            preview = _jpeg(img)
    except ApiError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ApiError(400, f"the {kind} image declares far more pixels than allowed, a decompression bomb ({exc}); "
                            "it is refused before being decoded") from None
    except Exception as exc:  # noqa: BLE001 - Pillow raises many kinds on damaged files
        raise ApiError(400, f"the {kind} image cannot be read ({exc.__class__.__name__}: {exc}); it may be "
                            "damaged: export it again and re-send it") from None
    return CheckedInput(data, "image", width, height, preview)


def check_upload(cfg: Config, data: bytes) -> CheckedInput:
    """An uploaded or fetched file, checked: size, kind, pixel count, readability."""
    check_size(cfg, len(data))
    if data.startswith(FITS_MAGIC):
        return check_fits(cfg, data)
    for magic, kind in IMAGE_MAGICS.items():
        if data.startswith(magic):
            return check_image(cfg, data, kind)
    raise ApiError(400, "the file is neither a FITS file nor an image (JPEG, PNG, GIF or TIFF); send the sky "
                        "image itself (for a list of star positions use the x/y list upload)")


def xylist_fits(x: list[float], y: list[float], width: int, height: int) -> CheckedInput:
    """An x/y source list as the FITS table solve-field reads (columns X, Y; the image size in the header)."""
    from astropy.io import fits

    hdu = fits.BinTableHDU.from_columns([fits.Column(name="X", format="D", array=np.asarray(x)),
                                         fits.Column(name="Y", format="D", array=np.asarray(y))])
    hdu.header["IMAGEW"] = width
    hdu.header["IMAGEH"] = height
    out = io.BytesIO()
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(out)
    return CheckedInput(out.getvalue(), "xylist", width, height, None)


# -- URLs ----------------------------------------------------------------------------------------------------
def _allowed_networks(cfg: Config) -> list:
    return [ipaddress.ip_network(n, strict=False) for n in (cfg.get("services.solve.url_allow_networks") or [])]


def check_url_target(cfg: Config, url: str) -> None:
    """Refuse, before any request, a URL that is not http(s) or whose host resolves to an address that is not
    public (loopback, private, link-local, ...), unless services.solve.url_allow_networks lists it."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ApiError(400, f"`url` must be an http:// or https:// address of an image, got {url!r}")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, ValueError) as exc:
        raise ApiError(400, f"the host of `url` ({parts.hostname}) cannot be resolved: {exc}") from None
    allowed = _allowed_networks(cfg)
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%")[0])
        if address.is_global or any(address in net for net in allowed):
            continue
        raise ApiError(400, f"`url` points to {parts.hostname} ({address}), a loopback, private or reserved "
                            "address: the portal does not fetch from those; upload the file instead")


def fetch_url(cfg: Config, url: str, timeout: float = 30, max_redirects: int = 5) -> bytes:
    """The content at `url` (at most max_upload_mb), every redirect target checked like the URL itself.

    Runs in a thread (it blocks); raises ApiError with a message for the sender.
    """
    import requests

    max_bytes, _ = limits(cfg)
    for _ in range(max_redirects + 1):
        check_url_target(cfg, url)
        try:
            with requests.get(url, stream=True, timeout=timeout, allow_redirects=False,
                              headers={"User-Agent": "astroportal-solve"}) as resp:
                if resp.is_redirect:
                    url = urljoin(url, resp.headers.get("Location", ""))
                    continue
                if resp.status_code != 200:
                    raise ApiError(400, f"fetching `url` answered HTTP {resp.status_code}; check the address")
                chunks, size = [], 0
                for chunk in resp.iter_content(65536):
                    size += len(chunk)
                    if size > max_bytes:
                        check_size(cfg, size)
                    chunks.append(chunk)
                return b"".join(chunks)
        except requests.RequestException as exc:
            raise ApiError(400, f"fetching `url` failed: {exc.__class__.__name__}: {exc}") from None
    raise ApiError(400, f"`url` redirects more than {max_redirects} times")
