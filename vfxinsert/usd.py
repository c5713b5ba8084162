"""USD cameras and assets (``usd-core``): what matchmove and layout departments hand over.

Conventions applied when reading a stage (the contract is world +Y up, metres; camera.py):

- ``metersPerUnit`` scales positions to metres (a centimetre stage has 0.01).
- ``upAxis = "Z"`` is turned into +Y by a rotation of -90 degrees about X: (x, y, z) -> (x, z, -y).
- Transforms are USD's row-vector matrices (``p_world = p_local @ M``), composed with every parent
  xform (``ComputeLocalToWorldTransform``); we use column vectors, so ``cam_to_world = M.T``.
- UsdGeomCamera: lens and apertures in tenths of a scene unit (millimetres in a centimetre stage),
  so ``mm = value * 100 * metersPerUnit``; the camera looks down its local -Z with +Y up (OpenGL,
  like ours); a parent's scale is taken out of its rotation (a camera transform is rigid). The
  stage is sampled at time code = plate frame number.
- UsdGeomMesh: every mesh under the default prim (the whole stage when it has none), visible and of
  purpose default or render; polygons are triangulated as fans; ``orientation = "leftHanded"`` flips
  the winding. A bound UsdPreviewSurface gives ``diffuseColor``, ``roughness`` and ``metallic``
  (constant values; a texture connection falls back to the input's own value).

``pxr`` is imported inside the functions that use it.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import ConfigError, MeshError

#: File names a USD stage may have (layers: text, crate, either).
USD_SUFFIXES = (".usd", ".usda", ".usdc")
#: Z-up -> Y-up: rotation by -90 degrees about +X, (x, y, z) -> (x, z, -y).
Z_UP_TO_Y_UP = np.array([[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.0, -1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]])


def open_stage(path: Path, error=ConfigError):
    """The stage at ``path`` (``error`` class raised when it cannot be opened)."""
    from pxr import Tf, Usd

    if not Path(path).is_file():
        raise error("USD file not found", where=str(path), fix="check the path (relative to the shot file)")
    try:
        stage = Usd.Stage.Open(str(path))
    except Tf.ErrorException as exc:
        raise error(f"USD cannot open the stage: {exc}", where=str(path), fix="re-export it as .usda/.usdc") from exc
    if stage is None:
        raise error("USD cannot open the stage", where=str(path), fix="re-export it as .usda/.usdc")
    return stage


def stage_to_world(stage) -> tuple[float, np.ndarray]:
    """(metersPerUnit, the 4x4 rotation taking the stage's up axis to +Y)."""
    from pxr import UsdGeom

    mpu = float(UsdGeom.GetStageMetersPerUnit(stage))
    return mpu, (Z_UP_TO_Y_UP if UsdGeom.GetStageUpAxis(stage) == UsdGeom.Tokens.z else np.eye(4))


@dataclass(frozen=True)
class UsdCamera:
    """A UsdGeomCamera sampled at plate frames, in the contract's units and axes."""

    prim: str
    frames: tuple[int, ...]
    cam_to_world: np.ndarray
    """(N, 4, 4) rigid, metres, +Y up, OpenGL camera convention."""
    focal_length_mm: np.ndarray
    """(N,) focal length per frame."""
    filmback_mm: tuple[float, float]
    """(horizontal, vertical) aperture at the first frame."""
    meters_per_unit: float
    up_axis: str


def read_usd_camera(path: Path, prim_path: str, frames) -> UsdCamera:
    """The camera ``prim_path`` (or the stage's first UsdGeomCamera) at time codes = ``frames``."""
    from pxr import Usd, UsdGeom

    stage = open_stage(path)
    where = str(path)
    if prim_path:
        prim = stage.GetPrimAtPath(prim_path)
        if not prim.IsValid() or not prim.IsA(UsdGeom.Camera):
            raise ConfigError(f"{prim_path} is not a UsdGeomCamera of the stage", where=where,
                              fix="set [camera] usd_prim to a camera's path, or leave it empty for the first one")
    else:
        prim = next((p for p in stage.Traverse() if p.IsA(UsdGeom.Camera)), None)
        if prim is None:
            raise ConfigError("the stage has no UsdGeomCamera", where=where, fix="export the matchmove camera into it")
    camera = UsdGeom.Camera(prim)
    mpu, up = stage_to_world(stage)
    to_mm = 100.0 * mpu   # tenths of a scene unit -> mm
    poses, focals, filmback = [], [], None
    for frame in frames:
        t = Usd.TimeCode(float(frame))
        if camera.GetProjectionAttr().Get(t) != UsdGeom.Tokens.perspective:
            raise ConfigError(f"camera {prim.GetPath()} is not perspective at frame {frame}", where=where,
                              fix="export a perspective camera")
        m = np.array(camera.ComputeLocalToWorldTransform(t), dtype=np.float64).T   # column vectors
        scale = np.linalg.norm(m[:3, :3], axis=0)
        if np.any(scale <= 0):
            raise ConfigError(f"camera {prim.GetPath()} has a degenerate transform at frame {frame}", where=where,
                              fix="remove the zero scale from its xforms")
        c2w = np.eye(4)
        c2w[:3, :3] = m[:3, :3] / scale
        c2w[:3, 3] = m[:3, 3] * mpu
        poses.append(up @ c2w)
        focals.append(camera.GetFocalLengthAttr().Get(t) * to_mm)
        if filmback is None:
            filmback = (camera.GetHorizontalApertureAttr().Get(t) * to_mm, camera.GetVerticalApertureAttr().Get(t) * to_mm)
    for frame, c2w in zip(frames, poses):   # what is left after taking the scale out must be a rotation
        rot = c2w[:3, :3]
        if np.abs(rot.T @ rot - np.eye(3)).max() > 1e-4 or np.linalg.det(rot) < 0:
            raise ConfigError(f"camera {prim.GetPath()} has shear or a mirror in its transform at frame {frame}",
                              where=where, fix="give the camera and its parents rotation, translation and "
                                               "positive scale only")
    return UsdCamera(str(prim.GetPath()), tuple(int(f) for f in frames), np.stack(poses), np.array(focals, np.float64),
                     filmback, mpu, "Z" if up is Z_UP_TO_Y_UP else "Y")


@dataclass(frozen=True)
class UsdMesh:
    """One UsdGeomMesh in stage world space converted to metres, +Y up, triangulated."""

    name: str
    vertices: np.ndarray
    faces: np.ndarray
    material: tuple[tuple[float, float, float], float, float] | None
    """(base colour, roughness, metallic) from a bound UsdPreviewSurface, or None."""


def read_usd_meshes(path: Path) -> list[UsdMesh]:
    """Every visible render mesh under the stage's default prim (see the module docstring)."""
    from pxr import Usd, UsdGeom

    stage = open_stage(path, MeshError)
    mpu, up = stage_to_world(stage)
    root = stage.GetDefaultPrim() if stage.GetDefaultPrim() else stage.GetPseudoRoot()
    t = Usd.TimeCode.EarliestTime()
    meshes = []
    for prim in Usd.PrimRange(root):
        if not prim.IsA(UsdGeom.Mesh):
            continue
        mesh = UsdGeom.Mesh(prim)
        if mesh.ComputeVisibility(t) == UsdGeom.Tokens.invisible or \
                mesh.ComputePurpose() not in (UsdGeom.Tokens.default_, UsdGeom.Tokens.render):
            continue
        points = np.asarray(mesh.GetPointsAttr().Get(t), dtype=np.float64).reshape(-1, 3)
        counts = np.asarray(mesh.GetFaceVertexCountsAttr().Get(t) or [], dtype=np.int64)
        indices = np.asarray(mesh.GetFaceVertexIndicesAttr().Get(t) or [], dtype=np.int64)
        where = f"{path} {prim.GetPath()}"
        if counts.sum() != indices.size or (indices.size and (indices.min() < 0 or indices.max() >= len(points))):
            raise MeshError("faceVertexCounts and faceVertexIndices do not describe the points", where=where,
                            fix="re-export the mesh")
        if not np.isfinite(points).all():
            raise MeshError("mesh has non-finite points", where=where, fix="clean the mesh before export")
        faces = _fan_triangles(counts, indices)
        if mesh.GetOrientationAttr().Get(t) == UsdGeom.Tokens.leftHanded:
            faces = faces[:, ::-1]
        if not len(faces):
            continue
        m = np.array(mesh.ComputeLocalToWorldTransform(t), dtype=np.float64).T
        world = (points @ m[:3, :3].T + m[:3, 3]) * mpu
        meshes.append(UsdMesh(str(prim.GetPath()), world @ up[:3, :3].T, faces, _preview_surface(prim)))
    if not meshes:
        raise MeshError("no UsdGeomMesh with triangles under the default prim", where=str(path),
                        fix="export the geometry as meshes under the stage's default prim")
    return meshes


def _fan_triangles(counts: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """Polygons (``counts`` vertices each, consecutive in ``indices``) as triangle fans; faces under 3 dropped."""
    tris = []
    start = 0
    for n in counts.tolist():
        if n >= 3:
            poly = indices[start:start + n]
            tris.append(np.stack([np.full(n - 2, poly[0]), poly[1:-1], poly[2:]], axis=1))
        start += n
    return np.concatenate(tris) if tris else np.zeros((0, 3), np.int64)


def _preview_surface(prim) -> tuple[tuple[float, float, float], float, float] | None:
    from pxr import UsdShade

    material, _ = UsdShade.MaterialBindingAPI(prim).ComputeBoundMaterial()
    if not material:
        return None
    shader, _, _ = material.ComputeSurfaceSource()
    if not shader or shader.GetIdAttr().Get() != "UsdPreviewSurface":
        return None

    def value(name: str, default):
        attr = shader.GetInput(name)
        got = attr.Get() if attr else None
        return default if got is None else got

    colour = tuple(float(np.clip(c, 0.0, 1.0)) for c in value("diffuseColor", (0.18, 0.18, 0.18)))
    return colour, float(np.clip(value("roughness", 0.5), 0, 1)), float(np.clip(value("metallic", 0.0), 0, 1))
