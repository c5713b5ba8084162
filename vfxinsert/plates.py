"""Plates: read a still, an image sequence or a movie into float32 RGB(A) arrays, one frame at a time.

No colour conversion happens here: ``Image.rgb`` holds the file's own values (an 8-bit PNG pixel of
255 reads as 1.0, an EXR value as itself); the colour stage converts them with OCIO.

Formats, one code path each:

* OpenEXR, with the ``OpenEXR`` module: single- and multi-part files, layers (``diffuse.R``), stereo
  views (parts carrying a ``view`` attribute), data window != display window (crop or keep the overscan),
  half / float / uint channels, tiled and mip-mapped files (the full-resolution level), luminance-only
  (``Y``) and luminance/chroma (``Y``, ``RY``, ``BY``) files, converted to RGB as OpenEXR's own
  ``RgbaInputFile`` does.
* PNG, JPEG, TIFF, DPX and Radiance ``.hdr``, with OpenImageIO (integers normalised to 0..1).
* Movies (.mp4 .mov .m4v .mkv .avi), with PyAV: frame-accurate random access through an index of
  presentation timestamps; frame 1 is the first frame of the file, as in Nuke's Read node.

Sequences are named with ``####`` (one ``#`` per digit) or printf ``%04d`` / ``%d``.
"""
from __future__ import annotations

import bisect
import os
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Sequence

import numpy as np
import OpenEXR

from .errors import FrameError, PlateError
from .sequences import SequencePattern, parse_pattern

if TYPE_CHECKING:
    from .movie import Movie

Box = tuple[tuple[int, int], tuple[int, int]]
"""``((xmin, ymin), (xmax, ymax))``, inclusive pixel coordinates (the OpenEXR convention)."""

Overscan = Literal["crop", "keep"]
NonFinitePolicy = Literal["zero", "clamp", "error"]
MissingPolicy = Literal["error", "hold"]
PlateKind = Literal["image", "sequence", "movie"]

EXR_EXTENSIONS = (".exr",)
OIIO_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".dpx", ".hdr")
IMAGE_EXTENSIONS = EXR_EXTENSIONS + OIIO_EXTENSIONS
MOVIE_EXTENSIONS = (".mp4", ".mov", ".m4v", ".mkv", ".avi")

_FIX_PATH = "check plate.path (paths are relative to the shot file)"

HALF_MAX = 65504.0
"""Largest finite half float: where the 'clamp' policy puts +-Inf."""

REC709_CHROMATICITIES = (0.64, 0.33, 0.30, 0.60, 0.15, 0.06, 0.3127, 0.3290)
"""OpenEXR's default ``chromaticities`` (Rec.709 primaries, D65 white): red, green, blue, white (x, y)."""

# OpenEXR's chroma reconstruction filter (ImfRgbaYca.cpp, reconstructChromaHoriz / reconstructChromaVert):
# a 14-tap half-band filter that fills each odd pixel from the 7 chroma samples on either side of it.
_CHROMA_TAPS = np.array([0.002128, -0.007540, 0.019597, -0.043159, 0.087929, -0.186077, 0.627123,
                         0.627123, -0.186077, 0.087929, -0.043159, 0.019597, -0.007540, 0.002128], np.float32)


@dataclass(frozen=True, eq=False)
class Image:
    """One decoded frame. ``eq=False``: images are compared by their arrays, never by ``==``."""

    rgb: np.ndarray
    """(H, W, 3) float32, C-contiguous, in the file's colorspace (no colour conversion)."""
    alpha: np.ndarray | None
    """(H, W) float32, or None when the source has no alpha channel."""
    display_window: Box
    """The plate format; for non-EXR files ``((0, 0), (W - 1, H - 1))``."""
    origin: tuple[int, int]
    """Display-space (x, y) of array pixel [0, 0]: the (xmin, ymin) of the array's window."""
    pixel_aspect: float
    """Pixel width / pixel height (2.0 for anamorphic 2:1 plates)."""
    path: str
    """The file the pixels came from (the movie for a movie frame; the held file for a held frame)."""
    channels: tuple[str, ...]
    """The source channel names used, e.g. ("R", "G", "B", "A") or ("Y", "RY", "BY")."""
    nonfinite: int
    """How many NaN / +-Inf values the used channels held before they were sanitised."""
    held_from: int | None = None
    """Set when the 'hold' missing-frame policy supplied another frame's pixels: that frame's number."""


