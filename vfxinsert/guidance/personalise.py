"""Personalisation (DiPIR section 3.4): a LoRA that teaches the model the plate, cached per shot.

A LoRA on the UNet's attention projections, trained on random crops / flips of the plate with a scene
prompt, mixed 1:1 with concept-preservation images of the asset's class that the base model generates
(DiPIR's concept preservation, a DreamBooth prior-preservation analogue). Cached on disk keyed by
plates + base model + settings; resumable from a checkpoint; LoRA weights only, in safetensors.
Settings: the shot's ``[guidance]`` section (``config.GuidanceConfig``), consumed as it is.
torch and safetensors are imported inside the functions that use them.
"""
from __future__ import annotations

import hashlib
import json
import math
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from ..errors import GuidanceError, warn
from ..seeds import frame_seed
from .model import GuidanceModel, PersonaliseResult
from .objectives import display_for_model, srgb_view

if TYPE_CHECKING:
    from ..config import GuidanceConfig


def plate_display(rgb_linear: np.ndarray, view: Callable | None = None) -> np.ndarray:
    """The display-referred (0..1) view of a working-space plate through the shot's display ``view`` (default:
    sRGB): what the objectives show the model of a composite, so the LoRA learns the plate as it sees it."""
    import torch

    with torch.no_grad():
        rgb = torch.as_tensor(np.asarray(rgb_linear, np.float32)[..., :3])
        return display_for_model(view or srgb_view, rgb).numpy()


def class_name(labels: list[str]) -> str:
    """The {class} of the prompts for asset labels (empty labels already replaced by mesh names)."""
    names = list(dict.fromkeys(" ".join(re.split(r"[-_\s]+", l.strip())) for l in labels if l.strip()))
    return " and ".join(names) or "object"


def settings_record(settings: GuidanceConfig) -> dict:
    """Every setting a personalisation depends on, under the names the cache key has always used
    (``class_prompt`` is ``[guidance] prompt``), so LoRAs cached by earlier versions are found again."""
    s = settings
    return {"steps": s.steps, "lr": s.lr, "rank": s.rank, "preservation_images": s.preservation_images,
            "scene_prompt": s.scene_prompt, "class_prompt": s.prompt, "guidance_prompt": s.guidance_prompt,
            "sampling_steps": s.sampling_steps, "sampling_guidance": s.sampling_guidance,
            "crop_scale": list(s.crop_scale), "checkpoint_every": s.checkpoint_every, "seed": s.seed}


def lora_key(plates: list[np.ndarray], model_identity: str, settings: GuidanceConfig, class_label: str) -> str:
    """Cache key of a personalisation: plates (exact pixels) + base model + settings + class."""
    h = hashlib.sha256()
    for plate in plates:
        arr = np.ascontiguousarray(plate, np.float32)
        h.update(str(arr.shape).encode())
        h.update(arr.tobytes())
    h.update(model_identity.encode())
    h.update(json.dumps({**settings_record(settings), "class": class_label}, sort_keys=True).encode())
    return h.hexdigest()[:16]


def _seeded(*parts) -> "object":
    import torch

    return torch.Generator().manual_seed(frame_seed(":".join(str(p) for p in parts), 0))


def _random_crop(plates: list, generator, size: int, scale: tuple[float, float]):
    """One random square crop (random plate, side, position; flipped half the time), resized to ``size``.

    ``plates``: (3, H, W) float32 tensors. Returns (1, 3, size, size) in 0..1.
    """
    import torch
    import torch.nn.functional as F

    u = torch.rand(5, generator=generator).tolist()
    plate = plates[min(int(u[0] * len(plates)), len(plates) - 1)]
    h, w = plate.shape[-2:]
    side = max(1, round(min(h, w) * (scale[0] + (scale[1] - scale[0]) * u[1])))
    y0, x0 = int(u[2] * (h - side + 1)), int(u[3] * (w - side + 1))
    crop = plate[None, :, y0:y0 + side, x0:x0 + side]
    if u[4] < 0.5:
        crop = torch.flip(crop, dims=[-1])
    if side != size:
        crop = F.interpolate(crop, size=(size, size), mode="bilinear", align_corners=False, antialias=side > size)
    return crop.clamp(0.0, 1.0)


