"""What is done for a shot: per stage, which frames are up to date, stale or missing; the lighting solve.

A frame is *done* when its output EXR exists and carries the inputs hash the stage would write now
(``vfxinsert/inputsHash``, computed by the stage's own function: ``ingest.plate_frame_hash``,
``render.render_frame_hash``), *stale* when the output exists with another hash (or cannot be checked)
and *missing* when there is no output. A re-run redoes exactly the stale and missing frames, so this is
also what ``vfxinsert submit`` uses to skip render work that is already finished.

Library code: it returns typed values and formats lines; the CLI prints them.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Sequence

from .config import ShotConfig
from .errors import VfxInsertError
from .ingest import plate_frame_hash
from .outputs import FrameResult, StageReport, insert_path, working_plate_path
from .sequences import format_frames, select_frames

if TYPE_CHECKING:
    from .lighting.environment import Environment

LightingState = Literal["solved", "stale", "missing"]


@dataclass(frozen=True)
class StageStatus:
    """The frames of one per-frame stage, each in exactly one of three groups."""

    stage: str
    """"plate" or "render"."""
    done: tuple[int, ...]
    """Output present with the inputs hash the stage would write now: a re-run skips these."""
    stale: tuple[int, ...]
    """Output present but made from other inputs or settings (or unreadable): a re-run redoes these."""
    missing: tuple[int, ...]
    """No output yet."""
    note: str | None = None
    """Why the groups may be incomplete (e.g. renders cannot be checked before the lighting is solved)."""

    @property
    def total(self) -> int:
        return len(self.done) + len(self.stale) + len(self.missing)

    @property
    def complete(self) -> bool:
        return not self.stale and not self.missing


@dataclass(frozen=True)
class LightingStatus:
    """The shot's lighting solve (``<output.dir>/.cache/environment.npz``, used by every render)."""

    state: LightingState
    """"solved": present and made from the current inputs; "stale": present, inputs changed; "missing"."""
    source: str | None = None
    """Where the solved lighting came from ("hdri", ...), when solved or stale."""


@dataclass(frozen=True)
class ShotStatus:
    """Everything ``vfxinsert status SHOT`` reports."""

    name: str
    """The shot's name."""
    path: Path
    """The shot file."""
    output_dir: Path
    """Where the shot's outputs go."""
    frames: tuple[int, ...]
    """The shot's plate frames."""
    plate: StageStatus
    lighting: LightingStatus
    render: StageStatus

    @property
    def complete(self) -> bool:
        """Every stage is up to date: a re-run would write nothing."""
        return self.plate.complete and self.lighting.state == "solved" and self.render.complete


def shot_status(shot: ShotConfig, frames: Sequence[int] | None = None) -> ShotStatus:
    """Compare every output of ``shot`` with the inputs hash its stage would write now.

    ``frames``: report only these frames (``--frames``; each must be a frame of the shot). The lighting's
    state is the whole shot's either way: it is solved from the shot's keyframes. Reads EXR headers
    only (no pixels), so it is cheap enough to run before and after farm work. Raises VfxInsertError
    when the plate itself cannot be opened (as the plate stage would).
    """
    from .camera import read_chan
    from .plates import open_plate
    from .render import render_frame_hash, render_settings

    pipeline = shot.color_pipeline()
    # Only the frame -> source-file mapping matters for the hash: it depends on the path, the frames
    # and the missing-frame policy, not on the read options (layer, view, overscan, nonfinite).
    with open_plate(shot.plate.path, shot.plate.frames, missing=shot.plate.missing_frames) as plate:
        every = plate.frames
        plate_hashes: dict[int, str | None] = {}
        for frame in every:
            try:
                plate_hashes[frame] = plate_frame_hash(shot, plate.source_path(frame), pipeline.cache_id)
            except VfxInsertError:  # no source for this frame: the plate stage would fail it
                plate_hashes[frame] = None
    plate_status = _stage_status("plate", {f: (working_plate_path(shot, f), h) for f, h in plate_hashes.items()})
    lighting, env = _lighting_status(shot, plate_status.done)
    if env is None:  # renders depend on the solved lighting: without it, existing ones count as stale
        render_hashes: dict[int, str | None] = dict.fromkeys(every)
    else:
        settings = render_settings(shot, env, read_chan(shot.camera.track) if shot.camera.track else None)
        render_hashes = {f: None if h is None else render_frame_hash(settings, f, h) for f, h in plate_hashes.items()}
    render_status = _stage_status("render", {f: (insert_path(shot, f), h) for f, h in render_hashes.items()})
    if env is None and render_status.stale:
        render_status = replace(render_status, note="the lighting is not solved, so these cannot be checked")
    shown = select_frames(every, frames, "--frames")
    if frames is not None:
        plate_status, render_status = (replace(s, **{g: tuple(f for f in getattr(s, g) if f in shown)
                                                      for g in ("done", "stale", "missing")})
                                       for s in (plate_status, render_status))
    return ShotStatus(shot.name, shot.path, shot.output.dir, tuple(shown), plate_status, lighting, render_status)


