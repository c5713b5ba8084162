"""Learnable tone curves (DiPIR: two curves between the renderer and the plate's camera response).

- ``T_fg``: per frame and channel, monotone on log2 radiance, with an exposure offset. It maps the
  object's rendered radiance to the plate's camera response: ``T_fg(I) = 2 ** f(log2(I + eps))``.
- ``T_sh``: per frame and channel, monotone on the shadow ratio with ``T_sh(1) = 1`` exactly, so the
  plate is untouched wherever the object casts no shadow, and ``T_sh(0) >= 0`` by construction: below
  the ratio 1 the curve's drop is divided by max(1, its total drop over 0..1), so a shadow never turns
  negative (a negative composite would be clipped by the display view, and its gradient die).

Both are piecewise-linear with positive slopes ``exp(s_k)`` between fixed knots (linear beyond them),
so every parameter value gives a monotone curve and zero parameters give the identity. Parameters have
a leading frame axis: one curve pair per frame, tied over time by a smoothness penalty for video.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FG_KNOTS_LOG2 = np.linspace(-10.0, 6.0, 9)     # about 1e-3 .. 64 in linear radiance
SH_KNOTS = np.linspace(0.0, 1.5, 7)             # shadow ratios; 1 is a knot's neighbourhood, anchored exactly
EPS = 1e-6


def _piecewise(x, knots, log_slopes, anchor: float):
    """sum of slope_k over [t_k, t_k+1] up to x, linear beyond the ends, minus its value at ``anchor``.

    ``x``: (..., C); ``log_slopes``: (C, K + 1) for the K - 1 inner segments plus the two outer rays.
    """
    import torch

    t = torch.as_tensor(knots, dtype=x.dtype, device=x.device)
    slopes = log_slopes.exp()                                   # (C, K + 1)

    def g(v):
        left = slopes[:, 0] * torch.clamp(v - t[0], max=0.0)
        right = slopes[:, -1] * torch.clamp(v - t[-1], min=0.0)
        inner = (slopes[:, 1:-1] * torch.clamp(v[..., None] - t[:-1], min=0.0).minimum(t[1:] - t[:-1])).sum(-1)
        return left + inner + right

    return g(x) - g(torch.full_like(x, anchor))


class ToneCurves:
    """Per-frame ``T_fg`` / ``T_sh`` parameters (torch leaves) and their application."""

    def __init__(self, frames: int, device: str = "cpu"):
        import torch

        def zeros(*shape):
            return torch.zeros(*shape, dtype=torch.float32, device=device, requires_grad=True)

        self.exposure_log2 = zeros(frames, 3)                          # T_fg offset (stops) per channel
        self.fg_log_slopes = zeros(frames, 3, len(FG_KNOTS_LOG2) + 1)
        self.sh_log_slopes = zeros(frames, 3, len(SH_KNOTS) + 1)

    def parameters(self):
        return [self.exposure_log2, self.fg_log_slopes, self.sh_log_slopes]

    def fg(self, radiance, frame_index: int):
        """T_fg of unpremultiplied radiance (..., 3) for one frame."""
        import torch

        x = torch.log2(radiance.clamp_min(0.0) + EPS)
        y = self.exposure_log2[frame_index] + _piecewise(x, FG_KNOTS_LOG2, self.fg_log_slopes[frame_index], 0.0)
        return torch.exp2(y) - EPS * torch.exp2(self.exposure_log2[frame_index])

    def sh(self, ratio, frame_index: int):
        """T_sh of the shadow ratio (..., 3) for one frame; exactly 1 where the ratio is exactly 1, in
        0..1 for ratios in 0..1 whatever the parameters (see the module docstring)."""
        import torch

        slopes = self.sh_log_slopes[frame_index]
        curve = _piecewise(ratio, SH_KNOTS, slopes, 1.0)
        drop = -_piecewise(torch.zeros(3, dtype=ratio.dtype, device=ratio.device), SH_KNOTS, slopes, 1.0)  # g(1) - g(0)
        return 1.0 + torch.where(ratio < 1.0, curve / drop.clamp_min(1.0), curve)

    def clamp_(self) -> None:
        """Keep the curves in a sane range after an optimiser step: exposure +-10 stops, slopes within
        e^+-1 (a log-log slope is a local gamma: 0.37..2.7 covers camera responses; steeper outer rays
        would blow up radiances the optimisation crop never saw)."""
        import torch

        with torch.no_grad():
            self.exposure_log2.clamp_(-10.0, 10.0)
            self.fg_log_slopes.clamp_(-1.0, 1.0)
            self.sh_log_slopes.clamp_(-1.0, 1.0)

    def prior(self):
        """Distance of the shot's mean curves from the identity: over the keyframes' mean exposure (stops)
        and mean log slopes, the mean square of each family (``[optimize] tone_prior`` weighs it). The
        mean only: a shared lighting's brightness and colour trade 1:1 with the mean exposure, never with a
        frame's departure from it (auto-exposure drift, which the curves must follow freely)."""
        return sum(p.mean(0).square().mean() for p in self.parameters())

    def smoothness(self):
        """Mean squared second difference over frames of every parameter (0 for one or two frames)."""
        import torch

        if self.exposure_log2.shape[0] < 3:
            return self.exposure_log2.sum() * 0.0
        return sum(torch.diff(p, n=2, dim=0).square().mean() for p in self.parameters())

    def smooth_in_time_(self, frames: list[int], window_frames: int = 13) -> None:
        """Replace every keyframe's parameters by a local linear fit over the keyframes within
        ``window_frames`` *plate* frames centred on it (``frames``: the keyframes' plate frame numbers).

        A local *linear* fit keeps exposure ramps (auto-exposure drift) exactly and removes the
        frame-to-frame noise that per-frame stochastic updates leave (flicker). 13 frames is about half a
        second at 24 fps: auto-exposure drifts over seconds, noise changes every frame. Keyframes further
        apart than half the window are left as they are (a fit through one or two points is the points).
        """
        import torch

        n = self.exposure_log2.shape[0]
        if n != len(frames):
            raise ValueError(f"{len(frames)} frame numbers for {n} keyframes")
        if n < 3:
            return
        at = torch.tensor([float(f) for f in frames])
        weights = torch.zeros(n, n)
        for i in range(n):
            near = ((at - at[i]).abs() <= window_frames / 2.0).nonzero().flatten()
            t = at[near] - at[i]
            design = torch.stack([torch.ones_like(t), t], 1)                 # value and slope at frame i
            weights[i, near] = torch.linalg.pinv(design)[0]                  # row giving the value at t = 0
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.einsum("ij,j...->i...", weights, p))

    def state(self) -> dict:
        return {k: getattr(self, k).detach().cpu().numpy().tolist()
                for k in ("exposure_log2", "fg_log_slopes", "sh_log_slopes")}

    def load_state(self, state: dict) -> None:
        import torch

        with torch.no_grad():
            for k, v in state.items():
                getattr(self, k).copy_(torch.tensor(v, dtype=torch.float32))


