"""Reading and writing images: any common file in, float32 RGB in [0, 1] plus its alpha out.

Pillow decodes PNG, JPEG, WebP, TIFF, BMP, GIF … in 8 bits per channel and 16-bit greyscale.
Pillow has no 16-bit-per-channel colour modes, so two small established libraries fill the gap:
``pypng`` reads and writes 16-bit PNGs and ``tifffile`` reads 16-bit and floating-point TIFFs.

Everything that goes wrong with an input file becomes an :class:`~fauve.errors.InputImageError`
that says what to do: a missing file, a file that is not an image, an image under ``MIN_SIDE``
pixels, or one over Pillow's decompression-bomb limit (``PIL.Image.MAX_IMAGE_PIXELS``).
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import BinaryIO, NamedTuple

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from fauve.color_profile import ColorProfile, add_png_icc, describe_icc, from_srgb, png_icc, to_srgb
from fauve.errors import InputImageError

# The smallest side the generators accept: two stride-2 (or three, for AdaIN) downsamplings
# followed by reflection padding need at least a couple of pixels at the lowest resolution.
MIN_SIDE = 16

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TIFF_SIGNATURES = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")

Source = str | os.PathLike | bytes | BinaryIO


class ImageData(NamedTuple):
    """A decoded image: ``rgb`` (H, W, 3) float32 in [0, 1], ``alpha`` (H, W) float32 or None,
    ``bits`` the source's bits per channel (8, 16 or 32 for floating point), and ``profile`` its embedded
    ICC colour profile when that is not sRGB (``fauve.color_profile``: 8-bit pixels are then already
    converted to sRGB; pass it to ``write_image`` to write the result back in the file's colour space)."""

    rgb: np.ndarray
    alpha: np.ndarray | None
    bits: int
    profile: ColorProfile | None = None


def max_pixels() -> int | None:
    """Pillow's decompression-bomb limit (None when the user switched it off)."""
    return Image.MAX_IMAGE_PIXELS


def _name(source: Source) -> str:
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    return "the image data"


def _read_bytes(source: Source) -> bytes:
    if isinstance(source, bytes):
        return source
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise InputImageError(f"{path} does not exist.", "Check the path (and the current directory).")
        if path.is_dir():
            raise InputImageError(f"{path} is a folder, not an image file.", "Pass an image file, or a folder where a folder is accepted.")
        return path.read_bytes()
    return source.read()


def _check_pixels(width: int, height: int, name: str) -> None:
    limit = max_pixels()
    if limit is not None and width * height > limit:
        raise InputImageError(
            f"{name} is {width}×{height} = {width * height:,} pixels, over the limit of {limit:,} "
            "(a protection against decompression bombs).",
            "Downscale the image first, or raise PIL.Image.MAX_IMAGE_PIXELS if you trust the file.",
        )


def _check_size(width: int, height: int, name: str, min_side: int) -> None:
    if min(width, height) < min_side:
        raise InputImageError(
            f"{name} is {width}×{height} pixels; the smallest side must be at least {min_side} px.",
            f"Use a larger image (or upscale it to at least {min_side} px on each side).",
        )


def _split(array: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """(H, W), (H, W, 1..4) float → RGB (H, W, 3) and alpha (H, W) or None."""
    if array.ndim == 2:
        array = array[:, :, None]
    channels = array.shape[2]
    if channels == 1:
        return np.repeat(array, 3, axis=2), None
    if channels == 2:  # grey + alpha
        return np.repeat(array[:, :, :1], 3, axis=2), array[:, :, 1]
    if channels == 3:
        return array, None
    return array[:, :, :3], array[:, :, 3]


def to_float01(array: np.ndarray) -> np.ndarray:
    """uint8 / uint16 / other integers / floats → float32 in [0, 1] (floats are clipped, NaN → 0)."""
    array = np.asarray(array)
    if array.dtype in (np.uint8, np.uint16):  # row blocks: no full-size temporaries (large images)
        out = np.empty(array.shape, np.float32)
        scale = np.float32(255.0 if array.dtype == np.uint8 else 65535.0)
        for block in _row_blocks(array.shape):
            np.divide(array[block], scale, out=out[block], dtype=np.float32)
        return out
    elif array.dtype == bool:
        out = array.astype(np.float32)
    elif np.issubdtype(array.dtype, np.integer):
        top = 255.0 if array.size and array.max() <= 255 else 65535.0
        out = array.astype(np.float32) / top
    elif np.issubdtype(array.dtype, np.floating):
        out = np.nan_to_num(array.astype(np.float32), nan=0.0, posinf=1.0, neginf=0.0)
    else:
        raise InputImageError(f"Unsupported pixel type {array.dtype}.", "Use 8-bit, 16-bit or floating-point pixels.")
    return np.clip(out, 0.0, 1.0)


def _row_blocks(shape: tuple[int, ...], pixels: int = 1 << 20) -> list[tuple[slice, ...]]:
    """Index tuples covering ``shape`` in blocks of whole rows, about ``pixels`` elements each."""
    if len(shape) == 0:
        return [()]
    row = int(np.prod(shape[1:])) if len(shape) > 1 else 1
    step = max(1, pixels // max(1, row))
    return [(slice(y, y + step),) for y in range(0, max(shape[0], 1), step)]


def from_float01(array: np.ndarray, dtype: np.dtype | type) -> np.ndarray:
    """float in [0, 1] → ``dtype`` (uint8 / uint16 rounded, floats clipped)."""
    dtype = np.dtype(dtype)
    if dtype in (np.uint8, np.uint16):  # row blocks: no full-size float temporaries (large images)
        array = np.asarray(array)
        out = np.empty(array.shape, dtype)
        top = np.float32(255.0 if dtype == np.uint8 else 65535.0)
        for block in _row_blocks(array.shape):
            part = np.clip(np.asarray(array[block], dtype=np.float32), 0.0, 1.0)
            out[block] = np.rint(part * top)
        return out
    array = np.clip(np.asarray(array, dtype=np.float32), 0.0, 1.0)
    if np.issubdtype(dtype, np.floating):
        return array.astype(dtype)
    raise ValueError(f"cannot convert to {dtype}")


def pil_to_float(image: Image.Image) -> ImageData:
    """A Pillow image in any mode → :class:`ImageData`."""
    mode = image.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N"):
        return ImageData(*_split(np.asarray(image).astype(np.float32) / 65535.0), 16)
    if mode == "I":
        array = np.asarray(image)
        top = 255.0 if array.size and array.max() <= 255 else 65535.0
        return ImageData(*_split(np.clip(array.astype(np.float32) / top, 0, 1)), 16)
    if mode == "F":
        return ImageData(*_split(to_float01(np.asarray(image))), 32)
    has_alpha = mode in ("RGBA", "LA", "PA", "La", "RGBa") or (mode in ("P", "L", "RGB") and "transparency" in image.info)
    image = image.convert("RGBA" if has_alpha else "RGB")
    return ImageData(*_split(np.asarray(image).astype(np.float32) / 255.0), 8)


def _png_bit_depth(data: bytes) -> int | None:
    if data[:8] != PNG_SIGNATURE or len(data) < 29 or data[12:16] != b"IHDR":
        return None
    return data[24]


def _read_png16(data: bytes, name: str) -> ImageData:
    import png  # pypng

    width = int.from_bytes(data[16:20], "big")
    height = int.from_bytes(data[20:24], "big")
    _check_pixels(width, height, name)
    try:
        w, h, rows, info = png.Reader(bytes=data).asDirect()
        array = np.vstack([np.asarray(row, dtype=np.uint16) for row in rows])
    except png.Error as err:
        raise InputImageError(f"{name} is a damaged PNG: {err}", "Re-export the image.") from err
    planes = info["planes"]
    array = array.reshape(h, w, planes).astype(np.float32) / float(2 ** info["bitdepth"] - 1)
    return ImageData(*_split(array), 16, describe_icc(png_icc(data)))


def _read_tiff(data: bytes, name: str) -> ImageData | None:
    """16-bit / float / many-sample TIFFs through tifffile; None lets Pillow try (e.g. JPEG-in-TIFF)."""
    import tifffile

    try:
        with tifffile.TiffFile(io.BytesIO(data)) as tif:
            page = tif.pages[0]
            axes = page.axes
            shape = dict(zip(axes, page.shape))
            _check_pixels(shape.get("X", 0), shape.get("Y", 0), name)
            bits = page.bitspersample
            if bits == 8 and page.dtype == np.uint8:
                return None  # Pillow handles every 8-bit layout (palette, CMYK, YCbCr, …)
            array = page.asarray()
            icc = page.tags.get("InterColorProfile")
            profile = describe_icc(bytes(icc.value)) if icc is not None else None
    except InputImageError:
        raise
    except Exception:  # tifffile needs imagecodecs for some compressions: let Pillow try
        return None
    if "S" in axes and axes.index("S") < axes.index("Y"):
        array = np.moveaxis(array, axes.index("S"), -1)
    array = np.squeeze(array) if array.ndim > 3 else array
    if array.ndim == 3 and array.shape[2] > 4:
        array = array[:, :, :4]
    out_bits = 32 if np.issubdtype(array.dtype, np.floating) else (16 if array.dtype.itemsize >= 2 else 8)
    return ImageData(*_split(to_float01(array)), out_bits, profile)


def read_image(source: Source, *, min_side: int = MIN_SIDE, orient: bool = True) -> ImageData:
    """Decode an image file (path, bytes or binary file object) → :class:`ImageData`.

    ``orient`` applies the EXIF orientation (camera JPEGs). Only the first frame of animations and
    multi-page files is read.
    """
    name = _name(source)
    data = _read_bytes(source)
    if not data:
        raise InputImageError(f"{name} is empty.", "Pass a PNG, JPEG, TIFF or WebP image.")
    result: ImageData | None = None
    if _png_bit_depth(data) == 16:
        result = _read_png16(data, name)
    elif data[:4] in TIFF_SIGNATURES:
        result = _read_tiff(data, name)
    if result is None:
        result = _read_with_pillow(data, name, orient)
    height, width = result.rgb.shape[:2]
    _check_size(width, height, name, min_side)
    return ImageData(np.ascontiguousarray(result.rgb, dtype=np.float32),
                     None if result.alpha is None else np.ascontiguousarray(result.alpha, dtype=np.float32),
                     result.bits, result.profile)


def _read_with_pillow(data: bytes, name: str, orient: bool) -> ImageData:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                _check_pixels(image.width, image.height, name)
                image.load()
                if orient:  # first: the sRGB copy to_srgb makes has no EXIF left
                    image = ImageOps.exif_transpose(image)
                image, profile = to_srgb(image)
                return pil_to_float(image)._replace(profile=profile)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise InputImageError(f"{name}: {err}", "Downscale the image first, or raise PIL.Image.MAX_IMAGE_PIXELS if you trust the file.") from err
    except UnidentifiedImageError as err:
        raise InputImageError(f"{name} is not an image Pillow can read.", "Pass a PNG, JPEG, TIFF or WebP file.") from err
    except (OSError, SyntaxError, ValueError) as err:  # truncated or damaged files
        raise InputImageError(f"{name} is damaged or truncated: {err}", "Re-export or re-download the image.") from err


def _interleave(rgb: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    rgb = np.asarray(rgb)
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[:, :, None], 3, axis=2)
    if alpha is None:
        return rgb
    return np.concatenate([rgb, np.asarray(alpha)[:, :, None]], axis=2)


def encode_png(rgb: np.ndarray, alpha: np.ndarray | None = None, *, bits: int = 8,
               profile: ColorProfile | None = None) -> bytes:
    """PNG bytes of RGB (+ alpha) pixels, given as floats in [0, 1] or uint8/uint16 arrays. With the
    input's ``profile`` (``ImageData.profile``) the pixels go back into its colour space and it is embedded."""
    if bits not in (8, 16):
        raise ValueError("PNG bit depth must be 8 or 16")
    rgb_f = to_float01(rgb)
    alpha_f = None if alpha is None else to_float01(alpha)
    pixels = from_float01(_interleave(rgb_f, alpha_f), np.uint8 if bits == 8 else np.uint16)
    buffer = io.BytesIO()
    if bits == 8:
        if profile is not None:
            pixels = from_srgb(pixels, profile)
        icc = {"icc_profile": profile.icc} if profile is not None and profile.tags_output else {}
        Image.fromarray(pixels, "RGBA" if alpha is not None else "RGB").save(buffer, format="PNG", **icc)
    else:
        import png  # pypng: Pillow cannot write 16-bit colour

        h, w, planes = pixels.shape
        writer = png.Writer(width=w, height=h, greyscale=False, alpha=planes == 4, bitdepth=16)
        writer.write(buffer, pixels.reshape(h, w * planes))
        if profile is not None and profile.tags_output and not profile.converted:  # 16-bit in: values kept, tag only
            return add_png_icc(buffer.getvalue(), profile)
    return buffer.getvalue()


def write_png(path: str | os.PathLike, rgb: np.ndarray, alpha: np.ndarray | None = None, *, bits: int = 8,
              profile: ColorProfile | None = None) -> Path:
    """Write a PNG (8 or 16 bits per channel), keeping alpha; the file appears atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(encode_png(rgb, alpha, bits=bits, profile=profile))
    os.replace(tmp, path)
    return path


def write_image(path: str | os.PathLike, rgb: np.ndarray, alpha: np.ndarray | None = None, *, bits: int = 8,
                quality: int = 95, profile: ColorProfile | None = None) -> Path:
    """Write by extension: ``.png`` (8/16-bit, alpha kept), ``.jpg``/``.jpeg`` (alpha dropped),
    ``.webp`` and ``.tif``/``.tiff`` (8-bit, alpha kept). ``profile``: the input's (``ImageData.profile``),
    so the result is in the input's colour space and carries its ICC profile."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".png":
        return write_png(path, rgb, alpha, bits=bits, profile=profile)
    formats = {".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".tif": "TIFF", ".tiff": "TIFF"}
    if suffix not in formats:
        raise InputImageError(f"Cannot write {path.name}: unknown extension {suffix or '(none)'}.", "Use .png, .jpg, .webp or .tif.")
    keep_alpha = alpha is not None and formats[suffix] != "JPEG"
    pixels = from_float01(_interleave(to_float01(rgb), to_float01(alpha) if keep_alpha else None), np.uint8)
    if profile is not None:
        pixels = from_srgb(pixels, profile)
    image = Image.fromarray(pixels, "RGBA" if keep_alpha else "RGB")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    options = {"quality": quality} if formats[suffix] in ("JPEG", "WEBP") else {}
    if profile is not None and profile.tags_output:
        options["icc_profile"] = profile.icc
    image.save(tmp, format=formats[suffix], **options)
    os.replace(tmp, path)
    return path
