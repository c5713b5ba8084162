"""The lighting stage: initial lighting from the shot file, then (optionally) the optimisation.

``solve_lighting`` wires the parts of this package together: the initialisation (init.py), the
keyframes' crops around the object, the objective (a reference composite, or the guidance of
``vfxinsert.guidance``), the lighting model (models.py) and the loop (loop.py). It returns the
``Environment`` (environment.py) the final renders use.
"""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Callable

import numpy as np

from ..config import ShotConfig
from ..errors import VfxInsertError
from ..shot import ShotContext
from .environment import EXPORT_HEIGHT, Environment, Solve, hdri_environment


def object_window(bounds, ground_height_m: float, cam_to_world, intrinsics, margin: float = 1.5):
    """Square window (x0, y0, side) around the object and where its shadow can fall, 1.5x margin.

    The shadow region is taken as the ground within twice the object's height around its footprint.
    """
    from ..camera import project_to_pixels

    lo, hi = (np.asarray(b, float) for b in bounds)
    height = max(hi[1] - ground_height_m, 1e-3)
    corners = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])
    angles = np.linspace(0, 2 * math.pi, 16, endpoint=False)
    centre = (lo + hi) / 2.0
    radius = 0.5 * float(np.hypot(hi[0] - lo[0], hi[2] - lo[2])) + 2.0 * height
    ring = np.stack([centre[0] + radius * np.cos(angles), np.full(16, ground_height_m),
                     centre[2] + radius * np.sin(angles)], axis=1)
    px = project_to_pixels(np.concatenate([corners, ring]), cam_to_world, intrinsics)
    px = px[np.isfinite(px).all(axis=1)]
    w, h = intrinsics.width_px, intrinsics.height_px
    if len(px) == 0:
        raise VfxInsertError("the object is behind the camera", where="optimisation crop",
                             fix="check [[asset]] position_m and the camera")
    (x0, y0), (x1, y1) = px.min(0), px.max(0)
    side = int(min(max(x1 - x0, y1 - y0) * margin, max(w, h)))
    side = max(side, 16)
    cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
    xs = int(np.clip(round(cx - side / 2), 0, max(w - side, 0)))
    ys = int(np.clip(round(cy - side / 2), 0, max(h - side, 0)))
    return xs, ys, side


def crop_resample(image: np.ndarray, window, size: int) -> np.ndarray:
    """The window (x0, y0, side) of an (H, W, 3) image, resampled to size x size (OIIO, area-correct).

    Parts of the window outside the image are black (a window is only larger than the image when the
    image itself is smaller than the object's crop).
    """
    import OpenImageIO as oiio

    x0, y0, side = window
    h, w = image.shape[:2]
    crop = np.zeros((side, side, 3), np.float32)
    xa, ya, xb, yb = max(x0, 0), max(y0, 0), min(x0 + side, w), min(y0 + side, h)
    crop[ya - y0:yb - y0, xa - x0:xb - x0] = image[ya:yb, xa:xb, :3]
    if side == size:
        return crop
    src = oiio.ImageBuf(np.ascontiguousarray(crop))
    dst = oiio.ImageBufAlgo.resize(src, roi=oiio.ROI(0, size, 0, size, 0, 1, 0, 3))
    return dst.get_pixels(oiio.FLOAT).reshape(size, size, 3)


def solve_lighting(shot: ShotConfig, frames: list[int], *, context: ShotContext | None = None,
                   on_progress: Callable[[str], None] | None = None,
                   on_iteration: Callable[[int, int, float], None] | None = None,
                   checkpoint: Path | None = None) -> Environment:
    """Initial lighting, then the optimisation when asked for and possible (see OptimizeConfig).

    ``frames``: the plate frames the solve may use (their working-space plates exist); ``context``: the
    shot's context when the caller has one.
    """
    from .init import initial_lighting
    from .panorama import mitsuba_env_directions
    from .sg import latlong_from_lobes

    say = on_progress or (lambda _msg: None)
    light = shot.lighting
    objective_name = _objective_name(shot)
    if light.init == "hdri" and not (light.optimize and objective_name):
        return hdri_environment(shot)
    context = context or ShotContext(shot)
    t0 = time.perf_counter()
    init = initial_lighting(context, frames)
    init_seconds = round(time.perf_counter() - t0, 3)
    if not (light.optimize and objective_name):
        if light.optimize:
            say("lighting: no diffusion model and no reference set: rendering with the initial lighting "
                "(set [guidance] model, or [optimize] reference, to optimise it)")
        data = init.radiance(mitsuba_env_directions(EXPORT_HEIGHT, 2 * EXPORT_HEIGHT)).astype(np.float32)
        return Environment(data, latlong_from_lobes(init, EXPORT_HEIGHT), light.init, init, init_seconds=init_seconds)
    return _optimise(context, frames, init, init_seconds, objective_name, say, on_iteration, checkpoint)


