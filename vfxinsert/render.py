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
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from . import __version__
from .config import ShotConfig
from .errors import OutputError, RenderError
from .fsutil import ensure_writable_folder, file_identity, sweep_stale_temps
from .outputs import FrameResult, StageReport, frame_error
from .seeds import frame_seed

if TYPE_CHECKING:
    from .camera import ChanTrack
    from .lighting.environment import Environment
    from .shot import ShotContext


def _assets_digest(shot: ShotConfig) -> list:
    items = []
    for a in shot.asset:
        m = a.shot_material   # unset hashes as the defaults (a USD's own material is in its file identity)
        items.append([*file_identity(a.mesh), a.position_m, a.rotation_deg, a.scale, [m.base_color, m.roughness, m.metallic]])
    return items


def render_settings(shot: ShotConfig, env: Environment, track: ChanTrack | None) -> str:
    """What every rendered frame of the shot depends on besides its own plate: code version, lighting,
    render settings, assets, ground, output format and camera (``track``: ``read_chan(shot.camera.track)``,
    or None for a static camera). Input of :func:`render_frame_hash`."""
    tone = env.tone.to_json() if env.tone is not None else None
    return json.dumps([__version__, env.digest, tone, shot.render.spp, shot.render.max_depth,
                       shot.render.denoise, shot.render.noise_target, _assets_digest(shot),
                       shot.ground.height_m, shot.ground.albedo, env.ground_albedo, env.materials_json(),
                       shot.output.precision,
                       shot.output.compression,
                       None if shot.camera.track is None or track is None else [track.frames, track.cam_to_world.tolist()],
                       shot.camera.cam_to_world, shot.camera.focal_length_mm, shot.camera.filmback_mm,
                       # a USD camera: the stage file itself (so vfxinsert status, which reads no stage, agrees)
                       [*file_identity(shot.camera.usd), shot.camera.usd_prim] if shot.camera.usd else None,
                       _lens_digest(shot)])


def _lens_digest(shot: ShotConfig) -> list | None:
    """The identity of the ST-map files of ``[camera] distortion`` (every file of a frame pattern)."""
    from .sequences import parse_pattern

    d = shot.camera.distortion
    if d is None:
        return None
    pattern = parse_pattern(str(d))
    if pattern is None:
        return file_identity(d)
    folder = Path(pattern.head).parent
    return [file_identity(p) for p in sorted(folder.glob(Path(pattern.head).name + "*" + pattern.tail))]


def render_frame_hash(settings: str, frame: int, plate_hash: str) -> str:
    """The inputs hash of one rendered frame: :func:`render_settings`, the frame number and the inputs
    hash of its plate-stage EXR. The stage stores it in the frame's EXR (``vfxinsert/inputsHash``) and
    skips a frame whose stored hash equals it; ``vfxinsert.status`` compares the same two values."""
    return hashlib.sha256(f"{settings}|{frame}|{plate_hash}".encode()).hexdigest()[:32]


