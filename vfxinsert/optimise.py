"""The lighting and tone optimisation loop (DiPIR section 3), written out in one function.

Per iteration, in this order: pick a frame -> render the crop (object under ``L_fg``, shadow under
``L_sh``) -> tone (``T_fg``, ``T_sh``) -> composite -> objective (+ consistency, shadow regulariser,
tone smoothness) -> backward -> check for divergence -> Adam step -> clamp -> update the learning
rates. Every random draw takes a seed derived from (shot, frame, iteration), so a run is reproducible
and a run resumed from a checkpoint ends where an uninterrupted one does.

The objective is pluggable: ``ReferenceObjective`` (an image loss against a known composite; tests and
the ground-truth benchmark) here, the diffusion guidance (LDS) in guidance.py.
"""
from __future__ import annotations

import copy
import hashlib
import io
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Protocol

import numpy as np

from .errors import VfxInsertError
from .lighting import RGB_LUMINANCE, SGLobes, mitsuba_env_directions
from .render import frame_seed


class OptimisationError(VfxInsertError):
    """The optimisation diverged and could not be recovered."""


@dataclass(frozen=True)
class OptimSettings:
    iterations: int = 600
    """Adam steps (DiPIR: 600)."""
    crop_px: int = 128
    """Side of the square optimisation render (method.md: 256; 128 keeps CPU runs short)."""
    spp: int = 16
    """Samples per pixel per optimisation render."""
    max_depth: int = 3
    """Path depth during optimisation."""
    env_height: int = 64
    """Rows of the lat-long the lobes are rasterised to while optimising (method.md: 64 x 128)."""
    lr_lighting: float = 0.02
    lr_tone: float = 0.01
    lr_final_fraction: float = 0.1
    """Exponential learning-rate decay down to this fraction at the last iteration."""
    w_consistency: float = 0.03
    w_shadow_reg: float = 0.01
    w_tone_smooth: float = 1.0
    fusion_start: float = 0.5
    fusion_end: float = 0.8
    optimise_tone: bool = True
    checkpoint_every: int = 50
    max_retries: int = 6
    """Divergence recoveries (each halves the learning rate) before giving up."""

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True, eq=False)
class FrameTarget:
    """One frame the loop can sample: its crop view and the plate (and reference) at crop resolution."""

    frame: int
    view: object                     # scene.View with a window rendered at crop_px x crop_px
    plate: np.ndarray                # (h, w, 3) working-space plate in the crop
    reference: np.ndarray | None = None   # (h, w, 3) known composite for the reference objective


class Objective(Protocol):
    def __call__(self, comp, target: FrameTarget, iteration: int, iterations: int): ...


def srgb_encode_torch(x, clip: bool = True):
    """Linear Rec.709 -> sRGB-encoded display values (the OCIO 'Un-tone-mapped' sRGB view): in 0..1 with
    ``clip``, else the same curve continued above 1 (so highlights keep a gradient)."""
    import torch

    x = x.clamp(0.0, 1.0) if clip else x.clamp_min(0.0)
    return torch.where(x <= 0.0031308, 12.92 * x, 1.055 * x.clamp_min(0.0031308) ** (1 / 2.4) - 0.055)


class ReferenceObjective:
    """Mean squared error against a known composite on the sRGB display curve (as a viewer judges it;
    continued above 1 rather than clipped, so a sunlit highlight still says how bright the sun is), over
    the pixels where the reference differs from the plate (the object and its shadow), so the loss does
    not shrink with the share of untouched plate in the crop."""

    def __init__(self, device: str = "cpu"):
        self._cache: dict[int, object] = {}
        self.device = device

    def __call__(self, comp, target: FrameTarget, iteration: int, iterations: int):
        import torch

        if target.reference is None:
            raise OptimisationError(f"frame {target.frame} has no reference image", where="objective",
                                    fix="give a reference composite or use another objective")
        if target.frame not in self._cache:
            ref = torch.tensor(target.reference, device=self.device)
            changed = (ref - torch.as_tensor(target.plate, device=self.device)).abs().amax(-1) > 1e-4
            self._cache[target.frame] = (srgb_encode_torch(ref, clip=False), changed[..., None].float(),
                                         max(int(changed.sum()), 1))
        ref_display, mask, count = self._cache[target.frame]
        return ((srgb_encode_torch(comp, clip=False) - ref_display).square() * mask).sum() / (3 * count)


