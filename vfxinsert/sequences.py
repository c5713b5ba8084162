"""Frame-numbered file names and frame-range text, with ``fileseq`` (the VFX library for both): one copy
of each, used by every module.

- Patterns: ``plate.####.exr`` (one ``#`` per digit, as Nuke writes them) or printf ``plate.%04d.exr``.
- Frame ranges: fileseq's syntax, ``1001-1050``, ``1001-1100x2`` (every 2nd frame), ``1010,1020``,
  ``1001-1100y10`` (all but every 10th); :func:`format_frames` writes the same syntax back.
"""
from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass

from .errors import ConfigError, PlateError

_RUN = re.compile(r"#+|%0?\d*d")
"""A run of frame-number tokens: how many a name has (fileseq finds where the one run is)."""


@dataclass(frozen=True)
class SequencePattern:
    """A frame-numbered file name: ``head`` + the frame number padded to ``padding`` digits + ``tail``."""

    template: str
    """The pattern as written, e.g. ``shots/plate.####.exr`` or ``plate.%04d.exr``."""
    head: str
    """Everything before the frame number (folder included)."""
    padding: int
    """Minimum width (``####`` and ``%04d`` = 4; ``%d`` = 1, no padding). Longer numbers are not cut."""
    tail: str
    """Everything after the frame number (extension included)."""

    def path_for(self, frame: int) -> str:
        """The file of ``frame``, formatted like printf ``%0Nd`` as Nuke does for ``####`` too: a negative
        frame puts its minus sign before the zeros, and the sign counts towards the width (-1 -> ``-001``)."""
        return f"{self.head}{frame:0{self.padding}d}{self.tail}"


def parse_pattern(path: str | os.PathLike) -> SequencePattern | None:
    """The frame pattern in ``path``'s file name, or None when it has none (a still, a movie).

    One run of ``#`` (one per digit) or one printf ``%0Nd`` / ``%d``, found by fileseq with Nuke's
    padding (``#`` = one digit). A ``#`` or ``%`` in the folder part is taken literally, and a name
    with a frame number written out (``plate.1001.exr``) is a single file.
    """
    import fileseq

    folder, name = os.path.split(str(path))
    runs = len(_RUN.findall(name))
    if not runs:
        return None
    fix = "write the frame number once, as plate.####.exr or plate.%04d.exr"
    if runs > 1:
        raise PlateError(f"the file name {name!r} has {runs} frame-number runs; a sequence needs exactly one",
                         where=str(path), fix=fix)
    try:
        seq = fileseq.FileSequence(name, pad_style=fileseq.PAD_STYLE_HASH1)
    except fileseq.ParseException:
        seq = None
    if seq is None or not seq.padding() or seq.frameSet() is not None:
        raise PlateError(f"the file name {name!r} has a frame-number token fileseq cannot read", where=str(path),
                         fix=fix)
    head, tail = seq.basename(), seq.extension()
    return SequencePattern(str(path), os.path.join(folder, head) if folder else head, seq.zfill(), tail)


def format_frames(frames: Iterable[int]) -> str:
    """Frame numbers as fileseq range text: ``1001-1010,1012``, ``1001-1011x2``; ``-`` when there are none.

    :func:`parse_frames` reads it back to the same frames.
    """
    import fileseq

    ordered = sorted(set(int(f) for f in frames))
    return fileseq.FrameSet.from_iterable(ordered, sort=True).frange if ordered else "-"


def parse_frames(text: str, where: str = "--frames") -> tuple[int, ...]:
    """The frames of a fileseq range (``1001-1050``, ``1001-1100x2``, ``1010,1020``), sorted, each once.

    ConfigError for text that is not a range of whole frame numbers. fileseq's ``:`` (stagger, which
    only reorders) is refused: in Open Job Description ranges ``1-10:2`` means a step, here ``1-10x2``.
    """
    import fileseq

    fix = "write frames as fileseq ranges: 1001-1050, 1001-1100x2 (every 2nd), 1010,1020"
    if ":" in text:
        raise ConfigError(f"frame range {text!r} uses ':'", where=where,
                          fix="write a step with 'x' (1001-1100x2): " + fix)
    try:
        frames = fileseq.FrameSet(text.replace(" ", ""))
    except (fileseq.ParseException, ValueError) as exc:
        raise ConfigError(f"frame range {text!r} cannot be read ({str(exc).splitlines()[0]})", where=where,
                          fix=fix) from None
    if not len(frames):
        raise ConfigError(f"frame range {text!r} has no frames", where=where, fix=fix)
    values = list(frames)
    if any(int(v) != v for v in values):
        raise ConfigError(f"frame range {text!r} has sub-frames", where=where, fix="use whole frame numbers")
    return tuple(sorted({int(v) for v in values}))


def select_frames(available: Iterable[int], wanted: Iterable[int] | None, where: str) -> tuple[int, ...]:
    """The ``wanted`` frames (all of ``available`` when None), each of them one of ``available``.

    ConfigError naming the frames outside, e.g. a ``--frames`` range beyond the shot's plate.
    """
    available = tuple(available)
    if wanted is None:
        return available
    wanted = tuple(sorted(set(wanted)))
    outside = sorted(set(wanted) - set(available))
    if outside:
        raise ConfigError(f"frame(s) {format_frames(outside)} are not frames of the shot ({format_frames(available)})",
                          where=where, fix="choose frames inside the plate's range (vfxinsert status lists them)")
    return wanted
