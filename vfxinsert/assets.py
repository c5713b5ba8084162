"""Asset meshes (OBJ / PLY / glTF-binary): loading and the object-to-world transform of the shot file."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .color import srgb_decode
from .errors import MeshError

if TYPE_CHECKING:
    from .config import AssetConfig


@dataclass(frozen=True)
class MeshInfo:
    """What `check` reports about a mesh, in the mesh's own units and axes."""

    path: Path
    triangles: int
    vertices: int
    bounds_min: tuple[float, float, float]
    bounds_max: tuple[float, float, float]


def load_trimesh(path: Path):
    """Load a mesh file as one ``trimesh.Trimesh`` (scenes such as GLB are flattened with their node transforms)."""
    import trimesh

    if not path.is_file():
        raise MeshError("mesh file not found", where=str(path), fix="check [[asset]] mesh (relative to the shot file)")
    try:
        mesh = trimesh.load(str(path), force="mesh", process=False)
    except Exception as exc:  # trimesh raises many unrelated types for corrupt files
        raise MeshError(f"cannot load mesh: {exc}", where=str(path),
                        fix="re-export it as .obj, .ply or .glb (triangles)") from exc
    if not isinstance(mesh, trimesh.Trimesh) or len(mesh.faces) == 0:
        raise MeshError("mesh has no triangles", where=str(path), fix="export the geometry as triangles")
    if not np.isfinite(mesh.vertices).all():
        raise MeshError("mesh has non-finite vertex positions", where=str(path), fix="clean the mesh before export")
    return mesh


def inspect_mesh(path: Path) -> MeshInfo:
    """Load a mesh and summarise it (MeshError when it cannot be used); a USD's in metres, +Y up."""
    from .usd import USD_SUFFIXES, read_usd_meshes

    if path.suffix.lower() in USD_SUFFIXES:
        meshes = read_usd_meshes(path)
        points = np.concatenate([m.vertices for m in meshes])
        return MeshInfo(path, sum(len(m.faces) for m in meshes), len(points), tuple(map(float, points.min(0))),
                        tuple(map(float, points.max(0))))
    mesh = load_trimesh(path)
    lo, hi = mesh.bounds
    return MeshInfo(path, int(len(mesh.faces)), int(len(mesh.vertices)), tuple(map(float, lo)), tuple(map(float, hi)))


def object_to_world(position_m, rotation_deg, scale: float) -> np.ndarray:
    """world = T * R * S with R = Rz * Ry * Rx (XYZ Euler, X applied first), as the shot file states."""
    from .rotation import axis_rotation

    rx, ry, rz = rotation_deg
    m = np.eye(4)
    m[:3, :3] = axis_rotation("z", rz) @ axis_rotation("y", ry) @ axis_rotation("x", rx) * scale
    m[:3, 3] = position_m
    return m


@dataclass(frozen=True)
class MeshPart:
    """One triangle mesh in world space with a principled material (a GLB may give several)."""

    name: str
    vertices: np.ndarray                  # (N, 3) float, world space
    faces: np.ndarray                     # (M, 3) int
    normals: np.ndarray | None            # (N, 3) world space, or None: Mitsuba recomputes smooth normals
    uvs: np.ndarray | None                # (N, 2)
    base_color: tuple[float, float, float]
    roughness: float
    metallic: float
    base_color_texture: np.ndarray | None = field(default=None, repr=False)  # (H, W, 3) linear, factor applied
    bsdf: dict | None = None  # a Mitsuba BSDF dict that replaces the principled material (tests, special assets)


def load_asset_parts(asset: AssetConfig, index: int) -> list[MeshPart]:
    """The asset's meshes in world space (world = T * R * S), with the shot's, the GLB's or the USD's material."""
    import trimesh

    from .usd import USD_SUFFIXES, read_usd_meshes

    m = object_to_world(asset.position_m, asset.rotation_deg, asset.scale)
    normal_m = np.linalg.inv(m[:3, :3]).T
    mat = asset.shot_material
    if asset.mesh.suffix.lower() in USD_SUFFIXES:   # metres, +Y up already (usd.py); then the shot's T * R * S
        parts = []
        for k, u in enumerate(read_usd_meshes(asset.mesh)):
            color, rough, metal = u.material if u.material and asset.material is None else \
                (mat.base_color, mat.roughness, mat.metallic)
            parts.append(MeshPart(f"asset{index}_{k}", u.vertices @ m[:3, :3].T + m[:3, 3], u.faces, None, None,
                                  tuple(color), rough, metal))
        return parts
    if asset.mesh.suffix.lower() == ".glb":
        try:
            loaded = trimesh.load(str(asset.mesh), process=False)
        except Exception as exc:  # trimesh raises many unrelated types for corrupt files
            raise MeshError(f"cannot load glTF: {exc}", where=str(asset.mesh), fix="re-export it as .glb") from exc
        geoms = loaded.dump(concatenate=False) if isinstance(loaded, trimesh.Scene) else [loaded]
    else:
        geoms = [load_trimesh(asset.mesh)]
    parts = []
    for k, g in enumerate(geoms):
        if len(g.faces) == 0:
            continue
        v = g.vertices @ m[:3, :3].T + m[:3, 3]
        normals = uvs = texture = None
        color, rough, metal = mat.base_color, mat.roughness, mat.metallic
        if asset.mesh.suffix.lower() == ".glb":  # glTF carries authored normals; OBJ/PLY: Mitsuba smooths
            n = np.asarray(g.vertex_normals) @ normal_m.T
            normals = n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
        material = getattr(g.visual, "material", None)
        if isinstance(material, trimesh.visual.material.PBRMaterial):
            # glTF materials win over the shot's defaults (the asset was authored with them).
            factor = np.ones(3) if material.baseColorFactor is None else np.asarray(material.baseColorFactor[:3]) / 255.0
            color = tuple(float(c) for c in factor)
            rough = 1.0 if material.roughnessFactor is None else float(material.roughnessFactor)
            metal = 1.0 if material.metallicFactor is None else float(material.metallicFactor)
            if material.baseColorTexture is not None and getattr(g.visual, "uv", None) is not None:
                tex = np.asarray(material.baseColorTexture.convert("RGB"), np.float32) / 255.0
                texture = (srgb_decode(tex) * factor).astype(np.float32)
                uvs = np.asarray(g.visual.uv, np.float32)
        parts.append(MeshPart(f"asset{index}_{k}", v, np.asarray(g.faces, np.int64), normals, uvs,
                              tuple(float(c) for c in color), rough, metal, texture))
    if not parts:
        raise MeshError("no triangles in the asset", where=str(asset.mesh), fix="export the geometry as triangles")
    return parts
