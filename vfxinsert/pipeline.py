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
from pathlib import Path
from typing import Callable

import numpy as np

from . import __version__
from .config import ShotConfig
from .errors import ConfigError, VfxInsertError
from .ingest import FrameResult, StageReport, ingest
from .render import Environment, hdri_environment, render_frames

FrameCallback = Callable[[FrameResult, int], None]


def environment_cache(shot: ShotConfig) -> Path:
    """Where the lighting stage keeps the solved environment for the render stage."""
    return shot.output.dir / ".cache" / "environment.npz"


def plate_stage(shot: ShotConfig, frames: list[int] | None = None, on_frame: FrameCallback | None = None) -> StageReport:
    """Every plate frame (or a chunk) into the working space: ``<output.dir>/plate/<name>.####.exr``."""
    return ingest(shot, on_frame=on_frame, frames=frames)


def _lighting_inputs(shot: ShotConfig) -> str:
    light = shot.lighting
    ident: list = [__version__, light.init, light.rotate_y_deg, light.optimize, shot.color.working_space]
    if light.hdri is not None and light.hdri.is_file():
        st = light.hdri.stat()
        ident += [str(light.hdri), st.st_size, st.st_mtime_ns]
    return hashlib.sha256(json.dumps(ident).encode()).hexdigest()[:32]


def lighting_stage(shot: ShotConfig, on_progress: Callable[[str], None] | None = None) -> Environment:
    """Solve the shot's lighting once (or reuse an up-to-date solve) and save it for the renders."""
    digest = _lighting_inputs(shot)
    cached = _read_environment(shot)
    if cached is not None and cached.description.get("inputs_hash") == digest:
        if on_progress:
            on_progress("lighting: up to date")
        return cached
    light = shot.lighting
    if light.init == "hdri" and not light.optimize:
        env = hdri_environment(shot)
    else:
        raise ConfigError(f'lighting.init = "{light.init}" with optimize = {str(light.optimize).lower()} needs '
                          "the lighting optimisation stage, which this version does not have yet",
                          where=f"{shot.path} [lighting]",
                          fix='use init = "hdri" with an on-set HDRI and optimize = false')
    env = Environment(env.mitsuba_data, env.latlong, {**env.description, "inputs_hash": digest}, env.lobes)
    _write_environment(shot, env)
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

    write_lighting(shot.output.dir, env.latlong, env.lobes, env.description)
    buf = io.BytesIO()
    lobes = env.lobes
    np.savez(buf, mitsuba_data=env.mitsuba_data, latlong=env.latlong,
             description=np.array(json.dumps(env.description)),
             lobes=np.array(json.dumps(lobes.to_json() if lobes is not None else None)))
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
                               SGLobes.from_json(lobes) if lobes else None)
    except (OSError, ValueError, KeyError):  # a damaged cache is recomputed
        return None


def run_shot(shot: ShotConfig, on_frame: Callable[[str], FrameCallback] | None = None,
             on_progress: Callable[[str], None] | None = None) -> list[StageReport]:
    """All stages of a shot in order; the render skips frames whose plate stage failed."""
    plate = plate_stage(shot, on_frame=on_frame("plate") if on_frame else None)
    reports = [plate]
    good = [r.frame for r in plate.results if not r.error]
    if not good:
        return reports
    env = lighting_stage(shot, on_progress=on_progress)
    reports.append(render_stage(shot, frames=good, on_frame=on_frame("render") if on_frame else None, env=env))
    return reports
