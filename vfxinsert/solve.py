"""The lighting stage: initial lighting from the shot file, then (optionally) the optimisation.

``solve_lighting`` returns the ``Environment`` the final renders use: the environment in Mitsuba's
layout at export resolution, the lat-long for ``lighting.exr``, a description for ``lighting.json``
(initialisation, SG lobes, objective, losses, timings), and the per-frame tone curves.
"""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Callable

import numpy as np

from .config import ShotConfig
from .errors import VfxInsertError
from .render import Environment, hdri_environment

EXPORT_HEIGHT = 256   # lighting.exr: 256 x 512 (method.md); final renders use the same map


def object_window(bounds, ground_height_m: float, cam_to_world, intrinsics, margin: float = 1.5):
    """Square window (x0, y0, side) around the object and where its shadow can fall, 1.5x margin.

    The shadow region is taken as the ground within twice the object's height around its footprint.
    """
    from .camera import project_to_pixels

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


def _keyframes(frames: list[int], count: int) -> list[int]:
    if len(frames) <= count:
        return list(frames)
    idx = np.unique(np.round(np.linspace(0, len(frames) - 1, count)).astype(int))
    return [frames[i] for i in idx]


def solve_lighting(shot: ShotConfig, frames: list[int], *, on_progress: Callable[[str], None] | None = None,
                   on_iteration: Callable[[int, int, float], None] | None = None,
                   checkpoint: Path | None = None) -> Environment:
    """Initial lighting, then the optimisation when asked for and possible (see OptimizeConfig)."""
    from .camera import frame_camera, read_chan
    from .exr import channels_in_display, read_layers
    from .ingest import frame_path

    say = on_progress or (lambda _msg: None)
    light = shot.lighting
    objective_name = _objective_name(shot)
    if light.init == "hdri" and not (light.optimize and objective_name):
        return hdri_environment(shot, EXPORT_HEIGHT * 2)
    track = read_chan(shot.camera.track) if shot.camera.track else None

    def plate_and_camera(frame: int):
        plate_file = frame_path(shot.output.dir / "plate", shot.name, frame)
        layers, header = read_layers(plate_file)
        plate = channels_in_display(layers, header, ("R", "G", "B"), str(plate_file))
        c2w, intr = frame_camera(shot.camera.focal_length_mm, shot.camera.filmback_mm, shot.camera.cam_to_world,
                                 track, frame, plate.shape[1], plate.shape[0], float(header.get("pixelAspectRatio", 1.0)))
        return plate, c2w, intr

    t0 = time.perf_counter()
    first_plate, first_c2w, first_intr = plate_and_camera(frames[0])
    if light.init == "plate":
        from .light_init import fit_sg, plate_latlong

        latlong, _ = plate_latlong(first_plate, first_c2w, first_intr, height=64)
        init = fit_sg(latlong, lobes=light.lobes)
    elif light.init == "sky":
        from .light_init import sky_lobes

        init = sky_lobes(light.sun_direction)
    else:  # hdri with optimisation: the HDRI itself, refined in rotation / exposure / white balance
        from .plates import read_image

        init = read_image(light.hdri).rgb
    description = {"source": light.init, "init_seconds": round(time.perf_counter() - t0, 3)}
    if not (light.optimize and objective_name):
        if light.optimize:
            say("lighting: no diffusion model and no reference set: rendering with the initial lighting "
                "(set [guidance] model, or [optimize] reference, to optimise it)")
        return _sg_environment(init, {**description, "optimised": False})
    return _optimise(shot, frames, init, description, plate_and_camera, objective_name, say, on_iteration, checkpoint)


def _objective_name(shot: ShotConfig) -> str:
    opt = shot.optimize
    if opt.objective == "reference" or (opt.objective == "auto" and not shot.guidance.model and opt.reference):
        return "reference"
    if opt.objective == "guidance" or (opt.objective == "auto" and shot.guidance.model):
        return "guidance"
    return ""


def _sg_environment(lobes, description: dict) -> Environment:
    from .lighting import latlong_from_lobes, mitsuba_env_directions

    data = lobes.radiance(mitsuba_env_directions(EXPORT_HEIGHT, 2 * EXPORT_HEIGHT)).astype(np.float32)
    return Environment(data, latlong_from_lobes(lobes, EXPORT_HEIGHT), description, lobes)