FG_SAMPLES_LOG2 = np.linspace(-10.0, 6.0, 33)
"""Where tone.json samples T_fg (log2 radiance)."""
SH_SAMPLES = np.linspace(0.0, 1.5, 31)
"""Where tone.json samples T_sh (shadow ratio)."""
_TONE_JSON_NOTE = ("T_fg maps object radiance to the plate's response (log2 in, log2 out, per channel); "
                   "T_sh maps the shadow ratio (T_sh(1) = 1). comp = T_fg(I) * A + plate * T_sh(ratio) * (1 - A)")


@dataclass(frozen=True)
class FrameTone:
    """What tone.json records for one keyframe: its curves sampled at FG_SAMPLES_LOG2 / SH_SAMPLES."""

    frame: int
    exposure_log2: list[float]
    """T_fg's exposure offset per channel (stops)."""
    fg_log2_out: list[list[float]]
    """Per channel: log2 T_fg(2 ** x) at x = FG_SAMPLES_LOG2."""
    sh_out: list[list[float]]
    """Per channel: T_sh(r) at r = SH_SAMPLES."""

    def to_json(self) -> dict:
        return {"frame": self.frame, "exposure_log2": self.exposure_log2,
                "fg": {"log2_in": FG_SAMPLES_LOG2.tolist(), "log2_out": self.fg_log2_out},
                "sh": {"ratio_in": SH_SAMPLES.tolist(), "out": self.sh_out}}


