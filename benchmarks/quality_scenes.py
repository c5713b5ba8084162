"""The scenes of the quality benchmarks (samplers, denoising, Cycles): one definition, so every table
measures the same thing. An asset on the proxy ground under a real HDRI, seen by a camera 1 m up, 2 m away.

``teapot``: the Utah teapot (6.3k triangles), 11 % of the frame; ``bunny``: the Stanford bunny
(69k triangles), ``bunny1m``: the same bunny midpoint-subdivided twice (1.1M triangles; subdivision
keeps the shape, it only multiplies the triangles the ray tracer must handle), 21 % of the frame.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("VFXINSERT_SHARED_DATA", ROOT.parent / "shared" / "data"))
HDRI = SHARED / "hdri" / "rooitou_park_1k.hdr"
ENV_HEIGHT = 256
MATERIAL = dict(base_color=(0.75, 0.22, 0.12), roughness=0.35, metallic=0.0)
ASSETS = {  # mesh file, position, scale, subdivisions
    "teapot": ("teapot.obj", (0.0, 0.0, -2.0), 0.2, 0),
    "bunny": ("stanford-bunny.obj", (0.0, 0.0, -2.0), 7.5, 0),
    "bunny1m": ("stanford-bunny.obj", (0.0, 0.0, -2.0), 7.5, 2),
}


def camera(t: float = 0.0) -> np.ndarray:
    """OpenGL cam_to_world 1 m up looking at the asset 2 m away; ``t`` in 0..1 pans it 0.6 m sideways while it
    keeps looking at the asset (the moving-camera shot of the temporal test)."""
    eye = np.array([-0.3 + 0.6 * t, 1.0, 0.0])
    target = np.array([0.0, 0.3, -2.0])
    back = (eye - target) / np.linalg.norm(eye - target)
    right = np.cross([0.0, 1.0, 0.0], back)
    right /= np.linalg.norm(right)
    m = np.eye(4)
    m[:3, 0], m[:3, 1], m[:3, 2], m[:3, 3] = right, np.cross(back, right), back, eye
    return m


FOV_X_DEG = 2 * math.degrees(math.atan(18.0 / 24.0))   # a 24 mm lens on a 36 mm filmback


def parts(asset: str):
    import trimesh

    from vfxinsert.assets import MeshPart, object_to_world

    name, position, scale, subdivisions = ASSETS[asset]
    mesh = trimesh.load(str(SHARED / "assets" / name), force="mesh", process=False)
    v, f = np.asarray(mesh.vertices, np.float64), np.asarray(mesh.faces, np.int64)
    if asset.startswith("bunny"):
        v = v - [0.0, v[:, 1].min(), 0.0]      # base at y = 0
    for _ in range(subdivisions):
        v, f = trimesh.remesh.subdivide(v, f)
    m = object_to_world(position, (0.0, 0.0, 0.0), scale)
    return [MeshPart(asset, v @ m[:3, :3].T + m[:3, 3], f, None, None, MATERIAL["base_color"],
                     MATERIAL["roughness"], MATERIAL["metallic"])]


def env_data():
    from vfxinsert.lighting.panorama import hdri_to_mitsuba_env
    from vfxinsert.plates import read_image

    return hdri_to_mitsuba_env(read_image(HDRI).rgb, ENV_HEIGHT)


def build(asset: str, width: int, height: int, max_depth: int = 8, sampler: str | None = None, t: float = 0.0,
          mesh_parts=None):
    """An ``InsertScene`` of the benchmark (``sampler`` None: the renderer's default)."""
    from vfxinsert.scene import SAMPLER, InsertScene, View

    view = View(camera(t), FOV_X_DEG, width, height)
    scene = InsertScene(mesh_parts or parts(asset), ground_height_m=0.0, ground_albedo=(0.3, 0.3, 0.3), view=view,
                        env_height=ENV_HEIGHT, max_depth=max_depth, sampler=sampler or SAMPLER)
    scene.set_env(env_data())
    return scene


def errors(layers: np.ndarray, reference: np.ndarray) -> dict:
    """Object and shadow error of ``layers`` against a converged ``reference`` render (same scene).

    object: relative RMSE of the object colour over pixels the reference sees fully covered;
    shadow: RMSE of the shadow ratio over the ground pixels where the reference's shadow is below 0.98
    (the shadow region); edge: relative RMSE of premultiplied colour over partly covered pixels.
    """
    from vfxinsert.composite import composite

    rgb, alpha, shadow, _ = composite(layers, np.zeros(layers.shape[:2] + (3,), np.float32))
    rgb_r, alpha_r, shadow_r, _ = composite(reference, np.zeros(layers.shape[:2] + (3,), np.float32))
    return errors_of(rgb, alpha, shadow, rgb_r, alpha_r, shadow_r, reference[..., 10])


def errors_of(rgb, alpha, shadow, rgb_r, alpha_r, shadow_r, plane_r) -> dict:
    full = alpha_r[..., 0] > 0.999
    edge = (alpha_r[..., 0] > 0.02) & (alpha_r[..., 0] < 0.98)
    region = (plane_r > 0.999) & (alpha_r[..., 0] < 1e-6) & (shadow_r.mean(-1) < 0.98)
    rel = lambda a, b, m: float(np.sqrt(np.mean((a[m] - b[m]) ** 2)) / np.mean(b[m]))  # noqa: E731
    return {"object": rel(rgb, rgb_r, full), "edge": rel(rgb, rgb_r, edge),
            "shadow": float(np.sqrt(np.mean((shadow[region] - shadow_r[region]) ** 2)))}


def reference(scene, key: str, spp: int, seed: int = 10_000) -> np.ndarray:
    """A converged render of ``scene``, cached under $VFXINSERT_BENCH_CACHE (default /tmp) by ``key``."""
    cache = Path(os.environ.get("VFXINSERT_BENCH_CACHE", "/tmp")) / f"vfxinsert-ref-{key}-{spp}.npy"
    if cache.is_file():
        return np.load(cache)
    layers = scene.render(seed=seed, spp=spp)
    np.save(cache, layers)
    return layers
