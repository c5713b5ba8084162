"""Frame-numbered file names and frame-range text: one copy of each, used by every module."""
from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass

from .errors import PlateError


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


def parse_pattern(path: str) -> SequencePattern | None:
    """The frame pattern in ``path``'s file name, or None when it has none.

    Accepts one run of ``#`` (one per digit, anywhere in the file name) or one printf ``%0Nd`` / ``%d``.
    A ``#`` or ``%`` in the folder part is taken literally.
    """
    folder, name = os.path.split(str(path))
    runs = [(m.start(), m.end(), m.end() - m.start()) for m in re.finditer(r"#+", name)]
    runs += [(m.start(), m.end(), int(m.group(1) or 1)) for m in re.finditer(r"%(?:0(\d+))?d", name)]
    if not runs:
        return None
    if len(runs) > 1:
        raise PlateError(f"the file name {name!r} has {len(runs)} frame-number runs; a sequence needs exactly one",
                         where=str(path), fix="write the frame number once, e.g. plate.####.exr or plate.%04d.exr")
    start, end, padding = runs[0]
    head = os.path.join(folder, name[:start]) if folder else name[:start]
    return SequencePattern(str(path), head, padding, name[end:])


def format_frames(frames: Iterable[int]) -> str:
    """Frame numbers as inclusive ranges: ``1001-1010, 1012``; ``-`` when there are none."""
    ordered = sorted(set(frames))
    if not ordered:
        return "-"
    spans = []
    first = last = ordered[0]
    for f in ordered[1:]:
        if f == last + 1:
            last = f
            continue
        spans.append((first, last))
        first = last = f
    spans.append((first, last))
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)
