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

MIN_SIZE_M, MAX_SIZE_M = 1e-4, 1e5
"""World sizes an asset may have (0.1 mm .. 100 km) and how far from the origin it may reach: beyond them
single-precision ray tracing loses the object or its shadow."""


def load_trimesh(path: Path):
    """Load a mesh file as one ``trimesh.Trimesh`` (scenes such as GLB are flattened with their node transforms)."""
    import trimesh

    if not path.is_file():
        raise MeshError("mesh file not found", where=str(path), fix="check [[asset]] mesh (relative to the shot file)")
    try:
        mesh = trimesh.load(str(path), force="mesh", process=False)
    except Exception as exc:  # trimesh raises many unrelated types for corrupt files
        raise MeshError(f"not a readable {path.suffix.lstrip('.').upper()} mesh ({_parser_says(exc)})", where=str(path),
                        fix="re-export it as .obj, .ply or .glb (triangles)") from exc
    if not isinstance(mesh, trimesh.Trimesh) or len(mesh.faces) == 0:
        raise MeshError("mesh has no triangles", where=str(path), fix="export the geometry as triangles")
    check_geometry(np.asarray(mesh.vertices, np.float64), np.asarray(mesh.faces), str(path))
    return mesh


def _parser_says(exc: Exception) -> str:
    """A parser's exception in words (trimesh's KeyError of a PLY property says only ``'y'``)."""
    if isinstance(exc, KeyError):
        return f"the parser found no field {exc} the file's header promises, or the data ends early"
    if isinstance(exc, (IndexError, ValueError)) and not str(exc):
        return f"{type(exc).__name__}: the data does not match the header"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def check_geometry(vertices: np.ndarray, faces: np.ndarray, where: str) -> None:
    """Finite vertices that every face indexes, and some triangle with area (MeshError otherwise)."""
    if not np.isfinite(vertices).all():
        bad = int((~np.isfinite(vertices)).any(axis=1).sum())
        raise MeshError(f"{bad} vertex position(s) are NaN or infinite", where=where, fix="clean the mesh before export")
    if faces.size and (faces.min() < 0 or faces.max() >= len(vertices)):
        raise MeshError(f"faces index vertices outside 0..{len(vertices) - 1}", where=where, fix="re-export the mesh")
    tri = vertices[faces]
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    if not (area > 0).any():
        raise MeshError(f"all {len(faces)} triangle(s) have zero area (the mesh is a point or a line)", where=where,
                        fix="export the real geometry")


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


@dataclass(frozen=True)
class RefinedMaterial:
    """A part's material as the lighting stage refined it (``[optimize] material``): the gain on its base
    colour (on the texture when it has one), its roughness and metallic. Stored with the solve; every
    final render applies it (:func:`refine_parts`)."""

    part: str
    gain: tuple[float, float, float]
    roughness: float
    metallic: float

    def apply(self, part: MeshPart) -> MeshPart:
        from dataclasses import replace

        gain = np.asarray(self.gain, np.float64)
        texture = part.base_color_texture
        return replace(part, roughness=self.roughness, metallic=self.metallic,
                       base_color=tuple(float(c) for c in np.clip(np.asarray(part.base_color) * gain, 0.0, 1.0))
                       if texture is None else part.base_color,
                       base_color_texture=None if texture is None else
                       np.clip(texture * gain.astype(texture.dtype), 0.0, 1.0).astype(texture.dtype))


def refine_parts(parts, materials) -> list[MeshPart]:
    """``parts`` with the refined ``materials`` (by part name) applied; parts without one unchanged."""
    by_name = {m.part: m for m in materials or ()}
    return [by_name[p.name].apply(p) if p.name in by_name else p for p in parts]


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
    for part in parts:
        check_geometry(part.vertices, part.faces, str(asset.mesh))
    lo = np.min([p.vertices.min(0) for p in parts], axis=0)
    hi = np.max([p.vertices.max(0) for p in parts], axis=0)
    size, reach = float(np.max(hi - lo)), float(np.abs(np.concatenate([lo, hi])).max())
    if not (MIN_SIZE_M <= size <= MAX_SIZE_M) or reach > MAX_SIZE_M:
        raise MeshError(f"the asset is {size:.3g} m across in the world, reaching {reach:.3g} m "
                        f"from the origin; vfxinsert renders objects {MIN_SIZE_M:g}..{MAX_SIZE_M:g} m across within "
                        f"{MAX_SIZE_M:g} m", where=str(asset.mesh),
                        fix="check [[asset]] scale (the mesh's units: 0.01 for centimetres) and position_m")
    return parts
