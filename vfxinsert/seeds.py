"""Seeds: every random draw of vfxinsert takes one derived from (shot, frame, iteration).

A re-run, a farm retry or a resumed optimisation therefore draws the same numbers and gives the same
result on the same machine (../shared/design/style.md, rule 4).
"""
from __future__ import annotations

import zlib


def frame_seed(shot_name: str, frame: int, iteration: int = 0) -> int:
    """A deterministic seed for (shot, frame, iteration): re-running a frame reproduces it bit for bit."""
    return zlib.crc32(f"{shot_name}:{frame}:{iteration}".encode()) & 0x7FFFFFFF