@dataclass(frozen=True)
class ToneExport:
    """The solved per-keyframe tone curves: the lighting stage's hand-off to the renders and tone.json."""

    frames: tuple[FrameTone, ...]
    """One entry per keyframe, in frame order."""
    state: dict[str, list]
    """The raw parameters (``ToneCurves.state()``: a leading keyframe axis), from which the renders
    rebuild the curves of any frame (:func:`tone_for_frame`)."""

    @classmethod
    def from_curves(cls, curves: ToneCurves, frames: list[int]) -> ToneExport:
        """The export of ``curves`` (one curve pair per keyframe, ``frames`` in the same order)."""
        import torch

        radiance = torch.tensor(np.exp2(FG_SAMPLES_LOG2), dtype=torch.float32)[:, None].expand(-1, 3)
        ratio = torch.tensor(SH_SAMPLES, dtype=torch.float32)[:, None].expand(-1, 3)
        with torch.no_grad():
            sampled = tuple(FrameTone(int(frame), curves.exposure_log2[i].tolist(),
                                      torch.log2(curves.fg(radiance, i) + EPS).T.tolist(),
                                      curves.sh(ratio, i).T.tolist()) for i, frame in enumerate(frames))
        return cls(sampled, curves.state())

    def to_json(self) -> dict:
        """tone.json: per frame, T_fg sampled on log2 radiance and T_sh on the ratio, plus the raw state."""
        return {"description": _TONE_JSON_NOTE, "frames": [f.to_json() for f in self.frames], "state": self.state}

    @classmethod
    def from_json(cls, doc: dict) -> ToneExport:
        """The inverse of :meth:`to_json` (the environment cache stores tone.json's document)."""
        return cls(tuple(FrameTone(f["frame"], f["exposure_log2"], f["fg"]["log2_out"], f["sh"]["out"])
                         for f in doc["frames"]), doc["state"])


def tone_for_frame(tone: ToneExport | None, frame: int) -> ToneCurves | None:
    """A one-frame ToneCurves for ``frame``: its own curves, or interpolated between the keyframes'."""
    if tone is None:
        return None
    keys = [f.frame for f in tone.frames]
    state = {k: np.asarray(v, np.float32) for k, v in tone.state.items()}
    i = int(np.clip(np.searchsorted(keys, frame), 1, max(len(keys) - 1, 1)))
    if len(keys) == 1 or frame <= keys[0]:
        params = {k: v[0] for k, v in state.items()}
    elif frame >= keys[-1]:
        params = {k: v[-1] for k, v in state.items()}
    else:
        t = (frame - keys[i - 1]) / (keys[i] - keys[i - 1])
        params = {k: (1 - t) * v[i - 1] + t * v[i] for k, v in state.items()}
    curves = ToneCurves(1)
    curves.load_state({k: v[None].tolist() for k, v in params.items()})
    return curves


def apply_tone(tone: ToneExport | None, frame: int, rgb: np.ndarray, alpha: np.ndarray, shadow: np.ndarray):
    """The frame's tone curves on the layers: object ``T_fg(rgb / A) * A``, shadow ``T_sh(ratio)``.

    ``T_sh(1) = 1`` exactly, so the plate stays untouched where the shadow ratio is 1.
    """
    curves = tone_for_frame(tone, frame)
    if curves is None:
        return rgb, shadow
    import torch

    with torch.no_grad():
        a = torch.from_numpy(np.ascontiguousarray(alpha))
        radiance = torch.from_numpy(np.ascontiguousarray(rgb)) / a.clamp_min(1e-6)
        toned = torch.where(a > 0, curves.fg(radiance, 0) * a, torch.zeros_like(radiance))
        return toned.numpy().astype(np.float32), curves.sh(torch.from_numpy(np.ascontiguousarray(shadow)), 0).numpy()
