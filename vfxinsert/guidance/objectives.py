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
from dataclasses import dataclass
from typing import Protocol

from ..color import srgb_encode_torch
from ..errors import ConfigError, GuidanceError
from ..seeds import frame_seed



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
    """Timestep schedule and weights of the score-distillation objectives (method.md, Diffusion guidance)."""

    t_min: float = 0.02
    """Smallest diffusion time, as a fraction of the training schedule."""
    t_max_start: float = 0.6
    """Largest diffusion time at the first iteration (DiPIR: annealed 0.6 -> 0.3)."""
    t_max_end: float = 0.3
    """Largest diffusion time at the last iteration."""
    guidance_scale: float = 100.0
    """Classifier-free guidance scale of plain SDS (DreamFusion's 100); LDS has none."""
    weight: float = 1.0
    """w(t): a constant (method.md: w(t) = 1)."""

    def __post_init__(self) -> None:
        lo, hi = sorted((self.t_max_start, self.t_max_end))
        if not 0.0 <= self.t_min < lo <= hi <= 1.0:
            raise ConfigError(f"need 0 <= t_min < t_max <= 1 (t_min {self.t_min}, t_max {self.t_max_start} -> "
                              f"{self.t_max_end})", where="guidance settings", fix="e.g. t_min 0.02, t_max 0.6 -> 0.3")

    def t_max(self, iteration: int, iterations: int) -> float:
        """t_max annealed linearly from ``t_max_start`` (first iteration) to ``t_max_end`` (last)."""
        f = iteration / max(iterations - 1, 1)
        return self.t_max_start + (self.t_max_end - self.t_max_start) * min(max(f, 0.0), 1.0)


class ScoreDistillation:
    """Shared body of LDS and SDS: display view -> resize -> encode -> noise -> direction -> loss.

    The returned loss is ``0.5 * |latents - stopgrad(latents - direction)|^2``: its gradient with respect
    to the latents is exactly ``direction`` (the score-distillation trick), and its value, half the squared
    norm of the direction, is a readable, non-negative number for progress and the report.
    """

    personalised = False
    """True: the objective needs the model personalised to the plate (a LoRA) and judges with the
    guidance prompt ("a photo of a {class} in sks scene"); False: the base model and the class prompt."""

    def __init__(self, denoiser: Denoiser, prompt: str, *, settings: ScoreSettings = ScoreSettings(),
                 seed_key: str = "guidance"):
        self.denoiser = denoiser
        self.prompt = prompt
        self.settings = settings
        self.seed_key = seed_key
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
        """Latents of the display-referred composite (h, w, 3), resized (bilinear) to the model's size."""
        import torch.nn.functional as F

        image = srgb_encode_torch(comp).permute(2, 0, 1)[None]
        size = self.denoiser.native_px
        if size and tuple(image.shape[-2:]) != (size, size):
            image = F.interpolate(image, size=(size, size), mode="bilinear", align_corners=False)
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
        return (0.5 * (latents - (latents - direction).detach()).square().sum()).to(comp.device)


class LDSObjective(ScoreDistillation):
    """DiPIR's guidance: ``eps_lora(z_t, t, prompt) - eps_base(z_t, t, "")``, personalised conditional
    minus frozen-base unconditional (no injected-noise term, no CFG scale); the base model is the same
    UNet with its LoRA adapter switched off."""

    personalised = True

    def __init__(self, denoiser: Denoiser, prompt: str, *, settings: ScoreSettings = ScoreSettings(),
                 seed_key: str = "guidance"):
        from .model import GuidanceModel

        if isinstance(denoiser, GuidanceModel) and denoiser.lora_rank is None:
            raise GuidanceError("LDS needs a personalised model (a LoRA) for its conditional term",
                                where="guidance objective", fix="personalise() the model first, or use SDSObjective")
        super().__init__(denoiser, prompt, settings=settings, seed_key=seed_key)

    def direction(self, z_t, t: int, noise):
        lora = self.denoiser.eps(z_t, t, [self.prompt], personalised=True)
        base = self.denoiser.eps(z_t, t, [""], personalised=False)
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
