"""Lat-long (equirectangular) maps: directions <-> texels, rotation about +Y, and perspective views.

Convention (architecture.md): 2:1, +Y up, row 0 is the zenith; the centre column faces +Z and
u = 0.25 faces +X (Mitsuba 3's envmap convention). A texel (x, y) of a W x H map has its centre at
u = (x + 0.5) / W, v = (y + 0.5) / H, and direction d = (sin t sin p, cos t, -sin t cos p) with
p = 2 pi u, t = pi v. ``rotate_y_deg`` turns the map about +Y by the right-hand rule: a direction d of
the map appears at Ry(angle) d in the world (+90 turns +Z to +X).

Mitsuba 3.9.1's envmap stores its data differently: (H, W + 2, 3) with halo columns, real column x at
storage x + 1, u = (x + 0.5) / W and v = y / (H - 1) (row 0 exactly at the zenith; mitsuba-notes
section 3). Environment data for Mitsuba is therefore always evaluated at Mitsuba's own texel
directions (``mitsuba_env_directions``), so the light it renders is the SG function (or the HDRI)
itself, not a half-texel-shifted copy.
"""
from __future__ import annotations

import math

import numpy as np


def rotation_y(angle_deg: float) -> np.ndarray:
    """3x3 right-handed rotation about +Y (column vectors): +90 deg takes +Z to +X."""
    from ..rotation import axis_rotation

    return axis_rotation("y", angle_deg)


def uv_to_direction(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Unit directions (..., 3) for lat-long coordinates u, v in [0, 1]."""
    phi, theta = 2.0 * np.pi * u, np.pi * v
    st = np.sin(theta)
    return np.stack([st * np.sin(phi), np.cos(theta), -st * np.cos(phi)], axis=-1)


def direction_to_uv(d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lat-long (u, v) in [0, 1) x [0, 1] of unit directions (..., 3); the inverse of uv_to_direction."""
    d = d / np.linalg.norm(d, axis=-1, keepdims=True)
    theta = np.arccos(np.clip(d[..., 1], -1.0, 1.0))
    phi = np.arctan2(d[..., 0], -d[..., 2]) % (2.0 * np.pi)
    return phi / (2.0 * np.pi), theta / np.pi


def texel_directions(height: int, width: int) -> np.ndarray:
    """(H, W, 3) directions of texel centres."""
    u = (np.arange(width) + 0.5) / width
    v = (np.arange(height) + 0.5) / height
    uu, vv = np.meshgrid(u, v)
    return uv_to_direction(uu, vv)


def texel_solid_angles(height: int, width: int) -> np.ndarray:
    """(H, 1) solid angle of each texel row (sums to 4 pi over the map)."""
    v0 = np.arange(height) / height
    v1 = (np.arange(height) + 1) / height
    return ((np.cos(np.pi * v0) - np.cos(np.pi * v1)) * (2.0 * np.pi / width))[:, None]


def sample_bilinear(latlong: np.ndarray, d: np.ndarray, rotate_y_deg: float = 0.0) -> np.ndarray:
    """Radiance of a lat-long map (H, W, C) seen along world directions d (..., 3), bilinear, wrapping in u."""
    if rotate_y_deg:
        d = d @ rotation_y(rotate_y_deg)  # world -> map: Ry(angle)^T d, written for row vectors
    h, w = latlong.shape[:2]
    u, v = direction_to_uv(d)
    x = u * w - 0.5
    y = np.clip(v * h - 0.5, 0.0, h - 1.0)
    x0 = np.floor(x).astype(np.int64)
    y0 = np.floor(y).astype(np.int64)
    fx = (x - x0)[..., None]
    fy = (y - y0)[..., None]
    x0 %= w
    x1 = (x0 + 1) % w
    y1 = np.minimum(y0 + 1, h - 1)
    top = latlong[y0, x0] * (1 - fx) + latlong[y0, x1] * fx
    bottom = latlong[y1, x0] * (1 - fx) + latlong[y1, x1] * fx
    return (top * (1 - fy) + bottom * fy).astype(latlong.dtype)


def camera_ray_directions(cam_to_world: np.ndarray, fov_x_deg: float, width: int, height: int,
                          pixel_aspect: float = 1.0, supersample: int = 1) -> np.ndarray:
    """World directions (H*s, W*s, 3) through pixel sub-positions of a pinhole camera (OpenGL pose)."""
    s = supersample
    fx = (width / 2.0) / math.tan(math.radians(fov_x_deg) / 2.0)
    fy = fx * pixel_aspect  # a wide pixel covers more of the horizontal extent
    xs = (np.arange(width * s) + 0.5) / s
    ys = (np.arange(height * s) + 0.5) / s
    px, py = np.meshgrid(xs, ys)
    local = np.stack([(px - width / 2.0) / fx, -(py - height / 2.0) / fy, -np.ones_like(px)], axis=-1)
    world = local @ np.asarray(cam_to_world, dtype=np.float64)[:3, :3].T
    return world / np.linalg.norm(world, axis=-1, keepdims=True)


def perspective_view(latlong: np.ndarray, cam_to_world: np.ndarray, fov_x_deg: float, width: int, height: int,
                     rotate_y_deg: float = 0.0, supersample: int = 2) -> np.ndarray:
    """What a pinhole camera at the panorama's centre sees: (H, W, C), box-filtered over s x s samples."""
    dirs = camera_ray_directions(cam_to_world, fov_x_deg, width, height, supersample=supersample)
    img = sample_bilinear(latlong.astype(np.float32), dirs, rotate_y_deg)
    s = supersample
    return img.reshape(height, s, width, s, -1).mean(axis=(1, 3)).astype(np.float32)


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

