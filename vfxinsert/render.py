"""The final render stage: every frame at full plate resolution into the per-frame insert EXR.

For each frame: the camera of that frame (static or from the track), the working-space plate written
by the plate stage, one shadow-catcher render with the shot's spp and depth, then the layers of
architecture.md: ``R,G,B,A`` the object premultiplied, ``shadow`` the ratio, ``comp`` the composite.
The identity ``comp = rgb + (1 - A) * plate * shadow`` holds on the *stored* values: the inputs are
rounded to the output precision before the composite is formed, so only comp's own rounding remains.

Frames are independent work items with seeds derived from (shot, frame), so a re-rendered frame is
identical; a frame whose output exists with the same inputs hash is skipped; a bad frame is recorded
and the rest of the shot goes on.
"""
from __future__ import annotations

import hashlib
import json
import math
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import numpy as np

from . import __version__
from .config import ShotConfig
from .errors import ConfigError, VfxInsertError
from .fsutil import file_identity, sweep_stale_temps
from .ingest import FrameResult, StageReport, frame_path

if TYPE_CHECKING:
    from .camera import ChanTrack


def frame_seed(shot_name: str, frame: int, iteration: int = 0) -> int:
    """A deterministic seed for (shot, frame, iteration): re-running a frame reproduces it bit for bit."""
    return zlib.crc32(f"{shot_name}:{frame}:{iteration}".encode()) & 0x7FFFFFFF


@dataclass(frozen=True)
class Environment:
    """The lighting a render uses: Mitsuba envmap data plus what the lighting exports say about it."""

    mitsuba_data: np.ndarray   # (H, 2H + 2, 3), Mitsuba's texel layout (lighting.py)
    latlong: np.ndarray        # (h, 2h, 3) project convention, for lighting.exr
    description: dict          # for lighting.json
    lobes: object = None       # lighting.SGLobes or None
    tone: dict | None = None   # tone.json content (per-frame curves and their parameters), or None

    @property
    def digest(self) -> str:
        return hashlib.sha256(np.ascontiguousarray(self.mitsuba_data).tobytes()).hexdigest()[:32]


def hdri_environment(shot: ShotConfig, env_height: int = 512) -> Environment:
    """The on-set HDRI of the shot (lighting.init = "hdri") as the environment, rotated about +Y."""
    from .lighting import hdri_to_mitsuba_env
    from .panorama import sample_bilinear, texel_directions
    from .plates import read_image

    light = shot.lighting
    if light.hdri is None:
        raise ConfigError('lighting.init = "hdri" needs [lighting] hdri', where=str(shot.path),
                          fix='add hdri = "path/to/onset.exr"')
    image = read_image(light.hdri)
    pipeline = shot.color_pipeline()
    # HDRIs are scene-linear Rec.709 unless they say otherwise; the shot's working space is that too.
    latlong = image.rgb
    h = min(env_height, latlong.shape[0])
    data = hdri_to_mitsuba_env(latlong, h, light.rotate_y_deg)
    export = sample_bilinear(latlong, texel_directions(256, 512), light.rotate_y_deg)
    return Environment(data, export.astype(np.float32),
                       {"source": "hdri", "hdri": str(light.hdri), "rotate_y_deg": light.rotate_y_deg,
                        "working_space": pipeline.working_space})


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


def _assets_digest(shot: ShotConfig) -> list:
    items = []
    for a in shot.asset:
        items.append([*file_identity(a.mesh), a.position_m, a.rotation_deg, a.scale,
                      [a.material.base_color, a.material.roughness, a.material.metallic]])
    return items


def render_settings(shot: ShotConfig, env: Environment, track: ChanTrack | None) -> str:
    """What every rendered frame of the shot depends on besides its own plate: code version, lighting,
    render settings, assets, ground, output format and camera (``track``: ``read_chan(shot.camera.track)``,
    or None for a static camera). Input of :func:`render_frame_hash`."""
    return json.dumps([__version__, env.digest, env.tone, shot.render.spp, shot.render.max_depth, _assets_digest(shot),
                       shot.ground.height_m, shot.ground.albedo, shot.output.precision, shot.output.compression,
                       None if track is None else [track.frames, track.cam_to_world.tolist()],
                       shot.camera.cam_to_world, shot.camera.focal_length_mm, shot.camera.filmback_mm])


def render_frame_hash(settings: str, frame: int, plate_hash: str) -> str:
    """The inputs hash of one rendered frame: :func:`render_settings`, the frame number and the inputs
    hash of its plate-stage EXR. The stage stores it in the frame's EXR (``vfxinsert/inputsHash``) and
    skips a frame whose stored hash equals it; ``vfxinsert.status`` compares the same two values."""
    return hashlib.sha256(f"{settings}|{frame}|{plate_hash}".encode()).hexdigest()[:32]


