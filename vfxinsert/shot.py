"""The shot context: what every stage of one shot derives from its config, built once and shared.

Asset parts and their bounds, the proxy ground (height and albedo), the camera of each frame, the
working-space plates and the output paths. A process (the CLI's run, a farm task) builds one
``ShotContext`` and hands it to the stages it runs; everything in it is a function of the shot file
and the plate stage's outputs only, so every process and every frame chunk sees the same values.

The ground albedo under ``albedo = "plate"`` is measured on the *first frame of the shot* that has a
working-space plate, never on whichever frame a process happens to render first.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .errors import VfxInsertError
from .outputs import insert_path, working_plate_path

if TYPE_CHECKING:
    from .config import ShotConfig
    from .camera import ChanTrack, Intrinsics
    from .assets import MeshPart
    from .scene import InsertScene, View
    from .timing import ShotTiming


@dataclass(frozen=True, eq=False)
class FramePlate:
    """One frame's working-space plate (from the plate stage) and the camera it was shot with."""

    frame: int
    path: Path
    rgb: np.ndarray
    """(H, W, 3) scene-linear working-space pixels of the display window."""
    header: dict
    cam_to_world: np.ndarray
    intrinsics: Intrinsics

    @property
    def inputs_hash(self) -> str:
        """The plate stage's inputs hash of this frame (``vfxinsert/inputsHash``)."""
        return str(self.header.get("vfxinsert/inputsHash", ""))

    @property
    def pixel_aspect(self) -> float:
        return float(self.header.get("pixelAspectRatio", 1.0))