# ----------------------------------------------------------------------------------------------------
# single images


def read_image(path: str | Path, *, layer: str = "", view: str = "", overscan: Overscan = "crop",
               nonfinite: NonFinitePolicy = "zero") -> Image:
    """Read one image file (EXR, PNG, JPEG, TIFF, DPX or .hdr) as float32 RGB(A).

    ``layer``: "" = the main R,G,B(,A) channels, "name" = ``name.R/G/B(/A)`` (EXR only).
    ``view``: a stereo view ("left") of a multi-part EXR; "" = the first part holding the layer.
    ``overscan``: "crop" returns the display window exactly (zeros, alpha 0, where there is no data);
    "keep" returns the union of the data and display windows, ``origin`` saying where it starts.
    ``nonfinite``: NaN/Inf become 0 ("zero"); NaN -> 0 and +-Inf -> +-65504 ("clamp"); or raise ("error").
    Raises PlateError, naming the file and the fix, for anything that cannot be read as asked.
    """
    path = str(path)
    _check_choice("overscan", overscan, ("crop", "keep"))
    _check_choice("nonfinite", nonfinite, ("zero", "clamp", "error"))
    ext = os.path.splitext(path)[1].lower()
    if ext not in IMAGE_EXTENSIONS:
        raise PlateError(f"unknown image extension {ext or '(none)'!r}", where=path,
                         fix=f"use one of {', '.join(IMAGE_EXTENSIONS)} (or a movie: {', '.join(MOVIE_EXTENSIONS)})")
    if not os.path.isfile(path):
        raise PlateError("file not found", where=path, fix=_FIX_PATH)
    if ext in EXR_EXTENSIONS:
        image = _read_exr(path, layer, view, overscan)
    else:
        image = _read_oiio(path)
    return _sanitise(image, nonfinite)


def _read_exr(path: str, layer: str, view: str, overscan: Overscan) -> Image:
    """The EXR code path of :func:`read_image` (before non-finite values are handled)."""
    fix = "re-render or re-copy the file"
    try:
        listed = [[c.name for c in p.header["channels"]] for p in OpenEXR.File(path, header_only=True).parts]
        parts = OpenEXR.File(path, separate_channels=True).parts
    except Exception as exc:  # the binding raises RuntimeError for a file it cannot open
        raise PlateError(f"cannot read OpenEXR file ({type(exc).__name__}: {exc}); it is corrupt, truncated or "
                         "not an EXR", where=path, fix=fix) from exc
    # When pixel data cannot be decoded (a truncated file) the binding prints a warning and leaves that part
    # out instead of raising, so compare what was read with what the header lists.
    if len(parts) != len(listed) or any(set(names) - set(p.channels) for names, p in zip(listed, parts)):
        raise PlateError("cannot read OpenEXR file: its pixel data is incomplete; it is corrupt or truncated",
                         where=path, fix=fix)
    prefix = f"{layer}." if layer else ""
    part = _pick_part(parts, prefix, view, path)
    header = part.header
    data_window = _box(header["dataWindow"])
    display_window = _box(header["displayWindow"])
    rgb, alpha, channels = _exr_pixels(part, prefix, path)
    out_window = display_window if overscan == "crop" else _union(data_window, display_window)
    return Image(rgb=_place(rgb, data_window, out_window),
                 alpha=None if alpha is None else _place(alpha, data_window, out_window),
                 display_window=display_window, origin=out_window[0],
                 pixel_aspect=float(header.get("pixelAspectRatio", 1.0)), path=path, channels=channels,
                 nonfinite=0)