def render_frames(shot: ShotConfig, env: Environment, *, frames: list[int] | None = None,
                  on_frame: Callable[[FrameResult, int], None] | None = None,
                  context: ShotContext | None = None, force: bool = False) -> StageReport:
    """Render the shot's frames (all, or ``frames``) to ``<output.dir>/<name>.####.exr``; ``force``: frames
    that are up to date too.

    A frame that fails for any reason (a bad plate, a Mitsuba error) is recorded and the rest go on.
    """
    from .exr import FrameMetadata, stored_inputs_hash, write_insert_layers
    from .lighting.tone import apply_tone
    from .denoise import render_final
    from .lens import redistort
    from .scene import View
    from .shot import ShotContext

    context = context or ShotContext(shot)
    ensure_writable_folder(shot.output.dir)   # an unwritable folder is one line for the shot, not one per frame
    sweep_stale_temps(shot.output.dir)        # what killed writers left behind, anywhere under output.dir
    timing = context.timing
    frames = list(context.frames) if frames is None else frames
    pipeline = shot.color_pipeline()
    settings = render_settings(shot, env, context.track)
    scene = None
    results = []
    quantise = (lambda x: x.astype(np.float16).astype(np.float32)) if shot.output.precision == "half" else (lambda x: x)
    for frame in frames:
        out = context.insert_file(frame)
        try:
            plate = context.plate(frame)
            digest = render_frame_hash(settings, frame, plate.inputs_hash)
            if not force and out.is_file() and stored_inputs_hash(out) == digest:
                result = FrameResult(frame, out, skipped=True)
            else:
                h, w = plate.rgb.shape[:2]
                lens = context.lens_window(w, h)   # distortion: render the undistorted image over the map's reach
                view = View(plate.cam_to_world, plate.intrinsics.fov_x_deg, w, h, window=lens,
                            pixel_aspect=plate.pixel_aspect)
                if scene is None:
                    scene = context.scene(view, env_height=env.mitsuba_data.shape[0], max_depth=shot.render.max_depth,
                                          ground_albedo=env.ground_albedo, materials=env.materials)
                    scene.set_env(env.mitsuba_data)
                elif view.render_size != scene.view.render_size:
                    raise RenderError(f"frame is {w}x{h} (pixel aspect {view.pixel_aspect:g}), the shot's first "
                                      f"rendered frame was {scene.view.film_size[0]}x{scene.view.film_size[1]} "
                                      f"(pixel aspect {scene.view.pixel_aspect:g})",
                                      where=str(plate.path), fix="give every plate frame the same format")
                else:
                    scene.set_view(view)

                def lens_pass(layers, frame=frame, lens=lens):   # undistorted layers -> the plate's pixels
                    _write_undistorted(shot, env, frame, layers, lens, (w, h), quantise)
                    return redistort(layers, lens, context.stmap(frame, w, h))

                rgb, alpha, shadow, samples = render_final(scene, frame_seed(shot.name, frame), shot.render,
                                                     view.render_size[0] * view.render_size[1],
                                                     between=lens_pass if lens is not None else None)
                rgb, shadow = apply_tone(env.tone, frame, rgb, alpha, shadow)
                rgb, alpha, shadow, plate_q = (quantise(np.ascontiguousarray(x)) for x in (rgb, alpha, shadow, plate.rgb))
                comp = rgb + (1.0 - alpha) * plate_q * shadow
                meta = FrameMetadata(shot=shot.name, frame=frame, working_space=pipeline.working_space,
                                     ocio_config=pipeline.config_name, ocio_cache_id=pipeline.cache_id,
                                     plate_colorspace=shot.plate.colorspace,
                                     plate_path=str(plate.header.get("vfxinsert/platePath", plate.path)),
                                     fps=timing.fps, timecode=timing.timecode(frame), cam_to_world=plate.cam_to_world,
                                     intrinsics=plate.intrinsics,
                                     extra={"inputsHash": digest, "lighting": json.dumps(env.to_json()),
                                            "samples": str(samples)})
                display = plate.header["displayWindow"]   # the layers sit exactly on the plate's format
                write_insert_layers(out, object_rgba=np.concatenate([rgb, alpha], axis=-1), shadow_rgb=shadow,
                                    comp_rgb=comp, metadata=meta, precision=shot.output.precision,
                                    compression=shot.output.compression, display_window=display,
                                    data_origin=display[0])
                result = FrameResult(frame, out)
        except Exception as exc:  # any failure of one frame (ours, Mitsuba's RuntimeError, ...): record it, go on
            if isinstance(exc, OutputError) and exc.shot_level:   # the folder, not the frame: one line
                raise                                                 # for the shot, not one per frame
            result = FrameResult(frame, error=frame_error(exc))
        results.append(result)
        if on_frame:
            on_frame(result, len(frames))
    return StageReport("render", tuple(results))


def _write_undistorted(shot: ShotConfig, env: Environment, frame: int, rendered: np.ndarray, window, size,
                       quantise) -> None:
    """The undistorted render of a shot with lens distortion, for the ``.nk``'s STMap: object ``R,G,B,A``
    and ``shadow`` (tone applied), data window = the overscan ``window``, display window = the plate
    format (``<output.dir>/undistorted/<name>.####.exr``)."""
    from .composite import composite
    from .exr import write_exr
    from .lighting.tone import apply_tone
    from .outputs import undistorted_path

    rgb, alpha, shadow, _ = composite(rendered, np.zeros_like(rendered[..., :3]))
    rgb, shadow = apply_tone(env.tone, frame, rgb, alpha, shadow)
    channels = {name: quantise(np.ascontiguousarray(x[..., i])) for x, names in
                ((rgb, ("R", "G", "B")), (alpha, ("A",)), (shadow, ("shadow.R", "shadow.G", "shadow.B")))
                for i, name in enumerate(names)}
    x0, y0 = window[:2]
    write_exr(undistorted_path(shot, frame), channels, display_window=((0, 0), (size[0] - 1, size[1] - 1)),
              data_origin=(x0, y0), precision=shot.output.precision, compression=shot.output.compression,
              attributes={"owner": "vfxinsert", "comments": f"vfxinsert, shot {shot.name}, frame {frame}: the "
                          "undistorted render with overscan (object R,G,B,A premultiplied; shadow.R/G/B); "
                          f"redistort it with [camera] distortion {shot.camera.distortion.name}"})

