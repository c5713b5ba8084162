"""The stages of a shot and their order: plate -> lighting -> render -> handoff.

Each stage writes its artefacts atomically under ``output.dir`` with a hash of its inputs, and skips
work that is already up to date, so a re-run (or a farm retry) redoes only what changed; ``force``
redoes it anyway. ``vfxinsert run`` (``run.py``) and the farm both drive a shot through these
functions; the frames of the plate and render stages are independent work items (``frames=`` selects a chunk). A process builds one ``ShotContext`` and passes
it to every stage it runs (a stage given none builds its own). The solved environment travels from
the lighting stage to the renders through its cache (``lighting.environment.save_environment``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Literal

from .config import ShotConfig
from .ingest import ingest
from .lighting.environment import (Environment, lighting_inputs_hash, load_environment, read_environment,
                                   save_environment)
from .outputs import FrameResult, StageReport
from .render import render_frames
from .shot import ShotContext

FrameCallback = Callable[[FrameResult, int], None]
Stage = Literal["plate", "lighting", "render", "handoff"]
STAGES: tuple[Stage, ...] = ("plate", "lighting", "render", "handoff")
"""The stages in their order; ``force`` names the first one to redo (it and every later one)."""


def forced(force: Stage | None, stage: Stage) -> bool:
    """Whether ``stage`` is redone under ``--force force``: ``force`` and every stage after it."""
    return force is not None and STAGES.index(stage) >= STAGES.index(force)


def plate_stage(shot: ShotConfig, frames: list[int] | None = None, on_frame: FrameCallback | None = None,
                context: ShotContext | None = None, force: bool = False) -> StageReport:
    """Every plate frame (or a chunk) into the working space: ``<output.dir>/plate/<name>.####.exr``."""
    return ingest(shot, on_frame=on_frame, frames=frames, context=context, force=force)


def lighting_stage(shot: ShotConfig, frames: list[int] | None = None, on_progress: Callable[[str], None] | None = None,
                   on_iteration: Callable[[int, int, float], None] | None = None,
                   context: ShotContext | None = None, force: bool = False) -> Environment:
    """Solve the shot's lighting once (or reuse an up-to-date solve) and save it for the renders.

    ``frames``: the plate frames available to the solve (default: all of the shot's). ``force``: solve
    again from the start even when the saved solve is up to date (its checkpoint is dropped).
    """
    from dataclasses import replace

    from .lighting.stage import solve_lighting

    context = context or ShotContext(shot)
    frames = list(context.frames) if frames is None else frames
    digest = lighting_inputs_hash(shot, frames)
    cached = read_environment(shot)
    if not force and cached is not None and cached.inputs_hash == digest:
        if on_progress:
            on_progress("lighting: up to date")
        return cached
    checkpoint = shot.output.dir / ".cache" / f"optimise-{digest}.pt"
    if force:
        checkpoint.unlink(missing_ok=True)
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
                 env: Environment | None = None, context: ShotContext | None = None,
                 force: bool = False) -> StageReport:
    """Final renders of the shot's frames (or a chunk) with the solved lighting."""
    return render_frames(shot, env or load_environment(shot), frames=frames, on_frame=on_frame, context=context,
                         force=force)


def handoff_stage(shot: ShotConfig, reports: list[StageReport], env: Environment, timings: dict[str, float],
                  context: ShotContext | None = None, on_progress: Callable[[str], None] | None = None) -> list[Path]:
    """The compositor's files for the whole shot: ``<name>.nk`` rebuilding the comp from the layers,
    ``preview.mp4`` and the QC report.

    ``reports``: the plate and render reports, the render one last; give it every frame of the shot
    whose render is up to date (``status.whole_shot_reports``), not only this run's (a ``--frames``
    re-render, a farm chunk), so the handoff covers the shot. The script and the preview are written only
    when every frame of the shot is rendered and up to date (a preview or script covering part of the
    shot must not look like the shot's, ``on_progress`` says why not); the report always is, and lists
    the failures.
    """
    from .nuke import write_nuke_script
    from .preview import write_preview
    from .report import write_report
    from .sequences import format_frames

    context = context or ShotContext(shot)
    written = []
    done = [r.frame for r in reports[-1].results if not r.error]
    missing = sorted(set(context.frames) - set(done))
    if missing:
        if on_progress:
            on_progress(f"handoff: {shot.name}.nk and preview.mp4 not written: frame(s) {format_frames(missing)} have "
                        "no up-to-date layers (render them and run the handoff again; the report lists failures)")
    else:
        written.append(write_nuke_script(shot, done))
        timing = context.timing
        written.append(write_preview(shot, done, timing.fps, timecode=timing.timecode(done[0])))
    written.append(write_report(shot, frame_results=reports, timings=timings,
                                loss_curve=list(env.solve.losses) if env.solve else None,
                                tone=env.tone.to_json() if env.tone is not None else None))
    return written
