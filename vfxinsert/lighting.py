"""Lighting: spherical-Gaussian lobes (torch parameters) and lat-long environment maps.

SG lobe (DiPIR, after Wang et al.): ``G(v) = c * exp(lambda * (dot(v, mu) - 1))`` with RGB amplitude
c > 0, unit axis mu and sharpness lambda > 0. Free parameters: an unnormalised axis, log sharpness and
log amplitude, so any step keeps the lobe valid.

Two texel layouts meet here:
- files (HDRIs in, ``lighting.exr`` out) use the project's lat-long convention (panorama.py: texel
  centres at u = (x + 0.5) / W, v = (y + 0.5) / H);
- Mitsuba 3.9.1's envmap stores (H, W + 2, 3) with halo columns, real column x at storage x + 1,
  u = (x + 0.5) / W and v = y / (H - 1) (row 0 exactly at the zenith; mitsuba-notes section 3).
Environment data for Mitsuba is therefore always evaluated at Mitsuba's own texel directions, so the
light it renders is the SG function (or the HDRI) itself, not a half-texel-shifted copy.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .panorama import sample_bilinear, texel_directions, texel_solid_angles, uv_to_direction

RGB_LUMINANCE = (0.2126, 0.7152, 0.0722)  # Rec.709 / working space


def mitsuba_env_directions(height: int, width: int) -> np.ndarray:
    """(H, W + 2, 3) world directions of the texels of Mitsuba's envmap data, halos included."""
    u = (np.arange(-1, width + 1) + 0.5) / width
    v = np.arange(height) / (height - 1)
    uu, vv = np.meshgrid(u, v)
    return uv_to_direction(uu, vv)


def box_downsample(latlong: np.ndarray, height: int) -> np.ndarray:
    """Box-filter a lat-long down to about ``2 * height`` rows (integer factor), preserving its energy.

    Point-sampling a 1k HDRI at 64 rows would hit or miss a one-texel sun depending on the rotation.
    """
    f = latlong.shape[0] // (2 * height)
    if f <= 1:
        return latlong.astype(np.float32)
    h, w = latlong.shape[0] // f, latlong.shape[1] // f
    return latlong[: h * f, : w * f].reshape(h, f, w, f, -1).mean(axis=(1, 3)).astype(np.float32)


def hdri_to_mitsuba_env(latlong: np.ndarray, height: int | None = None, rotate_y_deg: float = 0.0) -> np.ndarray:
    """Resample a lat-long HDRI (project convention) onto Mitsuba's envmap texels, rotated about +Y
    (box-filtered first when it has many more rows than the target)."""
    h = height or latlong.shape[0]
    dirs = mitsuba_env_directions(h, 2 * h)
    return sample_bilinear(box_downsample(latlong, h), dirs, rotate_y_deg).astype(np.float32)


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


def write_lighting(folder: Path, latlong: np.ndarray, lobes: SGLobes | None, meta: dict) -> tuple[Path, Path]:
    """Export ``lighting.exr`` (lat-long, float, the convention above) and ``lighting.json``."""
    from .exr import write_exr
    from .fsutil import atomic_write_text

    folder = Path(folder)
    exr = folder / "lighting.exr"
    write_exr(exr, {"R": latlong[..., 0], "G": latlong[..., 1], "B": latlong[..., 2]}, precision="float",
              compression="zip", attributes={"envmap": 1, "comments": "lat-long, +Y up, row 0 = zenith, centre "
                                             "column faces +Z, u = 0.25 faces +X (Mitsuba envmap convention)"})
    doc = dict(meta)
    doc["latlong"] = {"file": exr.name, "width": int(latlong.shape[1]), "height": int(latlong.shape[0]),
                      "convention": "+Y up, row 0 zenith, centre column +Z, u=0.25 +X, texel centres"}
    doc["sg"] = lobes.to_json() if lobes is not None else None
    solid = texel_solid_angles(*latlong.shape[:2])
    doc["mean_radiance_rgb"] = [float(x) for x in (latlong * solid[..., None]).sum((0, 1)) / (4 * math.pi)]
    js = folder / "lighting.json"
    atomic_write_text(js, json.dumps(doc, indent=2))
    return exr, js


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
