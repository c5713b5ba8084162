"""Reading an HDRI (``[lighting] hdri`` / ``compare_hdri``) as lighting, with the checks that make it one.

A lat-long HDRI must be 2:1 and at least MIN_HEIGHT texels tall, and hold some light. NaN / Inf texels are
set to 0 and negative ones (which no light source emits) to 0, and both are counted: ``check`` lists them
and ``run`` warns, as plates report theirs.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigError

MIN_HEIGHT = 8
"""The smallest lat-long height accepted (8 x 16 texels: about 11 degrees each)."""


@dataclass(frozen=True, eq=False)
class Hdri:
    """A validated lat-long HDRI: its texels (sanitised) and what was replaced."""

    path: Path
    rgb: np.ndarray
    """(H, 2H, 3) float32, finite and >= 0."""
    nonfinite: int
    """NaN / Inf values that were set to 0."""
    negative: int
    """Negative values that were set to 0."""

    def notes(self) -> list[str]:
        """One line per repair, for ``check`` and the run's warnings."""
        notes = []
        if self.nonfinite:
            notes.append(f"{self.path}: {self.nonfinite} NaN/Inf value(s) set to 0")
        if self.negative:
            notes.append(f"{self.path}: {self.negative} negative value(s) set to 0 (light is never negative)")
        return notes


def read_hdri(path: Path, key: str = "[lighting] hdri") -> Hdri:
    """Read and validate the HDRI at ``path`` (ConfigError naming ``key`` when it cannot light a shot)."""
    from ..plates import read_image

    image = read_image(path, nonfinite="zero")
    rgb = image.rgb
    h, w = rgb.shape[:2]
    if w != 2 * h or h < MIN_HEIGHT:
        raise ConfigError(f"the HDRI is {w}x{h}; a lat-long map is 2:1 and at least {2 * MIN_HEIGHT}x{MIN_HEIGHT}",
                          where=f"{key} {path}", fix="supply an equirectangular (lat-long) map, e.g. 2048x1024")
    negative = int((rgb < 0).sum())
    if negative:
        rgb = np.maximum(rgb, 0.0)
    if not float(rgb.max()) > 0.0:
        raise ConfigError("the HDRI holds no light (no texel is above 0)", where=f"{key} {path}",
                          fix="check the file (an inverted or empty export?) and its colorspace")
    return Hdri(Path(path), np.ascontiguousarray(rgb, dtype=np.float32), image.nonfinite, negative)


def hdri_texels(path: Path, key: str = "[lighting] hdri") -> np.ndarray:
    """The validated texels of the HDRI at ``path``, warning once per repair (the run's path)."""
    from ..errors import warn

    hdri = read_hdri(path, key)
    for note in hdri.notes():
        warn(note)
    return hdri.rgb
