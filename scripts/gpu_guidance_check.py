"""GPU path check for diffusion guidance (issue 5, item 5): the production code on CUDA, fp16 + cuda_ad_rgb.

What it runs, all through vfxinsert's own functions:
1. ``load_model``: ``--model`` (a diffusers folder or a pinned id), or by default a Stable Diffusion
   2.1-base-architecture checkpoint with random weights written by benchmarks/guidance_speed.py
   (timings do not depend on weight values); it must come up in float16 on the GPU;
2. ``personalise``: the LoRA on a synthetic 1080p plate (``--lora-steps``, ``--preservation`` concept
   images), timed per step;
3. ``optimise`` (the loop of optimise.py) with ``LDSObjective`` for ``--iterations`` on a Mitsuba
   ``cuda_ad_rgb`` scene: a sphere on the proxy ground under a sun + sky, ``--crop-px`` crops (256),
   16 spp, depth 3, lighting and tone curves on the GPU;
4. one LDS iteration alone (VAE encode + two UNet passes + backward) at the model's native size.

It prints a Markdown table (iteration times as medians after warm-up; peak memory of the torch allocator
and of the whole device, which includes Dr.Jit's pool) to paste into docs/benchmarks.md, with the
method.md targets (LDS iteration <= 0.3 s at 512 px; 500 LoRA steps <= 3 min).

Run on a machine with an NVIDIA GPU, from the repository root, with the project's environment plus a
CUDA build of torch:   python scripts/gpu_guidance_check.py [--model PATH] [--iterations 30]
Without a usable GPU it stops at once with exit status 2 and says why. CI never runs it.
"""
from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))   # test_scene: sphere() and look_at() build the scene in code
NO_GPU = 2