def generate_latents(model: GuidanceModel, prompt: str, seeds: list[int], *, steps: int, guidance_scale: float,
                     batch: int = 4):
    """Sample latents of ``prompt`` with the base model (adapter off): deterministic DDIM (eta = 0) with
    classifier-free guidance, one seeded starting noise per image. Returns (len(seeds), C, h, w) float32 CPU."""
    import torch
    from diffusers import DDIMScheduler

    # the model output is converted to epsilon before the step; latents are not clipped to [-1, 1]
    sampler = DDIMScheduler.from_config(model.scheduler.config, prediction_type="epsilon", clip_sample=False,
                                        thresholding=False)
    sampler.set_timesteps(steps)
    out = []
    for start in range(0, len(seeds), batch):
        chunk = seeds[start:start + batch]
        z = torch.stack([torch.randn(model.latent_shape, generator=torch.Generator().manual_seed(s)) for s in chunk])
        z = (z * float(sampler.init_noise_sigma)).to(model.device)
        n = len(chunk)
        with torch.no_grad():
            for t in sampler.timesteps:
                both = model.eps(torch.cat([z, z]), int(t), [""] * n + [prompt] * n, personalised=False)
                uncond, cond = both[:n], both[n:]
                z = sampler.step(uncond + guidance_scale * (cond - uncond), t, z).prev_sample
        out.append(z.float().cpu())
    return torch.cat(out)


def _save_safetensors(path: Path, tensors: dict, metadata: dict | None = None) -> None:
    from safetensors.torch import save

    from ..fsutil import atomic_write_bytes

    atomic_write_bytes(path, save({k: v.contiguous() for k, v in tensors.items()},
                                  metadata={k: json.dumps(v) for k, v in (metadata or {}).items()}))


def _read_cache(path: Path) -> tuple[dict, dict] | None:
    """A cache file's tensors and metadata; None when it is absent, or unreadable (truncated, foreign, a
    planted pickle: safetensors runs no code), which is warned about and recomputed."""
    from safetensors import safe_open

    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = {k: json.loads(v) for k, v in (fh.metadata() or {}).items()}
            return {k: fh.get_tensor(k) for k in fh.keys()}, meta
    except Exception as exc:  # safetensors raises its own error types for a truncated or foreign file
        warn(f"cannot read {path.name} ({type(exc).__name__}): it is recomputed", where=str(path))
        return None