# --------------------------------------------------------------------------------------------------
# Lighting models the loop optimises


def _luminance(env):
    import torch

    return env @ torch.tensor(RGB_LUMINANCE, dtype=env.dtype, device=env.device)


class TwoMapSG:
    """DiPIR's two SG maps: ``L_fg`` lights the object, ``L_sh`` casts the shadow; fused late in the run."""

    def __init__(self, init: SGLobes, env_height: int, max_sharpness: float, device: str = "cpu"):
        import torch

        from .lighting import SGLighting

        self.fg = SGLighting(init, device)
        self.sh = SGLighting(init, device)
        self.env_height = env_height
        self.max_log_sharpness = math.log(max_sharpness)
        self.initial_peak = float(init.amplitude.max())
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

    def regulariser(self, env_fg, env_sh, settings: OptimSettings):
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
            from .lighting import sg_env_torch

            fg = sg_env_torch(d, self.fg.axis_raw, self.fg.log_sharpness, self.fg.log_amplitude)
            sh = sg_env_torch(d, self.sh.axis_raw, self.sh.log_sharpness, self.sh.log_amplitude)
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
        from .lighting import box_downsample

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

        from .panorama import sample_bilinear

        with torch.no_grad():
            gain = np.exp(self.log_exposure.item() + (self.log_white_balance - self.log_white_balance.mean()).numpy())
        return sample_bilinear(self.latlong, dirs, math.degrees(self.rotation_rad.item())) * gain.astype(np.float32)

    def describe(self) -> dict:
        wb = (self.log_white_balance - self.log_white_balance.mean()).detach().exp().numpy()
        return {"model": "on-set HDRI refined (rotation, exposure, white balance)",
                "rotate_y_deg": math.degrees(self.rotation_rad.item()),
                "exposure_stops": self.log_exposure.item() / math.log(2.0), "white_balance_rgb": wb.tolist()}


# --------------------------------------------------------------------------------------------------
# The loop


@dataclass
class OptimResult:
    lighting: TwoMapSG
    tone: object                     # tone.ToneCurves
    losses: list[float]
    retries: list[str] = field(default_factory=list)
    seconds: float = 0.0
    resumed_from: int | None = None


def _snapshot(lighting, tone, opt) -> dict:
    return {"params": [p.detach().clone() for p in lighting.parameters() + tone.parameters()],
            "opt": copy.deepcopy(opt.state_dict())}


def _restore(snapshot: dict, lighting, tone, opt) -> None:
    import torch

    with torch.no_grad():
        for p, v in zip(lighting.parameters() + tone.parameters(), snapshot["params"]):
            p.copy_(v)
    opt.load_state_dict(copy.deepcopy(snapshot["opt"]))


