"""Embedded ICC colour profiles: the networks see sRGB, the user's file keeps its colour space.

The style networks learned the paintings' colours in sRGB. A photo in another space (Display P3 from a
phone, Adobe RGB from a camera, a CMYK JPEG) read as if it were sRGB looks washed out or shifted, and a
result written without its profile looks different from the original in every colour-managed viewer.
So, as GIMP does for the plug-in (it hands over "R'G'B'A u8", i.e. sRGB, and converts back):

- 8-bit files (Pillow): pixels are converted to sRGB on reading (littlecms, relative colorimetric) and,
  for an RGB profile, back into it on writing, and the output carries the profile. CMYK and grey
  profiles are converted to sRGB and the output is sRGB (untagged: PNG, WebP and the RGB JPEG fauve
  writes cannot hold CMYK).
- 16-bit and float files: Pillow's colour management is 8-bit only, so the pixels are used as they are
  and the output carries the profile, which keeps the photo's colours right in a managed viewer.
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageCms

_INTENT = ImageCms.Intent.RELATIVE_COLORIMETRIC
_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
_MODE_OF_SPACE = {"RGB": "RGB", "CMYK": "CMYK", "GRAY": "L"}
_MODES_FOR_SPACE = {"RGB": ("RGB", "RGBA", "RGBX", "P", "PA"), "CMYK": ("CMYK",), "GRAY": ("L", "LA", "1")}
_HIGH_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")


@dataclass(frozen=True)
class ColorProfile:
    """The input's ICC profile. ``converted``: the pixels were converted to sRGB and are converted back
    on writing; else they are the file's own values and the profile only tags the output."""

    icc: bytes
    name: str
    space: str  # RGB | CMYK | GRAY
    converted: bool

    @property
    def tags_output(self) -> bool:
        return self.space == "RGB"


def _parse(icc: bytes) -> ImageCms.ImageCmsProfile | None:
    try:
        return ImageCms.ImageCmsProfile(io.BytesIO(icc))
    except (OSError, ImageCms.PyCMSError, TypeError, ValueError):
        return None  # unreadable: the pixels are taken as sRGB, as every viewer without the profile would


def _describe(profile: ImageCms.ImageCmsProfile) -> str:
    try:
        return (ImageCms.getProfileDescription(profile) or "").strip() or "unnamed profile"
    except ImageCms.PyCMSError:
        return "unnamed profile"


def _is_srgb(name: str) -> bool:
    return "srgb" in name.lower().replace(" ", "").replace("-", "")


def describe_icc(icc: bytes | None, converted: bool = False) -> ColorProfile | None:
    """A ColorProfile for raw ICC bytes (None when absent, unreadable or sRGB)."""
    if not icc:
        return None
    profile = _parse(icc)
    if profile is None:
        return None
    name = _describe(profile)
    space = profile.profile.xcolor_space.strip()
    if space == "RGB" and _is_srgb(name):
        return None
    return ColorProfile(icc, name, space, converted)


def to_srgb(image: Image.Image) -> tuple[Image.Image, ColorProfile | None]:
    """Convert a Pillow image with an embedded non-sRGB profile to sRGB (alpha kept). High-bit modes are
    returned as they are with the profile to carry (littlecms through Pillow is 8-bit only)."""
    if image.mode in _HIGH_BIT_MODES:
        return image, describe_icc(image.info.get("icc_profile"))
    found = describe_icc(image.info.get("icc_profile"))
    if found is None or found.space not in _MODE_OF_SPACE:
        return image, None
    in_mode = _MODE_OF_SPACE[found.space]
    alpha = image.getchannel("A") if "A" in image.getbands() else None
    if alpha is None and "transparency" in image.info:
        alpha = image.convert("RGBA").getchannel("A")
    if image.mode not in _MODES_FOR_SPACE[found.space]:
        return image, None  # a profile that does not match the pixels (a grey profile on colour): ignored, as viewers do
    if image.mode != in_mode:
        image = image.convert(in_mode)
    converted = ImageCms.profileToProfile(image, _parse(found.icc), _SRGB, renderingIntent=_INTENT, outputMode="RGB")
    if alpha is not None:
        converted.putalpha(alpha)
    return converted, ColorProfile(found.icc, found.name, found.space, converted=True)


def from_srgb(pixels: np.ndarray, profile: ColorProfile) -> np.ndarray:
    """8-bit sRGB pixels (H, W, 3 or 4) back into the profile's RGB space (alpha untouched)."""
    if not (profile.converted and profile.tags_output):
        return pixels
    rgb = Image.fromarray(np.ascontiguousarray(pixels[:, :, :3]), "RGB")
    back = np.asarray(ImageCms.profileToProfile(rgb, _SRGB, _parse(profile.icc), renderingIntent=_INTENT, outputMode="RGB"))
    return back if pixels.shape[2] == 3 else np.concatenate([back, pixels[:, :, 3:]], axis=2)


# -- PNG iCCP chunks (pypng, which reads and writes fauve's 16-bit PNGs, knows none) -------------------
def _chunks(data: bytes):
    pos = 8
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        yield pos, kind, data[pos + 8:pos + 8 + length]
        if kind == b"IEND":
            return
        pos += 12 + length


def png_icc(data: bytes) -> bytes | None:
    """The ICC profile of a PNG file's iCCP chunk, if any."""
    for _, kind, body in _chunks(data):
        if kind == b"iCCP":
            name_end = body.find(b"\0")
            try:
                return zlib.decompress(body[name_end + 2:])
            except zlib.error:
                return None
        if kind == b"IDAT":
            return None
    return None


def add_png_icc(data: bytes, profile: ColorProfile) -> bytes:
    """Insert an iCCP chunk right after IHDR (where the PNG spec wants it: before PLTE and IDAT)."""
    name = profile.name.encode("latin-1", "replace")[:79].replace(b"\0", b" ") or b"ICC profile"
    body = name + b"\0\0" + zlib.compress(profile.icc)
    chunk = struct.pack(">I", len(body)) + b"iCCP" + body + struct.pack(">I", zlib.crc32(b"iCCP" + body))
    ihdr_end = 8 + 12 + struct.unpack(">I", data[8:12])[0]
    return data[:ihdr_end] + chunk + data[ihdr_end:]
