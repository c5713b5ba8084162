"""``vfxinsert run``: the stages of one shot in one process, in order (``pipeline.py`` has the stages).

Also what a farm manager's steps run (``stages=``: the plate and lighting, a chunk of renders, the
handoff, each on its own worker): a stage run without the ones before it uses their outputs on disk.
"""
from __future__ import annotations

import contextlib
import time
from typing import Callable, Sequence

from .config import ShotConfig
from .errors import OutputError, VfxInsertError
from .lighting.environment import load_environment
from .outputs import StageReport
from .pipeline import STAGES, FrameCallback, Stage, forced, handoff_stage, lighting_stage, plate_stage, render_stage
from .sequences import format_frames, select_frames
from .shot import ShotContext
from .shotlog import ShotLog
from .status import shot_status, whole_shot_reports


def run_shot(shot: ShotConfig, on_frame: Callable[[str], FrameCallback] | None = None,
             on_progress: Callable[[str], None] | None = None,
             on_iteration: Callable[[int, int, float], None] | None = None, *,
             frames: Sequence[int] | None = None, force: Stage | None = None,
             stages: Sequence[Stage] = STAGES, task: str = "run") -> list[StageReport]:
    """The ``stages`` of a shot in order (default all: plate, lighting, render, handoff).

    ``frames``: the frames to render (default: every frame of the shot); the plate stage still covers
    the whole shot, because the lighting is solved once per shot from its keyframes. ``force``: redo
    that stage and the later ones even where they are up to date. A stage run without the ones before
    it uses their outputs on disk (a farm manager's steps: ``stages=("render",)`` with a chunk of frames).
    The render skips frames whose plate stage failed; the handoff covers the shot's rendered frames.
    Raises VfxInsertError when a stage's inputs are missing (no solved lighting for a render). Every
    frame and stage result is appended to the shot log (``shotlog.py``) as ``task``.
    """
    context = ShotContext(shot)
    selected = select_frames(context.frames, frames, f"{shot.path} frames")
    log = ShotLog(shot, task)
    log(f"start: stages {', '.join(stages)}; frames {format_frames(selected)}" + (f"; force {force}" if force else ""))

    def say(line: str) -> None:
        log(line)
        if on_progress:
            on_progress(line)

    def frame_progress(stage: str) -> FrameCallback:
        return log.frames(stage, on_frame(stage) if on_frame else None)

    try:
        reports = _run_stages(shot, context, selected, stages, force, say, frame_progress, on_iteration)
    except VfxInsertError as exc:
        with contextlib.suppress(OutputError):   # a full disk must not hide the error behind the log's own
            log(f"FAILED: {exc.line()}")
        raise
    failed = sum(len(r.failed) for r in reports)
    log(f"done: {failed} frame(s) failed" if failed else "done")
    return reports


def _run_stages(shot: ShotConfig, context: ShotContext, selected: tuple[int, ...], stages: Sequence[Stage],
                force: Stage | None, say: Callable[[str], None], on_frame: Callable[[str], FrameCallback],
                on_iteration) -> list[StageReport]:
    timings: dict[str, float] = {}
    if context.timing.warning:
        say(f"warning: {context.timing.warning}")
    reports: list[StageReport] = []
    good = selected
    if "plate" in stages:
        t = time.perf_counter()
        plate = plate_stage(shot, on_frame=on_frame("plate"), context=context, force=forced(force, "plate"))
        timings["plate"] = time.perf_counter() - t
        reports.append(plate)
        ok = {r.frame for r in plate.results if not r.error}
        if not ok:
            say("plate: no frame could be read, so nothing can be rendered")
            return reports
        good = tuple(f for f in selected if f in ok)
    env = None
    if "lighting" in stages:
        t = time.perf_counter()
        solve_from = sorted(ok) if "plate" in stages else list(shot_status(shot).plate.done)
        env = lighting_stage(shot, frames=solve_from, on_progress=say, on_iteration=on_iteration, context=context,
                             force=forced(force, "lighting"))
        timings["lighting"] = time.perf_counter() - t
    if "render" in stages:
        t = time.perf_counter()
        env = env or load_environment(shot)
        reports.append(render_stage(shot, frames=list(good), on_frame=on_frame("render"), env=env, context=context,
                                    force=forced(force, "render")))
        timings["render"] = time.perf_counter() - t
    if "handoff" in stages:
        for path in handoff_stage(shot, whole_shot_reports(shot, reports), env or load_environment(shot), timings,
                                  context=context, on_progress=say):
            say(f"handoff: {path}")
    return reports
