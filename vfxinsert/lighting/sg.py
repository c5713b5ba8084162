"""Spherical-Gaussian lobes: plain (numpy) and as torch parameters, rasterised to environment maps.

SG lobe (DiPIR, after Wang et al.): ``G(v) = c * exp(lambda * (dot(v, mu) - 1))`` with RGB amplitude
c > 0, unit axis mu and sharpness lambda > 0. Free parameters: an unnormalised axis, log sharpness and
log amplitude, so any step keeps the lobe valid.

The texel layouts they are rasterised to (files vs Mitsuba's envmap) are panorama.py's.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..color import RGB_LUMINANCE
from .panorama import mitsuba_env_directions, texel_directions, texel_solid_angles


@dataclass(frozen=True)
class SGLobes:
    """Plain (numpy) SG lobes: what lighting.json stores and what tests compare."""

    axis: np.ndarray        # (K, 3) unit vectors, world space
    sharpness: np.ndarray   # (K,)
    amplitude: np.ndarray   # (K, 3) linear RGB radiance at the lobe centre

    def radiance(self, dirs: np.ndarray) -> np.ndarray:
        """(..., 3) radiance of the lobes along unit directions (..., 3)."""
        cos = dirs @ self.axis.T                                       # (..., K)
        return np.exp(self.sharpness * (cos - 1.0)) @ self.amplitude   # (..., 3)

    def to_json(self) -> dict:
        return {"type": "spherical_gaussians",
                "formula": "L(v) = sum_k amplitude_k * exp(sharpness_k * (dot(v, axis_k) - 1))",
                "space": "world: right-handed, +Y up; amplitude in linear working-space RGB",
                "lobes": [{"axis": list(map(float, a)), "sharpness": float(s), "amplitude": list(map(float, c))}
                          for a, s, c in zip(self.axis, self.sharpness, self.amplitude)]}

    @classmethod
    def from_json(cls, data: dict) -> "SGLobes":
        lobes = data["lobes"]
        return cls(np.array([l["axis"] for l in lobes], float), np.array([l["sharpness"] for l in lobes], float),
                   np.array([l["amplitude"] for l in lobes], float))

    def power(self) -> np.ndarray:
        """(K,) luminance integrated over the sphere per lobe: 2 pi c / lambda (1 - exp(-2 lambda))."""
        return self.amplitude @ np.array(RGB_LUMINANCE) * sg_integral(self.sharpness)

    def dominant_direction(self) -> np.ndarray:
        """Axis of the lobe with the most power."""
        return self.axis[int(np.argmax(self.power()))]

    def starts(self, count: int, min_separation_deg: float = 30.0) -> list["SGLobes"]:
        """``count`` starting lightings for a multi-start solve: these lobes, then the same lobes with the key
        (most powerful lobe) exchanged with another candidate key direction: the next most powerful lobes
        above the horizon (a key below it casts no shadow on the ground), then a cover of the upper sky
        (elevations 15-75 degrees), each at least ``min_separation_deg`` from the directions already taken."""
        order = np.argsort(-self.power())
        key = int(order[0])
        cover = fibonacci_directions(64)
        cover = cover[(cover[:, 1] > math.sin(math.radians(15))) & (cover[:, 1] < math.sin(math.radians(75)))]
        taken = [self.axis[key]]
        out = [self]
        cos_min = math.cos(math.radians(min_separation_deg))
        above = [self.axis[i] for i in order[1:] if self.axis[i][1] > math.sin(math.radians(5))]
        for candidate in [*above, *cover]:
            if len(out) >= count:
                break
            if all(float(candidate @ d) < cos_min for d in taken):
                taken.append(candidate)
                axis = self.axis.copy()
                match = [i for i in order[1:] if np.array_equal(self.axis[i], candidate)]
                if match:                      # exchange the key with that lobe
                    axis[[key, match[0]]] = axis[[match[0], key]]
                else:                          # move the key there
                    axis[key] = candidate
                out.append(SGLobes(axis, self.sharpness.copy(), self.amplitude.copy()))
        return out


    def with_sun(self, direction, sharpness: float, radius_deg: float = 25.0) -> "SGLobes":
        """These lobes with the light around ``direction`` gathered into one sun-sized lobe: every lobe whose
        axis lies within ``radius_deg`` of it gives its power (per channel) to a lobe of ``sharpness`` on
        ``direction`` and keeps a thousandth of its amplitude (the lobe count, and room to grow back, stay).
        A broad key does not sharpen by gradient descent (its shadow's hardness gives the loss no slope
        towards a small source); the sun test offers this instead (loop.sun_test)."""
        d = np.asarray(direction, float) / np.linalg.norm(direction)
        near = self.axis @ d >= math.cos(math.radians(radius_deg))
        if not near.any():
            near[int(np.argmax(self.axis @ d))] = True
        power = (self.amplitude[near] * sg_integral(self.sharpness[near])[:, None]).sum(0)
        key = int(np.flatnonzero(near)[np.argmax(self.power()[near])])
        axis, sharp, amp = self.axis.copy(), self.sharpness.copy(), self.amplitude.copy()
        amp[near] *= 1e-3
        axis[key], sharp[key] = d, float(sharpness)
        amp[key] = power / sg_integral(sharpness)
        return SGLobes(axis, sharp, amp)


def sg_integral(sharpness):
    """Integral over the sphere of a lobe of unit amplitude: 2 pi / lambda (1 - exp(-2 lambda))."""
    lam = np.asarray(sharpness, float)
    return 2.0 * np.pi / lam * -np.expm1(-2.0 * lam)


def sg_irradiance_closed_form(axis, sharpness: float, amplitude, normal) -> np.ndarray:
    """Irradiance E = integral of L(v) max(0, n.v) dv of ONE lobe on a surface with normal n.

    When the lobe has no energy below the surface's horizon (a sharp lobe well above it), the clamp
    drops out and E = n . integral G(v) v dv = c * 2 pi * cos(a) * integral_-1^1 x exp(lambda (x - 1)) dx,
    with a the angle between the lobe axis and n. That integral is elementary (below).
    """
    mu = np.asarray(axis, float) / np.linalg.norm(axis)
    n = np.asarray(normal, float) / np.linalg.norm(normal)
    cos_a = float(mu @ n)
    lam = float(sharpness)
    moment = (1.0 / lam - 1.0 / lam**2) + math.exp(-2.0 * lam) * (1.0 / lam + 1.0 / lam**2)
    return np.asarray(amplitude, float) * 2.0 * math.pi * cos_a * moment


def latlong_from_lobes(lobes: SGLobes, height: int = 256) -> np.ndarray:
    """A (H, 2H, 3) lat-long (project convention) of the lobes, for lighting.exr."""
    return lobes.radiance(texel_directions(height, 2 * height)).astype(np.float32)


# --------------------------------------------------------------------------------------------------
# torch side: differentiable lobes


def sg_env_torch(dirs, axis_raw, log_sharpness, log_amplitude, raster_sharpness: float | None = None):
    """Differentiable SG environment (..., 3) at directions ``dirs`` (torch tensors).

    ``raster_sharpness``: the sharpest lobe the raster of ``dirs`` resolves (``max_sharpness``). A sharper
    lobe (a sun of half a degree is lambda ~ 1e5) would alias: it falls between texel centres or onto
    one. It is drawn instead as the sharpest resolvable lobe carrying the same energy (the SG's integral
    2 pi c / lambda (1 - exp(-2 lambda)) kept), so its power and direction stay exact and smooth in the
    parameters while the raster shows it as small as it can.
    """
    import torch

    mu = torch.nn.functional.normalize(axis_raw, dim=-1)
    sharpness = log_sharpness.exp()
    amplitude = log_amplitude.exp()
    if raster_sharpness is not None:
        drawn = sharpness.clamp(max=raster_sharpness)
        energy = (drawn / sharpness) * (-torch.expm1(-2.0 * sharpness)) / (-torch.expm1(-2.0 * drawn))
        sharpness, amplitude = drawn, amplitude * energy[:, None]
    lobes = torch.exp(sharpness * (dirs @ mu.T - 1.0))
    return lobes @ amplitude


class SGLighting:
    """K lobes as torch leaf tensors (axis, log sharpness, log amplitude), rasterised on demand."""

    def __init__(self, lobes: SGLobes, device: str = "cpu"):
        import torch

        self.axis_raw = torch.tensor(lobes.axis, dtype=torch.float32, device=device, requires_grad=True)
        self.log_sharpness = torch.tensor(np.log(lobes.sharpness), dtype=torch.float32, device=device,
                                          requires_grad=True)
        self.log_amplitude = torch.tensor(np.log(np.maximum(lobes.amplitude, 1e-8)), dtype=torch.float32,
                                          device=device, requires_grad=True)
        self._dirs = {}

    def parameters(self):
        return [self.axis_raw, self.log_sharpness, self.log_amplitude]

    def mitsuba_env(self, height: int):
        """(H, 2H + 2, 3) torch env data in Mitsuba's texel layout, differentiable in the lobes."""
        import torch

        if height not in self._dirs:
            self._dirs[height] = torch.tensor(mitsuba_env_directions(height, 2 * height), dtype=torch.float32,
                                              device=self.axis_raw.device)
        return sg_env_torch(self._dirs[height], self.axis_raw, self.log_sharpness, self.log_amplitude,
                            max_sharpness(height))

    def lobes(self) -> SGLobes:
        import torch

        with torch.no_grad():
            axis = torch.nn.functional.normalize(self.axis_raw, dim=-1).cpu().numpy().astype(float)
            return SGLobes(axis, self.log_sharpness.exp().cpu().numpy().astype(float),
                           self.log_amplitude.exp().cpu().numpy().astype(float))


