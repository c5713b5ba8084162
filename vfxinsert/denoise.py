"""A final frame's layers from the scene: the samples (fixed spp or an adaptive stop) and the denoiser.

``render_final`` renders the shot's ``[render]`` settings into the object colour (premultiplied), its
alpha and the shadow multiplier:

- ``noise_target = 0``: ``spp`` samples (a power of two), in passes of a power of four with distinct
  seeds (:func:`pass_spp`). ``noise_target > 0``: batches of :data:`BATCH_SPP` until the object's relative
  noise and the shadow multiplier's noise, both measured from the spread of the batches (the render's
  own variance, no reference), are at or below the target; ``spp`` is then the most it may take.
- ``denoise = "oidn"``: Intel Open Image Denoise on the object colour and on the shadow multiplier
  itself (denoising the with/without ground radiances apart would lose the correlation that makes
  their ratio clean). What the raw render knows exactly stays exact: alpha is the raw alpha, the
  object colour is exactly 0 where alpha is 0, partly covered pixels keep the raw colour (OIDN's
  result there was measured worse than raw: docs/benchmarks.md), the object pass sees the colour
  unpremultiplied and continued past the silhouette (not blended with the black background), and
  the shadow is exactly 1 where the raw ratio is exactly 1 except next to a visible (denoised) shadow
  (:func:`shadow_region`), so the layer identity and "the composite equals the plate there" hold as
  without the denoiser. Each pass runs on the bounding box of its region only.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Callable, NamedTuple

import numpy as np

from .composite import composite
from .errors import RenderError

if TYPE_CHECKING:
    from .config import RenderConfig

BATCH_SPP = 16
"""Samples per batch of the adaptive stop (a square and a power of two, as stratified samplers want)."""
SHADOW_MARGIN = 4
"""Pixels around a visible (denoised) shadow that the denoiser may change although their raw ratio is 1."""
SHADOW_VISIBLE = 0.02
"""A ratio this far from 1 is a visible shadow (or bounce); fainter ones do not widen the region."""
OBJECT_MARGIN = 4
"""Pixels around the object that the object pass sees as context."""


class FinalLayers(NamedTuple):
    rgb: np.ndarray      # (H, W, 3) premultiplied object colour
    alpha: np.ndarray    # (H, W, 1)
    shadow: np.ndarray   # (H, W, 3) multiplier of the plate
    spp: int             # samples per pixel taken


def render_final(scene, seed: int, render: RenderConfig, pixels: int,
                 between: Callable[[np.ndarray], np.ndarray] | None = None) -> FinalLayers:
    """One final frame's layers with the shot's spp / noise target / denoiser (module docstring).
    ``between``: applied to the raw render layers before they are composited and denoised (the lens
    distortion's redistort onto the plate's pixels)."""
    if render.noise_target > 0:
        layers, spp = _render_to_noise(scene, seed, render.noise_target, render.spp)
    else:
        layers, spp = _render_passes(scene, seed, render.spp, pixels)
    if between is not None:
        layers = between(layers)
    rgb, alpha, shadow, _ = composite(layers, 0.0)
    if render.denoise == "oidn":
        rgb, shadow = denoise(rgb, alpha, shadow)
    return FinalLayers(rgb, alpha, shadow, spp)


def _render_passes(scene, seed: int, spp: int, pixels: int) -> tuple[np.ndarray, int]:
    """One frame's render of ``spp`` samples (a power of two) and the samples it took: passes with distinct
    seeds of a power of four each (:func:`pass_spp`), averaged."""
    per = pass_spp(spp, pixels)
    total = None
    for k in range(spp // per):
        layers = scene.render(seed + k * 7919, per)
        total = layers if total is None else total + layers
    return total / (spp // per), spp


def pass_spp(spp: int, pixels: int) -> int:
    """Samples per pass of a final render of ``spp`` (a power of two): the largest power of four that divides
    it and keeps pixels x samples within Mitsuba's 2^31 per render. A power of four is a square grid for the
    stratified sampler (taken exactly, no rounding up) and, like any power of two, divides the renderer's
    work blocks, so no pixel's samples straddle two threads: the render is bit-identical whatever the number
    of threads (a 528-sample render, what ``multijitter`` makes of 512, is not)."""
    per = 1
    while per * 4 <= spp and spp % (per * 4) == 0 and pixels * per * 4 <= 2**31:
        per *= 4
    return per


def _render_to_noise(scene, seed: int, target: float, max_spp: int) -> tuple[np.ndarray, int]:
    """Batches of BATCH_SPP (distinct seeds) until :func:`batch_noise` <= target or max_spp is reached."""
    batches = max(2, math.ceil(max_spp / BATCH_SPP))
    total, objs, shadows = None, [], []
    for k in range(batches):
        layers = scene.render(seed + k * 7919, BATCH_SPP)
        total = layers if total is None else total + layers
        rgb, _, shadow, _ = composite(layers, 0.0)
        objs.append(rgb)
        shadows.append(shadow)
        if k >= 1 and max(batch_noise(total / (k + 1), objs, shadows)) <= target:
            break
    return total / (k + 1), (k + 1) * BATCH_SPP


def batch_noise(mean_layers: np.ndarray, objs: list, shadows: list) -> tuple[float, float]:
    """(object, shadow) noise of the mean of K >= 2 equal batches, from their spread.

    object: the standard error of the colour over fully covered pixels, relative to their mean colour;
    shadow: the standard error of the multiplier over the ground where it is below 0.98 (a multiplier's
    error is the composite's relative error there). 0 where the region is empty.
    """
    k = len(objs)
    rgb, alpha, shadow, _ = composite(mean_layers, 0.0)
    full = alpha[..., 0] > 0.999
    region = (mean_layers[..., 10] > 0.999) & (alpha[..., 0] == 0) & (shadow.mean(-1) < 0.98)
    obj = sh = 0.0
    if full.any() and rgb[full].mean() > 0:
        var = np.var(np.stack([o[full] for o in objs]), axis=0, ddof=1) / k
        obj = float(np.sqrt(var.mean()) / rgb[full].mean())
    if region.any():
        sh = float(np.sqrt((np.var(np.stack([s[region] for s in shadows]), axis=0, ddof=1) / k).mean()))
    return obj, sh


def _box(mask: np.ndarray, margin: int):
    """The bounding box of ``mask`` grown by ``margin`` pixels, as slices (None when the mask is empty)."""
    ys, xs = np.nonzero(mask.any(axis=1)), np.nonzero(mask.any(axis=0))
    if not ys[0].size:
        return None
    h, w = mask.shape
    return (slice(max(0, ys[0][0] - margin), min(h, ys[0][-1] + margin + 1)),
            slice(max(0, xs[0][0] - margin), min(w, xs[0][-1] + margin + 1)))


def _dilate(mask: np.ndarray, r: int) -> np.ndarray:
    """``mask`` grown by a (2r + 1)^2 square (separable running max)."""
    out = mask.copy()
    for axis in (0, 1):
        grown = out.copy()
        for d in range(1, r + 1):
            grown |= np.roll(out, d, axis) & _valid(out.shape, axis, d)
            grown |= np.roll(out, -d, axis) & _valid(out.shape, axis, -d)
        out = grown
    return out


def _valid(shape, axis: int, d: int) -> np.ndarray:
    """Where ``np.roll(x, d, axis)`` did not wrap around."""
    idx = np.arange(shape[axis])
    ok = (idx >= d) if d > 0 else (idx < shape[axis] + d)
    return ok[:, None] if axis == 0 else ok[None, :]


def _extend(colour: np.ndarray, known: np.ndarray, steps: int) -> np.ndarray:
    """``colour`` with the pixels outside ``known`` filled, ``steps`` rings deep, by the mean of their known
    4-neighbours: the denoiser then sees the object's colour continue past its silhouette instead of
    blending the black background into the pixels next to it."""
    colour, known = colour.copy(), known.copy()
    for _ in range(steps):
        total, count = np.zeros_like(colour), np.zeros(known.shape, np.float32)
        for axis, d in ((0, 1), (0, -1), (1, 1), (1, -1)):
            ok = np.roll(known, d, axis) & _valid(known.shape, axis, d)
            total += np.where(ok[..., None], np.roll(colour, d, axis), 0.0)
            count += ok
        grow = ~known & (count > 0)
        colour[grow] = total[grow] / count[grow][:, None]
        known |= grow
    return colour


def _pyoidn():
    try:
        import pyoidn
    except ImportError as exc:
        raise RenderError(f"[render] denoise = \"oidn\" needs the pyoidn package ({exc})", where="render denoise",
                          fix="install requirements.lock (pyoidn), or set denoise = \"off\"") from exc
    return pyoidn


_FILTER: list = []
"""This process's OIDN device and filter, made once (:func:`_oidn`)."""


def _oidn(image: np.ndarray) -> np.ndarray:
    """OIDN's RT filter on an HDR image with its input scale given, not auto-exposed: OIDN's autoexposure is
    a parallel reduction whose order follows the thread scheduling, so its output could differ in the last
    bits from run to run (a farm chunk differed from a run by one half-float step in one of four runs).
    The scale here is OIDN's own rule (0.18 over the log-average luminance) summed in a fixed order."""
    pyoidn = _pyoidn()
    from pyoidn.filter import OIDN_FORMAT_FLOAT3

    image = np.ascontiguousarray(image, np.float32)
    lum = image.astype(np.float64) @ np.array([0.2126, 0.7152, 0.0722])
    lit = lum[lum > 1e-8]
    scale = float(0.18 / np.exp2(np.log2(lit).mean())) if lit.size else 1.0
    if not _FILTER:
        device = pyoidn.Device()
        device.commit()
        _FILTER.extend([device, pyoidn.Filter(device, "RT")])
    device, flt = _FILTER
    out = np.empty_like(image)
    flt.set_image("color", image, OIDN_FORMAT_FLOAT3)
    flt.set_image("output", out, OIDN_FORMAT_FLOAT3)
    flt.set_bool("hdr", True)
    flt.set_float("inputScale", scale)
    flt.commit()
    flt.execute()
    error = device.get_error()
    if error:
        raise RuntimeError(f"Open Image Denoise: {error}")
    return out


def check_denoiser() -> str:
    """What `vfxinsert check` says of the denoiser: pyoidn imports and denoises an 8 x 8 image on this machine
    (its CPU device starts), else a RenderError saying how to fix it."""
    pyoidn = _pyoidn()
    try:
        out = _oidn(np.full((8, 8, 3), 0.5, np.float32))
    except (RuntimeError, ValueError, OSError) as exc:
        raise RenderError(f"Open Image Denoise does not run here: {exc}", where="render denoise",
                          fix="reinstall pyoidn from requirements.lock, or set denoise = \"off\"") from exc
    if not np.all(np.isfinite(out)):
        raise RenderError("Open Image Denoise returned non-finite pixels for a flat test image",
                          where="render denoise", fix="reinstall pyoidn from requirements.lock, or set denoise = \"off\"")
    from importlib.metadata import version

    return f"Open Image Denoise {getattr(pyoidn.version, 'oidn_version', '?')} runs (pyoidn {version('pyoidn')})"


def denoise(rgb: np.ndarray, alpha: np.ndarray, shadow: np.ndarray, *,
            edges: str = "raw") -> tuple[np.ndarray, np.ndarray]:
    """Denoised (object colour, shadow multiplier) of one raw render (module docstring); alpha is kept.

    ``edges``: what partly covered pixels get, "raw" (the default) or "oidn" (benchmarks compare them).
    """
    rgb, shadow = rgb.astype(np.float32), shadow.astype(np.float32)
    a = alpha[..., 0]
    box = _box(a > 0, OBJECT_MARGIN)
    if box is not None:
        covered = a[box] > 0
        colour = np.where(covered[..., None], rgb[box] / np.maximum(alpha[box], 1e-8), 0.0)
        clean = np.maximum(_oidn(_extend(colour, covered, OBJECT_MARGIN)), 0.0) * alpha[box]
        full = (a[box] >= 1.0) if edges == "raw" else covered
        rgb = rgb.copy()
        rgb[box] = np.where(full[..., None], clean, rgb[box])
    off = np.any(shadow != 1.0, axis=-1)
    box = _box(off, SHADOW_MARGIN)
    if box is not None:
        clean = np.maximum(_oidn(shadow[box]), 0.0)
        region = shadow_region(off[box], clean)
        shadow = shadow.copy()
        shadow[box] = np.where(region[..., None], clean, 1.0)
    return rgb, shadow


def shadow_region(off: np.ndarray, clean: np.ndarray) -> np.ndarray:
    """Where the denoised shadow replaces the raw one: every pixel whose raw ratio is not exactly 1 (``off``),
    and the pixels within SHADOW_MARGIN of a visible shadow, where a raw 1 is noise (a penumbra pixel whose
    few samples all missed). Elsewhere a raw 1 stays exactly 1. A visible shadow is a pixel the raw render
    says the object plays a part in and whose *denoised* multiplier ``clean`` is off 1 by more than
    SHADOW_VISIBLE: at low spp single samples of the object's faint bounce light are off 1 by more than that
    all over the ground, and judging them raw spread the denoiser over a tenth of the untouched plate."""
    visible = off & np.any(np.abs(clean - 1.0) > SHADOW_VISIBLE, axis=-1)
    return _dilate(visible, SHADOW_MARGIN) | off