def fail(message: str) -> int:
    print(f"gpu_guidance_check: {message}", file=sys.stderr)
    return NO_GPU


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="",
                        help="diffusers folder or org/name@revision (default: random SD 2.1-base weights)")
    parser.add_argument("--iterations", type=int, default=30, help="optimisation iterations to time")
    parser.add_argument("--crop-px", type=int, default=256, help="optimisation render size (method.md: 256)")
    parser.add_argument("--spp", type=int, default=16)
    parser.add_argument("--lora-steps", type=int, default=50, help="LoRA steps to time (500 are extrapolated)")
    parser.add_argument("--preservation", type=int, default=4, help="concept-preservation images to generate")
    args = parser.parse_args(argv)

    try:
        import torch
    except ImportError:
        return fail("torch is not installed; set up the project's environment first")
    if not torch.cuda.is_available():
        return fail("no CUDA GPU is visible to torch (torch.cuda.is_available() is False; torch "
                    f"{torch.__version__}). Run this on a GPU machine with a CUDA build of torch.")
    from vfxinsert.env import import_mitsuba
    from vfxinsert.errors import VfxInsertError

    try:
        import_mitsuba("cuda_ad_rgb")
    except VfxInsertError as exc:
        return fail(f"Mitsuba's cuda_ad_rgb variant cannot start: {exc.line()}")

    import numpy as np
    from benchmarks.guidance_speed import build_random_sd, time_lds_iteration
    from test_scene import look_at, sphere

    from vfxinsert.config import GuidanceConfig
    from vfxinsert.guidance.loading import load_model
    from vfxinsert.guidance.objectives import LDSObjective
    from vfxinsert.guidance.personalise import personalise, plate_display
    from vfxinsert.lighting.init import sky_lobes
    from vfxinsert.lighting.sg import max_sharpness
    from vfxinsert.config import OptimizeConfig
    from vfxinsert.lighting.loop import FrameTarget, optimise
    from vfxinsert.lighting.models import TwoMapSG
    from vfxinsert.scene import InsertScene, View
    from vfxinsert.lighting.tone import ToneCurves

    device = "cuda"
    with tempfile.TemporaryDirectory() as tmp:
        # -- 1. the model, fp16 on the GPU
        t0 = time.perf_counter()
        folder = args.model or str(build_random_sd(Path(tmp) / "sd21"))
        build_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        model = load_model(folder, Path.cwd())
        load_s = time.perf_counter() - t0
        if model.device != device or model.dtype != torch.float16:
            return fail(f"load_model gave {model.device} / {model.dtype}, expected cuda / torch.float16")

        # -- 2. personalisation on a synthetic plate (a sky gradient over a textured ground)
        yy = np.linspace(0.0, 1.0, 1080, dtype=np.float32)[:, None, None]
        grain = 0.05 * np.random.default_rng(0).random((1080, 1920, 1), np.float32)
        plate_linear = np.where(yy < 0.45, 0.6 - 0.4 * yy, 0.12 + grain) * np.array([0.9, 1.0, 1.1], np.float32)
        stamps: list[float] = []
        torch.cuda.reset_peak_memory_stats()
        personalise(model, [plate_display(plate_linear)], class_name="ball", cache_dir=Path(tmp) / "cache",
                    settings=GuidanceConfig(steps=args.lora_steps, preservation_images=args.preservation),
                    on_step=lambda *a: stamps.append(time.perf_counter()))
        lora_peak = torch.cuda.max_memory_allocated() / 2**30
        warm = stamps[max(len(stamps) // 5, 1):]
        lora_rate = (len(warm) - 1) / (warm[-1] - warm[0]) if len(warm) > 1 else float("nan")
        personalise_s = model.personalisation.seconds

        # -- 3. the optimisation loop on cuda_ad_rgb
        px = args.crop_px
        view = View(look_at((0, 1.4, 2.6), (0, 0.25, 0)), 40.0, px, px)
        scene = InsertScene([sphere((0, 0.35, 0), 0.35)], ground_height_m=0.0, ground_albedo=(0.3, 0.3, 0.3),
                            view=view, env_height=64, max_depth=3)
        plate_crop = plate_linear[400:400 + px, 800:800 + px]
        # optimise() turns target.plate into a tensor with torch.as_tensor, which keeps a CUDA tensor where
        # it is: the plate goes in on the GPU, beside the renders
        target = FrameTarget(0, view, torch.as_tensor(plate_crop, device=device))
        lighting = TwoMapSG(sky_lobes((0.5, 0.6, -0.6)), 64, max_sharpness(64), device=device)
        tone = ToneCurves(1, device=device)
        settings = OptimizeConfig(iterations=args.iterations, crop_px=px, spp=args.spp, max_depth=3, env_height=64)
        objective = LDSObjective(model, "a photo of a ball in sks scene", seed_key="gpu-check")
        ticks: list[float] = []
        device_used = [0.0]

        def on_iteration(i: int, n: int, loss: float) -> None:
            ticks.append(time.perf_counter())
            free, total = torch.cuda.mem_get_info()
            device_used[0] = max(device_used[0], (total - free) / 2**30)

        torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        result = optimise(scene, [target], lighting, tone, settings, objective, shot_name="gpu-check",
                          on_iteration=on_iteration)
        loop_peak = torch.cuda.max_memory_allocated() / 2**30
        steps = np.diff([start, *ticks])[min(5, len(ticks) // 3):]   # the first iterations compile kernels
        losses_ok = all(math.isfinite(v) for v in result.losses)
        grads_ok = all(p.grad is not None and bool(torch.isfinite(p.grad).all()) and float(p.grad.abs().max()) > 0
                       for p in lighting.parameters())

        # -- 4. LDS alone at the model's native size (a crop_px composite upsampled to it)
        torch.cuda.reset_peak_memory_stats()
        lds = time_lds_iteration(model, px, 10)
        lds_peak = torch.cuda.max_memory_allocated() / 2**30

    name = torch.cuda.get_device_name()
    print(f"# Guidance on the GPU: {name}, torch {torch.__version__}, Mitsuba cuda_ad_rgb, {model.dtype}\n")
    print(f"model: {'random SD 2.1-base architecture' if not args.model else args.model} "
          f"({model.native_px} px; built in {build_s:.0f} s, loaded in {load_s:.1f} s)\n")
    print("| measure | value | target (method.md) |\n| --- | --- | --- |")
    print(f"| LDS iteration alone (encode + 2 UNet + backward), median of {len(lds)} | "
          f"{statistics.median(lds):.3f} s | <= 0.3 s at 512 px |")
    print(f"| optimisation iteration ({px} px crop, {args.spp} spp, 2 renders + LDS + step), median of "
          f"{len(steps)} | {float(np.median(steps)):.3f} s | |")
    print(f"| LoRA training | {lora_rate:.2f} steps/s; 500 steps: {500 / lora_rate:.0f} s | <= 180 s |")
    print(f"| personalisation as run ({args.lora_steps} steps + {args.preservation} concept images) | "
          f"{personalise_s:.1f} s | |")
    print(f"| peak torch memory: LoRA / loop / LDS alone | {lora_peak:.2f} / {loop_peak:.2f} / {lds_peak:.2f} GiB | |")
    print(f"| peak device memory in use during the loop (torch cache + Dr.Jit) | {device_used[0]:.2f} GiB | |")
    print(f"\nlosses finite: {losses_ok}; lighting gradients finite and non-zero: {grads_ok}")
    return 0 if losses_ok and grads_ok else 1


if __name__ == "__main__":
    sys.exit(main())
