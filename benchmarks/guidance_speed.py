"""Guidance speed without weights: a Stable Diffusion 2.1-architecture model with random weights.

Time and memory do not depend on the values of the weights (method.md, "Measuring speed without
weights"), so a model built from the SD 2.1-base configs (UNet with cross-attention width 1024, VAE with
4 latent channels, OpenCLIP-H-sized text encoder; 512 px) gives the real checkpoint's figures. The model
is saved with save_pretrained and loaded through ``vfxinsert.guidance.load_model`` (fp16 on CUDA), so
the timed code is the production code.

Measures:
1. one LDS iteration: composite crop -> resize -> VAE encode -> two UNet passes (LoRA on / off) ->
   backward to the composite (method.md target: <= 0.3 s at 512 px on an H100-class GPU, renders apart);
2. LoRA personalisation steps per second, and the time of 500 steps (target <= 3 min).

Run:  python benchmarks/guidance_speed.py                # full size; meant for a GPU
      python benchmarks/guidance_speed.py --reduced      # channel widths / 10, 128 px: a CPU smoke run
"""
from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "guidance"))   # tiny_sd: the CLIP vocabulary writer and the folder writer

# Stable Diffusion 2.1-base (512 px, epsilon prediction), as in its published config files.
SD21_UNET = dict(
    sample_size=64, in_channels=4, out_channels=4, layers_per_block=2, block_out_channels=(320, 640, 1280, 1280),
    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    attention_head_dim=(5, 10, 20, 20), cross_attention_dim=1024, use_linear_projection=True, norm_num_groups=32)
SD21_VAE = dict(
    sample_size=512, in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2,
    block_out_channels=(128, 256, 512, 512), down_block_types=("DownEncoderBlock2D",) * 4,
    up_block_types=("UpDecoderBlock2D",) * 4, norm_num_groups=32, scaling_factor=0.18215)
SD21_TEXT = dict(
    vocab_size=49408, hidden_size=1024, intermediate_size=4096, num_hidden_layers=23, num_attention_heads=16,
    max_position_embeddings=77, projection_dim=512, hidden_act="gelu", bos_token_id=0, eos_token_id=1, pad_token_id=1)
# --reduced: every width / 10 (group norms of 8), 128 px, 2 text layers: the same code at CPU speed.
REDUCED_UNET = {**SD21_UNET, "sample_size": 16, "block_out_channels": (32, 64, 128, 128), "norm_num_groups": 8,
                "attention_head_dim": (1, 2, 4, 4), "cross_attention_dim": 128}
REDUCED_VAE = {**SD21_VAE, "sample_size": 128, "block_out_channels": (16, 32, 64, 64), "norm_num_groups": 8}
REDUCED_TEXT = {**SD21_TEXT, "hidden_size": 128, "intermediate_size": 512, "num_hidden_layers": 2,
                "num_attention_heads": 4, "projection_dim": 64}


