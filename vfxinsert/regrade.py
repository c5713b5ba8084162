"""``vfxinsert regrade SHOT``: DiPIR's tone-only refinement after the plate was graded.

The plate stage ingests the graded plate again (its frames changed), the solved lighting of the
shot's last run is kept exactly, only the per-keyframe tone curves are fitted again
(``lighting.stage.regrade_tone``), and the frames are rendered and handed off as ``run`` does. The
saved solve then matches the graded plate, so a later ``run`` finds everything up to date.
"""
from __future__ import annotations

import time
from dataclasses import replace
from typing import Callable

from .config import ShotConfig
from .outputs import StageReport
from .pipeline import handoff_stage, plate_stage, render_stage
from .shot import ShotContext
from .status import whole_shot_reports


def regrade_shot(shot: ShotConfig, on_frame: Callable | None = None, on_progress: Callable[[str], None] | None = None,
                 on_iteration: Callable[[int, int, float], None] | None = None) -> list[StageReport]:
    """Plate (re-ingest), tone-only refit with the lighting kept, render, handoff; the stage reports."""
    from .lighting.environment import lighting_inputs_hash, load_environment, save_environment
    from .lighting.stage import regrade_tone

    timings: dict[str, float] = {}
    context = ShotContext(shot)
    env = load_environment(shot)      # the lighting to keep: VfxInsertError when the shot never ran
    t = time.perf_counter()
    plate = plate_stage(shot, on_frame=on_frame("plate") if on_frame else None, context=context)
    timings["plate"] = time.perf_counter() - t
    reports = [plate]
    good = [r.frame for r in plate.results if not r.error]
    if not good:
        return reports
    t = time.perf_counter()
    env = regrade_tone(shot, good, env, context=context, on_progress=on_progress, on_iteration=on_iteration)
    env = replace(env, inputs_hash=lighting_inputs_hash(shot, good))
    save_environment(shot, env)
    timings["lighting"] = time.perf_counter() - t
    t = time.perf_counter()
    reports.append(render_stage(shot, frames=good, on_frame=on_frame("render") if on_frame else None, env=env,
                                context=context))
    timings["render"] = time.perf_counter() - t
    for path in handoff_stage(shot, whole_shot_reports(shot, reports), env, timings, context=context,
                              on_progress=on_progress):
        if on_progress:
            on_progress(f"handoff: {path}")
    return reports
