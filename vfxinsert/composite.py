"""The layer identity of architecture.md, on one render's layers: ``comp = rgb + (1 - A) * plate * shadow``.

The layers of a render (integrator.py, in order): premultiplied object ``R, G, B``, ``A``, then the
ground radiance with (``pw``) and without (``pu``) the object and the ground coverage. numpy or torch
alike, so the loop (differentiable) and the final renders share one definition.
"""
from __future__ import annotations

import numpy as np


def composite(layers, plate, eps: float = 1e-8):
    """Split layers into (object_rgb, alpha, shadow_ratio, comp); works on numpy arrays and torch tensors.

    ``shadow = pw / pu`` where the ground was seen (pu > eps), else exactly 1, and
    ``comp = rgb + (1 - A) * plate * shadow`` (architecture.md).
    """
    rgb, alpha = layers[..., 0:3], layers[..., 3:4]
    pw, pu = layers[..., 4:7], layers[..., 7:10]
    if isinstance(layers, np.ndarray):
        shadow = np.where(pu > eps, pw / np.maximum(pu, eps), 1.0).astype(layers.dtype)
    else:
        import torch

        shadow = torch.where(pu > eps, pw / pu.clamp_min(eps), torch.ones_like(pu))
    return rgb, alpha, shadow, rgb + (1.0 - alpha) * plate * shadow
