"""The output data model every stage shares: where a frame's file lives and what a stage did per frame.

Per-element results in a batch API (OpenTimelineIO style): a stage never stops at a bad frame; it
records a :class:`FrameResult` with the error and goes on, and returns a :class:`StageReport`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import VfxInsertError

if TYPE_CHECKING:
    from .config import ShotConfig


OUTPUT_SUBFOLDERS = ("plate", "report", ".cache", "logs", "undistorted", "ocio")
"""The folders the stages write into under ``output.dir`` (working plates, the QC report, caches, the shot
log, the undistorted renders of a shot with lens distortion, the OCIO config exported for Nuke)."""


def is_output_name(file_name: str, shot_name: str) -> bool:
    """Whether a stage may write a file of this name directly into ``output.dir``."""
    fixed = {f"{shot_name}.nk", "preview.mp4", "lighting.exr", "lighting.json", "tone.json"}
    return file_name in fixed or re.fullmatch(rf"{re.escape(shot_name)}\.-?\d+\.exr", file_name) is not None


def frame_path(folder: Path, name: str, frame: int) -> Path:
    """``folder/name.####.exr`` with the plate's frame number: 4 digits, more when needed, and a minus
    sign counted in the width as printf and Nuke do (-1 -> ``-001``), so ``####`` reads it back."""
    return folder / f"{name}.{frame:04d}.exr"


@dataclass(frozen=True)
class FrameResult:
    """What a stage did with one frame: written (``path``), skipped as up to date, or failed (``error``)."""

    frame: int
    path: Path | None = None
    error: str | None = None
    """The error as one line (what, where, fix); None when the frame is done."""
    skipped: bool = False
    """The output existed with the same inputs hash: nothing was redone."""
    held_from: int | None = None
    """A missing plate frame held from this earlier frame (``missing_frames = "hold"``)."""
    nonfinite: int = 0
    """NaN/Inf plate pixels replaced under the ``nonfinite`` policy."""


@dataclass(frozen=True)
class StageReport:
    """The per-frame results of one stage (``plate``, ``render``) over the frames it was given."""

    stage: str
    results: tuple[FrameResult, ...]

    @property
    def failed(self) -> tuple[FrameResult, ...]:
        return tuple(r for r in self.results if r.error)


def frame_error(exc: Exception) -> str:
    """One line for a frame that failed: a VfxInsertError's own line, else the exception's type and text
    (a Mitsuba ``RuntimeError``, a numpy error: the frame is reported and the shot goes on)."""
    return exc.line() if isinstance(exc, VfxInsertError) else f"{type(exc).__name__}: {exc}"


def working_plate_path(shot: ShotConfig, frame: int) -> Path:
    """The plate stage's working-space EXR of ``frame``: ``<output.dir>/plate/<name>.####.exr``."""
    return frame_path(shot.output.dir / "plate", shot.name, frame)


def insert_path(shot: ShotConfig, frame: int) -> Path:
    """The render stage's layers EXR of ``frame``: ``<output.dir>/<name>.####.exr``."""
    return frame_path(shot.output.dir, shot.name, frame)


def undistorted_path(shot: ShotConfig, frame: int) -> Path:
    """The undistorted, overscanned render of ``frame`` (``[camera] distortion``): ``<output.dir>/undistorted/<name>.####.exr``."""
    return frame_path(shot.output.dir / "undistorted", shot.name, frame)
