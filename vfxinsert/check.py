"""`vfxinsert check`: every cheap validation of a shot before it goes to the farm.

Config, colorspaces, plate frames present and the first frame readable, camera poses for every frame,
meshes load, the HDRI loads, Mitsuba's LLVM backend runs, and the model folder exists when set.
Library code: it returns findings; the CLI prints them.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .config import ShotConfig, load_shot
from .errors import VfxInsertError
from .sequences import format_frames


@dataclass(frozen=True)
class Finding:
    """One line of a check: ``ok`` false is a problem that stops the shot; ``warning`` is worth a look."""

    topic: str
    ok: bool
    detail: str
    warning: bool = False


def check_shot(shot_path: str | Path, *, run_llvm: bool = True) -> tuple[ShotConfig | None, list[Finding]]:
    """Validate a shot; the config is None when the shot file itself is invalid (then one finding says why)."""
    try:
        shot = load_shot(shot_path)
    except VfxInsertError as exc:
        return None, [Finding("shot file", False, exc.line())]
    findings = [Finding("shot file", True, f"{shot.path} (schema {shot.schema}, shot {shot.name!r})")]
    steps: list[tuple[str, Callable[[ShotConfig], list[Finding]]]] = [
        ("colour", _check_color), ("plate", _check_plate), ("camera", _check_camera), ("lens", _check_lens),
        ("assets", _check_assets), ("lighting", _check_lighting), ("guidance", _check_guidance),
    ]
    if run_llvm:
        steps.append(("renderer", _check_llvm))
    if shot.render.denoise == "oidn":
        steps.append(("denoiser", _check_denoiser))
    for topic, step in steps:
        try:
            findings.extend(step(shot))
        except VfxInsertError as exc:
            findings.append(Finding(topic, False, exc.line()))
    return shot, findings


def _check_color(shot: ShotConfig) -> list[Finding]:
    from .color import resolve_config_source

    pipeline = shot.color_pipeline()
    _, how = resolve_config_source(shot.color.config)
    from .exr import WORKING_SPACE_CHROMATICITIES

    plate_cs = pipeline.canonical(shot.plate.colorspace, "[plate] colorspace")
    context = "; context " + ", ".join(f"{k}={v}" for k, v in pipeline.context) if pipeline.context else ""
    findings = [Finding("colour", True, f"OCIO config {pipeline.config_name!r} ({how}); plate {plate_cs!r} -> "
                                        f"working {pipeline.working_space!r}"
                                        f"{' (the config scene_linear role)' if not shot.color.working_space else ''}; "
                                        f"display {pipeline.display!r} / {pipeline.view!r}{context}")]
    if pipeline.working_space not in WORKING_SPACE_CHROMATICITIES:
        findings.append(Finding("colour", False, f"working space {pipeline.working_space!r} has no known chromaticities "
                                                 "for the EXR headers. Fix: set [color] working_space to one of "
                                                 + ", ".join(repr(k) for k in WORKING_SPACE_CHROMATICITIES)))
    return findings


def _check_plate(shot: ShotConfig) -> list[Finding]:
    from .plates import open_plate

    p = shot.plate
    findings = []
    with open_plate(p.path, p.frames, layer=p.layer, view=p.view, overscan=p.overscan, nonfinite=p.nonfinite,
                    missing=p.missing_frames) as plate:
        missing = plate.missing_frames()
        if missing:
            text = f"{len(missing)} missing frame(s): {format_frames(missing)}"
            if p.missing_frames == "error":
                findings.append(Finding("plate", False, f"{p.path}: {text}. Fix: render them, fix the range, "
                                                        'or set [plate] missing_frames = "hold"'))
            else:
                findings.append(Finding("plate", True, f"{text} (held from the previous frame)", warning=True))
        present = [f for f in plate.frames if f not in set(missing)]
        first = plate.read(present[0])
        h, w = first.rgb.shape[:2]
        findings.append(Finding("plate", True, f"{plate.kind}, {len(plate.frames)} frame(s) "
                                               f"{plate.frames[0]}-{plate.frames[-1]}, {w}x{h}, "
                                               f"channels {','.join(first.channels)}"))
        findings.append(_timing_finding(shot, plate))
        pa = first.pixel_aspect
        if not 0.25 <= pa <= 4.0:   # also refuses NaN
            findings.append(Finding("plate", False, f"{p.path}: pixel aspect {pa:g} is outside 0.25..4. Fix: set the "
                                                    "plate's pixelAspectRatio to its lens squeeze (2 for 2:1 anamorphic)"))
        elif abs(pa - 1.0) > 1e-6:
            findings.append(Finding("plate", True, f"pixel aspect {pa:g} (non-square pixels, display aspect "
                                                   f"{w * pa / h:.3g}:1): each frame renders on a {pa:g}x wider "
                                                   "square-pixel film, resampled to the plate's pixels"))
        if first.nonfinite:
            findings.append(Finding("plate", True, f"frame {present[0]} has {first.nonfinite} NaN/Inf values "
                                                   f"(policy {p.nonfinite!r})", warning=True))
    return findings


def _timing_finding(shot: ShotConfig, plate) -> Finding:
    """The rate and timecode the outputs will carry; a warning when the rate is a default or the shot
    file contradicts the plate's own."""
    from .timing import shot_timing

    timing = shot_timing(shot, plate)
    if timing.warning:
        return Finding("timing", True, timing.warning, warning=True)
    if timing.plate_fps is not None and timing.plate_fps != timing.fps:
        return Finding("timing", True, f"[plate] fps = {timing.fps} overrides the plate's own {timing.plate_fps} fps",
                       warning=True)
    return Finding("timing", True, timing.describe(list(plate.frames)))


