"""EXR output: one generic single-part writer, the per-frame insert layers, and a small reader.

The per-frame contract (design/architecture.md, "Outputs") is one single-part, scanline, multi-layer
scene-linear EXR whose channel names carry at most one dot, so Nuke shows them as layers:

- ``R, G, B, A``: the object, premultiplied by its alpha (Nuke layer ``rgba``);
- ``shadow.R, shadow.G, shadow.B``: the shadow multiplier for the plate, 1 = untouched (``shadow``);
- ``comp.R, comp.G, comp.B``: the slap composite in the working space (``comp``);

with ``comp = rgb + (1 - A) * plate * shadow`` on the stored values.

Written with the OpenEXR Python module (``OpenEXR.File(header, channels)``), always through
``fsutil.atomic_output`` so a crash never leaves a half-written file at the final path. Pitfalls of
that module handled here: compression is always set explicitly (its default is ZIP for a single
part but ZIPS for a ``Part``); it copies numpy buffers ignoring strides, for pixels and for matrix
attributes alike (a sliced or transposed array is written scrambled or transposed), so everything
is made C-contiguous first; numpy scalars and lists are rejected as attribute values (converted);
``framesPerSecond`` must be a ``fractions.Fraction``; I/O failures come back as ``RuntimeError``,
not ``OSError``.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Literal, Mapping, Sequence, Union

import numpy as np
import OpenEXR

from . import __version__
from .camera import Intrinsics, validate_cam_to_world, world_to_camera_exr, world_to_ndc_exr
from .errors import ConfigError, OutputError
from .fsutil import atomic_output, names_folder_error

Precision = Literal["half", "float"]
Compression = Literal["zip", "piz", "dwaa", "none"]
Window = tuple[tuple[int, int], tuple[int, int]]
"""An OpenEXR box ``((xmin, ymin), (xmax, ymax))``, inclusive pixel coordinates, y down."""

#: Compressions ``write_exr`` accepts. ZIP and PIZ are lossless (ZIP: deliverables; PIZ: grainy
#: plates). DWAA is lossy on colour channels and meant for previews only. NONE for debugging.
COMPRESSIONS: dict[str, OpenEXR.Compression] = {
    "zip": OpenEXR.ZIP_COMPRESSION,
    "piz": OpenEXR.PIZ_COMPRESSION,
    "dwaa": OpenEXR.DWAA_COMPRESSION,
    "none": OpenEXR.NO_COMPRESSION,
}

_DTYPES: dict[str, type] = {"half": np.float16, "float": np.float32}

#: The insert layers in the order they are built (OpenEXR stores channels sorted by name).
INSERT_CHANNELS: tuple[str, ...] = ("R", "G", "B", "A", "shadow.R", "shadow.G", "shadow.B",
                                    "comp.R", "comp.G", "comp.B")

#: The layer identity written into every insert EXR's ``comments`` (and the README).
LAYER_FORMULA = "comp = rgb + (1 - A) * plate * shadow"

#: Chromaticities (red xy, green xy, blue xy, white xy) of the working spaces we write. Names are the
#: OCIO colorspace names of the built-in CG config.
WORKING_SPACE_CHROMATICITIES: dict[str, tuple[float, ...]] = {
    "Linear Rec.709 (sRGB)": (0.64, 0.33, 0.30, 0.60, 0.15, 0.06, 0.3127, 0.3290),  # D65
    "ACEScg": (0.713, 0.293, 0.165, 0.830, 0.128, 0.044, 0.32168, 0.33767),  # AP1, ACES white
}

# One dot at most; each part starts with a letter or '_' (Nuke drops leading digits, which could
# make two layers collide) and has only [A-Za-z0-9_] (Nuke turns anything else into '_').
_CHANNEL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?")

# Header entries write_exr sets itself from its arguments.
_RESERVED_ATTRIBUTES = frozenset({"channels", "compression", "dataWindow", "displayWindow", "type",
                                  "tiles", "name", "version", "chunkCount"})


def write_exr(path: str | os.PathLike, channels: Mapping[str, np.ndarray], *,
              display_window: Window | None = None, data_origin: tuple[int, int] = (0, 0),
              precision: Union[Precision, Mapping[str, Precision]] = "half",
              compression: Compression = "zip",
              attributes: Mapping[str, object] | None = None) -> None:
    """Write one single-part scanline EXR atomically.

    ``channels`` maps full channel names (``R``, ``shadow.R``, ...) to (H, W) arrays of equal size;
    names have at most one dot and only ``[A-Za-z0-9_]`` around it. ``precision`` is ``"half"`` or
    ``"float"`` for all channels, or a mapping giving one of them for every channel. The data window
    is ``data_origin`` plus the array size; ``display_window`` (the frame, e.g. the plate format)
    defaults to the data window; a data window larger than the display window is overscan, and
    negative origins are fine. ``attributes`` are extra header entries (str, int, float, Fraction,
    float32 4x4 arrays, ...). NaN / Inf pixels are written as they are.

    Raises OutputError for bad channel names, shapes or dtypes, an unknown compression or
    precision, a rejected attribute, or a failed write (disk full, permissions).
    """
    path = Path(path)
    where = str(path)
    if compression not in COMPRESSIONS:
        raise OutputError(f"unknown EXR compression {compression!r}", where=where,
                          fix=f"use one of {', '.join(COMPRESSIONS)} (dwaa is lossy: previews only)")
    pixels = _prepare_channels(channels, precision, where)
    height, width = next(iter(pixels.values())).shape
    x0, y0 = _int_pair(data_origin, "data_origin", where)
    data_window = ((x0, y0), (x0 + width - 1, y0 + height - 1))
    header: dict[str, object] = {}
    for name, value in (attributes or {}).items():
        if not isinstance(name, str) or not name:
            raise OutputError(f"EXR attribute names must be non-empty strings, got {name!r}",
                              where=where, fix="rename the attribute")
        if name in _RESERVED_ATTRIBUTES:
            raise OutputError(f"attribute {name!r} is set by write_exr itself", where=where,
                              fix="use the display_window / data_origin / compression arguments")
        header[name] = _attribute_value(value, name, where)
    header.update({
        "type": OpenEXR.scanlineimage,
        "compression": COMPRESSIONS[compression],
        "dataWindow": data_window,
        "displayWindow": data_window if display_window is None
        else _window(display_window, "display_window", where),
    })
    try:
        exr = OpenEXR.File(header, pixels)
    except (ValueError, TypeError, RuntimeError) as exc:
        raise OutputError(f"OpenEXR rejected the header or channels: {exc}", where=where,
                          fix="check the attribute values (str, int, float, Fraction, float32 4x4 "
                          "arrays)") from exc
    try:
        with atomic_output(path) as tmp:
            exr.write(str(tmp))
    except OutputError:
        raise
    except (OSError, RuntimeError) as exc:  # the module reports I/O failures as RuntimeError, errno in words
        raise OutputError(f"cannot write the EXR: {exc}", where=where,
                          fix=f"check free disk space and write permission in {path.parent}",
                          shot_level=names_folder_error(str(exc))) from exc


def _prepare_channels(channels: Mapping[str, np.ndarray],
                      precision: Union[Precision, Mapping[str, Precision]],
                      where: str) -> dict[str, np.ndarray]:
    """Validate names, shapes and dtypes; return contiguous float16/float32 arrays per channel."""
    if not channels:
        raise OutputError("no channels to write", where=where, fix="pass at least one channel")
    if isinstance(precision, str):
        per_channel: Mapping[str, str] = {name: precision for name in channels}
    else:
        per_channel = precision
        missing = [n for n in channels if n not in per_channel]
        unknown = [n for n in per_channel if n not in channels]
        if missing or unknown:
            raise OutputError(f"precision must name exactly the channels written (missing: "
                              f"{missing}, not written: {unknown})", where=where,
                              fix="give 'half' or 'float' for every channel, or one string for all")
    shape: tuple[int, ...] | None = None
    first = ""
    out: dict[str, np.ndarray] = {}
    for name, array in channels.items():
        if not isinstance(name, str) or not _CHANNEL_NAME.fullmatch(name):
            raise OutputError(f"invalid EXR channel name {name!r}", where=where,
                              fix="use 'C' or 'layer.C' with at most one dot, letters, digits and "
                              "'_' only, no part starting with a digit (e.g. 'R', 'shadow.R')")
        kind = per_channel[name]
        if kind not in _DTYPES:
            raise OutputError(f"unknown precision {kind!r} for channel {name}", where=where,
                              fix="use 'half' (colour) or 'float' (depth and other data)")
        arr = np.asarray(array)
        if arr.dtype.kind not in "fiu":
            raise OutputError(f"channel {name} has dtype {arr.dtype}; expected real numbers",
                              where=where, fix="pass float arrays")
        if arr.ndim != 2 or arr.shape[0] < 1 or arr.shape[1] < 1:
            raise OutputError(f"channel {name} must be a non-empty (H, W) array, got shape "
                              f"{arr.shape}", where=where, fix="pass one 2-D array per channel")
        if shape is None:
            shape, first = arr.shape, name
        elif arr.shape != shape:
            raise OutputError(f"channel {name} has shape {arr.shape} but {first} has {shape}",
                              where=where, fix="give all channels the same size")
        out[name] = np.ascontiguousarray(arr, dtype=_DTYPES[kind])
    return out


def _attribute_value(value: object, name: str, where: str) -> object:
    """``value`` in a form the OpenEXR module stores faithfully, or OutputError.

    The module refuses numpy scalars and lists, and copies a numpy array's raw buffer ignoring its
    strides (a transposed 4x4 view would be stored transposed), so arrays are made C-contiguous.
    """
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return np.ascontiguousarray(value)
    if isinstance(value, (list, tuple)):
        return tuple(_attribute_value(v, name, where) for v in value)
    if isinstance(value, (str, int, float, Fraction)) or type(value).__module__ == "OpenEXR":
        return value
    raise OutputError(f"attribute {name!r} has unsupported type {type(value).__name__}",
                      where=where, fix="use str, int, float, Fraction, a tuple of numbers, a numpy "
                      "array (float32 4x4 for matrices) or an OpenEXR attribute type")


def _int_pair(value: object, name: str, where: str) -> tuple[int, int]:
    try:
        a, b = value  # type: ignore[misc]
        if any(isinstance(v, bool) or int(v) != v for v in (a, b)):
            raise ValueError
        return int(a), int(b)
    except (TypeError, ValueError):
        raise OutputError(f"{name} must be two integers, got {value!r}", where=where,
                          fix="give pixel coordinates (x, y)") from None


def _window(value: object, name: str, where: str) -> Window:
    try:
        lo, hi = value  # type: ignore[misc]
    except (TypeError, ValueError):
        raise OutputError(f"{name} must be ((xmin, ymin), (xmax, ymax)), got {value!r}",
                          where=where, fix="give an inclusive pixel box") from None
    (x0, y0), (x1, y1) = _int_pair(lo, name, where), _int_pair(hi, name, where)
    if x1 < x0 or y1 < y0:
        raise OutputError(f"{name} {value!r} is empty", where=where,
                          fix="xmax >= xmin and ymax >= ymin (inclusive: a 1920x1080 frame is "
                          "((0, 0), (1919, 1079)))")
    return (x0, y0), (x1, y1)


# --------------------------------------------------------------------------------------------------
# The per-frame insert EXR


@dataclass(frozen=True, eq=False)
class FrameMetadata:
    """What an insert EXR says about itself: shot, frame, colour pipeline, source and camera."""

    shot: str
    """Shot name (the shot file's ``name``)."""
    frame: int
    """Plate frame number."""
    working_space: str
    """Scene-linear working space of the pixels, a key of ``WORKING_SPACE_CHROMATICITIES``."""
    ocio_config: str
    """Name or URI of the OCIO config used (e.g. ``ocio://cg-config-v2.2.0_aces-v1.3_ocio-v2.4``)."""
    ocio_cache_id: str
    """The config's cache ID, so a comp can check it converts with the same config."""
    plate_colorspace: str
    """The plate's declared colorspace."""
    plate_path: str
    """Path of the source plate frame."""
    software_version: str = __version__
    """vfxinsert version (plus git revision if known)."""
    fps: Fraction | None = None
    """Frame rate, e.g. ``Fraction(24000, 1001)``; None when unknown."""
    timecode: str | None = None
    """SMPTE timecode of this frame, ``HH:MM:SS:FF`` (``;`` = drop-frame): the ``timeCode`` attribute."""
    cam_to_world: np.ndarray | None = None
    """Camera pose of this frame (4x4, OpenGL convention); gives ``worldToCamera``."""
    intrinsics: Intrinsics | None = None
    """Camera intrinsics; with ``cam_to_world`` gives ``worldToNDC``; alone gives Nuke's camera keys."""
    extra: Mapping[str, str] = field(default_factory=dict)
    """More strings, written as ``vfxinsert/<key>`` (e.g. ``lighting`` -> the SG lobes as JSON)."""
    content: Literal["layers", "plate"] = "layers"
    """What the file holds, for its ``comments``: the insert layers, or a working-space plate (plate stage)."""

    def __post_init__(self) -> None:
        where = f"EXR metadata of shot {self.shot!r} frame {self.frame}"
        if self.working_space not in WORKING_SPACE_CHROMATICITIES:
            raise OutputError(f"no chromaticities known for working space {self.working_space!r}",
                              where=where, fix="use one of: "
                              + ", ".join(repr(k) for k in WORKING_SPACE_CHROMATICITIES))
        if isinstance(self.frame, bool) or not isinstance(self.frame, (int, np.integer)):
            raise OutputError(f"frame must be an integer, got {self.frame!r}", where=where,
                              fix="pass the plate frame number")
        object.__setattr__(self, "frame", int(self.frame))
        if self.fps is not None:
            if isinstance(self.fps, bool) or not isinstance(self.fps, (int, Fraction)) \
                    or self.fps <= 0:
                raise OutputError(f"fps must be a positive Fraction or int, got {self.fps!r}",
                                  where=where, fix="e.g. Fraction(24000, 1001) for 23.976")
            object.__setattr__(self, "fps", Fraction(self.fps))
        if self.cam_to_world is not None:
            try:
                c2w = validate_cam_to_world(self.cam_to_world, where=where)
            except ConfigError as exc:
                raise OutputError(exc.what, where=exc.where, fix=exc.fix) from exc
            c2w.setflags(write=False)
            object.__setattr__(self, "cam_to_world", c2w)
        extra = dict(self.extra)
        builtin = set(self._builtin_strings())
        for key, value in extra.items():
            if not isinstance(key, str) or not isinstance(value, str) or not key:
                raise OutputError(f"extra metadata must map strings to strings, got {key!r}: "
                                  f"{value!r}", where=where, fix="convert values with str() or json")
            if key in builtin:
                raise OutputError(f"extra key {key!r} collides with a built-in vfxinsert attribute",
                                  where=where, fix="rename it")
        object.__setattr__(self, "extra", extra)

    def _builtin_strings(self) -> dict[str, str]:
        return {
            "shot": self.shot,
            "frame": str(self.frame),
            "version": self.software_version,
            "workingSpace": self.working_space,
            "ocioConfig": self.ocio_config,
            "ocioCacheId": self.ocio_cache_id,
            "plateColorspace": self.plate_colorspace,
            "platePath": self.plate_path,
        }

    def to_attributes(self) -> dict[str, object]:
        """The EXR header entries (standard attributes, Nuke camera keys, ``vfxinsert/*`` strings)."""
        attrs: dict[str, object] = {
            "chromaticities": WORKING_SPACE_CHROMATICITIES[self.working_space],
            "owner": "vfxinsert",
            "comments": f"vfxinsert {self.software_version}, shot {self.shot}, frame {self.frame}, "
                        f"scene-linear {self.working_space}. " + (
                            f"Layers: R,G,B,A = object premultiplied by A; shadow.R/G/B = shadow multiplier for "
                            f"the plate (1 = untouched); comp.R/G/B = composite. {LAYER_FORMULA}, with plate in "
                            f"the working space." if self.content == "layers" else
                            f"The plate frame {self.plate_path} converted from {self.plate_colorspace} (R,G,B"
                            f"(,A) as read): the plate of {LAYER_FORMULA}."),
        }
        if self.fps is not None:
            attrs["framesPerSecond"] = self.fps
        if self.timecode is not None:
            from .timing import exr_timecode

            attrs["timeCode"] = exr_timecode(self.timecode)
        if self.cam_to_world is not None:
            attrs["worldToCamera"] = world_to_camera_exr(self.cam_to_world)
            if self.intrinsics is not None:
                attrs["worldToNDC"] = world_to_ndc_exr(self.cam_to_world, self.intrinsics)
        if self.intrinsics is not None:
            attrs["pixelAspectRatio"] = self.intrinsics.pixel_aspect
            # Nuke reads unknown attributes as exr/<name>; its own Write stores these keys.
            attrs["nuke/camera/focal"] = self.intrinsics.focal_length_mm
            attrs["nuke/camera/haperture"] = self.intrinsics.filmback_mm[0]
            attrs["nuke/camera/vaperture"] = self.intrinsics.filmback_mm[1]
        for key, value in {**self._builtin_strings(), **self.extra}.items():
            attrs[f"vfxinsert/{key}"] = value
        return attrs


def write_insert_layers(path: str | os.PathLike, *, object_rgba: np.ndarray, shadow_rgb: np.ndarray,
                        comp_rgb: np.ndarray, metadata: FrameMetadata, precision: Precision = "half",
                        compression: Compression = "zip", display_window: Window | None = None,
                        data_origin: tuple[int, int] = (0, 0)) -> None:
    """Write one frame's insert EXR (the contract layout, ``INSERT_CHANNELS``) atomically.

    ``object_rgba`` (H, W, 4) is the object premultiplied by its alpha, ``shadow_rgb`` (H, W, 3) the
    shadow multiplier and ``comp_rgb`` (H, W, 3) the composite, all in the working space. When the
    metadata has intrinsics, the display window must have their pixel size (the NDC matrix refers
    to it). ``display_window`` defaults to the data window, as in ``write_exr``.
    """
    where = str(path)
    expected = {"object_rgba": 4, "shadow_rgb": 3, "comp_rgb": 3}
    arrays = {"object_rgba": object_rgba, "shadow_rgb": shadow_rgb, "comp_rgb": comp_rgb}
    size: tuple[int, int] | None = None
    for name, array in arrays.items():
        shape = np.shape(array)
        if len(shape) != 3 or shape[2] != expected[name]:
            raise OutputError(f"{name} must have shape (H, W, {expected[name]}), got {shape}",
                              where=where, fix="pass the layer as an (H, W, C) array")
        if size is None:
            size = shape[:2]
        elif shape[:2] != size:
            raise OutputError(f"{name} is {shape[1]}x{shape[0]} but object_rgba is "
                              f"{size[1]}x{size[0]}", where=where, fix="render all layers at one size")
    assert size is not None
    if display_window is None:  # write_exr's default: the display window is the data window
        frame_size = (size[1], size[0])
    else:
        (x0, y0), (x1, y1) = _window(display_window, "display_window", where)
        frame_size = (x1 - x0 + 1, y1 - y0 + 1)
    intr = metadata.intrinsics
    if intr is not None and frame_size != (intr.width_px, intr.height_px):
        raise OutputError(f"display window is {frame_size[0]}x{frame_size[1]} but the camera "
                          f"intrinsics are {intr.width_px}x{intr.height_px}", where=where,
                          fix="pass display_window = the plate format (the data window may add "
                          "overscan around it)")
    obj, shadow, comp = (np.asarray(a) for a in (object_rgba, shadow_rgb, comp_rgb))
    channels = {c: obj[..., i] for i, c in enumerate("RGBA")}
    channels.update({f"shadow.{c}": shadow[..., i] for i, c in enumerate("RGB")})
    channels.update({f"comp.{c}": comp[..., i] for i, c in enumerate("RGB")})
    write_exr(path, channels, display_window=display_window, data_origin=data_origin, precision=precision,
              compression=compression, attributes=metadata.to_attributes())


# --------------------------------------------------------------------------------------------------
# Reading our own files


def read_layers(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, object]]:
    """Read a single-part EXR written by ``write_exr``: (channel name -> float32 (H, W), header).

    Arrays cover the data window. The header is the OpenEXR module's dict with three entries made
    plain: ``dataWindow``/``displayWindow`` as ``((xmin, ymin), (xmax, ymax))`` int tuples,
    ``compression`` as a lowercase name (``"zip"``, ``"piz"``, ``"dwaa"``, ``"none"``, ...) and
    ``channels`` as channel name -> ``"half"``/``"float"``/``"uint"``.
    """
    path = Path(path)
    if not path.is_file():
        raise OutputError("EXR file not found", where=str(path), fix="check the path (run the stage "
                          "that writes it first)")
    try:
        exr = OpenEXR.File(str(path), separate_channels=True)
        parts = exr.parts
        header = dict(exr.header())
        channels = exr.channels()
    except (RuntimeError, ValueError, OSError) as exc:
        raise OutputError(f"cannot read the EXR: {exc}", where=str(path),
                          fix="re-run the stage that writes it (the file may be truncated)") from exc
    if len(parts) != 1:
        raise OutputError(f"expected a single-part EXR, found {len(parts)} parts", where=str(path),
                          fix="read multi-part files with the plate reader")
    for key in ("dataWindow", "displayWindow"):
        lo, hi = header[key]
        header[key] = ((int(lo[0]), int(lo[1])), (int(hi[0]), int(hi[1])))
    header["compression"] = _compression_name(header["compression"])
    header["channels"] = {name: ch.type().name.lower() for name, ch in channels.items()}
    layers = {name: np.asarray(ch.pixels, dtype=np.float32) for name, ch in channels.items()}
    return layers, header


