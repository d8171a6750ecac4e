"""Turning request bodies into pixels, safely, and pixels back into bytes.

Sizes are checked before anything is decoded: a raw ``rgba8`` body must be exactly W·H·4 bytes with
W·H at most ``max_pixels``; a PNG's dimensions are read from its header (Pillow opens lazily) and
refused above ``max_pixels`` before its pixel data is inflated, so a small file that unpacks into
gigabytes (a decompression bomb) never gets decoded. Pillow's own bomb guard is kept as a second
line (``Image.MAX_IMAGE_PIXELS``) and its text-chunk limits stay on.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, UnidentifiedImageError

from fauve.color_profile import ColorProfile, from_srgb, to_srgb
from fauve.errors import FauveError


class RequestError(FauveError):
    """A client error with an HTTP status; the bridge turns it into ``{code, message, hint}``."""

    def __init__(self, status: int, code: str, message: str, hint: str | None = None) -> None:
        super().__init__(message, hint, code=code)
        self.status = status


def check_pixels(width: int, height: int, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise RequestError(
            413, "too_many_pixels",
            f"The image is {width}x{height} = {width * height:,} pixels; this server accepts at most {max_pixels:,}.",
            "Send a smaller image or selection, or start the server with a larger --max-pixels.",
        )


def rgba8_to_array(body: bytes, width: int, height: int) -> np.ndarray:
    """A row-major R,G,B,A u8 buffer as an (H, W, 4) uint8 array (a copy, writable)."""
    expected = width * height * 4
    if len(body) != expected:
        raise RequestError(
            400, "wrong_size",
            f"The body has {len(body):,} bytes but {width}x{height} RGBA needs exactly {expected:,} (W*H*4).",
            "Send the raw pixels row by row, 4 bytes per pixel, and the layer's true width and height.",
        )
    return np.frombuffer(body, dtype=np.uint8).reshape(height, width, 4).copy()


def png_to_array(body: bytes, max_pixels: int) -> tuple[np.ndarray, bool, ColorProfile | None]:
    """Decode PNG bytes into an (H, W, 4) uint8 array; also say whether it had an alpha channel, and its ICC
    profile when that is not sRGB (the pixels are then converted to sRGB, as `fauve stylize` reads files)."""
    if not body.startswith(b"\x89PNG\r\n\x1a\n"):
        raise RequestError(400, "bad_image", "The body is not a PNG file (its signature is wrong).",
                           "Send PNG bytes with format=png, or raw pixels with format=rgba8&width=W&height=H.")
    try:
        with Image.open(io.BytesIO(body), formats=["PNG"]) as img:
            check_pixels(img.width, img.height, max_pixels)  # header only: nothing inflated yet
            has_alpha = img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info)
            if img.mode.startswith("I;16") or img.mode == "I":
                arr = (np.asarray(img, dtype=np.uint32) >> 8).astype(np.uint8)  # 16-bit grey -> 8-bit
                rgba, profile = np.dstack([arr, arr, arr, np.full_like(arr, 255)]), None
            else:
                img.load()
                srgb, profile = to_srgb(img)
                rgba = np.asarray(srgb.convert("RGBA"), dtype=np.uint8).copy()
    except RequestError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        # Pillow's own guard fired while reading the header: report it like our pixel check.
        width, height = int.from_bytes(body[16:20], "big"), int.from_bytes(body[20:24], "big")
        try:
            check_pixels(width, height, max_pixels)
        except RequestError as refused:
            raise refused from err
        raise RequestError(413, "too_many_pixels", f"The PNG was refused as a decompression bomb: {err}",
                           "Send a smaller image.") from err
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as err:
        # truncated data, bad CRCs, oversized text chunks ("Decompressed data too large"), ...
        raise RequestError(400, "bad_image", f"The PNG could not be decoded: {err}",
                           "Send a complete, valid PNG file (or raw RGBA with format=rgba8).") from err
    return rgba, has_alpha, profile


def array_to_png(pixels: np.ndarray, compress_level: int = 1, profile: ColorProfile | None = None) -> bytes:
    """Lossless PNG of an (H, W, 3|4) uint8 array; low compression because speed matters more here. With the
    input's ``profile`` the sRGB pixels go back into its colour space and the profile is embedded."""
    buf = io.BytesIO()
    if profile is not None:
        pixels = from_srgb(np.ascontiguousarray(pixels), profile)
    icc = {"icc_profile": profile.icc} if profile is not None and profile.tags_output else {}
    Image.fromarray(np.ascontiguousarray(pixels)).save(buf, format="PNG", compress_level=compress_level, **icc)
    return buf.getvalue()
