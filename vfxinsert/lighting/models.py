"""The lighting models the loop optimises (both satisfy ``loop.LightingModel``).

- ``TwoMapSG``: DiPIR's two SG maps, ``L_fg`` lights the object and ``L_sh`` casts the shadow, fused
  late in the run (init "plate", "sky");
- ``HDRIRefine``: an on-set HDRI refined only in rotation, exposure and white balance (init "hdri");
- ``FixedLighting``: a solved environment held fixed while the tone curves are fitted again (``regrade``).
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from ..color import RGB_LUMINANCE
from .panorama import box_downsample, mitsuba_env_directions, sample_bilinear
from .sg import SUN_SHARPNESS, SGLighting, SGLobes, max_sharpness, sg_env_torch

if TYPE_CHECKING:
    from ..config import OptimizeConfig


def _luminance(env):
    import torch

    return env @ torch.tensor(RGB_LUMINANCE, dtype=env.dtype, device=env.device)


class TwoMapSG:
    """DiPIR's two SG maps: ``L_fg`` lights the object, ``L_sh`` casts the shadow; fused late in the run."""

    def __init__(self, init: SGLobes, env_height: int, sharpness_cap: float = SUN_SHARPNESS, device: str = "cpu",
                 init_sh: SGLobes | None = None):
        """``sharpness_cap``: the sharpest a lobe may become (default: the sun's size; lobes sharper than
        the raster of ``env_height`` rows are drawn without aliasing, sg.sg_env_torch). ``init_sh``: where
        ``L_sh`` starts when not where ``L_fg`` does (a start taken from an earlier run's two maps)."""
        import torch

        init_sh = init if init_sh is None else init_sh
        self.fg = SGLighting(init, device)
        self.sh = SGLighting(init_sh, device)
        self.env_height = env_height
        self.max_log_sharpness = math.log(sharpness_cap)
        self.initial_peak = float(max(init.amplitude.max(), init_sh.amplitude.max()))
        dirs = mitsuba_env_directions(env_height, 2 * env_height)
        theta = np.arccos(np.clip(dirs[..., 1], -1, 1))
        # solid angle of Mitsuba's texel rows (corner-aligned in theta), for the consistency loss
        weight = np.sin(theta) + 1e-3
        weight[:, [0, -1]] = 0.0      # halo columns duplicate real ones
        self._weight = torch.tensor(weight / weight.sum(), dtype=torch.float32, device=device)

    def parameters(self):
        return self.fg.parameters() + self.sh.parameters()

    @staticmethod
    def fuse(env_fg, env_sh):
        """L_fused = (1 - r) L_fg + r L_sh, r = (lum_fg / max lum_fg) * lum_sh / (lum_fg + lum_sh) (method.md)."""
        lf, ls = _luminance(env_fg), _luminance(env_sh)
        r = (lf / lf.max().clamp_min(1e-12)) * ls / (lf + ls).clamp_min(1e-12)
        return (1.0 - r)[..., None] * env_fg + r[..., None] * env_sh

    def maps(self, ramp: float):
        env_fg = self.fg.mitsuba_env(self.env_height)
        env_sh = self.sh.mitsuba_env(self.env_height)
        if ramp > 0.0:
            fused = self.fuse(env_fg, env_sh)
            env_fg = env_fg + ramp * (fused - env_fg)
            env_sh = env_sh + ramp * (fused - env_sh)
        return env_fg, env_sh

    def regulariser(self, env_fg, env_sh, settings: OptimizeConfig):
        """0.03 * consistency + 0.01 * shadow regulariser (DiPIR's weights).

        Consistency: cross-entropy between the solid-angle weighted luminance distributions of the two
        maps, each taken against the other as a fixed target (stop-gradient), both ways. That has the
        gradients of a symmetric KL divergence: it ties the maps together without rewarding peaky maps,
        which a plain symmetric cross-entropy (whose minimum also minimises entropy) would.
        """
        pf = _luminance(env_fg) * self._weight
        ps = _luminance(env_sh) * self._weight
        pf = pf / pf.sum().clamp_min(1e-12)
        ps = ps / ps.sum().clamp_min(1e-12)
        cross = -0.5 * ((pf.detach() * (ps + 1e-12).log()).sum() + (ps.detach() * (pf + 1e-12).log()).sum())
        shadow_reg = (1.0 + 2.0 * _luminance(env_sh).square()).log().mean()
        return settings.w_consistency * cross + settings.w_shadow_reg * shadow_reg

    def clamp_(self) -> None:
        import torch

        with torch.no_grad():
            for light in (self.fg, self.sh):
                light.log_sharpness.clamp_(math.log(0.5), self.max_log_sharpness)
                light.log_amplitude.clamp_(-12.0, 12.0)

    def exploded(self) -> bool:
        peak = max(float(l.log_amplitude.detach().max().exp()) for l in (self.fg, self.sh))
        return not math.isfinite(peak) or peak > 1e4 * max(self.initial_peak, 1.0)

    def radiance(self, dirs: np.ndarray) -> np.ndarray:
        """The final (fused) lighting along directions (..., 3), numpy."""
        import torch

        with torch.no_grad():
            d = torch.tensor(dirs, dtype=torch.float32)
            raster = max_sharpness(d.shape[0]) if d.dim() == 3 else None   # a lat-long grid: drawn without aliasing
            fg = sg_env_torch(d, self.fg.axis_raw, self.fg.log_sharpness, self.fg.log_amplitude, raster)
            sh = sg_env_torch(d, self.sh.axis_raw, self.sh.log_sharpness, self.sh.log_amplitude, raster)
            return self.fuse(fg, sh).numpy()

    def describe(self) -> dict:
        return {"model": "two SG maps fused (DiPIR)", "sg_fg": self.fg.lobes().to_json(),
                "sg_sh": self.sh.lobes().to_json(),
                "fusion": "L = (1 - r) L_fg + r L_sh, r = (lum_fg / max lum_fg) * lum_sh / (lum_fg + lum_sh)"}