def _compression_name(value: OpenEXR.Compression) -> str:
    name = value.name.removesuffix("_COMPRESSION").lower()
    return "none" if name == "no" else name


def stored_inputs_hash(path: str | os.PathLike) -> str | None:
    """The ``vfxinsert/inputsHash`` of an existing output, or None when there is no readable one.

    Stages compare it with the hash of their current inputs to skip frames that are up to date.
    """
    try:
        with OpenEXR.File(str(path), header_only=True) as exr:
            value = exr.header().get("vfxinsert/inputsHash")
    except (RuntimeError, ValueError, OSError):  # missing, truncated or foreign: redo the frame
        return None
    return value if isinstance(value, str) else None


def channels_in_display(layers: Mapping[str, np.ndarray], header: Mapping, names: Sequence[str], where: str) -> np.ndarray:
    """The channels ``names`` of an EXR read by ``read_layers`` as (H, W, len(names)), over its display
    window: overscan cropped, pixels the data window does not cover zero."""
    missing = [n for n in names if n not in layers]
    if missing:
        raise OutputError(f"EXR lacks channel(s) {', '.join(missing)}", where=where,
                          fix="re-run the stage that writes it")
    data = np.stack([layers[n] for n in names], axis=-1)
    (dx0, dy0), (dx1, dy1) = header["displayWindow"]
    (ax0, ay0), (ax1, ay1) = header["dataWindow"]
    if (dx0, dy0, dx1, dy1) == (ax0, ay0, ax1, ay1):
        return data
    out = np.zeros((dy1 - dy0 + 1, dx1 - dx0 + 1, len(names)), np.float32)
    x0, y0, x1, y1 = max(dx0, ax0), max(dy0, ay0), min(dx1, ax1), min(dy1, ay1)
    if x0 <= x1 and y0 <= y1:
        out[y0 - dy0:y1 - dy0 + 1, x0 - dx0:x1 - dx0 + 1] = data[y0 - ay0:y1 - ay0 + 1, x0 - ax0:x1 - ax0 + 1]
    return out
