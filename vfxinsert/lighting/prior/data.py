"""Training data for the lighting prior: plates synthesised from real HDR panoramas, with their lighting.

The Poly Haven protocol of ``bench`` (method.md), turned into a data set: a plate is a perspective view
from the panorama's centre (random heading, pitch -25..+10 degrees, horizontal FOV 30-90 degrees, the
aspect of a film or video format), and the panorama, turned into the camera's *heading frame* (the
world rotated about +Y so that the camera looks towards -Z; up stays +Y, so elevations stay true), is
the target. What the network is asked to predict, per panorama (``PanoramaLight``):

- the key light: the direction of the brightest part of the map (the same rule as ``bench``'s dominant
  light), its energy above the surrounding sky (RGB, radiance x steradians) and its angular size as an
  SG sharpness;
- the rest of the light (sky, walls, fill): the map with the key removed, as a 16 x 32 lat-long.

Plates are made to look like what reaches the prior in production: exposure, white balance, a camera
response (half the plates display-referred: clipped, 8-bit, JPEG-compressed, then brought back into
the working space through OCIO as the plate stage does), noise and blur. Radiometric targets are
relative to the plate's own normaliser (``plate_normaliser``), so the prior is exposure-invariant.
"""
from __future__ import annotations

import hashlib
import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import ConfigError
from ...color import RGB_LUMINANCE
from ..panorama import box_downsample, perspective_view, rotation_y, sample_bilinear, texel_directions, texel_solid_angles
from ..sg import dominant_direction_latlong
from .model import FLOOR, GRID_H, NET_H, NET_W, camera_scalars, plate_normaliser, resample_area

SYNTHESIS_VERSION = 1           # bump when synthesise() changes: cached plate banks are then rebuilt
KEY_RADIUS_DEG = 15.0            # the key light region: within this angle of its direction
PANORAMA_SUFFIXES = (".hdr", ".exr")

# The shipped split (by panorama, never by crop): validation covers a low and a high sun, a sunset, a
# dawn, overcast, two interiors and a studio; rooitou_park (the demo's panorama) is in it so the demo's
# figure is honest. Every other panorama found is training data.
VALIDATION = ("rooitou_park_1k", "KernerEnvLatLong", "venice_sunset_1k", "kiara_1_dawn_1k",
              "potsdamer_platz_1k", "st_fagans_interior_1k", "empty_warehouse_01_1k", "studio_small_03_1k")


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def find_panoramas(folders: list[Path]) -> list[Path]:
    """Every .hdr/.exr in the folders (not recursive), sorted by name; ConfigError if there are none."""
    found = []
    for folder in folders:
        if not folder.is_dir():
            raise ConfigError(f"panorama folder {folder} does not exist", where="--hdris/--val",
                              fix="give a folder of lat-long HDR panoramas (.hdr or .exr)")
        found += [p for p in folder.iterdir() if p.suffix.lower() in PANORAMA_SUFFIXES and p.is_file()]
    if not found:
        raise ConfigError(f"no .hdr/.exr panoramas in {', '.join(map(str, folders))}", where="--hdris",
                          fix="point --hdris at a folder of lat-long HDR panoramas")
    return sorted(found, key=lambda p: p.name)


