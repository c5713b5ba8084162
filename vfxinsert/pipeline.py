"""The stages of a shot and their order: plate -> lighting -> render.

Each stage writes its artefacts atomically under ``output.dir`` with a hash of its inputs, and skips
work that is already up to date, so a re-run (or a farm retry) redoes only what changed. The CLI and
the farm both drive a shot through these functions; the frames of the plate and render stages are
independent work items (``frames=`` selects a chunk).
"""
from __future__ import annotations

import hashlib
import io
import json
import time
from pathlib import Path
from typing import Callable

import numpy as np

from . import __version__
from .config import ShotConfig
from .errors import VfxInsertError
from .ingest import FrameResult, StageReport, ingest
from .render import Environment, render_frames

FrameCallback = Callable[[FrameResult, int], None]


def environment_cache(shot: ShotConfig) -> Path:
    """Where the lighting stage keeps the solved environment for the render stage."""
    return shot.output.dir / ".cache" / "environment.npz"


def plate_stage(shot: ShotConfig, frames: list[int] | None = None, on_frame: FrameCallback | None = None) -> StageReport:
    """Every plate frame (or a chunk) into the working space: ``<output.dir>/plate/<name>.####.exr``."""
    return ingest(shot, on_frame=on_frame, frames=frames)


def lighting_inputs_hash(shot: ShotConfig, frames: list[int]) -> str:
    """Hash of everything the lighting solve reads: settings, HDRI, and (unless the HDRI is used as it
    is) the working-space plates, reference, assets and camera."""
    from dataclasses import asdict

    from .exr import stored_inputs_hash
    from .fsutil import file_identity
    from .ingest import frame_path

    light = shot.lighting
    ident: list = [__version__, asdict(light), shot.color.working_space, file_identity(light.hdri)]
    if not (light.init == "hdri" and not light.optimize):
        ident += [asdict(shot.optimize), asdict(shot.guidance), asdict(shot.camera), asdict(shot.ground),
                  [asdict(a) for a in shot.asset], [file_identity(a.mesh) for a in shot.asset],
                  [stored_inputs_hash(frame_path(shot.output.dir / "plate", shot.name, f)) for f in frames]]
    return hashlib.sha256(json.dumps(ident, default=str).encode()).hexdigest()[:32]


def lighting_stage(shot: ShotConfig, frames: list[int] | None = None, on_progress: Callable[[str], None] | None = None,
                   on_iteration: Callable[[int, int, float], None] | None = None) -> Environment:
    """Solve the shot's lighting once (or reuse an up-to-date solve) and save it for the renders.

    ``frames``: the plate frames available to the solve (default: all of the shot's).
    """
    from .plates import open_plate
    from .solve import solve_lighting

    if frames is None:
        with open_plate(shot.plate.path, shot.plate.frames) as plate:
            frames = list(plate.frames)
    digest = lighting_inputs_hash(shot, frames)
    cached = _read_environment(shot)
    if cached is not None and cached.description.get("inputs_hash") == digest:
        if on_progress:
            on_progress("lighting: up to date")
        return cached
    checkpoint = shot.output.dir / ".cache" / f"optimise-{digest}.pt"
    env = solve_lighting(shot, frames, on_progress=on_progress, on_iteration=on_iteration, checkpoint=checkpoint)
    env = Environment(env.mitsuba_data, env.latlong, {**env.description, "inputs_hash": digest}, env.lobes, env.tone)
    _write_environment(shot, env)
    for retry in env.description.get("retries", []) if on_progress else []:
        on_progress(f"lighting: diverged and recovered: {retry}")
    if on_progress:
        on_progress(f"lighting: {env.description.get('source')} -> {shot.output.dir / 'lighting.exr'}")
    return env


def load_environment(shot: ShotConfig) -> Environment:
    """The environment the lighting stage saved; VfxInsertError when it has not run."""
    env = _read_environment(shot)
    if env is None:
        raise VfxInsertError("no solved lighting for this shot", where=str(environment_cache(shot)),
                             fix="run the lighting stage first (vfxinsert run does)")
    return env