class ShotContext:
    """Per-shot values the stages share, computed on first use and then kept (see the module docstring)."""

    def __init__(self, shot: ShotConfig):
        self.shot = shot
        self._lens_windows: dict[tuple[int, int], tuple[int, int, int, int]] = {}
        self._stmap_cache: tuple = (None, None)

    # ------------------------------------------------------------------ frames and cameras

    @functools.cached_property
    def frames(self) -> tuple[int, ...]:
        """Every frame of the plate (a sequence's range, a movie's frames, 1 for a still)."""
        from .plates import open_plate

        with open_plate(self.shot.plate.path, self.shot.plate.frames) as plate:
            return tuple(plate.frames)

    @functools.cached_property
    def timing(self) -> ShotTiming:
        """The shot's frame rate and timecode (``[plate] fps``, else the plate's own; see ``timing.py``)."""
        from .plates import open_plate
        from .timing import shot_timing

        with open_plate(self.shot.plate.path, self.shot.plate.frames, missing=self.shot.plate.missing_frames) as plate:
            return shot_timing(self.shot, plate)

    @functools.cached_property
    def track(self) -> ChanTrack | None:
        """The camera track (``[camera] track``, or the ``usd`` camera sampled at the plate's frames with its
        lens), read once; None for a static camera."""
        from .camera import ChanTrack, read_chan

        c = self.shot.camera
        if c.usd is not None:
            from .usd import read_usd_camera

            cam = read_usd_camera(c.usd, c.usd_prim, self.frames)
            return ChanTrack(cam.frames, cam.cam_to_world, source=f"{c.usd} {cam.prim}",
                             focal_length_mm=cam.focal_length_mm, filmback_mm=cam.filmback_mm)
        return read_chan(c.track) if c.track else None

    def camera(self, frame: int, width_px: int, height_px: int, pixel_aspect: float = 1.0) -> tuple[np.ndarray, Intrinsics]:
        """(cam_to_world, intrinsics) of ``frame`` for a plate of that format (static or tracked camera)."""
        from .camera import frame_camera

        c = self.shot.camera
        return frame_camera(c.focal_length_mm, c.filmback_mm, c.cam_to_world, self.track, frame, width_px, height_px,
                            pixel_aspect)

    def lens_window(self, width_px: int, height_px: int) -> tuple[int, int, int, int] | None:
        """The undistorted window (x0, y0, w, h) every frame renders with ``[camera] distortion``: the union
        of all frames' ST-map reach (one film size per shot); None without distortion."""
        if self.shot.camera.distortion is None:
            return None
        if (width_px, height_px) not in self._lens_windows:
            from .lens import overscan_window, union_window

            self._lens_windows[width_px, height_px] = union_window(
                [overscan_window(self.stmap(f, width_px, height_px)) for f in self.frames])
        return self._lens_windows[width_px, height_px]

    def stmap(self, frame: int, width_px: int, height_px: int) -> np.ndarray:
        """(H, W, 2) undistorted pixel position of every plate pixel of ``frame`` (lens.py; the last map kept)."""
        from .errors import ConfigError, OutputError
        from .exr import channels_in_display, read_layers
        from .lens import stmap_path, stmap_positions

        path = stmap_path(self.shot.camera.distortion, frame)
        if self._stmap_cache[0] != (path, width_px, height_px):
            try:
                layers, header = read_layers(path)
                uv = channels_in_display(layers, header, ("R", "G"), str(path))
            except OutputError as exc:
                raise ConfigError(exc.what, where=exc.where, fix="give a redistort ST-map EXR (R = u, G = v) for "
                                                                 "every plate frame ([camera] distortion)") from exc
            self._stmap_cache = ((path, width_px, height_px), stmap_positions(uv, width_px, height_px, str(path)))
        return self._stmap_cache[1]

    # ------------------------------------------------------------------ plates and outputs

    def plate_file(self, frame: int) -> Path:
        """The working-space plate EXR of ``frame`` (written by the plate stage)."""
        return working_plate_path(self.shot, frame)

    def insert_file(self, frame: int) -> Path:
        """The layers EXR of ``frame`` (written by the render stage)."""
        return insert_path(self.shot, frame)

    def plate(self, frame: int) -> FramePlate:
        """The working-space plate of ``frame`` and its camera; VfxInsertError when the plate stage has not
        written it."""
        from .exr import channels_in_display, read_layers

        path = self.plate_file(frame)
        layers, header = read_layers(path)
        rgb = channels_in_display(layers, header, ("R", "G", "B"), str(path))
        c2w, intr = self.camera(frame, rgb.shape[1], rgb.shape[0], float(header.get("pixelAspectRatio", 1.0)))
        return FramePlate(frame, path, rgb, header, c2w, intr)

    # ------------------------------------------------------------------ assets and ground

    @functools.cached_property
    def parts(self) -> tuple[MeshPart, ...]:
        """Every asset's meshes in world space."""
        from .assets import load_asset_parts

        return tuple(p for i, a in enumerate(self.shot.asset) for p in load_asset_parts(a, i))

    @functools.cached_property
    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """(lo, hi): the world-space bounding box of all assets."""
        return (np.min([p.vertices.min(0) for p in self.parts], axis=0),
                np.max([p.vertices.max(0) for p in self.parts], axis=0))

    @property
    def ground_height_m(self) -> float:
        return self.shot.ground.height_m

    @functools.cached_property
    def ground_albedo(self) -> tuple[float, float, float]:
        """``[ground] albedo``, or under "plate" the plate colour under the object in the first frame of the
        shot that has a working-space plate (the same frame for every process and chunk)."""
        if self.shot.ground.albedo != "plate":
            return tuple(self.shot.ground.albedo)
        first = next((f for f in self.frames if self.plate_file(f).is_file()), None)
        if first is None:
            raise VfxInsertError("no frame of the shot has a working-space plate to measure the ground albedo on",
                                 where=str(self.plate_file(self.frames[0]).parent),
                                 fix="run the plate stage first (vfxinsert run does), or set [ground] albedo")
        plate = self.plate(first)
        return ground_albedo_from_plate(plate.rgb, plate.cam_to_world, plate.intrinsics, self.bounds,
                                        self.ground_height_m)

    def scene(self, view: View, *, env_height: int, max_depth: int,
              ground_albedo: tuple[float, float, float] | None = None, materials=None) -> InsertScene:
        """The shot's Mitsuba scene (assets, proxy ground, env emitter) seen through ``view``; the ground
        albedo and the materials are the shot's unless given (the renders use those stored with the solve:
        ``materials``, a sequence of ``assets.RefinedMaterial``)."""
        from .assets import refine_parts
        from .scene import InsertScene

        return InsertScene(refine_parts(self.parts, materials), ground_height_m=self.ground_height_m,
                           ground_albedo=self.ground_albedo if ground_albedo is None else ground_albedo,
                           view=view, env_height=env_height, max_depth=max_depth)


def ground_albedo_from_plate(plate_rgb: np.ndarray, cam_to_world: np.ndarray, intrinsics, bounds,
                             ground_height_m: float) -> tuple[float, float, float]:
    """Mean scene-linear plate colour under the object's footprint on the ground (clamped to 0.02..0.9).

    The proxy plane's albedo only shapes the bounce light the object receives (the shadow ratio does
    not depend on it), so the plate colour there is a good enough estimate (method.md, Scene).
    """
    from .camera import project_to_pixels

    lo, hi = bounds
    xs = np.linspace(lo[0], hi[0], 9)
    zs = np.linspace(lo[2], hi[2], 9)
    gx, gz = np.meshgrid(xs, zs)
    pts = np.stack([gx.ravel(), np.full(gx.size, ground_height_m), gz.ravel()], axis=1)
    px = project_to_pixels(pts, cam_to_world, intrinsics)
    h, w = plate_rgb.shape[:2]
    ok = np.isfinite(px).all(axis=1) & (px[:, 0] >= 0) & (px[:, 0] < w) & (px[:, 1] >= 0) & (px[:, 1] < h)
    if not ok.any():
        return (0.18, 0.18, 0.18)  # footprint off screen: mid grey
    sel = px[ok].astype(int)
    mean = plate_rgb[sel[:, 1], sel[:, 0]].mean(axis=0)
    return tuple(float(np.clip(c, 0.02, 0.9)) for c in mean)