def personalise(model: GuidanceModel, plates: list[np.ndarray], *, class_name: str,
                settings: GuidanceConfig, cache_dir: Path,
                on_step: Callable[[int, int, float], None] | None = None) -> GuidanceModel:
    """Equip ``model`` with the shot's LoRA (trained here, or reused from ``cache_dir``) and return it.

    ``plates``: (H, W, 3) display-referred frames in 0..1 (``plate_display``). Training pairs each step one
    random crop / flip of a plate ("a photo of sks scene") with one concept-preservation latent of
    ``class_name`` ("a photo of a {class}"), 1:1, standard denoising loss, AdamW on the LoRA only. The
    result lives in ``cache_dir/lora-<key>/`` (lora.safetensors: the LoRA weights; lora.json: what was
    done); an interrupted run resumes from its last checkpoint. ``on_step(step, total, loss)`` reports
    progress. The outcome is in ``model.personalisation``.
    """
    import torch

    settings.validate("personalisation settings")
    if not plates:
        raise GuidanceError("no plate frames to personalise on", where="personalisation",
                            fix="pass at least one plate frame")
    for i, p in enumerate(plates):
        if p.ndim != 3 or p.shape[-1] < 3:
            raise GuidanceError(f"plate {i} has shape {p.shape}, expected (H, W, 3)", where="personalisation")
    key = lora_key(plates, model.identity, settings, class_name)
    folder = Path(cache_dir) / f"lora-{key}"
    final = folder / "lora.safetensors"
    model.add_lora(settings.rank, settings.seed)
    cached = _read_cache(final)
    if cached is not None:
        state, meta = cached
        model.load_lora_state(state, str(final))
        model.personalisation = PersonaliseResult(key, folder, True, settings.steps, tuple(meta.get("losses", [])),
                                                  0.0)
        return model

    t0 = time.perf_counter()
    size = model.native_px
    scene_prompt = settings.scene_prompt
    class_prompt = settings.prompt.replace("{class}", class_name)
    preservation = _preservation_latents(model, class_prompt, settings, folder, key)
    tensors = [torch.as_tensor(np.ascontiguousarray(p[..., :3], np.float32)).permute(2, 0, 1) for p in plates]

    params = model.lora_parameters()
    opt = torch.optim.AdamW(params, lr=settings.lr)
    scaler = torch.amp.GradScaler("cuda", enabled=model.dtype == torch.float16 and model.device.startswith("cuda"))
    checkpoint = folder / "checkpoint.safetensors"
    start, losses, resumed_from = 0, [], None
    saved = _read_cache(checkpoint)
    if saved is not None:
        start, losses = _load_checkpoint(*saved, str(checkpoint), model, opt)
        resumed_from = start
    timesteps = model.num_train_timesteps
    for step in range(start, settings.steps):
        g = _seeded("lora", key, settings.seed, step)
        crop = _random_crop(tensors, g, size, settings.crop_scale)
        with torch.no_grad():
            z0 = model.encode(crop)
        prompts = [scene_prompt]
        if len(preservation):
            j = int(torch.randint(len(preservation), (1,), generator=g))
            z0 = torch.cat([z0, preservation[j:j + 1].to(z0.device)])
            prompts.append(class_prompt)
        noise = torch.randn(z0.shape, generator=g).to(z0.device)
        t = torch.randint(0, timesteps, (len(prompts),), generator=g).to(z0.device)
        a = model._alpha(t, z0)
        z_t = a.sqrt() * z0 + (1.0 - a).sqrt() * noise
        pred = model.model_output(z_t, t, prompts, personalised=True)
        loss = torch.nn.functional.mse_loss(pred, model.training_target(z0, noise, t))
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        losses.append(float(loss.detach()))
        if not math.isfinite(losses[-1]):
            raise GuidanceError(f"the LoRA training diverged at step {step + 1} (loss {losses[-1]})",
                                where=str(folder), fix="lower the personalisation learning rate")
        if on_step:
            on_step(step + 1, settings.steps, losses[-1])
        if (step + 1) % settings.checkpoint_every == 0 and step + 1 < settings.steps:
            _save_checkpoint(checkpoint, model, opt, step + 1, losses)
    seconds = time.perf_counter() - t0
    from ..fsutil import atomic_write_text

    info = {"key": key, "base_model": model.source, "base_identity": model.identity, "class": class_name,
            "settings": settings_record(settings), "steps": settings.steps, "final_loss": losses[-1] if losses else None,
            "seconds": round(seconds, 3), "resumed_from": resumed_from}
    atomic_write_text(folder / "lora.json", json.dumps(info, indent=2))
    _save_safetensors(final, model.lora_state(), {"rank": settings.rank, "losses": losses, "key": key})
    checkpoint.unlink(missing_ok=True)
    model.personalisation = PersonaliseResult(key, folder, False, settings.steps, tuple(losses), seconds, resumed_from)
    return model


def _preservation_latents(model: GuidanceModel, prompt: str, settings: GuidanceConfig, folder: Path, key: str):
    """The concept-preservation latents, generated once per cache folder (preservation.safetensors)."""
    import torch

    path = folder / "preservation.safetensors"
    if settings.preservation_images == 0:
        return torch.zeros((0, *model.latent_shape))
    cached = _read_cache(path)
    if cached is not None:
        latents = cached[0].get("latents")
        if latents is not None and tuple(latents.shape) == (settings.preservation_images, *model.latent_shape):
            return latents
    seeds = [frame_seed(f"preservation:{key}:{settings.seed}", i) for i in range(settings.preservation_images)]
    latents = generate_latents(model, prompt, seeds, steps=settings.sampling_steps,
                               guidance_scale=settings.sampling_guidance)
    _save_safetensors(path, {"latents": latents}, {"prompt": prompt})
    return latents


def _save_checkpoint(path: Path, model: GuidanceModel, opt, step: int, losses: list[float]) -> None:
    """LoRA weights + AdamW state in one safetensors file (no pickle anywhere)."""
    tensors = {f"lora/{k}": v for k, v in model.lora_state().items()}
    for i, state in opt.state_dict()["state"].items():
        for name, value in state.items():
            tensors[f"adam/{i}/{name}"] = value.detach().cpu().reshape(value.shape)
    _save_safetensors(path, tensors, {"step": step, "losses": losses})


def _load_checkpoint(tensors: dict, meta: dict, where: str, model: GuidanceModel, opt) -> tuple[int, list[float]]:
    model.load_lora_state({k[5:]: v for k, v in tensors.items() if k.startswith("lora/")}, where)
    state: dict[int, dict] = {}
    for k, v in tensors.items():
        if k.startswith("adam/"):
            _, i, name = k.split("/", 2)
            state.setdefault(int(i), {})[name] = v
    opt.load_state_dict({"state": state, "param_groups": opt.state_dict()["param_groups"]})
    return int(meta["step"]), list(meta["losses"])
