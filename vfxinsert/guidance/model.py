"""The guidance model: a frozen Stable Diffusion checkpoint with an optional LoRA on its UNet.

``Denoiser`` is what the objectives need of any diffusion model; ``GuidanceModel`` is the Stable
Diffusion one (made by ``loading.load_model``), and tests plug in a closed-form denoiser instead.
torch and peft are imported inside the methods that use them.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import GuidanceError

LORA_TARGETS = ("to_q", "to_k", "to_v", "to_out.0")
"""UNet attention projections the LoRA adapts (method.md)."""
ADAPTER = "scene"
"""Name of the LoRA adapter in the UNet."""


@dataclass(frozen=True)
class PersonaliseResult:
    """What a personalisation did (also written beside the weights as lora.json)."""

    key: str
    folder: Path
    reused: bool
    steps: int
    losses: tuple[float, ...]
    seconds: float
    resumed_from: int | None = None


@dataclass(eq=False)
class GuidanceModel:
    """A loaded Stable Diffusion checkpoint (frozen) with an optional LoRA adapter on its UNet."""

    unet: object
    vae: object
    text_encoder: object
    tokenizer: object
    scheduler: object
    identity: str
    """Fingerprint of the checkpoint (model_fingerprint), part of the LoRA cache key."""
    source: str
    """What [guidance] model said (folder or id), for messages."""
    folder: Path
    device: str
    dtype: object
    lora_rank: int | None = None
    """Rank of the LoRA adapter, None before ``add_lora``."""
    personalisation: PersonaliseResult | None = None
    """What ``personalise`` did (trained or reused, losses, time)."""
    _embeddings: dict = field(default_factory=dict, repr=False)
    _adapter_on: bool = field(default=True, repr=False)

    # ---------------------------------------------------------------- properties

    @property
    def vae_scale_factor(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def native_px(self) -> int:
        """Side of the images the model was trained on (512 for SD 1.5 / 2.1-base, 768 for SD 2.1)."""
        return int(self.unet.config.sample_size) * self.vae_scale_factor

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        size = int(self.unet.config.sample_size)
        return int(self.unet.config.in_channels), size, size

    @functools.cached_property
    def alphas_cumprod(self):
        """(T,) float32 CPU tensor: alpha-bar of the training schedule per integer timestep."""
        import torch

        return torch.as_tensor(self.scheduler.alphas_cumprod, dtype=torch.float32).cpu()

    @property
    def num_train_timesteps(self) -> int:
        return int(self.scheduler.config.num_train_timesteps)

    @property
    def prediction_type(self) -> str:
        return self.scheduler.config.get("prediction_type", "epsilon")

    # ---------------------------------------------------------------- encoders

    def prompt_embeddings(self, prompts: list[str]):
        """CLIP text embeddings (len(prompts), L, D) in the model's dtype, cached per prompt."""
        import torch

        missing = [p for p in dict.fromkeys(prompts) if p not in self._embeddings]
        if missing:
            # some tokenizer configs leave model_max_length unset (a huge number): the encoder's length rules
            length = min(self.tokenizer.model_max_length, self.text_encoder.config.max_position_embeddings)
            tokens = self.tokenizer(missing, padding="max_length", max_length=length, truncation=True,
                                    return_tensors="pt")
            with torch.no_grad():
                out = self.text_encoder(tokens.input_ids.to(self.device))[0]
            for p, e in zip(missing, out):
                self._embeddings[p] = e
        return torch.stack([self._embeddings[p] for p in prompts])

    def encode(self, image):
        """(B, 3, H, W) display-referred image in 0..1 -> scaled VAE latents (float32), differentiable.

        The posterior mean, not a sample: the encoder's posterior is narrow, and the mean keeps the
        gradient deterministic for a seed.
        """
        x = image.to(self.device, self.dtype) * 2.0 - 1.0
        latents = self.vae.encode(x).latent_dist.mean * float(self.vae.config.scaling_factor)
        return latents.float()

    # ---------------------------------------------------------------- UNet

    def _set_adapter(self, on: bool) -> None:
        if self.lora_rank is None or on == self._adapter_on:
            return
        (self.unet.enable_adapters if on else self.unet.disable_adapters)()
        self._adapter_on = on

    def _alpha(self, t, like):
        import torch

        a = self.alphas_cumprod.to(like.device)[torch.as_tensor(t, device=like.device).long()]
        return a.reshape(-1, *([1] * (like.dim() - 1)))

    def model_output(self, z_t, t, prompts: list[str], *, personalised: bool):
        """The UNet's raw prediction (its scheduler's prediction type), float32, batch = len(prompts).

        ``t``: an int or a (B,) tensor of timesteps; ``personalised``: with the LoRA adapter (when the model
        has one) or without it (the frozen base model). Gradients flow only into the LoRA parameters.
        """
        import torch

        batch = len(prompts)
        if z_t.shape[0] != batch:
            z_t = z_t.expand(batch, *z_t.shape[1:])
        steps = torch.as_tensor(t, device=self.device).long().reshape(-1).expand(batch)
        self._set_adapter(personalised)
        context = self.prompt_embeddings(prompts)
        out = self.unet(z_t.to(self.device, self.dtype), steps, encoder_hidden_states=context).sample
        return out.float()

    def eps(self, z_t, t, prompts: list[str], *, personalised: bool):
        """Noise prediction (float32) whatever the checkpoint predicts (epsilon, v or the sample)."""
        out = self.model_output(z_t, t, prompts, personalised=personalised)
        if self.prediction_type == "epsilon":
            return out
        z = z_t.to(out.device).float().expand_as(out)
        a = self._alpha(t, out)
        if self.prediction_type == "v_prediction":
            return a.sqrt() * out + (1.0 - a).sqrt() * z
        return (z - a.sqrt() * out) / (1.0 - a).sqrt()

    def training_target(self, z0, noise, t):
        """What the UNet is trained to output for clean latents ``z0`` noised with ``noise`` at ``t``."""
        if self.prediction_type == "epsilon":
            return noise
        if self.prediction_type == "sample":
            return z0
        a = self._alpha(t, z0)
        return a.sqrt() * noise - (1.0 - a).sqrt() * z0

    # ---------------------------------------------------------------- LoRA

    def add_lora(self, rank: int, seed: int = 0) -> None:
        """Attach a rank-``rank`` LoRA (peft) to the UNet attention projections; it starts as the identity
        (B = 0; A random from ``seed``), its parameters in float32 (AdamW updates of 1e-4 vanish in float16)."""
        import torch
        from peft import LoraConfig

        if self.lora_rank is not None:
            raise GuidanceError(f"the model already has a rank-{self.lora_rank} LoRA", where=self.source,
                                fix="load the model again to personalise it differently")
        with torch.random.fork_rng(devices=[]):   # peft draws A from the global generator
            torch.manual_seed(seed)
            self.unet.add_adapter(LoraConfig(r=rank, lora_alpha=rank, init_lora_weights=True,
                                             target_modules=list(LORA_TARGETS)), adapter_name=ADAPTER)
        for p in self.lora_parameters():
            p.data = p.data.float()
            p.requires_grad_(True)
        self.lora_rank = rank
        self._adapter_on = True

    def lora_named_parameters(self) -> list[tuple[str, object]]:
        return [(n, p) for n, p in self.unet.named_parameters() if ".lora_" in n]

    def lora_parameters(self) -> list:
        return [p for _, p in self.lora_named_parameters()]

    def lora_state(self) -> dict:
        """The LoRA weights only (float32, CPU), keyed by UNet parameter name."""
        return {n: p.detach().float().cpu().contiguous() for n, p in self.lora_named_parameters()}

    def load_lora_state(self, state: dict, where: str) -> None:
        """Copy LoRA weights saved by ``lora_state`` into the adapter (same base architecture and rank)."""
        import torch

        params = dict(self.lora_named_parameters())
        if set(params) != set(state) or any(params[k].shape != state[k].shape for k in state):
            raise GuidanceError("the saved LoRA does not fit this model (different architecture or rank)", where=where,
                                fix="delete the cached LoRA folder; it is trained again")
        with torch.no_grad():
            for name, value in state.items():
                params[name].copy_(value.to(params[name].device, params[name].dtype))