def _pick_part(parts: list, prefix: str, view: str, path: str):
    """The part holding ``prefix`` R,G,B (else ``prefix`` Y) for ``view``; PlateError listing what exists."""
    holding = []
    for wanted in (("R", "G", "B"), ("Y",)):
        holding = [p for p in parts if all(prefix + c in p.channels for c in wanted)]
        if holding:
            break
    if not holding:
        label = f'layer "{prefix[:-1]}"' if prefix else "the main layer"
        names = sorted({name for p in parts for name in p.channels})
        listing = ", ".join(names[:24]) + (f" ... (+{len(names) - 24} more)" if len(names) > 24 else "")
        rgb_layers = _rgb_layers(parts)
        if rgb_layers:
            fix = (f'set plate.layer = "{rgb_layers[0]}" (layers with R,G,B: '
                   + ", ".join(f'"{name}"' for name in rgb_layers) + ")")
        else:
            fix = "the file holds no R,G,B or Y image: pick another file, or shuffle a channel into R,G,B first"
        raise PlateError(f"{label} has no R,G,B (or luminance Y) channels; the file has channels: {listing}",
                         where=path, fix=fix)
    if not view:
        return holding[0]
    for part in holding:
        if part.header.get("view") == view:
            return part
    views = sorted({str(p.header["view"]) for p in holding if "view" in p.header})
    fix = ("set plate.view to one of: " + ", ".join(f'"{v}"' for v in views)) if views else \
        'set plate.view = "" (the file has no views)'
    raise PlateError(f'no part holding the plate layer has view "{view}"', where=path, fix=fix)


def _rgb_layers(parts: list) -> list[str]:
    """Names of the layers ("" = main) that have R, G and B channels in some part, in file order."""
    layers: list[str] = []
    for part in parts:
        for name in part.channels:
            if name == "R" or name.endswith(".R"):
                stem = name[:-1]
                layer = stem[:-1]
                if stem + "G" in part.channels and stem + "B" in part.channels and layer not in layers:
                    layers.append(layer)
    return layers


def _exr_pixels(part, prefix: str, path: str) -> tuple[np.ndarray, np.ndarray | None, tuple[str, ...]]:
    """RGB, alpha and the channel names used, over the part's data window, as float32."""
    def plane(name: str, sampling: tuple[int, int] = (1, 1)) -> np.ndarray:
        channel = part.channels[name]
        if (channel.xSampling, channel.ySampling) != sampling:
            raise PlateError(f"channel {name} is subsampled {channel.xSampling}x{channel.ySampling}; "
                             f"expected {sampling[0]}x{sampling[1]}", where=path,
                             fix="write the plate with full-resolution channels (only RY/BY may be 2x2)")
        return np.asarray(channel.pixels, dtype=np.float32)

    if all(prefix + c in part.channels for c in "RGB"):
        names = [prefix + c for c in "RGB"]
        rgb = np.stack([plane(n) for n in names], axis=-1)
    else:
        names = [prefix + "Y"]
        luminance = plane(prefix + "Y")
        chroma_names = [prefix + "RY", prefix + "BY"]
        if any(n in part.channels for n in chroma_names):
            # RgbaInputFile reads a missing chroma channel as its fill value, 0.
            chroma = [_upsample_chroma(plane(n, (2, 2)), luminance.shape) if n in part.channels
                      else np.zeros_like(luminance) for n in chroma_names]
            names += [n for n in chroma_names if n in part.channels]
            weights = _luminance_weights(part.header.get("chromaticities", REC709_CHROMATICITIES), path)
            rgb = _yca_to_rgb(luminance, chroma[0], chroma[1], weights)
        else:
            rgb = np.repeat(luminance[..., None], 3, axis=-1)
    alpha = plane(prefix + "A") if prefix + "A" in part.channels else None
    if alpha is not None:
        names.append(prefix + "A")
    return rgb, alpha, tuple(names)


