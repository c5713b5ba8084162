"""Lens distortion from ST-maps: render undistorted with overscan, redistort the layers onto the plate.

The convention (``[camera] distortion``): a **redistort** ST-map, as Nuke's LensDistortion node writes
for its ``STMap`` node and as Nuke's STMap node applies it. It has the plate's format; for every pixel
of the plate (the *distorted* image) its channels R and G hold (u, v), the point of the *undistorted*
image that lands there, normalised to the plate format with Nuke's axes: ``u = x / W`` from the left
and ``v = 1 - y / H`` from the bottom (``y`` counted down from the top), so the centre of pixel
(i, j) in an identity map is ``((i + 0.5) / W, 1 - (j + 0.5) / H)``. Values outside 0..1 reach into the
overscan beyond the undistorted format. An ``STMap`` node with this map as ``stmap`` (input 0) and an
undistorted render as ``src`` (input 1) gives the render as the lens saw it.

The camera model (focal length, filmback) describes the *undistorted* image. A frame renders its
undistorted image over the map's reach plus a margin (:func:`overscan_window`), and every layer is
sampled at the map's (u, v) for each plate pixel (:func:`redistort`, bilinear), before the composite:
all layers are linear in light or coverage, and where the object plays no part pw and pu are
resampled identically, so the shadow ratio stays exactly 1 there.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .errors import ConfigError

#: Undistorted pixels rendered beyond the map's reach on each side (bilinear sampling needs one).
OVERSCAN_MARGIN_PX = 2


def stmap_path(pattern: Path, frame: int) -> Path:
    """The map of ``frame``: ``pattern`` with its frame number (``####`` / ``%04d``), or the one file."""
    from .sequences import parse_pattern

    parsed = parse_pattern(str(pattern))
    return Path(parsed.path_for(frame)) if parsed else Path(pattern)


def stmap_positions(uv: np.ndarray, width: int, height: int, where: str) -> np.ndarray:
    """(H, W, 2) float64 pixel positions (x right, y down) in the undistorted image of each plate pixel,
    from an ST-map's (H, W, 2) u, v (read by ``ShotContext.stmap``)."""
    if uv.shape[:2] != (height, width):
        raise ConfigError(f"the ST-map is {uv.shape[1]}x{uv.shape[0]}, the plate {width}x{height}", where=where,
                          fix="export the redistort ST-map at the plate's format")
    if not np.isfinite(uv).all():
        raise ConfigError("the ST-map has NaN/Inf values", where=where, fix="re-export it")
    uv = uv.astype(np.float64)
    return np.stack([uv[..., 0] * width, (1.0 - uv[..., 1]) * height], axis=-1)


def overscan_window(positions: np.ndarray) -> tuple[int, int, int, int]:
    """(x0, y0, w, h): the undistorted pixels whose centres the map samples between, plus the margin."""
    lo = np.floor(positions.reshape(-1, 2).min(axis=0) - 0.5) - OVERSCAN_MARGIN_PX
    hi = np.ceil(positions.reshape(-1, 2).max(axis=0) - 0.5) + OVERSCAN_MARGIN_PX
    return int(lo[0]), int(lo[1]), int(hi[0] - lo[0]) + 1, int(hi[1] - lo[1]) + 1


def union_window(windows) -> tuple[int, int, int, int]:
    """The smallest window holding all of ``windows`` (a shot renders every frame on one film size)."""
    x0 = min(w[0] for w in windows)
    y0 = min(w[1] for w in windows)
    x1 = max(w[0] + w[2] for w in windows)
    y1 = max(w[1] + w[3] for w in windows)
    return x0, y0, x1 - x0, y1 - y0


def redistort(layers: np.ndarray, window: tuple[int, int, int, int], positions: np.ndarray) -> np.ndarray:
    """Sample (h, w, C) layers rendered over ``window`` of the undistorted image at ``positions`` (H, W, 2):
    bilinear between pixel centres; the window always covers the map's reach (:func:`overscan_window`)."""
    x0, y0, w, h = window
    if layers.shape[:2] != (h, w):
        raise ValueError(f"layers {layers.shape[:2]} do not match the window {h}x{w}")
    fx = positions[..., 0] - x0 - 0.5
    fy = positions[..., 1] - y0 - 0.5
    ix = np.clip(np.floor(fx).astype(np.int64), 0, w - 2)
    iy = np.clip(np.floor(fy).astype(np.int64), 0, h - 2)
    tx = np.clip(fx - ix, 0.0, 1.0)[..., None]
    ty = np.clip(fy - iy, 0.0, 1.0)[..., None]
    top = layers[iy, ix] * (1.0 - tx) + layers[iy, ix + 1] * tx
    bottom = layers[iy + 1, ix] * (1.0 - tx) + layers[iy + 1, ix + 1] * tx
    return (top * (1.0 - ty) + bottom * ty).astype(layers.dtype)


def distortion_reach(positions: np.ndarray, width: int, height: int) -> float:
    """How far (pixels) the map moves any plate pixel: a report/check figure."""
    ys, xs = np.mgrid[0:height, 0:width] + 0.5
    return float(math.sqrt(((positions[..., 0] - xs) ** 2 + (positions[..., 1] - ys) ** 2).max()))
