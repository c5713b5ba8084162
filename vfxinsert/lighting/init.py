"""Initial lighting, one function per ``[lighting] init`` (``INITIALISATIONS``), and their tools.

- ``initial_lighting``: the initialisation the shot asks for, dispatched through ``INITIALISATIONS``
  (a new init is one function with the same signature plus one line there, and its name in
  ``config.LightingConfig.init``).
- ``plate_latlong``: the plate's pixels projected onto the sphere through the calibrated camera; the
  directions the plate does not see are filled by a smooth push-pull extension of what it does see.
- ``sky_lobes``: a sun lobe in a given direction plus a broad sky fill and a ground bounce.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import numpy as np

from .panorama import texel_directions
from .sg import SGLobes, fit_sg

if TYPE_CHECKING:
    from ..shot import ShotContext


def push_pull_fill(latlong: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Fill texels where ``mask`` is False by a smooth extension of the known ones (push-pull pyramid).

    Each level halves the map by a mask-weighted average; the coarsest level is filled with the mean of
    what is known; going back up, unknown texels take the upsampled coarser value. Wraps in u.
    """
    if mask.all():
        return latlong.copy()
    if not mask.any():
        return np.zeros_like(latlong)
    levels = [(latlong * mask[..., None], mask.astype(np.float64))]
    while min(levels[-1][1].shape) > 2:
        val, wgt = levels[-1]
        h, w = (val.shape[0] // 2) * 2, (val.shape[1] // 2) * 2
        v = val[:h, :w].reshape(h // 2, 2, w // 2, 2, -1).sum(axis=(1, 3))
        m = wgt[:h, :w].reshape(h // 2, 2, w // 2, 2).sum(axis=(1, 3))
        levels.append((v, m))
    val, wgt = levels[-1]
    filled = np.where(wgt[..., None] > 0, val / np.maximum(wgt[..., None], 1e-12),
                      (val.sum((0, 1)) / max(wgt.sum(), 1e-12)))
    for val, wgt in reversed(levels[:-1]):
        up = np.repeat(np.repeat(filled, 2, axis=0), 2, axis=1)
        up = np.pad(up, ((0, val.shape[0] - up.shape[0]), (0, val.shape[1] - up.shape[1]), (0, 0)), mode="edge")
        known = wgt[..., None] > 0
        filled = np.where(known, val / np.maximum(wgt[..., None], 1e-12), up)
    # a light blur of the filled part only, so block edges of the pyramid do not show
    blurred = filled.copy()
    for _ in range(2):
        blurred = (np.roll(blurred, 1, 1) + np.roll(blurred, -1, 1) + blurred * 2
                   + np.concatenate([blurred[:1], blurred[:-1]]) + np.concatenate([blurred[1:], blurred[-1:]])) / 6.0
    return np.where(mask[..., None], latlong, blurred).astype(np.float32)


def plate_latlong(plate_rgb: np.ndarray, cam_to_world: np.ndarray, intrinsics, height: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """(lat-long map, seen mask): the working-space plate projected onto the sphere, the rest filled."""
    from ..camera import project_to_pixels

    dirs = texel_directions(height, 2 * height)
    pts = dirs.reshape(-1, 3) * 1e4 + np.asarray(cam_to_world)[:3, 3]
    px = project_to_pixels(pts, cam_to_world, intrinsics)
    h, w = plate_rgb.shape[:2]
    ok = np.isfinite(px).all(axis=1) & (px[:, 0] >= 0) & (px[:, 0] < w) & (px[:, 1] >= 0) & (px[:, 1] < h)
    latlong = np.zeros((height * 2 * height, 3), np.float32)
    sel = px[ok].astype(int)
    latlong[ok] = plate_rgb[sel[:, 1], sel[:, 0]]
    mask = ok.reshape(height, 2 * height)
    return push_pull_fill(latlong.reshape(height, 2 * height, 3), mask), mask


def sky_lobes(sun_direction, sun_rgb=(270.0, 255.0, 230.0), sky_rgb=(0.35, 0.45, 0.65),
              ground_rgb=(0.12, 0.11, 0.1), sun_sharpness: float = 300.0) -> SGLobes:
    """A sun lobe along ``sun_direction`` (world, need not be normalised), a sky fill, a ground bounce.

    Defaults give a clear day: the sun's irradiance (2 pi c / lambda, about 5.5) is about four times
    the sky's (about 1.4), in scene-linear units where a white card facing the sun reads about 2.
    """
    sun = np.asarray(sun_direction, float)
    sun /= np.linalg.norm(sun)
    return SGLobes(np.array([sun, [0.0, 1.0, 0.0], [0.0, -1.0, 0.0]]), np.array([sun_sharpness, 1.5, 1.5]),
                   np.array([sun_rgb, sky_rgb, ground_rgb], float))


# --------------------------------------------------------------------------------------------------
# The initialisations of [lighting] init. Each takes the shot context and the frames available to the
# solve, and returns SG lobes (optimised as TwoMapSG) or an HDRI lat-long (refined by HDRIRefine).


def init_from_plate(context: ShotContext, frames: list[int]) -> SGLobes:
    """``init = "plate"``: the first frame's plate projected onto the sphere, the rest filled, SG-fitted."""
    plate = context.plate(frames[0])
    latlong, _ = plate_latlong(plate.rgb, plate.cam_to_world, plate.intrinsics, height=64)
    return fit_sg(latlong, lobes=context.shot.lighting.lobes)


def init_from_sky(context: ShotContext, frames: list[int]) -> SGLobes:
    """``init = "sky"``: a sun lobe along ``[lighting] sun_direction`` plus a sky fill and a ground bounce."""
    return sky_lobes(context.shot.lighting.sun_direction)


def init_from_hdri(context: ShotContext, frames: list[int]) -> np.ndarray:
    """``init = "hdri"``: the on-set HDRI itself (refined in rotation / exposure / white balance)."""
    from .hdri import hdri_texels

    return hdri_texels(context.shot.lighting.hdri)


def keyframes(frames: list[int], count: int) -> list[int]:
    """At most ``count`` of ``frames``, evenly spaced, first and last included (all of them when fewer)."""
    if len(frames) <= count:
        return list(frames)
    idx = np.unique(np.round(np.linspace(0, len(frames) - 1, count)).astype(int))
    return [frames[i] for i in idx]


PRIOR_KEYFRAMES = 8   # frames the prior looks at (evenly spaced): about 0.1 s each on a CPU


def init_from_prior(context: ShotContext, frames: list[int]) -> SGLobes:
    """``init = "prior"``: the learned lighting prior on up to PRIOR_KEYFRAMES frames, pooled into one
    world-space lighting (prior/estimate.py), as SG lobes."""
    from .prior.estimate import estimate_world, load_prior

    light = context.shot.lighting
    plates = [context.plate(f) for f in keyframes(frames, PRIOR_KEYFRAMES)]
    world = estimate_world(load_prior(light.prior), [p.rgb for p in plates], [p.cam_to_world for p in plates],
                           [p.intrinsics.fov_x_deg for p in plates])
    return world.lobes(light.lobes)


INITIALISATIONS: dict[str, Callable[[ShotContext, list[int]], SGLobes | np.ndarray]] = {
    "prior": init_from_prior,
    "plate": init_from_plate,
    "hdri": init_from_hdri,
    "sky": init_from_sky,
}
"""``[lighting] init`` -> its initialisation."""


def initial_lighting(context: ShotContext, frames: list[int]) -> SGLobes | np.ndarray:
    """The initial lighting of the shot's ``[lighting] init`` (see INITIALISATIONS)."""
    return INITIALISATIONS[context.shot.lighting.init](context, frames)