class HDRIRefine:
    """An on-set HDRI refined only in rotation about +Y, exposure and white balance (the tone curves
    do the rest): what a studio trusts when the HDRI was shot but its alignment and grade are off."""

    def __init__(self, latlong: np.ndarray, rotate_y_deg: float, env_height: int, device: str = "cpu"):
        import torch

        self.env_height = env_height
        self.latlong = np.asarray(latlong, np.float32)
        small = box_downsample(self.latlong, env_height)   # as hdri_to_mitsuba_env filters it
        padded = np.concatenate([small[:, -1:], small, small[:, :1]], axis=1)   # wrap in u for bilinear lookups
        self._image = torch.tensor(padded.transpose(2, 0, 1)[None], dtype=torch.float32, device=device)
        self.rotation_rad = torch.tensor(math.radians(rotate_y_deg), device=device, requires_grad=True)
        self.log_exposure = torch.zeros((), device=device, requires_grad=True)
        self.log_white_balance = torch.zeros(3, device=device, requires_grad=True)
        self._dirs = torch.tensor(mitsuba_env_directions(env_height, 2 * env_height), dtype=torch.float32, device=device)

    def parameters(self):
        return [self.rotation_rad, self.log_exposure, self.log_white_balance]

    def _sample(self, dirs):
        import torch

        c, s = torch.cos(self.rotation_rad), torch.sin(self.rotation_rad)
        x = c * dirs[..., 0] - s * dirs[..., 2]          # world -> map: Ry(-angle) d
        z = s * dirs[..., 0] + c * dirs[..., 2]
        u = torch.atan2(x, -z) / (2 * math.pi) % 1.0
        v = torch.arccos(dirs[..., 1].clamp(-1.0, 1.0)) / math.pi
        w = self._image.shape[-1] - 2
        gx = ((u * w + 1.0) / (w + 2.0)) * 2.0 - 1.0      # padded columns: texel centres at (x + 1.5) / (w + 2)
        gy = v * 2.0 - 1.0
        grid = torch.stack([gx, gy], -1)[None]
        out = torch.nn.functional.grid_sample(self._image, grid, mode="bilinear", padding_mode="border",
                                              align_corners=False)
        gain = torch.exp(self.log_exposure + self.log_white_balance - self.log_white_balance.mean())
        return out[0].permute(1, 2, 0) * gain

    def maps(self, ramp: float):
        env = self._sample(self._dirs)
        return env, env

    def regulariser(self, env_fg, env_sh, settings):
        return env_fg.sum() * 0.0

    def clamp_(self) -> None:
        import torch

        with torch.no_grad():
            self.log_exposure.clamp_(-7.0, 7.0)
            self.log_white_balance.clamp_(-1.0, 1.0)

    def exploded(self) -> bool:
        return not math.isfinite(self.log_exposure.item())

    def radiance(self, dirs: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            gain = np.exp(self.log_exposure.item() + (self.log_white_balance - self.log_white_balance.mean()).numpy())
        return sample_bilinear(self.latlong, dirs, math.degrees(self.rotation_rad.item())) * gain.astype(np.float32)

    def describe(self) -> dict:
        wb = (self.log_white_balance - self.log_white_balance.mean()).detach().exp().numpy()
        return {"model": "on-set HDRI refined (rotation, exposure, white balance)",
                "rotate_y_deg": math.degrees(self.rotation_rad.item()),
                "exposure_stops": self.log_exposure.item() / math.log(2.0), "white_balance_rgb": wb.tolist()}


class FixedLighting:
    """A solved environment held fixed (``regrade``: the tone curves alone are fitted again): no
    parameters, the same map for the object and the shadow."""

    def __init__(self, mitsuba_data: np.ndarray, device: str = "cpu"):
        import torch

        self.env_height = int(mitsuba_data.shape[0])
        self._env = torch.tensor(np.asarray(mitsuba_data, np.float32), device=device)

    def parameters(self):
        return []

    def maps(self, ramp: float):
        return self._env, self._env

    def regulariser(self, env_fg, env_sh, settings):
        return env_fg.new_zeros(())

    def clamp_(self) -> None:
        pass

    def exploded(self) -> bool:
        return False

    def radiance(self, dirs: np.ndarray) -> np.ndarray:
        raise NotImplementedError("FixedLighting keeps the solved environment's own exports")

    def describe(self) -> dict:
        return {"model": "solved environment held fixed"}