def _stage_status(stage: str, expected: dict[int, tuple[Path, str | None]]) -> StageStatus:
    """Group frames by comparing each output's stored hash with the expected one (None: unknown)."""
    from .exr import stored_inputs_hash

    groups: dict[str, list[int]] = {"done": [], "stale": [], "missing": []}
    for frame, (path, want) in sorted(expected.items()):
        if not path.is_file():
            groups["missing"].append(frame)
        elif want is not None and stored_inputs_hash(path) == want:
            groups["done"].append(frame)
        else:
            groups["stale"].append(frame)
    return StageStatus(stage, tuple(groups["done"]), tuple(groups["stale"]), tuple(groups["missing"]))


def _lighting_status(shot: ShotConfig, plates: tuple[int, ...]) -> tuple[LightingStatus, Environment | None]:
    """The lighting solve's state, and the saved environment the renders use (None when there is none).

    ``plates``: the frames whose plate-stage output is up to date, i.e. what a run would solve from.
    """
    # The lighting stage's own inputs hash, so that "solved" means what the stage means by up to date.
    from .lighting.environment import lighting_inputs_hash, load_environment

    try:
        env = load_environment(shot)
    except VfxInsertError:
        return LightingStatus("missing"), None
    digest = lighting_inputs_hash(shot, list(plates))
    state: LightingState = "solved" if env.inputs_hash == digest else "stale"
    return LightingStatus(state, env.source), env


def whole_shot_reports(shot: ShotConfig, reports: list[StageReport]) -> list[StageReport]:
    """``reports`` with the render report (last) extended by the shot's other up-to-date renders."""
    render = next((r for r in reports if r.stage == "render"), StageReport("render", ()))
    seen = {r.frame for r in render.results}
    others = [FrameResult(f, insert_path(shot, f), skipped=True) for f in shot_status(shot).render.done if f not in seen]
    merged = StageReport("render", tuple(sorted([*render.results, *others], key=lambda r: r.frame)))
    return [r for r in reports if r.stage != "render"] + [merged]


def status_json(status: ShotStatus) -> dict:
    """The status as a JSON-ready dict for a farm monitor: frames as lists of numbers, plus their range
    text (``format_frames``), and ``complete``."""
    def stage(s: StageStatus) -> dict:
        groups = {g: list(getattr(s, g)) for g in ("done", "stale", "missing")}
        return {**groups, **{f"{g}_text": format_frames(v) for g, v in groups.items()}, "total": s.total,
                "complete": s.complete, "note": s.note}

    return {"name": status.name, "path": str(status.path), "output_dir": str(status.output_dir),
            "frames": list(status.frames), "frames_text": format_frames(status.frames),
            "plate": stage(status.plate), "lighting": {"state": status.lighting.state, "source": status.lighting.source},
            "render": stage(status.render), "complete": status.complete}


def format_status(status: ShotStatus) -> list[str]:
    """The status as plain lines for a terminal or a farm log (the CLI prints them)."""
    light = status.lighting
    light_text = {"solved": "solved, up to date", "stale": "solved from other inputs: will be re-solved",
                  "missing": "not solved"}[light.state]
    return [f"shot {status.name}: {status.path}",
            f"outputs: {status.output_dir}",
            _stage_line(status.plate),
            f"lighting: {light_text}" + (f" ({light.source})" if light.source else ""),
            _stage_line(status.render),
            "complete: nothing to do" if status.complete else "incomplete: vfxinsert run or submit finishes it"]


def _stage_line(stage: StageStatus) -> str:
    text = f"{stage.stage}: {len(stage.done)}/{stage.total} frame(s) done"
    if stage.stale:
        text += f"; stale {format_frames(stage.stale)}"
    if stage.missing:
        text += f"; missing {format_frames(stage.missing)}"
    return text + (f" ({stage.note})" if stage.note else "")
