"""Camera model: intrinsics, `cam_to_world` poses, Nuke `.chan` tracks and OpenEXR camera matrices.

Conventions (design/architecture.md, "Conventions"):

- World: right-handed, +Y up, metres.
- ``cam_to_world``: 4x4 float64, column vectors (``p_world = cam_to_world @ [x, y, z, 1]``), in the
  OpenGL / Nuke / USD convention: the camera looks down its local -Z, +Y is up and +X is right.
  It is a rigid transform (rotation + translation): Mitsuba refuses scale in a camera transform.
- Intrinsics are Nuke's: focal length and filmback (haperture, vaperture) in mm. The horizontal
  filmback and the plate's pixel aspect fix the field of view; the vertical extent of the image
  follows from the image size (``H / (W * pixel_aspect)`` of the horizontal extent). The principal
  point is the image centre.
- Pixels: x right, y down, pixel ``i`` spans ``[i, i + 1)`` so its centre is at ``i + 0.5``
  (Mitsuba's film convention).
- Nuke ``.chan``: ``frame tx ty tz rx ry rz [vfov]``, degrees, rotation order ZXY (Nuke's default):
  rotate about Z first, then X, then Y, i.e. ``R = Ry @ Rx @ Rz`` on column vectors.

Pure numpy; nothing here imports Mitsuba or torch.
"""
from __future__ import annotations

import bisect
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import ConfigError, OutputError
from .fsutil import atomic_write_text
from .rotation import axis_rotation

#: Tolerance on the rotation part of a ``cam_to_world`` (column norms, orthogonality, determinant).
RIGID_TOLERANCE = 1e-4

#: Depth range (metres) that maps to NDC z in [0, 1] in ``world_to_ndc_exr``. OpenEXR only defines
#: NDC x and y; a proper depth row keeps the matrix invertible for readers that invert it.
EXR_NDC_NEAR_M = 0.1
EXR_NDC_FAR_M = 10000.0

_AXES = ("X", "Y", "Z")


