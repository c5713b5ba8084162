"""The shot's display view as a differentiable torch transform: what the diffusion model sees.

method.md: the diffusion model sees a display-referred image, through the shot's ``[color] display`` /
``view`` (the transform the artists look through), not a fixed curve. OCIO runs on numpy only, so the
view is baked once per shot from the shot's OCIO processor (``color.ColorPipeline``, read-only) into:

- the exact sRGB curve (``color.srgb_encode_torch``, continued above 1) when OCIO's view *is* that curve
  per channel (the default "sRGB - Display" / "Un-tone-mapped"): exact, no LUT;
- else a per-channel 1D LUT when the view has no cross-talk between channels, or a 3D LUT (trilinear)
  when it has (ACES output transforms), both on a log2 shaper over 0 .. ``LUT_MAX`` scene-linear.

``objectives.display_for_model`` then limits the displayed values to 0..1 with a straight-through clamp.
torch and OCIO are imported inside the functions that use them.
"""
from __future__ import annotations

import functools
import math

import numpy as np

from ..color import ColorPipeline, srgb_encode_torch

LUT_MAX = 2.0 ** 10
"""Largest scene-linear value the baked LUTs cover (brighter values read as this one)."""
SHAPER_FLOOR = 2.0 ** -12
"""log2 shaper offset: ``u = log2(x + floor)`` spans 0 .. LUT_MAX in 22 stops."""
LUT_1D = 4096
LUT_3D = 65


def _shaper(x):
    import torch

    lo, hi = math.log2(SHAPER_FLOOR), math.log2(LUT_MAX + SHAPER_FLOOR)
    return (torch.log2(x.clamp(0.0, LUT_MAX) + SHAPER_FLOOR) - lo) / (hi - lo)


def _shaper_inverse(u: np.ndarray) -> np.ndarray:
    lo, hi = math.log2(SHAPER_FLOOR), math.log2(LUT_MAX + SHAPER_FLOOR)
    return np.maximum(np.exp2(lo + u * (hi - lo)) - SHAPER_FLOOR, 0.0)


class DisplayView:
    """Working-space linear RGB (..., 3) torch -> the display view's values (differentiable).

    ``kind``: "srgb" (the exact curve), "lut1d" or "lut3d" (baked from OCIO), chosen by :meth:`bake`.
    """

    def __init__(self, kind: str = "srgb", table: np.ndarray | None = None, name: str = "sRGB (exact)"):
        self.kind = kind
        self.name = name
        self._table = table
        self._tensors: dict = {}

    @classmethod
    def bake(cls, pipeline: ColorPipeline | None) -> "DisplayView":
        """The view of ``pipeline`` (None: the default sRGB view), baked as the module docstring says."""
        if pipeline is None:
            return cls()
        return _baked(pipeline.source, pipeline.cache_id, pipeline.working_space, pipeline.display, pipeline.view,
                      pipeline.context)

    def __call__(self, rgb):
        import torch

        if self.kind == "srgb":
            return srgb_encode_torch(rgb, clip=False)
        key = str(rgb.device)
        if key not in self._tensors:
            self._tensors[key] = torch.as_tensor(self._table, dtype=torch.float32, device=rgb.device)
        table = self._tensors[key]
        u = _shaper(rgb.float())
        if self.kind == "lut1d":   # (3, N): linear interpolation per channel
            pos = u * (table.shape[1] - 1)
            i0 = pos.floor().clamp(0, table.shape[1] - 2).long()
            f = pos - i0
            out = [table[c][i0[..., c]] * (1 - f[..., c]) + table[c][i0[..., c] + 1] * f[..., c] for c in range(3)]
            return torch.stack(out, -1).to(rgb.dtype)
        # 3D: (3, N, N, N) indexed [c, b, g, r] -> grid_sample with (x, y, z) = (r, g, b), corner-aligned
        grid = (u * 2.0 - 1.0).reshape(1, 1, 1, -1, 3)
        out = torch.nn.functional.grid_sample(table[None], grid, mode="bilinear", padding_mode="border",
                                              align_corners=True)
        return out.reshape(3, -1).T.reshape(rgb.shape).to(rgb.dtype)

    def describe(self) -> str:
        return f"{self.name} ({self.kind})"


@functools.lru_cache(maxsize=8)
def _baked(source: str, cache_id: str, working_space: str, display: str, view: str,
           context: tuple[tuple[str, str], ...] = ()) -> DisplayView:
    pipeline = ColorPipeline(source=source, working_space=working_space, display=display, view=view, context=context)
    name = f"{display} / {view}"
    ramp = _shaper_inverse(np.linspace(0.0, 1.0, LUT_1D)).astype(np.float32)
    grey = pipeline.to_display(np.repeat(ramp[None, :, None], 3, axis=2))[0].T          # (3, N)
    rng = np.random.default_rng(0)
    probe = _shaper_inverse(rng.uniform(0.0, 0.75, size=(1, 512, 3))).astype(np.float32)   # up to about 22
    probe_out = pipeline.to_display(probe)[0]
    greys = pipeline.to_display(np.repeat(probe[0].T.reshape(1, -1, 1), 3, axis=2))[0].reshape(3, -1, 3)
    per_channel = np.stack([greys[c, :, c] for c in range(3)], -1)   # each channel through a grey of its value
    if np.abs(per_channel - probe_out).max() < 1e-5:      # no cross-talk between channels
        srgb = srgb_encode_torch(_torch(probe[0]), clip=False).numpy()
        if np.abs(srgb - probe_out).max() < 1e-4 * max(1.0, float(np.abs(probe_out).max())):
            return DisplayView("srgb", None, name)
        return DisplayView("lut1d", grey.astype(np.float32), name)
    axis = _shaper_inverse(np.linspace(0.0, 1.0, LUT_3D)).astype(np.float32)
    b, g, r = np.meshgrid(axis, axis, axis, indexing="ij")
    cube = pipeline.to_display(np.stack([r, g, b], -1).reshape(1, -1, 3))[0]
    return DisplayView("lut3d", cube.T.reshape(3, LUT_3D, LUT_3D, LUT_3D).astype(np.float32), name)


def _torch(a: np.ndarray):
    import torch

    return torch.as_tensor(a)