def optimise(scene, targets: list[FrameTarget], lighting: TwoMapSG, tone, settings: OptimSettings,
             objective: Objective, *, shot_name: str, checkpoint: Path | None = None,
             on_iteration: Callable[[int, int, float], None] | None = None) -> OptimResult:
    """Optimise ``lighting`` and ``tone`` so the composites of ``targets`` minimise ``objective``.

    ``scene`` is an InsertScene whose film is ``crop_px`` square; each target's view is a window of its
    frame rendered at that size. ``tone`` has one curve pair per target (same order).
    """
    import torch

    from .fsutil import atomic_write_bytes
    from .scene import composite

    n = settings.iterations
    groups = [{"params": lighting.parameters(), "lr": settings.lr_lighting, "base_lr": settings.lr_lighting}]
    if settings.optimise_tone:
        groups.append({"params": tone.parameters(), "lr": settings.lr_tone, "base_lr": settings.lr_tone})
    opt = torch.optim.Adam(groups)
    key = f"{settings.digest()}:{shot_name}:{[t.frame for t in targets]}"
    losses: list[float] = []
    retries: list[str] = []
    lr_scale = 1.0
    start = 0
    resumed_from = None
    if checkpoint is not None and checkpoint.is_file():
        state = torch.load(io.BytesIO(checkpoint.read_bytes()), weights_only=False)
        if state.get("key") == key:
            _restore(state["snapshot"], lighting, tone, opt)
            losses, retries, lr_scale, start = state["losses"], state["retries"], state["lr_scale"], state["iteration"]
            resumed_from = start
    t0 = time.perf_counter()
    good = _snapshot(lighting, tone, opt)
    i = start
    attempts = 0
    while i < n:
        # --- pick a frame: every frame once per epoch, in an order seeded by the epoch (each frame's
        # tone curves get the same number of updates; iid sampling starved some frames)
        epoch, slot = divmod(i, len(targets))
        index = int(np.random.default_rng(frame_seed(shot_name, 0, epoch)).permutation(len(targets))[slot])
        target = targets[index]
        scene.set_view(target.view)
        seed = frame_seed(shot_name, target.frame, i) + 7919 * attempts
        for g in opt.param_groups:   # exponential decay, scaled down after each divergence
            g["lr"] = g["base_lr"] * lr_scale * settings.lr_final_fraction ** (i / max(n - 1, 1))
        opt.zero_grad(set_to_none=True)
        ramp = min(max((i / n - settings.fusion_start) / (settings.fusion_end - settings.fusion_start), 0.0), 1.0)
        # --- render: object under L_fg, shadow under L_sh (one render once the maps are fused)
        env_fg, env_sh = lighting.maps(ramp)
        layers_fg = scene.render_torch(env_fg, seed, settings.spp)
        layers_sh = layers_fg if ramp >= 1.0 else scene.render_torch(env_sh, seed + 1, settings.spp, slot="shadow")
        rgb, alpha = layers_fg[..., 0:3], layers_fg[..., 3:4]
        _, _, ratio, _ = composite(layers_sh, 0.0)
        # --- tone and composite: comp = T_fg(I) * A + plate * T_sh(ratio) * (1 - A)
        radiance = rgb / alpha.clamp_min(1e-4)
        plate = torch.as_tensor(target.plate, device=rgb.device)
        comp = tone.fg(radiance, index) * alpha + plate * tone.sh(ratio, index) * (1.0 - alpha)
        # --- objective and regularisers
        loss = objective(comp, target, i, n) + lighting.regulariser(env_fg, env_sh, settings)
        if settings.optimise_tone and len(targets) > 2:
            loss = loss + settings.w_tone_smooth * tone.smoothness()
        loss.backward()
        grads_ok = all(p.grad is None or bool(torch.isfinite(p.grad).all()) for p in lighting.parameters() + tone.parameters())
        if not math.isfinite(loss.item()) or not grads_ok:
            attempts += 1
            lr_scale *= 0.5
            retries.append(f"iteration {i}: non-finite {'loss' if not math.isfinite(loss.item()) else 'gradient'}; "
                           f"restored the last good state, learning rate x{lr_scale:g}")
            if attempts > settings.max_retries:
                raise OptimisationError(f"diverged at iteration {i} after {attempts - 1} recoveries",
                                        where=f"shot {shot_name}", fix="lower [optimize] lr_lighting or check the plate")
            _restore(good, lighting, tone, opt)
            continue
        # --- step, clamp, update
        opt.step()
        lighting.clamp_()
        tone.clamp_()
        if lighting.exploded():
            attempts += 1
            lr_scale *= 0.5
            retries.append(f"iteration {i}: lighting exploded; restored the last good state, learning rate x{lr_scale:g}")
            if attempts > settings.max_retries:
                raise OptimisationError(f"lighting exploded at iteration {i}", where=f"shot {shot_name}",
                                        fix="lower [optimize] lr_lighting")
            _restore(good, lighting, tone, opt)
            continue
        attempts = 0
        good = _snapshot(lighting, tone, opt)
        losses.append(float(loss.item()))
        i += 1
        if on_iteration:
            on_iteration(i, n, losses[-1])
        if checkpoint is not None and (i % settings.checkpoint_every == 0 or i == n):
            buf = io.BytesIO()
            torch.save({"key": key, "snapshot": good, "losses": losses, "retries": retries,
                        "lr_scale": lr_scale, "iteration": i}, buf)
            atomic_write_bytes(checkpoint, buf.getvalue())
    if settings.optimise_tone and len(targets) > 2:
        tone.smooth_in_time_()   # temporally smoothed per-frame curves: no flicker, ramps kept
    return OptimResult(lighting, tone, losses, retries, time.perf_counter() - t0, resumed_from)