# --------------------------------------------------------------------------------------------------
# Intrinsics


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics in Nuke's terms, for an image of ``width_px`` x ``height_px`` pixels."""

    focal_length_mm: float
    """Focal length (Nuke Camera ``focal``)."""
    filmback_mm: tuple[float, float]
    """(horizontal, vertical) aperture (Nuke ``haperture``, ``vaperture``). Only the horizontal one
    enters the projection (as in Nuke); the vertical one is carried for metadata and handoff."""
    width_px: int
    """Image width in pixels (the plate's display window)."""
    height_px: int
    """Image height in pixels."""
    pixel_aspect: float = 1.0
    """Pixel width / pixel height (2.0 for 2:1 anamorphic plates stored unsqueezed-in-height)."""

    def __post_init__(self) -> None:
        def bad(what: str, fix: str) -> ConfigError:
            return ConfigError(what, where="camera intrinsics", fix=fix)

        if not _positive_finite(self.focal_length_mm):
            raise bad(f"focal_length_mm must be a positive number, got {self.focal_length_mm!r}",
                      "give the lens focal length in mm, e.g. 35.0")
        fb = tuple(self.filmback_mm)
        if len(fb) != 2 or not all(_positive_finite(v) for v in fb):
            raise bad(f"filmback_mm must be two positive numbers (horizontal, vertical), got "
                      f"{self.filmback_mm!r}", "give the sensor size in mm, e.g. [36.0, 24.0]")
        for name in ("width_px", "height_px"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise bad(f"{name} must be a positive integer, got {value!r}",
                          "use the plate's pixel size")
        if not _positive_finite(self.pixel_aspect):
            raise bad(f"pixel_aspect must be a positive number, got {self.pixel_aspect!r}",
                      "use 1.0 for square pixels")
        # Normalise types so equal intrinsics compare equal and serialise cleanly.
        object.__setattr__(self, "focal_length_mm", float(self.focal_length_mm))
        object.__setattr__(self, "filmback_mm", (float(fb[0]), float(fb[1])))
        object.__setattr__(self, "width_px", int(self.width_px))
        object.__setattr__(self, "height_px", int(self.height_px))
        object.__setattr__(self, "pixel_aspect", float(self.pixel_aspect))

    @property
    def tan_half_fov_x(self) -> float:
        """tan of half the horizontal field of view: ``haperture / (2 focal)``."""
        return self.filmback_mm[0] / (2.0 * self.focal_length_mm)

    @property
    def tan_half_fov_y(self) -> float:
        """tan of half the vertical field of view: the horizontal one times ``H / (W * pixel_aspect)``."""
        return self.tan_half_fov_x * self.height_px / (self.width_px * self.pixel_aspect)

    @property
    def fov_x_deg(self) -> float:
        """Horizontal field of view in degrees: ``2 atan(haperture / (2 focal))``."""
        return math.degrees(2.0 * math.atan(self.tan_half_fov_x))

    @property
    def fov_y_deg(self) -> float:
        """Vertical field of view in degrees, from the horizontal one and the image's display aspect."""
        return math.degrees(2.0 * math.atan(self.tan_half_fov_y))

    @property
    def focal_px(self) -> tuple[float, float]:
        """(fx, fy): pixels per unit of tan(angle) along x and y; ``fy = fx * pixel_aspect``."""
        fx = self.width_px / (2.0 * self.tan_half_fov_x)
        return fx, fx * self.pixel_aspect

    @classmethod
    def from_vfov(cls, vfov_deg: float, filmback_mm: tuple[float, float], width_px: int,
                  height_px: int, pixel_aspect: float = 1.0) -> Intrinsics:
        """Intrinsics whose vertical FOV is ``vfov_deg`` (a `.chan` 8th column); the focal length follows.

        The vertical FOV is taken as the FOV across the image height, so the horizontal one is
        ``2 atan(tan(vfov / 2) * W * pixel_aspect / H)`` and ``focal = haperture / (2 tan(hfov / 2))``.
        This equals Nuke's own `.chan` import (``focal = vaperture / (2 tan(vfov / 2))``) whenever
        the filmback has the plate's display aspect.
        """
        if not _positive_finite(vfov_deg) or not vfov_deg < 180.0:
            raise ConfigError(f"vertical field of view must be in (0, 180) degrees, got {vfov_deg!r}",
                              where="camera intrinsics", fix="check the 8th column of the .chan file")
        # Validate sizes through the constructor first (with a placeholder focal length).
        probe = cls(1.0, filmback_mm, width_px, height_px, pixel_aspect)
        tan_half_x = math.tan(math.radians(vfov_deg) / 2.0) * probe.width_px * probe.pixel_aspect \
            / probe.height_px
        return cls(probe.filmback_mm[0] / (2.0 * tan_half_x), probe.filmback_mm, probe.width_px,
                   probe.height_px, probe.pixel_aspect)


def _positive_finite(value: object) -> bool:
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return math.isfinite(v) and v > 0.0 and not isinstance(value, bool)


# --------------------------------------------------------------------------------------------------
# Poses


def validate_cam_to_world(m: object, where: str) -> np.ndarray:
    """Return ``m`` as a float64 4x4 ``cam_to_world`` after checking it is a rigid transform.

    Checks: shape 4x4, finite, last row ``[0, 0, 0, 1]``, rotation columns of unit length (no scale),
    mutually perpendicular (no shear) and determinant +1 (no reflection), each within
    ``RIGID_TOLERANCE``. ``where`` names the source (a shot-file key, a .chan line) in the error.
    """
    fix = ("give a rotation + translation only (orthonormalise the solver's output, e.g. with an "
           "SVD, and scale the scene instead of the camera)")
    try:
        arr = np.array(m, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"cam_to_world is not a numeric 4x4 matrix ({exc})", where=where,
                          fix="give 4 rows of 4 numbers") from exc
    if arr.shape != (4, 4):
        raise ConfigError(f"cam_to_world must be 4x4, got shape {arr.shape}", where=where,
                          fix="give 4 rows of 4 numbers, row-major, last row [0, 0, 0, 1]")
    if not np.all(np.isfinite(arr)):
        raise ConfigError("cam_to_world contains NaN or infinite values", where=where,
                          fix="check the camera export")
    if not np.allclose(arr[3], [0.0, 0.0, 0.0, 1.0], rtol=0.0, atol=1e-9):
        raise ConfigError(f"cam_to_world's last row must be [0, 0, 0, 1], got {arr[3].tolist()}",
                          where=where, fix="give a row-major matrix with the translation in the last "
                          "column (transpose it if it came from a row-vector convention)")
    rot = arr[:3, :3]
    norms = np.linalg.norm(rot, axis=0)
    for axis, norm in zip(_AXES, norms):
        if abs(norm - 1.0) > RIGID_TOLERANCE:
            raise ConfigError(f"cam_to_world has scale {norm:.6g} on its {axis} axis", where=where,
                              fix=fix)
    gram = rot.T @ rot
    if np.max(np.abs(gram - np.eye(3))) > RIGID_TOLERANCE:
        raise ConfigError("cam_to_world has shear (its rotation axes are not perpendicular)",
                          where=where, fix=fix)
    det = float(np.linalg.det(rot))
    if det < 0.0:
        raise ConfigError(f"cam_to_world is a reflection (det {det:.3g})", where=where,
                          fix="flip the sign of one axis back (e.g. a Z-forward camera needs its Z "
                          "column negated to look down -Z) so the rotation has det +1")
    return arr


def euler_zxy_to_matrix(rx_deg: float, ry_deg: float, rz_deg: float) -> np.ndarray:
    """3x3 rotation for Nuke's ZXY order: ``Ry @ Rx @ Rz`` (about Z first), right-hand rule, degrees."""
    return axis_rotation("y", ry_deg) @ axis_rotation("x", rx_deg) @ axis_rotation("z", rz_deg)


def matrix_to_euler_zxy(rot: np.ndarray) -> tuple[float, float, float]:
    """(rx, ry, rz) in degrees with ``euler_zxy_to_matrix(rx, ry, rz) == rot``; rx in [-90, 90].

    ``Ry Rx Rz`` has ``R[1,2] = -sin(rx)``, ``R[1,0] = cos(rx) sin(rz)``, ``R[1,1] = cos(rx) cos(rz)``,
    ``R[0,2] = sin(ry) cos(rx)``, ``R[2,2] = cos(ry) cos(rx)``. At gimbal lock (rx = +-90) only
    ry - +-rz is defined; rz is set to 0 then.
    """
    r = np.asarray(rot, dtype=np.float64)
    cos_x = math.hypot(r[1, 0], r[1, 1])
    x = math.atan2(-r[1, 2], cos_x)
    if cos_x > 1e-9:
        z = math.atan2(r[1, 0], r[1, 1])
        y = math.atan2(r[0, 2], r[2, 2])
    else:  # rx = +-90: R[0,0] = cos(ry - +-rz) ... with rz = 0: R[0,0] = cy, R[0,1] = sy * sx
        z = 0.0
        sx = -r[1, 2]
        y = math.atan2(r[0, 1] * sx, r[0, 0])
    return math.degrees(x), math.degrees(y), math.degrees(z)


# --------------------------------------------------------------------------------------------------
# Nuke .chan tracks


@dataclass(frozen=True, eq=False)
class ChanTrack:
    """A per-frame camera track (from a Nuke `.chan` file). Arrays are read-only."""

    frames: tuple[int, ...]
    """Plate frame numbers, strictly increasing."""
    cam_to_world: np.ndarray
    """(N, 4, 4) float64 rigid ``cam_to_world`` per frame."""
    vfov_deg: np.ndarray | None = None
    """(N,) vertical field of view per frame in degrees, or None when the file has 7 columns."""
    source: str = "<camera track>"
    """Where the track came from (a path), used in error messages."""
    focal_length_mm: np.ndarray | None = None
    """(N,) focal length per frame when the track carries its lens (a USD camera), else None."""
    filmback_mm: tuple[float, float] | None = None
    """The track's own filmback (a USD camera's apertures), else None: the shot file's."""

    def __post_init__(self) -> None:
        frames = tuple(int(f) for f in self.frames)
        if not frames:
            raise ConfigError("the camera track has no frames", where=self.source,
                              fix="give at least one line 'frame tx ty tz rx ry rz [vfov]'")
        if any(b <= a for a, b in zip(frames, frames[1:])):
            raise ConfigError("camera track frames must be strictly increasing", where=self.source,
                              fix="sort the track and remove duplicate frames")
        c2w = np.array(self.cam_to_world, dtype=np.float64)
        if c2w.shape != (len(frames), 4, 4):
            raise ConfigError(f"cam_to_world must have shape ({len(frames)}, 4, 4), got {c2w.shape}",
                              where=self.source, fix="give one 4x4 matrix per frame")
        c2w.setflags(write=False)
        object.__setattr__(self, "frames", frames)
        object.__setattr__(self, "cam_to_world", c2w)
        if self.vfov_deg is not None:
            vfov = np.array(self.vfov_deg, dtype=np.float64)
            if vfov.shape != (len(frames),):
                raise ConfigError(f"vfov_deg must have shape ({len(frames)},), got {vfov.shape}",
                                  where=self.source, fix="give one field of view per frame")
            vfov.setflags(write=False)
            object.__setattr__(self, "vfov_deg", vfov)

    def index_of(self, frame: int) -> int:
        """Index of ``frame`` in the track; ConfigError saying which frames the track covers if absent."""
        lo = bisect.bisect_left(self.frames, frame)
        if lo < len(self.frames) and self.frames[lo] == frame:
            return lo
        first, last = self.frames[0], self.frames[-1]
        span = f"frames {first}-{last}" if first != last else f"frame {first}"
        if len(self.frames) != last - first + 1:
            span += f" ({len(self.frames)} frames, with gaps)"
        raise ConfigError(f"frame {frame} is not in the camera track, which covers {span}",
                          where=self.source, fix="export the camera over the plate's whole frame "
                          "range, or limit plate.frames to the tracked frames")


def pose_for_frame(track: ChanTrack, frame: int) -> np.ndarray:
    """The (4, 4) ``cam_to_world`` of ``frame`` (exact lookup, no interpolation)."""
    return track.cam_to_world[track.index_of(frame)]


def vfov_for_frame(track: ChanTrack, frame: int) -> float | None:
    """The vertical FOV (degrees) of ``frame``, or None when the track has no FOV column."""
    index = track.index_of(frame)
    return None if track.vfov_deg is None else float(track.vfov_deg[index])


def read_chan(path: str | os.PathLike) -> ChanTrack:
    """Read a Nuke `.chan` file: lines ``frame tx ty tz rx ry rz [vfov]``, ZXY rotation order, degrees.

    Blank lines and ``#`` comments are ignored. Every line must have 7 columns, or every line 8.
    Errors name the file and line number.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError("camera track file not found", where=str(path),
                          fix="check camera.track in the shot file (paths are relative to it)") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the camera track: {exc}", where=str(path),
                          fix="give a plain-text Nuke .chan file") from exc

    frames: list[int] = []
    poses: list[np.ndarray] = []
    vfovs: list[float] = []
    n_columns: int | None = None
    first_line = 0
    for line_no, raw in enumerate(text.splitlines(), start=1):
        where = f"{path}:{line_no}"
        fields = raw.split("#", 1)[0].split()
        if not fields:
            continue
        if len(fields) not in (7, 8):
            raise ConfigError(f"expected 7 or 8 columns (frame tx ty tz rx ry rz [vfov]), got "
                              f"{len(fields)}", where=where, fix="export the camera from Nuke's "
                              "Camera 'export chan file' or fix this line")
        if n_columns is None:
            n_columns, first_line = len(fields), line_no
        elif len(fields) != n_columns:
            raise ConfigError(f"this line has {len(fields)} columns but line {first_line} has "
                              f"{n_columns}", where=where, fix="give the vertical FOV column on every "
                              "line or on none")
        values: list[float] = []
        for column, field in enumerate(fields, start=1):
            try:
                value = float(field)
            except ValueError:
                raise ConfigError(f"column {column} is not a number: {field!r}", where=where,
                                  fix="use plain decimal numbers") from None
            if not math.isfinite(value):
                raise ConfigError(f"column {column} is not finite: {field!r}", where=where,
                                  fix="fix the exported values") from None
            values.append(value)
        frame_value = values[0]
        if frame_value != round(frame_value):
            raise ConfigError(f"frame {fields[0]} is not a whole frame number", where=where,
                              fix="export the track on whole frames (sub-frame samples are not "
                              "supported)")
        frame = int(round(frame_value))
        if frames and frame <= frames[-1]:
            kind = "duplicate" if frame == frames[-1] else "out-of-order"
            raise ConfigError(f"{kind} frame {frame} (the previous line has frame {frames[-1]})",
                              where=where, fix="give each frame once, in increasing order")
        if n_columns == 8 and not 0.0 < values[7] < 180.0:
            raise ConfigError(f"vertical FOV {fields[7]} is not in (0, 180) degrees", where=where,
                              fix="the 8th column is the vertical field of view in degrees")
        c2w = np.eye(4)
        c2w[:3, :3] = euler_zxy_to_matrix(values[4], values[5], values[6])
        c2w[:3, 3] = values[1:4]
        frames.append(frame)
        poses.append(c2w)
        if n_columns == 8:
            vfovs.append(values[7])

    if not frames:
        raise ConfigError("the camera track has no data lines", where=str(path),
                          fix="give lines 'frame tx ty tz rx ry rz [vfov]'")
    return ChanTrack(frames=tuple(frames), cam_to_world=np.stack(poses),
                     vfov_deg=np.array(vfovs) if n_columns == 8 else None, source=str(path))


def write_chan(path: str | os.PathLike, frames: list[int] | tuple[int, ...] | np.ndarray,
               cam_to_world: np.ndarray, vfov_deg: np.ndarray | list[float] | None = None) -> None:
    """Write a Nuke `.chan` file atomically (ZXY Euler angles in degrees; vfov column if given).

    Euler angles are unwrapped across frames (no 360-degree jumps), so Nuke interpolates smoothly.
    Raises OutputError for poses that are not rigid or inconsistent lengths.
    """
    path = Path(path)
    frames_list = [int(f) for f in frames]
    c2w = np.asarray(cam_to_world, dtype=np.float64)
    if c2w.shape != (len(frames_list), 4, 4):
        raise OutputError(f"cam_to_world must have shape ({len(frames_list)}, 4, 4), got {c2w.shape}",
                          where=str(path), fix="give one 4x4 matrix per frame")
    if any(b <= a for a, b in zip(frames_list, frames_list[1:])):
        raise OutputError("frames must be strictly increasing", where=str(path),
                          fix="sort the frames and remove duplicates")
    vfov = None
    if vfov_deg is not None:
        vfov = np.asarray(vfov_deg, dtype=np.float64)
        if vfov.shape != (len(frames_list),) or not np.all((vfov > 0.0) & (vfov < 180.0)):
            raise OutputError("vfov_deg must give one FOV in (0, 180) degrees per frame",
                              where=str(path), fix="pass None to leave the FOV column out")
    angles = np.zeros((len(frames_list), 3))
    for i, (frame, m) in enumerate(zip(frames_list, c2w)):
        try:
            validate_cam_to_world(m, where=f"{path} frame {frame}")
        except ConfigError as exc:
            raise OutputError(exc.what, where=exc.where, fix=exc.fix) from exc
        angles[i] = matrix_to_euler_zxy(m[:3, :3])
    if len(frames_list) > 1:
        angles = np.unwrap(angles, period=360.0, axis=0)

    lines = []
    for i, frame in enumerate(frames_list):
        values = [*c2w[i, :3, 3], *angles[i]] + ([vfov[i]] if vfov is not None else [])
        lines.append(" ".join([str(frame)] + [f"{float(v):.12g}" for v in values]))
    try:
        atomic_write_text(path, "\n".join(lines) + "\n")
    except OSError as exc:
        raise OutputError(f"cannot write the camera track: {exc.strerror or exc}", where=str(path),
                          fix="check free disk space and write permission on the folder") from exc


# --------------------------------------------------------------------------------------------------
# Projection: the pinhole reference and the OpenEXR header matrices


def _world_to_camera_gl(cam_to_world: np.ndarray) -> np.ndarray:
    """Rigid inverse of a validated ``cam_to_world`` (column vectors, OpenGL camera space)."""
    rot, t = cam_to_world[:3, :3], cam_to_world[:3, 3]
    inv = np.eye(4)
    inv[:3, :3] = rot.T
    inv[:3, 3] = -rot.T @ t
    return inv


def project_to_pixels(points_world: np.ndarray, cam_to_world: np.ndarray,
                      intrinsics: Intrinsics) -> np.ndarray:
    """Pixel coordinates (x right, y down, pixel centres at +0.5) of ``(..., 3)`` world points.

    The plain pinhole reference: ``x = W/2 + fx * X/d``, ``y = H/2 - fy * Y/d`` with camera-space
    (X, Y) and depth ``d = -Z`` in front of the camera. Points at or behind the camera plane give NaN.
    """
    c2w = validate_cam_to_world(cam_to_world, where="project_to_pixels")
    pts = np.asarray(points_world, dtype=np.float64)
    if pts.shape[-1:] != (3,):
        raise ValueError(f"points_world must have shape (..., 3), got {pts.shape}")
    rot, t = c2w[:3, :3], c2w[:3, 3]
    cam = (pts - t) @ rot  # row-wise R^T (p - t)
    depth = -cam[..., 2]
    fx, fy = intrinsics.focal_px
    with np.errstate(divide="ignore", invalid="ignore"):
        x = intrinsics.width_px / 2.0 + fx * cam[..., 0] / depth
        y = intrinsics.height_px / 2.0 - fy * cam[..., 1] / depth
    out = np.stack([x, y], axis=-1)
    out[depth <= 0.0] = np.nan
    return out


def world_to_camera_exr(cam_to_world: np.ndarray) -> np.ndarray:
    """OpenEXR ``worldToCamera`` (float32 4x4, Imath ROW vectors: ``p_cam = p_world @ M``).

    OpenEXR / RenderMan camera space is left-handed: +x right, +y up, +z forward, i.e. our camera
    space with Z negated.
    """
    c2w = validate_cam_to_world(cam_to_world, where="world_to_camera_exr")
    flip_z = np.diag([1.0, 1.0, -1.0, 1.0])
    # C order matters: the OpenEXR module copies an array's raw buffer and ignores its strides.
    return np.ascontiguousarray((flip_z @ _world_to_camera_gl(c2w)).T, dtype=np.float32)


def world_to_ndc_exr(cam_to_world: np.ndarray, intrinsics: Intrinsics) -> np.ndarray:
    """OpenEXR ``worldToNDC`` (float32 4x4, row vectors): (0, 0) top-left, (1, 1) bottom-right.

    ``p_h = [x, y, z, 1] @ M``, ``ndc = p_h[:2] / p_h[3]``; multiplying ndc by (W, H) gives
    ``project_to_pixels``. NDC z maps depths ``EXR_NDC_NEAR_M``..``EXR_NDC_FAR_M`` to 0..1
    (OpenEXR leaves z undefined; this keeps the matrix invertible).
    """
    c2w = validate_cam_to_world(cam_to_world, where="world_to_ndc_exr")
    flip_z = np.diag([1.0, 1.0, -1.0, 1.0])
    fx, fy = intrinsics.focal_px
    w, h = intrinsics.width_px, intrinsics.height_px
    near, far = EXR_NDC_NEAR_M, EXR_NDC_FAR_M
    # Column-vector projection of EXR camera space (z forward) to homogeneous NDC.
    proj = np.array([
        [fx / w, 0.0, 0.5, 0.0],
        [0.0, -fy / h, 0.5, 0.0],
        [0.0, 0.0, far / (far - near), -far * near / (far - near)],
        [0.0, 0.0, 1.0, 0.0],
    ])
    return np.ascontiguousarray((proj @ flip_z @ _world_to_camera_gl(c2w)).T, dtype=np.float32)


def frame_camera(focal_length_mm: float, filmback_mm: tuple[float, float], static_cam_to_world,
                 track: ChanTrack | None, frame: int, width_px: int, height_px: int,
                 pixel_aspect: float = 1.0) -> tuple[np.ndarray, Intrinsics]:
    """The pose and intrinsics of one plate frame: a static matrix or the track's pose; a track's own
    lens (USD) or vertical FOV (7th .chan column), when present, overrides the focal length."""
    if track is None:
        c2w = validate_cam_to_world(static_cam_to_world, where="[camera] cam_to_world")
        return c2w, Intrinsics(focal_length_mm, tuple(filmback_mm), width_px, height_px, pixel_aspect)
    if track.focal_length_mm is not None:   # a track with its own lens (USD)
        index = track.index_of(frame)
        return track.cam_to_world[index], Intrinsics(float(track.focal_length_mm[index]), track.filmback_mm,
                                                     width_px, height_px, pixel_aspect)
    vfov = vfov_for_frame(track, frame)
    if vfov is None:
        intr = Intrinsics(focal_length_mm, tuple(filmback_mm), width_px, height_px, pixel_aspect)
    else:
        intr = Intrinsics.from_vfov(vfov, tuple(filmback_mm), width_px, height_px, pixel_aspect)
    return pose_for_frame(track, frame), intr
