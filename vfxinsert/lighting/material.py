"""Material refinement, DiPIR's application (``[optimize] material = true``): with the lighting, the loop
refines each asset part's base-colour gain (RGB; on the texture when the part has one), roughness and
metallic, by the same objective. The renders differentiate the principled BSDF by path replay
(integrator.py); this is the torch side: the parameters, their ranges and what the solve stores.
"""
from __future__ import annotations

import numpy as np

from ..assets import MeshPart, RefinedMaterial

ROUGHNESS_RANGE = (0.05, 1.0)
"""Principled roughness the loop may reach (below 0.05 the GGX lobe is too sharp for 16-spp gradients)."""
MIN_GAIN = 0.05
"""Smallest base-colour gain; the largest keeps every channel of the colour (or texture) at most 1."""


class MaterialRefine:
    """The refinable materials of ``parts`` (those with a principled BSDF), starting from the shot's."""

    def __init__(self, parts: list[MeshPart], device: str = "cpu"):
        import torch

        self.names = [p.name for p in parts]
        textured = [p.base_color_texture is not None for p in parts]
        peak = np.array([p.base_color_texture.reshape(-1, 3).max(0) if t else p.base_color
                         for p, t in zip(parts, textured)], np.float64)
        self._base = torch.tensor([(1.0, 1.0, 1.0) if t else p.base_color for p, t in zip(parts, textured)],
                                  dtype=torch.float32, device=device)
        self._max_gain = torch.tensor(1.0 / np.maximum(peak, 1e-3), dtype=torch.float32, device=device)
        self.gain = torch.ones((len(parts), 3), device=device, requires_grad=True)
        self.roughness = torch.tensor([float(np.clip(p.roughness, *ROUGHNESS_RANGE)) for p in parts],
                                      device=device, requires_grad=True)
        self.metallic = torch.tensor([float(p.metallic) for p in parts], device=device, requires_grad=True)
        self.clamp_()

    def parameters(self) -> list:
        return [self.gain, self.roughness, self.metallic]

    def values(self):
        """(P, 5) torch: base colour (the gain for a textured part), roughness, metallic: what
        ``InsertScene.render_torch`` takes as ``materials``."""
        import torch

        return torch.cat([self._base * self.gain, self.roughness[:, None], self.metallic[:, None]], dim=1)

    def clamp_(self) -> None:
        import torch

        with torch.no_grad():
            self.gain.copy_(torch.minimum(self.gain.clamp_min(MIN_GAIN), self._max_gain))
            self.roughness.clamp_(*ROUGHNESS_RANGE)
            self.metallic.clamp_(0.0, 1.0)

    def refined(self) -> tuple[RefinedMaterial, ...]:
        gain = self.gain.detach().cpu().numpy().astype(float)
        rough = self.roughness.detach().cpu().numpy().astype(float)
        metal = self.metallic.detach().cpu().numpy().astype(float)
        return tuple(RefinedMaterial(n, tuple(float(c) for c in g), float(r), float(m))
                     for n, g, r, m in zip(self.names, gain, rough, metal))
