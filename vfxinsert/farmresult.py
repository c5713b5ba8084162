"""What the farm is asked for and what it returns per shot, and that result as text lines.

Plain data (no Ray): ``farm.py`` submits :class:`ShotRequest` and returns :class:`ShotResult`; the CLI
prints :func:`format_result`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .outputs import FrameResult, StageReport
from .sequences import format_frames


@dataclass(frozen=True)
class ShotRequest:
    """One shot to run: its shot file and, optionally, the frames to render."""

    path: Path
    frames: tuple[int, ...] | None = None
    """Frames to render (each a frame of the shot's plate); None: every frame."""

    @property
    def frames_text(self) -> str:
        return "all" if self.frames is None else format_frames(self.frames)


@dataclass(frozen=True)
class ShotTimings:
    """Where a shot's time went, in seconds."""

    prepare_s: float = 0.0
    """The plate + lighting task, measured inside its worker (excludes queueing and worker start)."""
    render_s: float = 0.0
    """From the first render task's submission to the last one's result (driver clock; 0 when none ran)."""
    handoff_s: float = 0.0
    """The handoff task, measured inside its worker."""
    total_s: float = 0.0
    """From submission to the shot's last result (driver clock)."""


@dataclass(frozen=True)
class ShotResult:
    """What the farm did with one shot."""

    path: Path
    """The shot file as given."""
    name: str | None = None
    """The shot's name (None when the shot file did not load)."""
    plate: StageReport | None = None
    """The plate stage's frames (None when it did not run)."""
    lighting: tuple[str, ...] = ()
    """What the lighting stage said, in order; the last line is "up to date" or where it wrote the solve."""
    render: StageReport | None = None
    """Every rendered frame: written, up to date (``skipped``) or failed with its reason."""
    render_tasks: int = 0
    """How many render tasks (chunks) ran: 0 when every frame was already up to date."""
    handoff: tuple[Path, ...] = ()
    """The handoff's files (``<name>.nk``, ``preview.mp4``, the report), once its task has run."""
    error: str | None = None
    """Why the shot as a whole failed (bad shot file, failed stage, a task that kept dying)."""
    timings: ShotTimings = ShotTimings()

    @property
    def failed_frames(self) -> tuple[FrameResult, ...]:
        return tuple(r for report in (self.plate, self.render) if report for r in report.failed)

    @property
    def ok(self) -> bool:
        """Every frame asked for is rendered and up to date, and the handoff is written."""
        return self.error is None and self.render is not None and not self.failed_frames and bool(self.handoff)


def stage_summary(report: StageReport) -> str:
    """``render: 2 frame(s) written, 1 up to date, 0 failed``: the wording of ``vfxinsert run``."""
    done = [r for r in report.results if not r.error]
    written = sum(1 for r in done if not r.skipped)
    return (f"{report.stage}: {written} frame(s) written, {len(done) - written} up to date, "
            f"{len(report.failed)} failed")


def format_result(result: ShotResult) -> list[str]:
    """A shot's result as plain lines for a terminal or a farm log (the CLI prints them)."""
    label = result.name or str(result.path)
    lines = []
    if result.plate is not None:
        lines.append(f"{label}: {stage_summary(result.plate)}")
    lines += [f"{label}: lighting {line}" for line in result.lighting]
    if result.render is not None:
        lines.append(f"{label}: {stage_summary(result.render)}"
                     + (f" in {result.render_tasks} render task(s)" if result.render_tasks else "; nothing to render"))
    lines += [f"{label}: handoff: {path}" for path in result.handoff]
    for report in (result.plate, result.render):
        for r in report.failed if report else ():
            lines.append(f"{label}: {report.stage} frame {r.frame} FAILED: {r.error}")
    if result.error:
        lines.append(f"{label}: FAILED: {result.error.removeprefix(f'{label}: ')}")
    if result.plate is not None:  # the shot's tasks ran
        t = result.timings
        lines.append(f"{label}: {'done' if result.ok else 'failed'} in {t.total_s:.1f} s "
                     f"(plate + lighting {t.prepare_s:.1f} s, render {t.render_s:.1f} s, handoff {t.handoff_s:.1f} s)")
    return lines