def _luminance_weights(chromaticities: Sequence[float], path: str) -> np.ndarray:
    """RGB -> Y weights: the Y row of the RGB -> XYZ matrix of ``chromaticities`` (rx ry gx gy bx by wx wy).

    Each primary's XYZ at Y = 1 is scaled so that the three add up to the white point at Y = 1; the
    scales are then the Y row (as Imath's RGBtoXYZ and OpenEXR's computeYw, which also normalises the sum).
    """
    rx, ry, gx, gy, bx, by, wx, wy = (float(v) for v in chromaticities)
    try:
        primaries = np.array([[x / y, 1.0, (1.0 - x - y) / y] for x, y in ((rx, ry), (gx, gy), (bx, by))]).T
        white = np.array([wx / wy, 1.0, (1.0 - wx - wy) / wy])
        weights = np.linalg.solve(primaries, white)
    except (ZeroDivisionError, np.linalg.LinAlgError) as exc:
        raise PlateError(f"invalid chromaticities attribute {tuple(chromaticities)} ({exc})", where=path,
                         fix="fix or remove the file's chromaticities attribute") from exc
    return (weights / weights.sum()).astype(np.float32)


def _upsample_chroma(samples: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """2x2-subsampled chroma to full resolution ``shape``, as OpenEXR's RgbaInputFile reconstructs it.

    Samples sit on the even pixels and are copied; odd pixels get the 14-tap filter over the samples
    around them, with the edge samples repeated (OpenEXR pads and clamps the same way).
    """
    def double_rows(s: np.ndarray, rows: int) -> np.ndarray:
        n = s.shape[0]
        padded = np.pad(s, ((6, 7), (0, 0)), mode="edge")
        out = np.empty((2 * n,) + s.shape[1:], np.float32)
        out[0::2] = s
        out[1::2] = sum(tap * padded[i:i + n] for i, tap in enumerate(_CHROMA_TAPS))
        return out[:rows]

    return np.ascontiguousarray(double_rows(double_rows(samples, shape[0]).T, shape[1]).T)


def _yca_to_rgb(y: np.ndarray, ry: np.ndarray, by: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Luminance + full-resolution chroma to RGB (ImfRgbaYca YCAtoRGBA, then fixSaturation).

    ``R = (RY + 1) Y``, ``B = (BY + 1) Y``, ``G = (Y - R yw0 - B yw2) / yw1``; where both chroma values
    are exactly 0 the pixel is grey, R = G = B = Y, so grey images round-trip losslessly.
    """
    r = (ry + 1.0) * y
    b = (by + 1.0) * y
    g = (y - r * weights[0] - b * weights[2]) / weights[1]
    grey = ((ry == 0) & (by == 0))[..., None]
    rgb = np.where(grey, y[..., None], np.stack([r, g, b], axis=-1))
    return _fix_saturation(rgb.astype(np.float32), weights)


def _fix_saturation(rgb: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """OpenEXR's fixSaturation: chroma reconstruction can leave isolated pixels more saturated than the
    pixels diagonally around them; those are desaturated towards their max channel, keeping luminance.

    OpenEXR looks at the rows above and below; here the border pixels repeat their neighbours.
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        top = rgb.max(axis=-1)
        saturation = np.where(top > 0, 1.0 - rgb.min(axis=-1) / np.where(top > 0, top, 1.0), 0.0)
        s = np.pad(saturation, 1, mode="edge")
        mean = np.minimum(1.0, 0.25 * (s[:-2, :-2] + s[:-2, 2:] + s[2:, :-2] + s[2:, 2:]))
        limit = np.minimum(1.0, 1.0 - (1.0 - mean) * 0.25)  # >= mean, so "s > mean and s > limit" = "s > limit"
        fix = saturation > limit
        if not fix.any():
            return rgb
        factor = (limit / np.where(fix, saturation, 1.0))[..., None]
        desaturated = np.maximum(top[..., None] - (top[..., None] - rgb) * factor, 0.0)
        y_in = rgb @ weights
        y_out = desaturated @ weights
        desaturated *= np.where(y_out > 0, y_in / np.where(y_out > 0, y_out, 1.0), 1.0)[..., None]
        return np.where(fix[..., None], desaturated, rgb).astype(np.float32)


def _read_oiio(path: str) -> Image:
    """The OpenImageIO code path of :func:`read_image` (PNG, JPEG, TIFF, DPX, .hdr)."""
    import OpenImageIO as oiio

    config = oiio.ImageSpec()
    # OIIO premultiplies PNG/TIFF colour by alpha on read unless told not to; a plate keeps the file's values.
    config.attribute("oiio:UnassociatedAlpha", 1)
    image_input = oiio.ImageInput.open(path, config)
    if image_input is None:
        raise PlateError(f"cannot open image ({oiio.geterror()})", where=path,
                         fix="check the file is a complete, valid image (re-export or re-copy it)")
    try:
        spec = image_input.spec()
        pixels = image_input.read_image(0, 0, 0, spec.nchannels, "float")
        error = image_input.geterror()  # a truncated JPEG still returns pixels, with this set
    finally:
        image_input.close()
    if pixels is None or error:
        raise PlateError(f"cannot read image pixels ({error or oiio.geterror() or 'unknown error'}); "
                         "the file is corrupt or truncated", where=path, fix="re-export or re-copy the file")
    pixels = np.asarray(pixels, dtype=np.float32).reshape(spec.height, spec.width, spec.nchannels)
    names = tuple(spec.channelnames)
    colour = [i for i in range(spec.nchannels) if i != spec.alpha_channel][:3]
    if len(colour) == 2:
        raise PlateError(f"image has 2 colour channels {names}; expected grey or RGB", where=path,
                         fix="save the plate as grey or RGB(A)")
    rgb = pixels[..., colour if len(colour) == 3 else colour * 3]
    alpha = pixels[..., spec.alpha_channel] if spec.alpha_channel >= 0 else None
    used = tuple(names[i] for i in colour) + ((names[spec.alpha_channel],) if alpha is not None else ())
    return Image(rgb=np.ascontiguousarray(rgb), alpha=None if alpha is None else np.ascontiguousarray(alpha),
                 display_window=((0, 0), (spec.width - 1, spec.height - 1)), origin=(0, 0),
                 pixel_aspect=float(spec.get_float_attribute("PixelAspectRatio", 1.0)), path=path,
                 channels=used, nonfinite=0)


def _sanitise(image: Image, policy: NonFinitePolicy) -> Image:
    """Count NaN/Inf in RGB and alpha and apply the policy (the arrays are this module's own copies)."""
    planes = [image.rgb] if image.alpha is None else [image.rgb, image.alpha]
    count = sum(int(np.count_nonzero(~np.isfinite(p))) for p in planes)
    if count == 0:
        return image
    if policy == "error":
        raise PlateError(f"{count} NaN/Inf pixel values", where=image.path,
                         fix='set plate.nonfinite = "zero" (or "clamp") to replace them, or fix the render')
    limit = HALF_MAX if policy == "clamp" else 0.0
    for p in planes:
        np.nan_to_num(p, copy=False, nan=0.0, posinf=limit, neginf=-limit)
    return replace(image, nonfinite=count)


def _box(window) -> Box:
    (x0, y0), (x1, y1) = window
    return (int(x0), int(y0)), (int(x1), int(y1))


def _union(a: Box, b: Box) -> Box:
    return ((min(a[0][0], b[0][0]), min(a[0][1], b[0][1])), (max(a[1][0], b[1][0]), max(a[1][1], b[1][1])))


def _place(plane: np.ndarray, data: Box, out: Box) -> np.ndarray:
    """``plane`` (rows, cols[, c]) covering window ``data``, copied into zeros covering window ``out``."""
    (ox0, oy0), (ox1, oy1) = out
    (dx0, dy0), (dx1, dy1) = data
    result = np.zeros((oy1 - oy0 + 1, ox1 - ox0 + 1) + plane.shape[2:], np.float32)
    x0, y0, x1, y1 = max(ox0, dx0), max(oy0, dy0), min(ox1, dx1), min(oy1, dy1)
    if x0 <= x1 and y0 <= y1:  # no overlap at all is valid: the result stays zero
        result[y0 - oy0:y1 - oy0 + 1, x0 - ox0:x1 - ox0 + 1] = plane[y0 - dy0:y1 - dy0 + 1, x0 - dx0:x1 - dx0 + 1]
    return result


def _check_choice(key: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise PlateError(f"plate.{key} = {value!r} is not one of {', '.join(map(repr, choices))}",
                         fix=f"set plate.{key} to one of {', '.join(map(repr, choices))}")


# ----------------------------------------------------------------------------------------------------
# plate sources


@dataclass(frozen=True)
class _ReadOptions:
    layer: str
    view: str
    overscan: Overscan
    nonfinite: NonFinitePolicy


class PlateSource:
    """An opened plate (a still, an image sequence or a movie), read one frame at a time.

    Made by :func:`open_plate`. Use it as a context manager: it holds a movie's file open.
    """

    path: str
    """The plate path as given (the pattern for a sequence)."""
    frames: tuple[int, ...]
    """Every frame number of the plate, in order."""
    fps: Fraction | None
    """The movie's frame rate; None for stills and sequences (their EXR headers may say: ``timing``)."""
    timecode: str | None
    """The movie's start timecode (of its frame 1); None for stills and sequences."""
    kind: PlateKind

    def __init__(self, path: str, frames: tuple[int, ...], kind: PlateKind, options: _ReadOptions, *,
                 missing: MissingPolicy = "error", pattern: SequencePattern | None = None,
                 present: Sequence[int] = (), movie: Movie | None = None):
        self.path = path
        self.frames = frames
        self.kind = kind
        self.fps = movie.fps if movie is not None else None
        self.timecode = movie.timecode if movie is not None else None
        self._options = options
        self._missing = missing
        self._pattern = pattern
        self._present = sorted(present)
        self._present_set = frozenset(present)
        self._frame_set = frozenset(frames)
        self._movie = movie

    def missing_frames(self) -> list[int]:
        """Frames of a sequence whose file does not exist (checked when the plate was opened)."""
        if self.kind != "sequence":
            return []
        return [f for f in self.frames if f not in self._present_set]

    def source_path(self, frame: int) -> str:
        """The file that :meth:`read` would decode for ``frame`` (the held one for a held frame)."""
        return self._source(frame)[1]

    def read(self, frame: int) -> Image:
        """Decode ``frame``; FrameError (with the frame number and path) when that frame cannot be read."""
        source_frame, source = self._source(frame)
        try:
            if self._movie is not None:
                rgb = self._movie.read(frame)
                h, w = rgb.shape[:2]
                image = Image(rgb=rgb, alpha=None, display_window=((0, 0), (w - 1, h - 1)), origin=(0, 0),
                              pixel_aspect=self._movie.pixel_aspect, path=self._movie.path, channels=("R", "G", "B"),
                              nonfinite=0)
            else:
                o = self._options
                image = read_image(source, layer=o.layer, view=o.view, overscan=o.overscan, nonfinite=o.nonfinite)
        except FrameError:
            raise
        except PlateError as exc:
            raise FrameError(exc.what, frame=frame, where=exc.where or source, fix=exc.fix) from exc
        return image if source_frame == frame else replace(image, held_from=source_frame)

    def _source(self, frame: int) -> tuple[int, str]:
        """(frame whose pixels are used, its file) for ``frame``, applying the missing-frame policy."""
        if frame not in self._frame_set:
            raise FrameError(f"frame {frame} is outside the plate's frames {self.frames[0]}-{self.frames[-1]}",
                             frame=frame, where=self.path, fix="read a frame inside plate.frames")
        if self._pattern is None:
            return frame, self.path
        if frame in self._present_set:
            return frame, self._pattern.path_for(frame)
        if self._missing == "error":
            raise FrameError(f"frame {frame} is missing", frame=frame, where=self._pattern.path_for(frame),
                             fix='render or copy the frame, or set plate.missing_frames = "hold"')
        # open_plate refuses a sequence with no frame present, so there is always one to hold
        i = bisect.bisect_left(self._present, frame)
        held = self._present[i - 1] if i > 0 else self._present[0]  # the nearest earlier, else the nearest later
        return held, self._pattern.path_for(held)

    def close(self) -> None:
        """Close a movie's file; stills and sequences hold nothing open."""
        if self._movie is not None:
            self._movie.close()

    def __enter__(self) -> PlateSource:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def open_plate(path: str | Path, frames: Sequence[int] | None = None, *, layer: str = "", view: str = "",
               overscan: Overscan = "crop", nonfinite: NonFinitePolicy = "zero",
               missing: MissingPolicy = "error") -> PlateSource:
    """Open a still, a sequence (``####`` / ``%04d`` in the file name) or a movie as a :class:`PlateSource`.

    ``frames`` = (first, last), inclusive: required for a sequence; for a still, every frame reads the
    same image (default: frame 1 only); for a movie, a sub-range of 1..N (default: the whole movie).
    ``missing``: a missing sequence frame raises FrameError when read ("error"), or reads the nearest
    earlier present frame, else the nearest later one ("hold"). The other options go to :func:`read_image`.
    Raises PlateError only for problems with the whole plate; one bad frame raises FrameError on read.
    """
    path = str(path)
    _check_choice("overscan", overscan, ("crop", "keep"))
    _check_choice("nonfinite", nonfinite, ("zero", "clamp", "error"))
    _check_choice("missing_frames", missing, ("error", "hold"))
    options = _ReadOptions(layer, view, overscan, nonfinite)
    span = None if frames is None else _frame_span(frames, path)
    pattern = parse_pattern(path)
    ext = os.path.splitext(path)[1].lower()
    if pattern is not None:
        if ext not in IMAGE_EXTENSIONS:
            raise PlateError(f"unknown image-sequence extension {ext or '(none)'!r}", where=path,
                             fix=f"a sequence is one of {', '.join(IMAGE_EXTENSIONS)}; a movie has no frame pattern")
        if span is None:
            raise PlateError("an image sequence needs a frame range", where=path,
                             fix="set plate.frames = [first, last]")
        numbers = tuple(range(span[0], span[1] + 1))
        folder = os.path.dirname(pattern.path_for(span[0])) or "."
        if not os.path.isdir(folder):
            raise PlateError(f"folder {folder} not found", where=path,
                             fix=_FIX_PATH)
        names = set(os.listdir(folder))
        present = [f for f in numbers if os.path.basename(pattern.path_for(f)) in names]
        if not present:
            raise PlateError(f"none of the {len(numbers)} frames {span[0]}-{span[1]} exists "
                             f"(first looked for: {pattern.path_for(span[0])})", where=path,
                             fix="check the pattern's padding (#### = 4 digits) and plate.frames")
        return PlateSource(path, numbers, "sequence", options, missing=missing, pattern=pattern, present=present)
    if ext in MOVIE_EXTENSIONS:
        if not os.path.isfile(path):
            raise PlateError("movie file not found", where=path, fix=_FIX_PATH)
        from .movie import Movie

        movie = Movie(path)
        count = movie.frame_count
        first, last = span if span is not None else (1, count)
        if first < 1 or last > count:
            movie.close()
            raise PlateError(f"frames {first}-{last} are outside the movie's {count} frames (1-{count})", where=path,
                             fix=f"set plate.frames inside [1, {count}], or leave it out for the whole movie")
        return PlateSource(path, tuple(range(first, last + 1)), "movie", options, missing=missing, movie=movie)
    if ext in IMAGE_EXTENSIONS:
        if not os.path.isfile(path):
            raise PlateError("file not found", where=path, fix=_FIX_PATH)
        numbers = (1,) if span is None else tuple(range(span[0], span[1] + 1))
        return PlateSource(path, numbers, "image", options, missing=missing)
    raise PlateError(f"unknown plate extension {ext or '(none)'!r}", where=path,
                     fix=f"use an image ({', '.join(IMAGE_EXTENSIONS)}), a sequence of them, "
                         f"or a movie ({', '.join(MOVIE_EXTENSIONS)})")


def _frame_span(frames: Sequence[int], path: str) -> tuple[int, int]:
    """``frames`` checked as two integers, first <= last."""
    values = tuple(frames)
    if len(values) != 2 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values):
        raise PlateError(f"plate.frames = {list(values)!r} is not [first, last]", where=path,
                         fix="set plate.frames = [first, last] (two whole numbers)")
    first, last = int(values[0]), int(values[1])
    if first > last:
        raise PlateError(f"first frame {first} is after last frame {last}", where=path,
                         fix="set plate.frames = [first, last] with first <= last")
    return first, last
