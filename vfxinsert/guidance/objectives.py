"""The guidance objectives (DiPIR section 3.3): a diffusion model judges the composite.

``LDSObjective`` (DiPIR's guidance, with the personalised model) and ``SDSObjective`` (plain SDS with
CFG, the baseline): callables with the optimisation loop's objective signature (lighting/loop.py).
They see the display-referred composite crop resized to the model's native size, encode it with the
VAE and return a loss whose gradient with respect to the latents is the guidance direction, so it
flows through the VAE encoder and the renderer into the lighting and the tone curves.

``OBJECTIVES`` maps ``[guidance] method`` to its class; config.py takes the method's allowed values
from it. A new guidance loss is one class here plus one line in ``OBJECTIVES``.

Light on purpose (config.py imports it): torch is imported inside the functions that use it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Protocol

from ..color import srgb_encode_torch
from ..errors import ConfigError, GuidanceError
from ..seeds import frame_seed



def srgb_view(rgb):
    """The default display view: the sRGB curve (OCIO's "sRGB - Display" / "Un-tone-mapped"), unclipped."""
    return srgb_encode_torch(rgb, clip=False)


def display_for_model(view: Callable, rgb):
    """``view(rgb)`` limited to 0..1 by a straight-through clamp: the model sees what the viewer shows (a
    clipped highlight is white) and the gradient passes as if unclipped, so an over-exposed object still
    learns to darken (a plain clamp's derivative is 0 above 1)."""
    shown = view(rgb)
    return shown + (shown.clamp(0.0, 1.0) - shown).detach()


class Denoiser(Protocol):
    """What the score-distillation objectives need from a diffusion model."""

    native_px: int | None
    """Side of the square image the model works at (None: use the composite crop as it is)."""
    alphas_cumprod: object
    """(T,) torch tensor: the noise schedule, alpha-bar per integer timestep."""

    def encode(self, image):
        """(1, 3, H, W) display-referred image in 0..1 -> latents (differentiable)."""

    def eps(self, z_t, t: int, prompts: list[str], *, personalised: bool):
        """Noise predictions (len(prompts), ...) for one noisy latent ``z_t`` (1, ...) at timestep ``t``."""


@dataclass(frozen=True)
class ScoreSettings:
    """Timestep schedule, base term and weights of the score-distillation objectives (method.md, Diffusion
    guidance). The shot file's ``[guidance]`` keys of the same names default to these (method_config.py)."""

    t_min: float = 0.02
    """Smallest diffusion time, as a fraction of the training schedule."""
    t_max_start: float = 0.6
    """Largest diffusion time at the first iteration (DiPIR: annealed 0.6 -> 0.3)."""
    t_max_end: float = 0.3
    """Largest diffusion time at the last iteration."""
    t_schedule: str = "linear"
    """"linear": t_max from t_max_start to t_max_end over the run; "constant": t_max_start throughout."""
    guidance_scale: float = 100.0
    """Classifier-free guidance scale of plain SDS (DreamFusion's 100); LDS has none."""
    weight: float = 1.0
    """w(t): a constant (method.md: w(t) = 1)."""
    lds_base: str = "base"
    """LDS's unconditional term: "base" (frozen base model: DiPIR) or "personalised" (the paper's ablation)."""
    where: str = field(default="guidance settings", compare=False)
    """Where these settings came from, for messages."""

    def __post_init__(self) -> None:
        lo, hi = sorted((self.t_max_start, self.t_max_end))
        if not 0.0 <= self.t_min < lo <= hi <= 1.0:
            raise ConfigError(f"need 0 <= t_min < t_max <= 1 (t_min {self.t_min}, t_max {self.t_max_start} -> "
                              f"{self.t_max_end})", where=self.where, fix="e.g. t_min 0.02, t_max 0.6 -> 0.3")
        if self.t_schedule not in ("linear", "constant") or self.lds_base not in ("base", "personalised"):
            raise ConfigError(f"t_schedule {self.t_schedule!r} / lds_base {self.lds_base!r} unknown", where=self.where,
                              fix='t_schedule = "linear" or "constant"; lds_base = "base" or "personalised"')
        if not (self.weight > 0 and self.guidance_scale >= 1.0 and math.isfinite(self.weight + self.guidance_scale)):
            raise ConfigError(f"need weight > 0 and guidance_scale >= 1 (got {self.weight}, {self.guidance_scale})",
                              where=self.where, fix="e.g. weight = 1.0, guidance_scale = 100.0")

    def t_max(self, iteration: int, iterations: int) -> float:
        """t_max at ``iteration``: annealed linearly from ``t_max_start`` (first) to ``t_max_end`` (last),
        or ``t_max_start`` throughout with the constant schedule."""
        if self.t_schedule == "constant":
            return self.t_max_start
        f = iteration / max(iterations - 1, 1)
        return self.t_max_start + (self.t_max_end - self.t_max_start) * min(max(f, 0.0), 1.0)


class ScoreDistillation:
    """Shared body of LDS and SDS: display view -> resize -> encode -> noise -> direction -> loss.

    The returned loss is ``0.5 * mean(|latents - stopgrad(latents - direction)|^2)`` over the latent
    elements: its gradient with respect to the latents is ``direction / N`` (N = latent elements, the
    score-distillation trick), and its value is half the mean squared direction. A *mean*, like the
    consistency and regulariser terms beside it, so their weights (DiPIR's 0.03 / 0.01) mean the same
    at any model resolution (a sum grows 2.25x from a 512 px model to a 768 px one).
    """

    personalised = False
    """True: the objective needs the model personalised to the plate (a LoRA) and judges with the
    guidance prompt ("a photo of a {class} in sks scene"); False: the base model and the class prompt."""

    def __init__(self, denoiser: Denoiser, prompt: str, *, settings: ScoreSettings = ScoreSettings(),
                 seed_key: str = "guidance", view: Callable | None = None):
        self.denoiser = denoiser
        self.prompt = prompt
        self.settings = settings
        self.seed_key = seed_key
        self.view = view or srgb_view
        """Working-space RGB -> the shot's display view (guidance/view.py's ``DisplayView``; default the
        sRGB curve): the model sees the composite as the artists do."""
        self._alphas = None

    def draw(self, shape, frame: int, iteration: int, iterations: int):
        """(t, noise) for this frame and iteration: t ~ U(t_min, t_max(iteration)) of the schedule."""
        import torch

        if self._alphas is None:
            self._alphas = self.denoiser.alphas_cumprod
        g = torch.Generator().manual_seed(frame_seed(f"{self.seed_key}:guidance", frame, iteration))
        frac = self.settings.t_min + float(torch.rand((), generator=g)) * (
            self.settings.t_max(iteration, iterations) - self.settings.t_min)
        count = len(self._alphas)
        t = min(max(int(frac * count), 1), count - 1)
        return t, torch.randn(tuple(shape), generator=g)

    def latents(self, comp):
        """Latents of the composite (h, w, 3, working space) seen through the shot's display view (0..1, a
        straight-through clamp: highlights keep their gradient), resized (bilinear) to the model's size."""
        import torch.nn.functional as F

        image = display_for_model(self.view, comp).permute(2, 0, 1)[None]
        size = self.denoiser.native_px
        if size and tuple(image.shape[-2:]) != (size, size):
            image = F.interpolate(image, size=(size, size), mode="bilinear", align_corners=False,
                                  antialias=image.shape[-1] > size)
        return self.denoiser.encode(image)

    def direction(self, z_t, t: int, noise):
        raise NotImplementedError

    def __call__(self, comp, target, iteration: int, iterations: int):
        """The loop's objective signature (``lighting.loop.Objective``): ``target`` is its FrameTarget."""
        import torch

        latents = self.latents(comp)
        t, noise = self.draw(latents.shape, target.frame, iteration, iterations)
        a = float(self._alphas[t])
        noise = noise.to(latents.device)
        with torch.no_grad():
            z_t = math.sqrt(a) * latents.detach() + math.sqrt(1.0 - a) * noise
            direction = self.settings.weight * self.direction(z_t, t, noise).to(latents.device)
        return (0.5 * (latents - (latents - direction).detach()).square().mean()).to(comp.device)


class LDSObjective(ScoreDistillation):
    """DiPIR's guidance: ``eps_lora(z_t, t, prompt) - eps_base(z_t, t, "")``, personalised conditional
    minus frozen-base unconditional (no injected-noise term, no CFG scale); the base model is the same
    UNet with its LoRA adapter switched off."""

    personalised = True

    def __init__(self, denoiser: Denoiser, prompt: str, *, settings: ScoreSettings = ScoreSettings(),
                 seed_key: str = "guidance", view: Callable | None = None):
        from .model import GuidanceModel

        if isinstance(denoiser, GuidanceModel) and denoiser.lora_rank is None:
            raise GuidanceError("LDS needs a personalised model (a LoRA) for its conditional term",
                                where="guidance objective", fix="personalise() the model first, or use SDSObjective")
        super().__init__(denoiser, prompt, settings=settings, seed_key=seed_key, view=view)

    def direction(self, z_t, t: int, noise):
        lora = self.denoiser.eps(z_t, t, [self.prompt], personalised=True)
        # the unconditional term: the frozen base model (DiPIR), or the LoRA model (the paper's ablation)
        base = self.denoiser.eps(z_t, t, [""], personalised=self.settings.lds_base == "personalised")
        return lora - base


class SDSObjective(ScoreDistillation):
    """Plain SDS with classifier-free guidance (the baseline):
    ``eps(z_t, "") + s * (eps(z_t, prompt) - eps(z_t, "")) - noise``, base model (adapter off)."""

    def direction(self, z_t, t: int, noise):
        both = self.denoiser.eps(z_t, t, ["", self.prompt], personalised=False)
        uncond, cond = both[:1], both[1:]
        return uncond + self.settings.guidance_scale * (cond - uncond) - noise


OBJECTIVES: dict[str, type[ScoreDistillation]] = {"lds": LDSObjective, "sds": SDSObjective}
"""``[guidance] method`` -> its objective class (config.py's allowed methods are these keys)."""