def split_panoramas(train_dirs: list[Path], val_dirs: list[Path] | None) -> tuple[list[Path], list[Path]]:
    """(train, validation) panoramas. With ``val_dirs`` the split is by folder; without, by the shipped
    VALIDATION names (a studio library without those names validates on a seeded quarter instead)."""
    if val_dirs:
        train, val = find_panoramas(train_dirs), find_panoramas(val_dirs)
    else:
        everything = find_panoramas(train_dirs)
        val = [p for p in everything if p.stem in VALIDATION]
        if not val:
            rng = np.random.default_rng(0)
            idx = set(rng.permutation(len(everything))[: max(1, len(everything) // 4)].tolist())
            val = [p for i, p in enumerate(everything) if i in idx]
        train = [p for p in everything if p not in val]
    overlap = {p.stem for p in train} & {p.stem for p in val}
    if overlap:
        raise ConfigError(f"panoramas in both training and validation: {', '.join(sorted(overlap))}",
                          where="--hdris/--val", fix="keep every panorama in one of the two folders only")
    if not train:
        raise ConfigError("no training panoramas left after the validation split", where="--hdris",
                          fix="add panoramas, or give validation ones separately with --val")
    return train, val


@dataclass(frozen=True)
class PanoramaLight:
    """The lighting of one panorama in its own frame (project lat-long convention)."""

    key_direction: np.ndarray     # (3,) unit
    key_energy: np.ndarray        # (3,) RGB radiance x sr above the local background
    key_sharpness: float          # SG sharpness of the key's angular spread
    fill: np.ndarray              # (64, 128, 3) the map with the key removed


def analyse_panorama(pano: np.ndarray) -> PanoramaLight:
    """Split a lat-long HDR map into key light and fill (see the module docstring)."""
    pano = np.maximum(np.nan_to_num(pano[: pano.shape[0] // 2 * 2, : pano.shape[0] // 2 * 4], nan=0.0), 0.0)
    h, w = pano.shape[:2]
    key = dominant_direction_latlong(pano)
    dirs = texel_directions(h, w)
    omega = texel_solid_angles(h, w) * np.ones((1, w))
    cos = dirs @ key
    region = cos > math.cos(math.radians(KEY_RADIUS_DEG))
    ring = (cos <= math.cos(math.radians(KEY_RADIUS_DEG))) & (cos > math.cos(math.radians(2 * KEY_RADIUS_DEG)))
    background = np.median(pano[ring], axis=0) if ring.any() else np.zeros(3)
    excess = np.maximum(pano - background, 0.0) * region[..., None]
    energy = (excess * omega[..., None]).sum((0, 1))
    weight = (excess @ np.array(RGB_LUMINANCE)) * omega
    spread = float((weight * (1.0 - cos)).sum() / max(weight.sum(), 1e-12))
    sharpness = float(np.clip(1.0 / max(spread, 1e-6), 8.0, 2000.0))
    fill = np.where(region[..., None], np.minimum(pano, background), pano)
    fill = resample_area(fill.astype(np.float32), 64, 128)
    return PanoramaLight(key, energy, sharpness, fill)


def camera_pose(heading_deg: float, pitch_deg: float) -> np.ndarray:
    from ...camera import euler_zxy_to_matrix

    c2w = np.eye(4)
    c2w[:3, :3] = euler_zxy_to_matrix(pitch_deg, heading_deg, 0.0)
    return c2w


ASPECTS = (1.5, 1.778, 1.85, 2.0, 2.39)
DISPLAY_ENCODINGS = ("sRGB Encoded Rec.709 (sRGB)", "Gamma 2.2 Encoded Rec.709", "Gamma 2.4 Encoded Rec.709")


@dataclass(frozen=True)
class Example:
    """One synthesised plate (as the network sees it) with its targets in the heading frame."""

    image: np.ndarray         # (NET_H, NET_W, 3) float32: working-space plate / plate_normaliser
    scalars: np.ndarray       # (3,) pitch (rad), horizontal FOV (rad), log aspect
    key_direction: np.ndarray  # (3,) heading frame
    log_key_energy: np.ndarray  # (3,) log(energy / normaliser + FLOOR)
    log_key_sharpness: float
    log_fill: np.ndarray      # (GRID_H, GRID_W, 3) log(fill / normaliser + FLOOR)


def synthesise(pano: np.ndarray, light: PanoramaLight, rng: np.random.Generator, colour=None) -> Example:
    """One training plate from a panorama: random camera, exposure, white balance, response, noise, blur.

    ``colour`` (a ColorPipeline) brings display-referred plates back through OCIO; None skips that path.
    """
    heading = float(rng.uniform(-180.0, 180.0))
    pitch = float(rng.uniform(-25.0, 10.0))
    fov = float(rng.uniform(30.0, 90.0))
    aspect = float(rng.choice(ASPECTS))
    # render at the plate's own aspect, then resample to the network's 16:9 (as inference does)
    width = 2 * NET_W
    height = max(8, int(round(width / aspect)))
    plate = perspective_view(pano, camera_pose(heading, pitch), fov, width, height, supersample=1)
    gain = np.exp(rng.normal(0.0, 0.12, 3)) * 2.0 ** rng.uniform(-3.0, 3.0)
    gain = gain / (gain @ np.array(RGB_LUMINANCE)) * 2.0 ** rng.uniform(-3.0, 3.0)   # exposure + white balance
    plate = plate * gain
    if rng.uniform() < 0.5:
        plate = _display_referred(plate, rng, colour)
    if rng.uniform() < 0.7:   # sensor noise, signal dependent, before resampling
        sigma = rng.uniform(0.002, 0.03)
        plate = np.maximum(plate + rng.normal(0.0, 1.0, plate.shape) * sigma * np.sqrt(np.maximum(plate, 0.0) + 0.01), 0.0)
    image = resample_area(plate.astype(np.float32), NET_H, NET_W)
    if rng.uniform() < 0.3:
        image = _blur(image, rng.uniform(0.5, 1.5))
    m = plate_normaliser(image)
    image = image / m
    # the heading frame of this camera: the panorama is the world; d_world = Ry(heading) d_heading
    to_heading = rotation_y(heading).T
    key_dir = to_heading @ light.key_direction
    # the fill as the heading frame sees it (a world map turned by -heading), box-filtered to the grid
    fill = box_downsample(sample_bilinear(light.fill, texel_directions(64, 128), -heading), GRID_H // 2) * gain / m
    energy = light.key_energy * gain / m
    return Example(image.astype(np.float32), camera_scalars(pitch, fov, aspect), key_dir.astype(np.float32),
                   np.log(energy + FLOOR).astype(np.float32), float(math.log(light.key_sharpness)),
                   np.log(np.maximum(fill, 0.0) + FLOOR).astype(np.float32))


def _display_referred(plate: np.ndarray, rng: np.random.Generator, colour) -> np.ndarray:
    """A camera's display-referred output brought back to the working space by the plate stage's OCIO path:
    mid grey placed at 0.1-0.3, an encoding curve, clipping, 8 bits, JPEG at quality 60-95, decode."""
    from PIL import Image as PILImage

    mid = plate_normaliser(plate)
    plate = plate * (rng.uniform(0.1, 0.3) / max(mid, 1e-6))
    encoding = str(rng.choice(DISPLAY_ENCODINGS))
    if colour is not None:
        encoded = colour.from_working(np.ascontiguousarray(plate, np.float32), encoding)
    else:
        encoded = np.power(np.maximum(plate, 0.0), 1 / 2.2)
    encoded = np.clip(encoded, 0.0, 1.0)
    buf = io.BytesIO()
    PILImage.fromarray((encoded * 255.0 + 0.5).astype(np.uint8)).save(buf, format="JPEG", quality=int(rng.integers(60, 96)))
    decoded = np.asarray(PILImage.open(io.BytesIO(buf.getvalue())).convert("RGB"), np.float32) / 255.0
    # the user declares the plate sRGB (the usual guess for a JPEG), whatever curve the camera used
    if colour is not None:
        return colour.to_working(np.ascontiguousarray(decoded), "sRGB Encoded Rec.709 (sRGB)")
    return np.power(decoded, 2.2)


def _blur(image: np.ndarray, sigma: float) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    return gaussian_filter(image, (sigma, sigma, 0.0), mode="nearest").astype(np.float32)


