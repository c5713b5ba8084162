"""Asset meshes (OBJ / PLY / glTF-binary): loading and the object-to-world transform of the shot file."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import MeshError


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
    """Load a mesh and summarise it (MeshError when it cannot be used)."""
    mesh = load_trimesh(path)
    lo, hi = mesh.bounds
    return MeshInfo(path, int(len(mesh.faces)), int(len(mesh.vertices)), tuple(map(float, lo)), tuple(map(float, hi)))


def object_to_world(position_m, rotation_deg, scale: float) -> np.ndarray:
    """world = T * R * S with R = Rz * Ry * Rx (XYZ Euler, X applied first), as the shot file states."""
    from .camera import axis_rotation

    rx, ry, rz = rotation_deg
    m = np.eye(4)
    m[:3, :3] = axis_rotation("z", rz) @ axis_rotation("y", ry) @ axis_rotation("x", rx) * scale
    m[:3, 3] = position_m
    return m
