"""Initial lighting, one function per ``[lighting] init`` (``INITIALISATIONS``), and their tools.

- ``initial_lighting``: the initialisation the shot asks for, dispatched through ``INITIALISATIONS``
  (a new init is one function with the same signature plus one line there, and its name in
  ``config.LightingConfig.init``).
- ``fit_sg``: fit K spherical Gaussians to a lat-long map (solid-angle weighted, in log space so both
  a sun and a dim sky matter), from lobes seeded at the brightest texels and a Fibonacci spread.
- ``plate_latlong``: the plate's pixels projected onto the sphere through the calibrated camera; the
  directions the plate does not see are filled by a smooth push-pull extension of what it does see.
- ``sky_lobes``: a sun lobe in a given direction plus a broad sky fill and a ground bounce.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Callable

import numpy as np

from ..color import RGB_LUMINANCE
from .panorama import texel_directions, texel_solid_angles
from .sg import SGLobes

if TYPE_CHECKING:
    from ..shot import ShotContext


def fibonacci_directions(count: int) -> np.ndarray:
    """``count`` nearly uniform unit directions (golden-angle spiral)."""
    i = np.arange(count) + 0.5
    y = 1.0 - 2.0 * i / count
    r = np.sqrt(np.clip(1.0 - y * y, 0.0, 1.0))
    phi = math.pi * (3.0 - math.sqrt(5.0)) * i
    return np.stack([r * np.cos(phi), y, r * np.sin(phi)], axis=1)


def max_sharpness(env_height: int) -> float:
    """The sharpest lobe a lat-long of ``env_height`` rows resolves (width 1/sqrt(lambda) about 1.5 texels)."""
    return 200.0 * (env_height / 64.0) ** 2


def fit_sg(latlong: np.ndarray, lobes: int = 32, iterations: int = 400, seed: int = 0) -> SGLobes:
    """Least-squares fit of ``lobes`` SGs to a lat-long map (project convention), deterministic.

    The loss is the solid-angle weighted squared error of log(1 + L): it weighs a dim sky and a bright
    sun alike, which a plain L2 on radiance would not (the sun would take every lobe).
    """
    import torch

    h = min(latlong.shape[0], 64)
    if latlong.shape[0] != h:  # fit on a 64 x 128 version (box-filtered: energy preserved)
        f = latlong.shape[0] // h
        latlong = latlong[: h * f, : 2 * h * f].reshape(h, f, 2 * h, f, 3).mean(axis=(1, 3))
    dirs = texel_directions(h, 2 * h)
    weights = texel_solid_angles(h, 2 * h) * np.ones((1, 2 * h))
    lum = latlong @ np.array(RGB_LUMINANCE)
    # seeds: the brightest texels (suns, lamps), spread apart, then a Fibonacci cover of the rest
    order = np.argsort(-(lum * weights).ravel())
    seeds: list[np.ndarray] = []
    for idx in order[:2000]:
        d = dirs.reshape(-1, 3)[idx]
        if all(d @ s < math.cos(math.radians(20)) for s in seeds):
            seeds.append(d)
        if len(seeds) >= max(1, lobes // 4):
            break
    seeds += list(fibonacci_directions(lobes - len(seeds)))
    axis0 = np.array(seeds[:lobes])
    amp0 = np.maximum(latlong.reshape(-1, 3)[[int(np.argmax(dirs.reshape(-1, 3) @ a)) for a in axis0]], 1e-3)
    torch.manual_seed(seed)
    target = torch.tensor(np.log1p(np.maximum(latlong, 0.0)), dtype=torch.float32)
    w = torch.tensor(weights / weights.sum(), dtype=torch.float32)[..., None]
    d_t = torch.tensor(dirs, dtype=torch.float32)
    axis = torch.tensor(axis0, dtype=torch.float32, requires_grad=True)
    log_sharp = torch.full((lobes,), math.log(20.0), requires_grad=True)
    log_amp = torch.tensor(np.log(amp0 * 0.5), dtype=torch.float32, requires_grad=True)
    opt = torch.optim.Adam([axis, log_sharp, log_amp], lr=0.05)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, iterations, eta_min=0.002)
    for _ in range(iterations):
        opt.zero_grad()
        mu = torch.nn.functional.normalize(axis, dim=-1)
        pred = torch.exp(log_sharp.exp() * (d_t @ mu.T - 1.0)) @ log_amp.exp()
        loss = (w * (torch.log1p(pred) - target).square()).sum()
        loss.backward()
        opt.step()
        sched.step()
        with torch.no_grad():
            log_sharp.clamp_(math.log(0.5), math.log(max_sharpness(h)))
            log_amp.clamp_(-12.0, 12.0)
    with torch.no_grad():
        mu = torch.nn.functional.normalize(axis, dim=-1).numpy().astype(float)
        sharp = log_sharp.exp().numpy().astype(float)
    # The log-space fit places the lobes; their amplitudes are then refit in linear radiance (a
    # non-negative least-squares problem, solid-angle weighted) so the lobes carry the map's energy.
    from scipy.optimize import nnls

    # A plain least-squares fit of a lobe wider than a texel to a one-texel sun overshoots its energy up
    # to 2x, so one heavily weighted extra row asks for the map's total energy per channel as well.
    lobe_values = np.exp(sharp * (dirs.reshape(-1, 3) @ mu.T - 1.0))
    sqrt_w = np.sqrt(weights.reshape(-1, 1))
    radiance = np.maximum(latlong.reshape(-1, 3), 0.0)
    energy_row = (lobe_values * weights.reshape(-1, 1)).sum(0, keepdims=True)
    scale = 10.0 * np.linalg.norm(lobe_values * sqrt_w) / max(np.linalg.norm(energy_row), 1e-12)
    basis = np.concatenate([lobe_values * sqrt_w, energy_row * scale])
    amp = np.stack([nnls(basis, np.concatenate([radiance[:, c:c + 1] * sqrt_w, [[(radiance[:, c] * weights.ravel()).sum() * scale]]])[:, 0],
                         maxiter=50 * lobes)[0] for c in range(3)], axis=1)
    return SGLobes(mu, sharp, np.maximum(amp, 1e-6))


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
    from ..plates import read_image

    return read_image(context.shot.lighting.hdri).rgb


INITIALISATIONS: dict[str, Callable[[ShotContext, list[int]], SGLobes | np.ndarray]] = {
    "plate": init_from_plate,
    "hdri": init_from_hdri,
    "sky": init_from_sky,
}
"""``[lighting] init`` -> its initialisation."""


def initial_lighting(context: ShotContext, frames: list[int]) -> SGLobes | np.ndarray:
    """The initial lighting of the shot's ``[lighting] init`` (see INITIALISATIONS)."""
    return INITIALISATIONS[context.shot.lighting.init](context, frames)