def _check_camera(shot: ShotConfig) -> list[Finding]:
    from .camera import pose_for_frame, read_chan

    cam = shot.camera
    if cam.usd is not None:
        from .shot import ShotContext

        track = ShotContext(shot).track   # reads the stage at every plate frame
        return [Finding("camera", True, f"USD camera {track.source}: {len(track.frames)} frames "
                                        f"{track.frames[0]}-{track.frames[-1]}, focal {track.focal_length_mm[0]:.4g} mm on "
                                        f"{track.filmback_mm[0]:.4g} x {track.filmback_mm[1]:.4g} mm filmback")]
    if cam.track is None:
        return [Finding("camera", True, f"static camera, {cam.focal_length_mm} mm on "
                                        f"{cam.filmback_mm[0]} x {cam.filmback_mm[1]} mm filmback")]
    track = read_chan(cam.track)
    from .plates import open_plate

    with open_plate(shot.plate.path, shot.plate.frames) as plate:
        frames = plate.frames
    for frame in frames:
        pose_for_frame(track, frame)
    return [Finding("camera", True, f"track {cam.track.name}: {len(track.frames)} poses cover frames "
                                    f"{frames[0]}-{frames[-1]}")]


def _check_lens(shot: ShotConfig) -> list[Finding]:
    """``[camera] distortion``: a map of the plate's format for every frame; how far it reaches."""
    if shot.camera.distortion is None:
        return []
    from .lens import distortion_reach
    from .plates import open_plate
    from .shot import ShotContext

    with open_plate(shot.plate.path, shot.plate.frames) as plate:
        (x0, y0), (x1, y1) = plate.read(plate.frames[0]).display_window
    w, h = x1 - x0 + 1, y1 - y0 + 1
    context = ShotContext(shot)
    window = context.lens_window(w, h)   # reads every frame's map
    reach = distortion_reach(context.stmap(context.frames[0], w, h), w, h)
    return [Finding("lens", True, f"ST-map {shot.camera.distortion.name}: {len(context.frames)} frame(s), moves pixels "
                                  f"up to {reach:.1f} px; renders undistorted over {window[2]}x{window[3]} px from "
                                  f"({window[0]}, {window[1]}) for a {w}x{h} plate")]