def render_stage(shot: ShotConfig, frames: list[int] | None = None, on_frame: FrameCallback | None = None,
                 env: Environment | None = None) -> StageReport:
    """Final renders of the shot's frames (or a chunk) with the solved lighting."""
    return render_frames(shot, env or load_environment(shot), frames=frames, on_frame=on_frame)


def _write_environment(shot: ShotConfig, env: Environment) -> None:
    from .fsutil import atomic_write_bytes
    from .lighting import write_lighting

    from .fsutil import atomic_write_text

    write_lighting(shot.output.dir, env.latlong, env.lobes, env.description)
    if env.tone is not None:
        atomic_write_text(shot.output.dir / "tone.json", json.dumps(env.tone, indent=1))
    buf = io.BytesIO()
    lobes = env.lobes
    np.savez(buf, mitsuba_data=env.mitsuba_data, latlong=env.latlong,
             description=np.array(json.dumps(env.description)),
             lobes=np.array(json.dumps(lobes.to_json() if lobes is not None else None)),
             tone=np.array(json.dumps(env.tone)))
    atomic_write_bytes(environment_cache(shot), buf.getvalue())


def _read_environment(shot: ShotConfig) -> Environment | None:
    from .lighting import SGLobes

    path = environment_cache(shot)
    if not path.is_file():
        return None
    try:
        with np.load(path) as data:
            lobes = json.loads(str(data["lobes"]))
            return Environment(data["mitsuba_data"], data["latlong"], json.loads(str(data["description"])),
                               SGLobes.from_json(lobes) if lobes else None, json.loads(str(data["tone"])))
    except (OSError, ValueError, KeyError):  # a damaged cache is recomputed
        return None


def handoff_stage(shot: ShotConfig, reports: list[StageReport], env: Environment, timings: dict[str, float]) -> list[Path]:
    """The compositor's files: ``<name>.nk`` rebuilding the comp from the layers, ``preview.mp4`` and the
    QC report."""
    from .nuke import write_nuke_script
    from .plates import open_plate
    from .preview import write_preview
    from .report import write_report

    written = []
    rendered = [r.frame for r in reports[-1].results if not r.error]
    if rendered:
        written.append(write_nuke_script(shot, rendered))
        with open_plate(shot.plate.path, shot.plate.frames) as plate:
            fps = plate.fps
        written.append(write_preview(shot, rendered, fps))
    written.append(write_report(shot, frame_results=reports, timings=timings,
                                loss_curve=env.description.get("losses"), tone=env.tone))
    return written


def run_shot(shot: ShotConfig, on_frame: Callable[[str], FrameCallback] | None = None,
             on_progress: Callable[[str], None] | None = None,
             on_iteration: Callable[[int, int, float], None] | None = None) -> list[StageReport]:
    """All stages of a shot in order: plate, lighting, render, handoff. The render skips frames whose
    plate stage failed; the handoff (Nuke script, report) covers the frames that rendered."""
    timings: dict[str, float] = {}
    t = time.perf_counter()
    plate = plate_stage(shot, on_frame=on_frame("plate") if on_frame else None)
    timings["plate"] = time.perf_counter() - t
    reports = [plate]
    good = [r.frame for r in plate.results if not r.error]
    if not good:
        return reports
    t = time.perf_counter()
    env = lighting_stage(shot, frames=good, on_progress=on_progress, on_iteration=on_iteration)
    timings["lighting"] = time.perf_counter() - t
    t = time.perf_counter()
    reports.append(render_stage(shot, frames=good, on_frame=on_frame("render") if on_frame else None, env=env))
    timings["render"] = time.perf_counter() - t
    for path in handoff_stage(shot, reports, env, timings):
        if on_progress:
            on_progress(f"handoff: {path}")
    return reports
