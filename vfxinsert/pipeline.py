"""The stages of a shot and their order: plate -> lighting -> render.

Each stage writes its artefacts atomically under ``output.dir`` with a hash of its inputs, and skips
work that is already up to date, so a re-run (or a farm retry) redoes only what changed. The CLI and
the farm both drive a shot through these functions; the frames of the plate and render stages are
independent work items (``frames=`` selects a chunk). A process builds one ``ShotContext`` and passes
it to every stage it runs (a stage given none builds its own). The solved environment travels from
the lighting stage to the renders through its cache (``lighting.environment.save_environment``).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from .config import ShotConfig
from .ingest import ingest
from .lighting.environment import (Environment, lighting_inputs_hash, load_environment, read_environment,
                                   save_environment)
from .outputs import FrameResult, StageReport, insert_path
from .render import render_frames
from .shot import ShotContext

FrameCallback = Callable[[FrameResult, int], None]


def plate_stage(shot: ShotConfig, frames: list[int] | None = None, on_frame: FrameCallback | None = None,
                context: ShotContext | None = None) -> StageReport:
    """Every plate frame (or a chunk) into the working space: ``<output.dir>/plate/<name>.####.exr``."""
    return ingest(shot, on_frame=on_frame, frames=frames, context=context)


def lighting_stage(shot: ShotConfig, frames: list[int] | None = None, on_progress: Callable[[str], None] | None = None,
                   on_iteration: Callable[[int, int, float], None] | None = None,
                   context: ShotContext | None = None) -> Environment:
    """Solve the shot's lighting once (or reuse an up-to-date solve) and save it for the renders.

    ``frames``: the plate frames available to the solve (default: all of the shot's).
    """
    from dataclasses import replace

    from .lighting.stage import solve_lighting

    context = context or ShotContext(shot)
    frames = list(context.frames) if frames is None else frames
    digest = lighting_inputs_hash(shot, frames)
    cached = read_environment(shot)
    if cached is not None and cached.inputs_hash == digest:
        if on_progress:
            on_progress("lighting: up to date")
        return cached
    checkpoint = shot.output.dir / ".cache" / f"optimise-{digest}.pt"
    env = solve_lighting(shot, frames, context=context, on_progress=on_progress, on_iteration=on_iteration,
                         checkpoint=checkpoint)
    env = replace(env, inputs_hash=digest, ground_albedo=context.ground_albedo)
    save_environment(shot, env)
    for retry in env.solve.retries if on_progress and env.solve else ():
        on_progress(f"lighting: diverged and recovered: {retry}")
    if on_progress:
        on_progress(f"lighting: {env.source} -> {shot.output.dir / 'lighting.exr'}")
    return env


def render_stage(shot: ShotConfig, frames: list[int] | None = None, on_frame: FrameCallback | None = None,
                 env: Environment | None = None, context: ShotContext | None = None) -> StageReport:
    """Final renders of the shot's frames (or a chunk) with the solved lighting."""
    return render_frames(shot, env or load_environment(shot), frames=frames, on_frame=on_frame, context=context)


def handoff_stage(shot: ShotConfig, reports: list[StageReport], env: Environment, timings: dict[str, float],
                  on_progress: Callable[[str], None] | None = None) -> list[Path]:
    """The compositor's files: ``<name>.nk`` rebuilding the comp from the layers, ``preview.mp4`` and the
    QC report. The script and the preview are written only when every frame of the shot has its layers
    (a preview or script covering part of the shot must not look like the shot's); the report always is,
    and says which frames failed."""
    from .nuke import write_nuke_script
    from .plates import open_plate
    from .preview import write_preview
    from .report import write_report
    from .sequences import format_frames

    written = []
    failed = {r.frame for r in reports[-1].results if r.error}
    frames = ShotContext(shot).frames
    missing = [f for f in frames if f in failed or not insert_path(shot, f).is_file()]
    if missing:
        if on_progress:
            on_progress(f"handoff: {shot.name}.nk and preview.mp4 not written: frame(s) {format_frames(missing)} have "
                        "no layers (fix them and run again; the report lists why)")
    else:
        written.append(write_nuke_script(shot, list(frames)))
        with open_plate(shot.plate.path, shot.plate.frames) as plate:
            fps = plate.fps
        written.append(write_preview(shot, list(frames), fps))
    written.append(write_report(shot, frame_results=reports, timings=timings,
                                loss_curve=list(env.solve.losses) if env.solve else None,
                                tone=env.tone.to_json() if env.tone is not None else None))
    return written


def run_shot(shot: ShotConfig, on_frame: Callable[[str], FrameCallback] | None = None,
             on_progress: Callable[[str], None] | None = None,
             on_iteration: Callable[[int, int, float], None] | None = None) -> list[StageReport]:
    """All stages of a shot in order: plate, lighting, render, handoff. The render skips frames whose
    plate stage failed; the handoff (Nuke script, report) covers the frames that rendered."""
    timings: dict[str, float] = {}
    context = ShotContext(shot)
    t = time.perf_counter()
    plate = plate_stage(shot, on_frame=on_frame("plate") if on_frame else None, context=context)
    timings["plate"] = time.perf_counter() - t
    reports = [plate]
    good = [r.frame for r in plate.results if not r.error]
    if not good:
        return reports
    t = time.perf_counter()
    env = lighting_stage(shot, frames=good, on_progress=on_progress, on_iteration=on_iteration, context=context)
    timings["lighting"] = time.perf_counter() - t
    t = time.perf_counter()
    reports.append(render_stage(shot, frames=good, on_frame=on_frame("render") if on_frame else None, env=env,
                                context=context))
    timings["render"] = time.perf_counter() - t
    for path in handoff_stage(shot, reports, env, timings, on_progress):
        if on_progress:
            on_progress(f"handoff: {path}")
    return reports