def build_random_sd(folder: Path, *, reduced: bool = False, size: int = 512) -> Path:
    """Save an SD 2.1-architecture checkpoint with random weights (fp16 files) into ``folder``: SD 2.1-base
    (512 px, epsilon) or with ``size=768`` SD 2.1 (768 px, v-prediction); ``reduced``: widths / 10 at 128 px."""
    import torch
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from tiny_sd import save_tiny_sd, write_clip_vocab
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    unet_cfg, vae_cfg, text_cfg = ((REDUCED_UNET, REDUCED_VAE, REDUCED_TEXT) if reduced
                                   else ({**SD21_UNET, "sample_size": size // 8}, {**SD21_VAE, "sample_size": size},
                                         SD21_TEXT))
    vocab, merges = write_clip_vocab(folder.parent / f"{folder.name}-vocab")
    torch.manual_seed(0)
    components = {
        "unet": UNet2DConditionModel(**unet_cfg).half(),
        "vae": AutoencoderKL(**vae_cfg).half(),
        "text_encoder": CLIPTextModel(CLIPTextConfig(**text_cfg)).half(),
        # a small letters-only vocabulary: token ids stay below the text encoder's 49408, and tokenising
        # costs the same microseconds whatever the vocabulary
        "tokenizer": CLIPTokenizer(vocab=str(vocab), merges=str(merges), unk_token="<unk>", model_max_length=77),
        "scheduler": DDPMScheduler(num_train_timesteps=1000, beta_schedule="scaled_linear", beta_start=0.00085,
                                   beta_end=0.012, clip_sample=False, steps_offset=1,
                                   prediction_type="v_prediction" if size == 768 and not reduced else "epsilon"),
    }
    return save_tiny_sd(components, folder)


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_lds_iteration(model, crop_px: int, repeats: int) -> list[float]:
    """Seconds of LDS objective + backward to a (crop_px, crop_px, 3) composite, per repeat (after a warm-up)."""
    import numpy as np
    import torch

    from vfxinsert.guidance.objectives import LDSObjective
    from vfxinsert.lighting.loop import FrameTarget

    objective = LDSObjective(model, "a photo of a teapot in sks scene")
    target = FrameTarget(0, None, np.zeros((crop_px, crop_px, 3), np.float32))
    comp = torch.rand(crop_px, crop_px, 3, device=model.device, requires_grad=True)
    times = []
    for i in range(repeats + 1):
        _sync(model.device)
        t0 = time.perf_counter()
        objective(comp, target, i, 600).backward()
        _sync(model.device)
        if i:
            times.append(time.perf_counter() - t0)
    return times


def time_personalisation(model, steps: int, preservation: int, cache: Path) -> tuple[float, float]:
    """(steps per second of LoRA training, seconds to generate the preservation images)."""
    import numpy as np

    from vfxinsert.config import GuidanceConfig
    from vfxinsert.guidance.personalise import generate_latents, personalise

    t0 = time.perf_counter()
    if preservation:
        generate_latents(model, "a photo of a teapot", list(range(preservation)), steps=25, guidance_scale=7.5)
    _sync(model.device)
    generation = time.perf_counter() - t0
    plate = np.random.default_rng(0).uniform(size=(1080, 1920, 3)).astype(np.float32)
    stamps = []
    personalise(model, [plate], class_name="teapot", cache_dir=cache,
                settings=GuidanceConfig(steps=steps, preservation_images=1, sampling_steps=1),
                on_step=lambda *a: stamps.append(time.perf_counter()))
    warm = stamps[len(stamps) // 5:]   # the first steps include allocator and kernel warm-up
    return (len(warm) - 1) / (warm[-1] - warm[0]), generation


def main(argv: list[str] | None = None) -> int:
    import torch

    from vfxinsert.guidance.loading import load_model

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reduced", action="store_true", help="widths / 10 at 128 px (CPU smoke run)")
    parser.add_argument("--model", default="", help="a real checkpoint folder or pinned id instead of random weights")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--lora-steps", type=int, default=50)
    parser.add_argument("--preservation", type=int, default=4, help="concept images to generate and time")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.model) if args.model else build_random_sd(Path(tmp) / "sd21", reduced=args.reduced)
        model = load_model(str(folder), Path.cwd())
        model.add_lora(4)
        if model.device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        lds = time_lds_iteration(model, model.native_px // 2, args.repeats)   # a 256 px crop upsampled to 512
        cuda = model.device.startswith("cuda")
        lds_peak = f"{torch.cuda.max_memory_allocated() / 2**30:.2f} GiB" if cuda else "n/a (CPU)"
        fresh = load_model(str(folder), Path.cwd())
        rate, generation = time_personalisation(fresh, args.lora_steps, args.preservation, Path(tmp) / "cache")
    device = torch.cuda.get_device_name() if model.device.startswith("cuda") else platform.processor() or "CPU"
    print(f"# guidance speed: {'reduced' if args.reduced else 'SD 2.1-base'} model, {model.native_px} px, "
          f"{model.dtype}, {device}\n")
    print("| measure | value |\n| --- | --- |")
    print(f"| LDS iteration (encode + 2 UNet + backward), median of {len(lds)} | {statistics.median(lds):.3f} s |")
    print(f"| peak torch memory during LDS | {lds_peak} |")
    print(f"| LoRA training | {rate:.2f} steps/s (500 steps: {500 / rate:.0f} s) |")
    if args.preservation:
        print(f"| concept images (25 DDIM steps, CFG) | {generation / args.preservation:.2f} s per image |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