def render_frames(shot: ShotConfig, env: Environment, *, frames: list[int] | None = None,
                  on_frame: Callable[[FrameResult, int], None] | None = None) -> StageReport:
    """Render the shot's frames (all, or ``frames``) to ``<output.dir>/<name>.####.exr``."""
    from .camera import frame_camera, read_chan
    from .exr import FrameMetadata, channels_in_display, read_layers, stored_inputs_hash, write_insert_layers
    from .plates import open_plate
    from .scene import InsertScene, View, composite, load_asset_parts

    out_dir = shot.output.dir
    plate_dir = out_dir / "plate"
    sweep_stale_temps(out_dir)   # what killed writers left behind
    track = read_chan(shot.camera.track) if shot.camera.track else None
    with open_plate(shot.plate.path, shot.plate.frames) as plate:
        all_frames = list(plate.frames)
        fps = plate.fps
    frames = all_frames if frames is None else frames
    pipeline = shot.color_pipeline()
    settings = render_settings(shot, env, track)
    scene = None
    results = []
    quantise = (lambda x: x.astype(np.float16).astype(np.float32)) if shot.output.precision == "half" else (lambda x: x)
    for frame in frames:
        out = frame_path(out_dir, shot.name, frame)
        try:
            plate_file = frame_path(plate_dir, shot.name, frame)
            layers, header = read_layers(plate_file)
            plate_hash = str(header.get("vfxinsert/inputsHash", ""))
            digest = render_frame_hash(settings, frame, plate_hash)
            if out.is_file() and stored_inputs_hash(out) == digest:
                result = FrameResult(frame, out, skipped=True)
            else:
                plate_rgb = channels_in_display(layers, header, ("R", "G", "B"), str(plate_file))
                h, w = plate_rgb.shape[:2]
                par = float(header.get("pixelAspectRatio", 1.0))
                if abs(par - 1.0) > 1e-6:
                    raise VfxInsertError(f"pixel aspect {par} is not 1: Mitsuba renders square pixels only",
                                         where=str(plate_file), fix="resample the plate to square pixels first")
                c2w, intr = frame_camera(shot.camera.focal_length_mm, shot.camera.filmback_mm,
                                         shot.camera.cam_to_world, track, frame, w, h, par)
                view = View(c2w, intr.fov_x_deg, w, h)
                if scene is None:
                    parts = [p for i, a in enumerate(shot.asset) for p in load_asset_parts(a, i)]
                    lo = np.min([p.vertices.min(0) for p in parts], axis=0)
                    hi = np.max([p.vertices.max(0) for p in parts], axis=0)
                    albedo = shot.ground.albedo if shot.ground.albedo != "plate" else \
                        ground_albedo_from_plate(plate_rgb, c2w, intr, (lo, hi), shot.ground.height_m)
                    env_h = env.mitsuba_data.shape[0]
                    scene = InsertScene(parts, ground_height_m=shot.ground.height_m, ground_albedo=albedo,
                                        view=view, env_height=env_h, max_depth=shot.render.max_depth)
                    scene.set_env(env.mitsuba_data)
                elif view.film_size != scene.view.film_size:
                    raise VfxInsertError(f"frame is {w}x{h}, the shot's first rendered frame was "
                                         f"{scene.view.film_size[0]}x{scene.view.film_size[1]}",
                                         where=str(plate_file), fix="give every plate frame the same format")
                else:
                    scene.set_view(view)
                rendered = _render_passes(scene, frame_seed(shot.name, frame), shot.render.spp, w * h)
                rgb, alpha, shadow, _ = composite(rendered, plate_rgb)
                rgb, shadow = apply_tone(env.tone, frame, rgb, alpha, shadow)
                rgb, alpha, shadow, plate_q = (quantise(np.ascontiguousarray(x)) for x in (rgb, alpha, shadow, plate_rgb))
                comp = rgb + (1.0 - alpha) * plate_q * shadow
                meta = FrameMetadata(shot=shot.name, frame=frame, working_space=pipeline.working_space,
                                     ocio_config=pipeline.config_name, ocio_cache_id=pipeline.cache_id,
                                     plate_colorspace=shot.plate.colorspace,
                                     plate_path=str(header.get("vfxinsert/platePath", plate_file)),
                                     fps=fps, cam_to_world=c2w, intrinsics=intr,
                                     extra={"inputsHash": digest, "lighting": json.dumps(env.description)})
                write_insert_layers(out, object_rgba=np.concatenate([rgb, alpha], axis=-1), shadow_rgb=shadow,
                                    comp_rgb=comp, metadata=meta, precision=shot.output.precision,
                                    compression=shot.output.compression)
                result = FrameResult(frame, out)
        except VfxInsertError as exc:
            result = FrameResult(frame, error=exc.line())
        results.append(result)
        if on_frame:
            on_frame(result, len(frames))
    return StageReport("render", tuple(results))


def apply_tone(tone: dict | None, frame: int, rgb: np.ndarray, alpha: np.ndarray, shadow: np.ndarray):
    """The frame's tone curves on the layers: object ``T_fg(rgb / A) * A``, shadow ``T_sh(ratio)``.

    ``T_sh(1) = 1`` exactly, so the plate stays untouched where the shadow ratio is 1.
    """
    from .solve import tone_for_frame

    curves = tone_for_frame(tone, frame)
    if curves is None:
        return rgb, shadow
    import torch

    with torch.no_grad():
        a = torch.from_numpy(np.ascontiguousarray(alpha))
        radiance = torch.from_numpy(np.ascontiguousarray(rgb)) / a.clamp_min(1e-6)
        toned = torch.where(a > 0, curves.fg(radiance, 0) * a, torch.zeros_like(radiance))
        return toned.numpy().astype(np.float32), curves.sh(torch.from_numpy(np.ascontiguousarray(shadow)), 0).numpy()


def _render_passes(scene, seed: int, spp: int, pixels: int) -> np.ndarray:
    """One render, split into passes with distinct seeds when pixels x spp exceeds Mitsuba's 2^32 limit."""
    passes = max(1, math.ceil(pixels * spp / 2**31))
    per = math.ceil(spp / passes)
    total = None
    for k in range(passes):
        layers = scene.render(seed + k * 7919, per)
        total = layers if total is None else total + layers
    return total / passes