def _check_assets(shot: ShotConfig) -> list[Finding]:
    from .assets import load_asset_parts

    findings = []
    for i, asset in enumerate(shot.asset):
        parts = load_asset_parts(asset, i)   # MeshError: unreadable, degenerate, or no sane world size
        vertices = np.concatenate([p.vertices for p in parts])
        size = vertices.max(0) - vertices.min(0)
        findings.append(Finding("assets", True, f"#{i + 1} {asset.mesh.name}: {sum(len(p.faces) for p in parts)} "
                                                f"triangles, {size[0]:.3g} x {size[1]:.3g} x {size[2]:.3g} m in the world"))
    return findings


def _check_prior(light) -> Finding:
    """The prior loads (safetensors, a vfxinsert prior of this version); its sidecar's validation figure."""
    from .lighting.prior.estimate import PRIOR_VERSION, load_prior

    prior = load_prior(light.prior)   # ConfigError (what, where, fix) when it does not
    figures = (prior.sidecar() or {}).get("validation_figures") or {}
    figure = ""
    if figures.get("direction_error_deg_median") is not None:
        figure = f", validation: key light {figures['direction_error_deg_median']:.0f} deg median error"
    return Finding("lighting", True, f"init 'prior': {prior.path.name} (version {PRIOR_VERSION}){figure}, "
                                     f"optimize {str(light.optimize).lower()}")


def _check_lighting(shot: ShotConfig) -> list[Finding]:
    from .lighting.hdri import read_hdri

    light = shot.lighting
    findings = []       # (init "auto" is resolved at load)
    if light.init == "prior":
        findings.append(_check_prior(light))
    elif light.init != "hdri":
        findings.append(Finding("lighting", True, f"init {light.init!r}, optimize {str(light.optimize).lower()}"))
    for key, path in (("[lighting] hdri", light.hdri), ("[lighting] compare_hdri", light.compare_hdri)):
        if path is None:
            continue
        hdri = read_hdri(path, key)     # ConfigError when it is no lat-long or holds no light
        h, w = hdri.rgb.shape[:2]
        findings.append(Finding("lighting", True, f"{key} {path.name} {w}x{h}, peak {float(hdri.rgb.max()):.4g}, "
                                                  f"rotate_y {light.rotate_y_deg} deg"))
        findings.extend(Finding("lighting", True, note, warning=True) for note in hdri.notes())
    return findings


def _check_guidance(shot: ShotConfig) -> list[Finding]:
    g = shot.guidance
    if not g.model:
        return [Finding("guidance", True, "no diffusion model set: the weight-free path will be used")]
    local = Path(g.model).expanduser()
    local = local if local.is_absolute() else shot.path.parent / local
    if local.is_dir():
        from .guidance.loading import check_model_folder

        check_model_folder(local, allow_pickle=g.allow_pickle)   # names a missing component
        return [Finding("guidance", True, f"model folder {local} ({g.method})")]
    if g.model.startswith((".", "/", "~")):
        return [Finding("guidance", False, f"[guidance] model: folder {local} does not exist. Fix: check the path")]
    if "@" not in g.model:
        return [Finding("guidance", False, f"[guidance] model: id {g.model!r} is not pinned. "
                                           "Fix: write org/name@revision (a commit or tag)")]
    return [Finding("guidance", True, f"model id {g.model!r} (loaded from the local Hugging Face cache)", warning=True)]


def _check_llvm(shot: ShotConfig) -> list[Finding]:
    from .env import check_llvm_runs

    return [Finding("renderer", True, check_llvm_runs())]


def _check_denoiser(shot: ShotConfig) -> list[Finding]:
    from .denoise import check_denoiser

    return [Finding("denoiser", True, check_denoiser())]
