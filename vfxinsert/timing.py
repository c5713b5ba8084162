"""A shot's frame rate and timecode: from the shot file, else from the plate, else 24 fps with a warning.

- Rate: ``[plate] fps`` (``"24000/1001"``, ``23.976``, ``25``) when set; else the plate's own: an EXR's
  ``framesPerSecond``, a movie's stream rate; else :data:`DEFAULT_FPS`, and :attr:`ShotTiming.warning`
  says so (``run``, ``submit`` and ``check`` show it).
- Timecode: the plate's own, an EXR's ``timeCode`` or a movie's start timecode (its ``tmcd`` track or
  ``timecode`` tag), anchored at the frame it was read from; frame ``f`` is that timecode plus the
  frames in between, counted at the rate (drop-frame when the plate's is, ``HH:MM:SS;FF``), with
  OpenTimelineIO's timecode arithmetic.

Every output carries both: EXR ``framesPerSecond`` / ``timeCode``, ``preview.mp4``'s rate and timecode
track, the ``.nk`` Root ``fps`` (from the EXRs), a row of the QC report.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Literal

from .errors import ConfigError, PlateError

if TYPE_CHECKING:
    from .config import ShotConfig
    from .plates import PlateSource

DEFAULT_FPS = Fraction(24)
"""The rate used when neither the shot file nor the plate gives one (with a warning)."""
_NTSC_BASES = (24, 30, 48, 60, 120)
"""Rates n * 1000/1001 that a decimal like 23.976 or 29.97 stands for."""
_TIMECODE = re.compile(r"^(\d{1,2}):(\d{2}):(\d{2})([:;.,])(\d{2,3})$")


def parse_fps(value: str | float | int, where: str) -> Fraction:
    """A frame rate as an exact fraction: ``"24000/1001"``, ``"25"``, ``24``; a decimal NTSC rate
    (``23.976``, ``"29.97"``, ``59.94``) is the n * 1000/1001 it stands for. ConfigError otherwise."""
    fix = 'write the rate as a number or a fraction: fps = "24000/1001", fps = 25'
    try:
        rate = Fraction(value.strip()) if isinstance(value, str) else Fraction(value)
    except (ValueError, ZeroDivisionError, OverflowError, TypeError):
        raise ConfigError(f"fps {value!r} is not a frame rate", where=where, fix=fix) from None
    if not 0 < rate <= 1000:
        raise ConfigError(f"fps {value!r} is outside 0..1000 frames per second", where=where, fix=fix)
    if isinstance(value, float) or (isinstance(value, str) and "." in value):  # a decimal: find what it means
        for base in _NTSC_BASES:
            ntsc = Fraction(base * 1000, 1001)
            if abs(rate - ntsc) < Fraction(1, 100):
                return ntsc
        rate = rate.limit_denominator(1000)
    return rate


@dataclass(frozen=True)
class ShotTiming:
    """The rate and timecode every output of a shot carries (see the module docstring)."""

    fps: Fraction
    source: Literal["shot file", "plate", "default"]
    """Where the rate came from."""
    plate_fps: Fraction | None = None
    """The plate's own rate, when it has one (``check`` warns when the shot file says otherwise)."""
    anchor: tuple[int, str] | None = None
    """(frame, its timecode) as read from the plate; None when the plate has no timecode."""

    @property
    def warning(self) -> str | None:
        """Why the rate is a guess, or None."""
        if self.source != "default":
            return None
        return (f"no frame rate known (no [plate] fps, and the plate carries none): outputs use {self.fps} fps. "
                'Fix: set [plate] fps, e.g. fps = "24000/1001"')

    def timecode(self, frame: int) -> str | None:
        """The timecode of ``frame`` (``HH:MM:SS:FF``; ``;`` before the frames when drop-frame), or None."""
        if self.anchor is None:
            return None
        import opentimelineio.opentime as ot

        anchor_frame, text = self.anchor
        rate = float(self.fps)
        drop = ";" in text
        try:
            start = ot.from_timecode(text, rate)
            return ot.RationalTime(start.value + frame - anchor_frame, rate).to_timecode(rate, drop)
        except ValueError as exc:
            raise PlateError(f"timecode {text} cannot be counted at {self.fps} fps ({exc})",
                             fix="set [plate] fps to the plate's real rate (drop-frame needs 30000/1001 or 60000/1001)"
                             ) from exc

    def describe(self, frames: list[int]) -> str:
        """One line for the QC report: the rate, where it came from, the timecode of the first and last frame."""
        text = f"{self.fps} fps ({float(self.fps):.3f}, {self.source})"
        if frames and self.anchor is not None:
            text += f"; timecode {self.timecode(frames[0])} - {self.timecode(frames[-1])}"
        else:
            text += "; no timecode (the plate carries none)"
        return text


def shot_timing(shot: ShotConfig, plate: PlateSource) -> ShotTiming:
    """The shot's timing from its config and its opened plate (reads one EXR header at most)."""
    plate_fps, anchor = plate.fps, None
    if plate.kind == "movie":
        anchor = (plate.frames[0], plate.timecode) if plate.timecode else None
    else:
        present = [f for f in plate.frames if f not in set(plate.missing_frames())]
        if present and plate.source_path(present[0]).lower().endswith(".exr"):
            exr_fps, exr_tc = _exr_timing(plate.source_path(present[0]))
            plate_fps = exr_fps
            anchor = (present[0], exr_tc) if exr_tc else None
    configured = shot.plate.frame_rate
    if configured is not None:
        return ShotTiming(configured, "shot file", plate_fps, anchor)
    if plate_fps is not None:
        return ShotTiming(plate_fps, "plate", plate_fps, anchor)
    return ShotTiming(DEFAULT_FPS, "default", None, anchor)


def _exr_timing(path: str) -> tuple[Fraction | None, str | None]:
    """An EXR's ``framesPerSecond`` and ``timeCode`` (as text), each None when absent or unreadable."""
    import OpenEXR

    try:
        with OpenEXR.File(path, header_only=True) as exr:  # the header empties when the file closes
            header = exr.header()
            fps = header.get("framesPerSecond")
            tc = header.get("timeCode")
            text = None if tc is None else format_exr_timecode(tc)
    except (RuntimeError, ValueError, OSError):
        return None, None  # the plate stage reports an unreadable frame; timing is not its place
    rate = Fraction(fps) if fps else None
    return (rate if rate and rate > 0 else None), text


def format_exr_timecode(tc) -> str:
    """An ``OpenEXR.TimeCode`` as ``HH:MM:SS:FF`` (``;`` when its drop-frame flag is set)."""
    return f"{tc.hours:02d}:{tc.minutes:02d}:{tc.seconds:02d}{';' if tc.dropFrame else ':'}{tc.frame:02d}"


def exr_timecode(text: str):
    """``HH:MM:SS:FF`` (``;`` = drop-frame) as an ``OpenEXR.TimeCode`` for an EXR header."""
    import OpenEXR

    match = _TIMECODE.match(text)
    if match is None:
        raise PlateError(f"timecode {text!r} is not HH:MM:SS:FF", fix="give a timecode like 01:00:00:00")
    tc = OpenEXR.TimeCode()
    tc.hours, tc.minutes, tc.seconds, tc.frame = (int(match.group(i)) for i in (1, 2, 3, 5))
    tc.dropFrame = match.group(4) in ";,"
    return tc
