"""Rotations about the world axes (right-handed, degrees, column vectors), shared by the camera
conventions (camera.py), the asset transforms (assets.py) and the lat-long maps (lighting/panorama.py)."""
from __future__ import annotations

import math

import numpy as np


def axis_rotation(axis: str, angle_deg: float) -> np.ndarray:
    """3x3 right-handed rotation about the world ``"x"``, ``"y"`` or ``"z"`` axis (column vectors)."""
    a = math.radians(angle_deg)
    c, s = math.cos(a), math.sin(a)
    i, j = {"x": (1, 2), "y": (2, 0), "z": (0, 1)}[axis]
    rot = np.eye(3)
    rot[i, i], rot[i, j], rot[j, i], rot[j, j] = c, -s, s, c
    return rot