def _optimise(shot, frames, init, description, plate_and_camera, objective_name, say, on_iteration, checkpoint):
    from .light_init import fit_sg, max_sharpness
    from .lighting import mitsuba_env_directions
    from .optimise import FrameTarget, HDRIRefine, OptimSettings, ReferenceObjective, TwoMapSG, optimise
    from .panorama import texel_directions
    from .render import ground_albedo_from_plate
    from .scene import InsertScene, View, load_asset_parts
    from .tone import ToneCurves, export_curves

    opt_cfg = shot.optimize
    keys = _keyframes(frames, opt_cfg.keyframes)
    references = _read_references(shot, keys) if objective_name == "reference" else {}
    parts = [p for i, a in enumerate(shot.asset) for p in load_asset_parts(a, i)]
    lo = np.min([p.vertices.min(0) for p in parts], axis=0)
    hi = np.max([p.vertices.max(0) for p in parts], axis=0)
    targets = []
    plates = []
    albedo = None
    for frame in keys:
        plate, c2w, intr = plate_and_camera(frame)
        plates.append(plate)
        if albedo is None:
            albedo = shot.ground.albedo if shot.ground.albedo != "plate" else \
                ground_albedo_from_plate(plate, c2w, intr, (lo, hi), shot.ground.height_m)
        window = object_window((lo, hi), shot.ground.height_m, c2w, intr)
        x0, y0, side = window
        view = View(c2w, intr.fov_x_deg, intr.width_px, intr.height_px, window=(x0, y0, side, side),
                    scale=opt_cfg.crop_px / side)
        targets.append(FrameTarget(frame, view, crop_resample(plate, window, opt_cfg.crop_px),
                                   crop_resample(references[frame], window, opt_cfg.crop_px) if references else None))
    if objective_name == "guidance":
        objective, guidance_description = _guidance_objective(shot, plates, say)
    else:
        objective, guidance_description = ReferenceObjective(), {}
    settings = OptimSettings(iterations=opt_cfg.iterations, crop_px=opt_cfg.crop_px, spp=opt_cfg.spp,
                             max_depth=opt_cfg.max_depth, lr_lighting=opt_cfg.lr_lighting, lr_tone=opt_cfg.lr_tone,
                             checkpoint_every=opt_cfg.checkpoint_every, w_tone_smooth=opt_cfg.tone_smoothness)
    scene = InsertScene(parts, ground_height_m=shot.ground.height_m, ground_albedo=albedo, view=targets[0].view,
                        env_height=settings.env_height, max_depth=settings.max_depth)
    device = scene.torch_device
    if isinstance(init, np.ndarray):   # an HDRI: refine its rotation, exposure and white balance only
        lighting = HDRIRefine(init, shot.lighting.rotate_y_deg, settings.env_height, device=device)
    else:
        lighting = TwoMapSG(init, settings.env_height, max_sharpness(settings.env_height), device=device)
    tone = ToneCurves(len(targets), device=device)
    say(f"lighting: optimising {settings.iterations} iterations over {len(targets)} frame(s), "
        f"{settings.crop_px}px crops, objective {objective_name}")
    result = optimise(scene, targets, lighting, tone, settings, objective, shot_name=shot.name,
                      checkpoint=checkpoint, on_iteration=on_iteration)
    data = lighting.radiance(mitsuba_env_directions(EXPORT_HEIGHT, 2 * EXPORT_HEIGHT)).astype(np.float32)
    latlong = lighting.radiance(texel_directions(EXPORT_HEIGHT, 2 * EXPORT_HEIGHT)).astype(np.float32)
    fitted = fit_sg(latlong, lobes=shot.lighting.lobes, iterations=200) if isinstance(lighting, TwoMapSG) else None
    description = {**description, "optimised": True, "objective": objective_name, **guidance_description,
                   **lighting.describe(),
                   "iterations": len(result.losses), "losses": result.losses, "retries": result.retries,
                   "optimise_seconds": round(result.seconds, 3), "resumed_from": result.resumed_from,
                   "sg_note": "'sg' is an SG fit of the final map, for renderers that take SG lights"}
    return Environment(data, latlong, description, fitted, tone=export_curves(tone, [t.frame for t in targets]))


def _guidance_objective(shot: ShotConfig, plates: list[np.ndarray], say: Callable[[str], None]):
    """The diffusion-guidance objective of [guidance] (personalised on the keyframes' plates for LDS), and
    what to record of it in lighting.json."""
    from .guidance import PersonaliseSettings, make_objective, plate_display

    g = shot.guidance
    settings = PersonaliseSettings(steps=g.steps, lr=g.lr, rank=g.rank, preservation_images=g.preservation_images,
                                   class_prompt=g.prompt)

    def on_step(step: int, total: int, loss: float) -> None:
        if step == 1 or step % 50 == 0 or step == total:
            say(f"guidance: personalising the model to the plate, step {step}/{total}, loss {loss:.4f}")

    say(f"guidance: loading {g.model} ({g.method})")
    objective = make_objective(shot, [plate_display(p) for p in plates], kind=g.method, settings=settings,
                               allow_pickle=g.allow_pickle, on_step=on_step)
    info = {"method": g.method, "model": g.model, "prompt": objective.prompt}
    done = objective.denoiser.personalisation
    if done is not None:
        say(f"guidance: LoRA {'reused from' if done.reused else 'trained in'} {done.folder}"
            + ("" if done.reused else f" ({done.seconds:.0f} s)"))
        info.update(lora=str(done.folder), lora_reused=done.reused, lora_seconds=round(done.seconds, 3))
    return objective, {"guidance": info}


def _read_references(shot: ShotConfig, frames: list[int]) -> dict[int, np.ndarray]:
    """The reference composites of ``frames`` in the working space (objective = "reference")."""
    from .plates import open_plate

    pipeline = shot.color_pipeline()
    out = {}
    with open_plate(shot.optimize.reference, shot.plate.frames) as ref:
        for frame in frames:
            out[frame] = pipeline.to_working(ref.read(frame).rgb, shot.plate.colorspace)
    return out


def tone_for_frame(tone: dict | None, frame: int):
    """A one-frame ToneCurves for ``frame``: its own curves, or interpolated between the keyframes'."""
    if not tone:
        return None
    from .tone import ToneCurves

    keys = [f["frame"] for f in tone["frames"]]
    state = {k: np.asarray(v, np.float32) for k, v in tone["state"].items()}
    i = int(np.clip(np.searchsorted(keys, frame), 1, max(len(keys) - 1, 1)))
    if len(keys) == 1 or frame <= keys[0]:
        params = {k: v[0] for k, v in state.items()}
    elif frame >= keys[-1]:
        params = {k: v[-1] for k, v in state.items()}
    else:
        t = (frame - keys[i - 1]) / (keys[i] - keys[i - 1])
        params = {k: (1 - t) * v[i - 1] + t * v[i] for k, v in state.items()}
    curves = ToneCurves(1)
    curves.load_state({k: v[None].tolist() for k, v in params.items()})
    return curves
