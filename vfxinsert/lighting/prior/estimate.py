"""Lighting from the plate alone: run the prior on keyframes, pool them in the world, return SG lobes.

Each keyframe's prediction lives in its camera's heading frame; it is turned into the world with the
shot's camera (d_world = Ry(heading) d_heading), and the keyframes are pooled there: the direction
probabilities averaged (a light seen from several headings gets one consistent direction), the fill
and the key energy averaged in log space. The key light becomes one sharp SG along the direction of
least expected angular error under the pooled probabilities, the fill is fitted with the remaining
lobes, so everything downstream (lighting.json, the loop, the renderer) sees ordinary SG lighting.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import ConfigError
from ..sg import SGLobes
from ..panorama import sample_bilinear, texel_directions, texel_solid_angles
from . import prior_path
from .model import (FLOOR, GRID_H, GRID_W, NET_H, NET_W, PriorArch, build_network, camera_scalars, heading_of,
                    pitch_of, plate_normaliser, resample_area)

PRIOR_FORMAT = "vfxinsert-lighting-prior"
KEY_CONE_DEG = 25.0   # a key light within this angle of the estimate counts as found
PRIOR_VERSION = 1


@dataclass
class LightingPrior:
    """A loaded prior: its networks (the ensemble's members) in eval mode and where it came from."""

    networks: list
    arch: PriorArch
    path: Path

    def sidecar(self) -> dict | None:
        """The JSON that `vfxinsert train-prior` wrote beside the weights (split, hashes, figures); None if absent."""
        file = self.path.with_suffix(".json")
        return json.loads(file.read_text()) if file.is_file() else None


def load_prior(path: Path | str | None = None) -> LightingPrior:
    """Load prior weights (safetensors only); the shipped default when ``path`` is None.

    ConfigError when the file is missing, not a safetensors file, not a vfxinsert prior, of another
    version, or its tensors do not fit the architecture its metadata names.
    """
    from safetensors import safe_open

    path = prior_path(path)
    where = "[lighting] prior"
    fix = "give a .safetensors file written by `vfxinsert train-prior`, or leave prior unset for the shipped one"
    if not path.is_file():
        raise ConfigError(f"lighting prior {path} does not exist", where=where, fix=fix)
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:  # safetensors raises its own error types for a bad header
        raise ConfigError(f"lighting prior {path} is not a readable safetensors file ({exc})", where=where, fix=fix) from exc
    if meta.get("format") != PRIOR_FORMAT:
        raise ConfigError(f"{path} is not a vfxinsert lighting prior (format {meta.get('format')!r})", where=where, fix=fix)
    if meta.get("version") != str(PRIOR_VERSION):
        raise ConfigError(f"lighting prior {path} has version {meta.get('version')}, this vfxinsert reads {PRIOR_VERSION}",
                          where=where, fix="retrain it with this version's `vfxinsert train-prior`")
    try:
        arch = PriorArch.from_dict(json.loads(meta["arch"]))
        members = int(meta["members"])
    except (KeyError, ValueError, TypeError) as exc:
        raise ConfigError(f"lighting prior {path} has unreadable metadata ({exc})", where=where, fix=fix) from exc
    networks = []
    for m in range(members):
        network = build_network(arch)
        prefix = f"m{m}."
        try:
            network.load_state_dict({k[len(prefix):]: v.float() for k, v in tensors.items() if k.startswith(prefix)})
        except RuntimeError as exc:
            raise ConfigError(f"lighting prior {path} does not match its architecture ({str(exc).splitlines()[0]})",
                              where=where, fix=fix) from exc
        networks.append(network.eval())
    return LightingPrior(networks, arch, path)


@dataclass(frozen=True)
class HeadingEstimate:
    """One plate's prediction, in its camera's heading frame, radiometry in working-space units."""

    heading_deg: float
    probabilities: np.ndarray   # (GRID_H, GRID_W) over the sphere, sums to 1
    fill: np.ndarray            # (GRID_H, GRID_W, 3) radiance
    key_energy: np.ndarray      # (3,) radiance x sr
    key_sharpness: float


def network_input(plate_rgb: np.ndarray) -> tuple[np.ndarray, float]:
    """(image for the network (NET_H, NET_W, 3), normaliser) from a working-space plate of any size."""
    rgb = np.nan_to_num(np.asarray(plate_rgb, np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    image = resample_area(np.maximum(rgb, 0.0), NET_H, NET_W)
    m = plate_normaliser(image)
    return image / m, m


def estimate_heading(prior: LightingPrior, plates: list[np.ndarray], cams: list[np.ndarray],
                     fov_x_deg: list[float]) -> list[HeadingEstimate]:
    """Run the network on plates (working space) seen by cameras (cam_to_world) with these FOVs."""
    images, scalars, norms = [], [], []
    for plate, c2w, fov in zip(plates, cams, fov_x_deg):
        image, m = network_input(plate)
        images.append(image.transpose(2, 0, 1))
        scalars.append(camera_scalars(pitch_of(c2w), fov, plate.shape[1] / plate.shape[0]))
        norms.append(m)
    probs, log_fill, log_energy, log_sharp = network_outputs(prior.networks, np.stack(images), np.stack(scalars))
    out = []
    for i, c2w in enumerate(cams):
        fill = np.maximum(np.exp(log_fill[i].transpose(1, 2, 0)) - FLOOR, 0.0) * norms[i]
        energy = np.maximum(np.exp(log_energy[i]) - FLOOR, 0.0) * norms[i]
        out.append(HeadingEstimate(heading_of(c2w), probs[i], fill, energy, float(math.exp(float(log_sharp[i])))))
    return out


def network_outputs(networks: list, images: np.ndarray, scalars: np.ndarray):
    """(direction probabilities, log fill, log key energy, log key sharpness) as numpy, for images
    (B, 3, NET_H, NET_W), averaged over the ensemble's members and over the plate and its mirror image
    (the mirror's answer mirrored back, x -> -x in the heading frame), which removes a left/right bias."""
    import torch

    x = torch.as_tensor(np.ascontiguousarray(images), dtype=torch.float32)
    s = torch.as_tensor(np.ascontiguousarray(scalars), dtype=torch.float32)
    outs = []
    with torch.no_grad():
        for network in networks:
            a = [o.numpy() for o in network(x, s)]
            b = [o.numpy() for o in network(torch.flip(x, dims=[3]), s)]
            outs.append((direction_probabilities(a[0]) + direction_probabilities(b[0])[..., ::-1],
                         a[1] + b[1][..., ::-1], a[2] + b[2], a[3] + b[3]))
    n = 2.0 * len(outs)
    return tuple(sum(o[i] for o in outs) / n for i in range(4))


def direction_probabilities(logits: np.ndarray) -> np.ndarray:
    """Softmax over grid cells weighted by their solid angle (uniform logits = uniform on the sphere)."""
    log_w = np.log(texel_solid_angles(GRID_H, GRID_W) * np.ones((1, GRID_W)))
    z = logits + log_w
    z = z - z.max(axis=(-2, -1), keepdims=True)
    p = np.exp(z)
    return p / p.sum(axis=(-2, -1), keepdims=True)


def expected_error_direction(probabilities: np.ndarray, candidates: int = 48) -> np.ndarray:
    """The direction with the least expected angle to the key light under ``probabilities``: the Bayes
    estimate for the angular error. A confident answer gives its mode; a spread one (overcast, many
    lamps) gives the direction that is least wrong on average instead of one of its guesses."""
    dirs = texel_directions(*probabilities.shape).reshape(-1, 3)
    cands = texel_directions(candidates, 2 * candidates).reshape(-1, 3)
    angles = np.arccos(np.clip(cands @ dirs.T, -1.0, 1.0))
    best = cands[int(np.argmin(angles @ probabilities.reshape(-1)))]
    return best / np.linalg.norm(best)


def heading_to_world(grid: np.ndarray, heading_deg: float) -> np.ndarray:
    """A heading-frame grid resampled onto the world grid: the grid turned by the heading about +Y."""
    dirs = texel_directions(grid.shape[0], grid.shape[1])
    if grid.ndim == 2:
        return sample_bilinear(grid[..., None].astype(np.float32), dirs, heading_deg)[..., 0]
    return sample_bilinear(grid.astype(np.float32), dirs, heading_deg)


@dataclass(frozen=True)
class WorldEstimate:
    """The prior's lighting for a shot, in the world frame."""

    key_direction: np.ndarray
    key_energy: np.ndarray
    key_sharpness: float
    fill: np.ndarray            # (GRID_H, GRID_W, 3)
    probabilities: np.ndarray   # (GRID_H, GRID_W)

    @property
    def confidence(self) -> float:
        """The probability that the key light is within KEY_CONE_DEG of ``key_direction``."""
        near = texel_directions(*self.probabilities.shape) @ self.key_direction > math.cos(math.radians(KEY_CONE_DEG))
        return float(self.probabilities[near].sum())

    def lobes(self, count: int = 32, max_sharpness: float = 800.0) -> SGLobes:
        """One key SG plus ``count - 1`` SGs fitted to the fill.

        The key SG carries the share of the key energy the prior is sure of (``confidence``); the rest is
        spread over the sphere as the direction probabilities say and joins the fill. A sure prior gives a
        hard key; an unsure one a softer light, whose shadow is less wrong when the guess is wrong (a hard
        shadow in the wrong place is the worst composite), with the same total energy either way.
        """
        from ..sg import fit_sg

        lam = float(np.clip(self.key_sharpness, 4.0, max_sharpness))
        sure = self.confidence
        # the energy of an SG: 2 pi c / lambda * (1 - exp(-2 lambda))
        amp = sure * self.key_energy * lam / (2.0 * math.pi * (1.0 - math.exp(-2.0 * lam)))
        key = SGLobes(self.key_direction[None], np.array([lam]), np.maximum(amp, 1e-6)[None])
        if count <= 1:
            return key
        omega = texel_solid_angles(*self.probabilities.shape)
        spread = (1.0 - sure) * self.key_energy * (self.probabilities / omega)[..., None]   # radiance
        fill = fit_sg((self.fill + spread).astype(np.float32), lobes=count - 1, iterations=200)
        return SGLobes(np.concatenate([key.axis, fill.axis]), np.concatenate([key.sharpness, fill.sharpness]),
                       np.concatenate([key.amplitude, fill.amplitude]))


def pool(estimates: list[HeadingEstimate]) -> WorldEstimate:
    """One world-space lighting from per-keyframe estimates (see the module docstring)."""
    probs = np.mean([heading_to_world(e.probabilities, e.heading_deg) for e in estimates], axis=0)
    probs = probs / probs.sum()
    fill = np.exp(np.mean([np.log(heading_to_world(e.fill, e.heading_deg) + FLOOR) for e in estimates], axis=0)) - FLOOR
    energy = np.exp(np.mean([np.log(e.key_energy + FLOOR) for e in estimates], axis=0)) - FLOOR
    sharp = float(np.exp(np.mean([math.log(e.key_sharpness) for e in estimates])))
    return WorldEstimate(expected_error_direction(probs), np.maximum(energy, 0.0), sharp, np.maximum(fill, 0.0), probs)


def estimate_world(prior: LightingPrior, plates: list[np.ndarray], cams: list[np.ndarray],
                   fov_x_deg: list[float]) -> WorldEstimate:
    """The prior's world-space lighting for a shot's keyframes."""
    if not plates:
        raise ConfigError("the lighting prior needs at least one plate frame", where="[plate]",
                          fix="check the plate frames exist")
    return pool(estimate_heading(prior, plates, cams, fov_x_deg))