def fibonacci_directions(count: int) -> np.ndarray:
    """``count`` nearly uniform unit directions (golden-angle spiral)."""
    i = np.arange(count) + 0.5
    y = 1.0 - 2.0 * i / count
    r = np.sqrt(np.clip(1.0 - y * y, 0.0, 1.0))
    phi = math.pi * (3.0 - math.sqrt(5.0)) * i
    return np.stack([r * np.cos(phi), y, r * np.sin(phi)], axis=1)


SUN_SHARPNESS = 1.0e5
"""Sharpness of a lobe the size of the sun (1 / sqrt(lambda) = 0.18 degrees: a disc of about half a degree)."""


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


def angular_error_deg(a, b) -> float:
    """Angle between two directions in degrees."""
    a = np.asarray(a, float) / np.linalg.norm(a)
    b = np.asarray(b, float) / np.linalg.norm(b)
    return math.degrees(math.acos(float(np.clip(a @ b, -1.0, 1.0))))


def dominant_direction_latlong(latlong: np.ndarray) -> np.ndarray:
    """Direction of the brightest (solid-angle weighted, lightly blurred) part of a lat-long map: the
    "dominant light" that ``bench`` scores and the lighting prior learns to find."""
    h, w = latlong.shape[:2]
    lum = latlong @ np.array(RGB_LUMINANCE) * texel_solid_angles(h, w)
    lum = sum(np.roll(np.roll(lum, dy, 0), dx, 1) for dy in (-1, 0, 1) for dx in (-1, 0, 1))
    y, x = np.unravel_index(int(np.argmax(lum)), lum.shape)
    return texel_directions(h, w)[y, x]