def _objective_name(shot: ShotConfig) -> str:
    opt = shot.optimize
    if opt.objective == "reference" or (opt.objective == "auto" and not shot.guidance.model and opt.reference):
        return "reference"
    if opt.objective == "guidance" or (opt.objective == "auto" and shot.guidance.model):
        return "guidance"
    return ""


def _prepare(context: ShotContext, frames, objective_name: str, say):
    """(targets, objective, guidance record, crop side) of a solve: the keyframes' crops around the object
    (plate and reference resampled to the crop) and the objective judging them."""
    from ..scene import View
    from .init import keyframes
    from .loop import FrameTarget, ReferenceObjective

    shot = context.shot
    settings = shot.optimize
    keys = keyframes(frames, settings.solve_keyframes(len(frames)))
    references = _read_references(shot, keys) if objective_name == "reference" else {}
    plates = {frame: context.plate(frame) for frame in keys}
    if objective_name == "guidance":
        from ..guidance.stage import guidance_objective

        objective, guidance_record = guidance_objective(shot, [p.rgb for p in plates.values()], say)
        native_px = objective.denoiser.native_px
    else:
        objective, guidance_record, native_px = ReferenceObjective(), None, None
    crop_px = settings.crop_size(cuda=_cuda_renders(), native_px=native_px)
    targets = []
    for frame, plate in plates.items():
        window = object_window(context.bounds, context.ground_height_m, plate.cam_to_world, plate.intrinsics)
        x0, y0, side = window
        intr = plate.intrinsics
        view = View(plate.cam_to_world, intr.fov_x_deg, intr.width_px, intr.height_px, window=(x0, y0, side, side),
                    scale=crop_px / side, pixel_aspect=intr.pixel_aspect)
        targets.append(FrameTarget(frame, view, crop_resample(plate.rgb, window, crop_px),
                                   crop_resample(references[frame], window, crop_px) if references else None))
    return targets, objective, guidance_record, crop_px


def _optimise(context: ShotContext, frames, init, init_seconds: float, objective_name: str, say, on_iteration,
              checkpoint) -> Environment:
    from .sg import fit_sg
    from .loop import optimise, solve_sg
    from .models import HDRIRefine, TwoMapSG
    from .panorama import mitsuba_env_directions, texel_directions
    from .tone import ToneCurves, ToneExport

    shot = context.shot
    settings = shot.optimize
    targets, objective, guidance_record, crop_px = _prepare(context, frames, objective_name, say)
    scene = context.scene(targets[0].view, env_height=settings.env_height, max_depth=settings.max_depth)
    device = scene.torch_device
    material = _material(scene, settings, device)
    run_message = (f"lighting: optimising {settings.iterations} iterations over {len(targets)} keyframe(s) "
                   f"(at least {settings.iterations // len(targets)} steps each), {crop_px}px crops, objective "
                   f"{objective_name}" + (f", with the materials of {len(material.names)} part(s)" if material is not None else ""))
    if isinstance(init, np.ndarray):   # an HDRI: refine its rotation, exposure and white balance only
        lighting = HDRIRefine(init, shot.lighting.rotate_y_deg, settings.env_height, device=device)
        tone, starts_record = ToneCurves(len(targets), device=device), None
        say(run_message)
        result = optimise(scene, targets, lighting, tone, settings, objective, shot_name=shot.name,
                          checkpoint=checkpoint, on_iteration=on_iteration, material=material)
    else:   # SG lobes: the multi-start, the run, the sun test
        lighting, tone, result, starts_record = solve_sg(
            scene, targets, init, settings, objective, shot_name=shot.name, device=device, say=say,
            run_message=run_message, checkpoint=checkpoint, on_iteration=on_iteration, material=material)
    data = lighting.radiance(mitsuba_env_directions(EXPORT_HEIGHT, 2 * EXPORT_HEIGHT)).astype(np.float32)
    latlong = lighting.radiance(texel_directions(EXPORT_HEIGHT, 2 * EXPORT_HEIGHT)).astype(np.float32)
    fitted = fit_sg(latlong, lobes=shot.lighting.lobes, iterations=200) if isinstance(lighting, TwoMapSG) else None
    solve = Solve(objective_name, tuple(result.losses), tuple(result.retries), round(result.seconds, 3),
                  result.resumed_from, {**lighting.describe(), "optimize": _record(settings, crop_px, targets),
                                        "starts": starts_record}, guidance_record)
    return Environment(data, latlong, shot.lighting.init, fitted,
                       ToneExport.from_curves(tone, [t.frame for t in targets]), solve, init_seconds=init_seconds,
                       materials=material.refined() if material is not None else None)


