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
from .panorama import mitsuba_env_directions, texel_directions


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

    def dominant_direction(self) -> np.ndarray:
        """Axis of the lobe with the most power (luminance x solid-angle integral 2 pi / lambda for sharp lobes)."""
        lum = self.amplitude @ np.array(RGB_LUMINANCE)
        power = lum * 2.0 * np.pi / self.sharpness * (1.0 - np.exp(-2.0 * self.sharpness))
        return self.axis[int(np.argmax(power))]


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


def sg_env_torch(dirs, axis_raw, log_sharpness, log_amplitude):
    """Differentiable SG environment (..., 3) at directions ``dirs`` (torch tensors)."""
    import torch

    mu = torch.nn.functional.normalize(axis_raw, dim=-1)
    lobes = torch.exp(log_sharpness.exp() * (dirs @ mu.T - 1.0))
    return lobes @ log_amplitude.exp()


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
        return sg_env_torch(self._dirs[height], self.axis_raw, self.log_sharpness, self.log_amplitude)

    def lobes(self) -> SGLobes:
        import torch

        with torch.no_grad():
            axis = torch.nn.functional.normalize(self.axis_raw, dim=-1).cpu().numpy().astype(float)
            return SGLobes(axis, self.log_sharpness.exp().cpu().numpy().astype(float),
                           self.log_amplitude.exp().cpu().numpy().astype(float))