def _material(scene, settings, device: str):
    """The material refinement of ``[optimize] material = true`` (None when off)."""
    from ..errors import ConfigError
    from .material import MaterialRefine

    if not settings.material:
        return None
    if not scene.material_parts:
        raise ConfigError("material = true, but no asset part has a principled material to refine",
                          where="[optimize] material", fix="set material = false")
    return MaterialRefine(scene.material_parts, device=device)


def regrade_tone(shot: ShotConfig, frames: list[int], env: Environment, *, context: ShotContext | None = None,
                 on_progress: Callable[[str], None] | None = None,
                 on_iteration: Callable[[int, int, float], None] | None = None) -> Environment:
    """DiPIR's tone-only refinement after a background grade: the solved lighting ``env`` kept exactly, the
    per-keyframe tone curves fitted again (from the previous ones) to the re-graded plates ``frames``, with
    the shot's objective. Returns ``env`` with the new curves and this solve."""
    from dataclasses import replace

    from ..errors import ConfigError
    from .loop import optimise
    from .models import FixedLighting
    from .tone import ToneCurves, ToneExport, tone_for_frame

    say = on_progress or (lambda _msg: None)
    context = context or ShotContext(shot)
    objective_name = _objective_name(shot)
    if not objective_name:
        raise ConfigError("regrade needs an objective to fit the tone curves to", where="[optimize] / [guidance]",
                          fix="set [guidance] model (or [optimize] reference for a validation shot)")
    settings = replace(shot.optimize, lr_lighting=0.0)
    targets, objective, guidance_record, crop_px = _prepare(context, frames, objective_name, say)
    height = env.mitsuba_data.shape[0]
    scene = context.scene(targets[0].view, env_height=height, max_depth=settings.max_depth, materials=env.materials)
    lighting = FixedLighting(env.mitsuba_data, device=scene.torch_device)
    tone = ToneCurves(len(targets), device=scene.torch_device)
    if env.tone is not None:   # start from the curves before the grade, each keyframe's own or interpolated
        tone.load_state({k: [tone_for_frame(env.tone, t.frame).state()[k][0] for t in targets]
                         for k in tone.state()})
    say(f"regrade: fitting the tone curves of {len(targets)} keyframe(s) to the graded plate, lighting kept, "
        f"{settings.iterations} iterations, {crop_px}px crops, objective {objective_name}")
    result = optimise(scene, targets, lighting, tone, settings, objective, shot_name=f"{shot.name}-regrade",
                      on_iteration=on_iteration)
    previous = env.solve.model if env.solve is not None else {}
    solve = Solve(objective_name, tuple(result.losses), tuple(result.retries), round(result.seconds, 3), None,
                  {**previous, "regrade": {"tone_only": True, **_record(settings, crop_px, targets)}}, guidance_record)
    return replace(env, tone=ToneExport.from_curves(tone, [t.frame for t in targets]), solve=solve)


def _cuda_renders() -> bool:
    """Whether the renders run on a GPU (Mitsuba's CUDA variant), which sets the crop size of "auto"."""
    from ..env import import_mitsuba

    return import_mitsuba().variant().startswith("cuda")


def _record(settings, crop_px: int, targets) -> dict:
    """What lighting.json records of [optimize]: every key as used, the crop size and keyframes resolved."""
    from ..tomltypes import shot_keys

    doc = {k: (str(v) if isinstance(v, Path) else v) for k, v in shot_keys(settings).items()}
    return {**doc, "crop_px_used": crop_px, "keyframes_used": [t.frame for t in targets]}


def _read_references(shot: ShotConfig, frames: list[int]) -> dict[int, np.ndarray]:
    """The reference composites of ``frames`` in the working space (objective = "reference")."""
    from ..plates import open_plate

    pipeline = shot.color_pipeline()
    out = {}
    with open_plate(shot.optimize.reference, shot.plate.frames) as ref:
        for frame in frames:
            out[frame] = pipeline.to_working(ref.read(frame).rgb, shot.plate.colorspace)
    return out
