"""GPU check of the guidance: the production code on CUDA, fp16, Mitsuba cuda_ad_rgb, at 512 and 768 px.

One command, under 5 minutes on an H100-class GPU, nothing downloaded. For each model size (SD 2.1-base
at 512 px, epsilon; SD 2.1 at 768 px, v-prediction), a full-size checkpoint of the real architecture
with random weights (benchmarks/guidance_speed.py; time and memory do not depend on weight values) is
written with save_pretrained and then, all through vfxinsert's own functions:

1. ``load_model``: it must come up in float16 on the GPU;
2. ``personalise``: the LoRA on a synthetic 1080p plate (``--lora-steps``; steps/s, peak memory);
3. ``optimise`` with ``LDSObjective`` for ``--iterations`` on a Mitsuba scene (a sphere on the proxy
   ground under a sun + sky) at the crop size ``[optimize] crop_px = "auto"`` gives on a GPU (the model's
   native size), 16 spp, depth 3: per-iteration time, peak memory, and an assertion that every SG
   parameter gets a finite, non-zero gradient;
4. one LDS iteration alone (encode + two UNet passes + backward) at the native size.

It prints a Markdown table and writes every figure to ``--json`` (default gpu_guidance_check.json), which
docs/benchmarks.md quotes. Exit status: 0 all checks passed, 1 a check failed, 2 no usable GPU.

    python scripts/gpu_guidance_check.py [--sizes 512,768] [--iterations 12] [--lora-steps 30] [--json FILE]
    python scripts/gpu_guidance_check.py --cpu     # the same code at a reduced size on the CPU (a smoke run)
"""
from __future__ import annotations

import argparse
import json
import math
import platform
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


def check_size(size: int, args, tmp: Path, device: str, variant: str) -> dict:
    """Every figure of one model size (see the module docstring)."""
    import numpy as np
    import torch
    from benchmarks.guidance_speed import build_random_sd, time_lds_iteration
    from test_scene import look_at, sphere

    from vfxinsert.config import GuidanceConfig, OptimizeConfig
    from vfxinsert.guidance.loading import load_model
    from vfxinsert.guidance.objectives import LDSObjective
    from vfxinsert.guidance.personalise import personalise, plate_display
    from vfxinsert.lighting.init import sky_lobes
    from vfxinsert.lighting.loop import FrameTarget, optimise
    from vfxinsert.lighting.models import TwoMapSG
    from vfxinsert.lighting.tone import ToneCurves
    from vfxinsert.scene import InsertScene, View

    cuda = device == "cuda"

    def peak_reset():
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()

    def peak() -> float | None:
        return torch.cuda.max_memory_allocated() / 2**30 if cuda else None

    out: dict = {"size_px": size}
    t0 = time.perf_counter()
    folder = build_random_sd(tmp / f"sd-{size}", reduced=args.cpu, size=size)
    out["build_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    model = load_model(str(folder), Path.cwd(), device=device)
    out.update(load_s=time.perf_counter() - t0, dtype=str(model.dtype), native_px=model.native_px,
               prediction_type=model.prediction_type)
    if cuda and model.dtype != torch.float16:
        raise AssertionError(f"load_model gave {model.dtype} on CUDA, expected torch.float16")

    # -- personalisation on a synthetic plate (a sky gradient over a textured ground)
    yy = np.linspace(0.0, 1.0, 1080, dtype=np.float32)[:, None, None]
    grain = 0.05 * np.random.default_rng(0).random((1080, 1920, 1), np.float32)
    plate_linear = np.where(yy < 0.45, 0.6 - 0.4 * yy, 0.12 + grain) * np.array([0.9, 1.0, 1.1], np.float32)
    stamps: list[float] = []
    peak_reset()
    personalise(model, [plate_display(plate_linear)], class_name="ball", cache_dir=tmp / f"cache-{size}",
                settings=GuidanceConfig(steps=args.lora_steps, preservation_images=args.preservation,
                                        sampling_steps=10),
                on_step=lambda *a: stamps.append(time.perf_counter()))
    warm = stamps[max(len(stamps) // 5, 1):]
    out.update(lora_steps_per_s=(len(warm) - 1) / (warm[-1] - warm[0]) if len(warm) > 1 else float("nan"),
               lora_peak_gib=peak(), personalise_s=model.personalisation.seconds)

    # -- the optimisation loop at the crop size "auto" gives
    settings = OptimizeConfig(iterations=args.iterations, spp=args.spp, max_depth=3, env_height=64, starts=1)
    px = settings.crop_size(cuda=cuda, native_px=model.native_px) if not args.cpu else 64
    view = View(look_at((0, 1.4, 2.6), (0, 0.25, 0)), 40.0, px, px)
    scene = InsertScene([sphere((0, 0.35, 0), 0.35)], ground_height_m=0.0, ground_albedo=(0.3, 0.3, 0.3),
                        view=view, env_height=64, max_depth=3)
    if scene.torch_device != device:
        raise AssertionError(f"Mitsuba renders to {scene.torch_device}, expected {device} ({variant})")
    plate_crop = np.ascontiguousarray(plate_linear[400:400 + px, 800:800 + px])
    # optimise() takes target.plate with torch.as_tensor, which keeps a CUDA tensor on the GPU
    target = FrameTarget(0, view, torch.as_tensor(plate_crop, device=device))
    lighting = TwoMapSG(sky_lobes((0.5, 0.6, -0.6)), 64, device=device)
    tone = ToneCurves(1, device=device)
    objective = LDSObjective(model, "a photo of a ball in sks scene", seed_key="gpu-check")
    ticks: list[float] = []
    grads: dict[str, list[float]] = {}

    def on_iteration(i: int, n: int, loss: float) -> None:
        if cuda:
            torch.cuda.synchronize()
        ticks.append(time.perf_counter())
        for name, p in zip(("fg axis", "fg sharpness", "fg amplitude", "sh axis", "sh sharpness", "sh amplitude"),
                           lighting.parameters()):
            grads.setdefault(name, []).append(float(p.grad.abs().max()) if p.grad is not None else 0.0)

    peak_reset()
    start = time.perf_counter()
    result = optimise(scene, [target], lighting, tone, settings, objective, shot_name="gpu-check",
                      on_iteration=on_iteration)
    steps = np.diff([start, *ticks])[min(3, len(ticks) // 3):]   # the first iterations compile kernels
    finite = all(math.isfinite(v) for v in result.losses) and all(math.isfinite(g) for v in grads.values() for g in v)
    out.update(crop_px=px, spp=args.spp, iteration_s=float(np.median(steps)), loop_peak_gib=peak(),
               losses_finite=finite, sg_gradient_max=[max(v) for v in grads.values()],
               sg_gradients_ok=finite and all(max(v) > 0.0 for v in grads.values()))

    # -- LDS alone at the model's native size
    peak_reset()
    lds = time_lds_iteration(model, model.native_px, args.repeats)
    out.update(lds_iteration_s=statistics.median(lds), lds_peak_gib=peak())
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="512,768", help="model sizes to check (512: SD 2.1-base, 768: SD 2.1)")
    parser.add_argument("--iterations", type=int, default=12, help="optimisation iterations to time per size")
    parser.add_argument("--spp", type=int, default=16)
    parser.add_argument("--lora-steps", type=int, default=30, help="LoRA steps to time (500 are extrapolated)")
    parser.add_argument("--preservation", type=int, default=2, help="concept-preservation images to generate")
    parser.add_argument("--repeats", type=int, default=5, help="LDS-alone repeats")
    parser.add_argument("--json", type=Path, default=Path("gpu_guidance_check.json"))
    parser.add_argument("--cpu", action="store_true",
                        help="smoke run without a GPU: widths / 10 at 128 px, llvm_ad_rgb, float32, 64 px crops")
    args = parser.parse_args(argv)
    if args.cpu:
        args.sizes, args.iterations, args.lora_steps, args.preservation, args.repeats = "128", 3, 3, 1, 1
    try:
        import torch
    except ImportError:
        return fail("torch is not installed; set up the project's environment first")
    from vfxinsert.env import import_mitsuba
    from vfxinsert.errors import VfxInsertError

    if args.cpu:
        device, variant = "cpu", "llvm_ad_rgb"
    elif not torch.cuda.is_available():
        return fail("no CUDA GPU is visible to torch (torch.cuda.is_available() is False; torch "
                    f"{torch.__version__}). Run this on a GPU machine with a CUDA build of torch, or use --cpu.")
    else:
        device, variant = "cuda", "cuda_ad_rgb"
    try:
        import_mitsuba(variant)
    except VfxInsertError as exc:
        return fail(f"Mitsuba's {variant} variant cannot start: {exc.line()}")

    machine = torch.cuda.get_device_name() if device == "cuda" else (platform.processor() or "CPU")
    report = {"machine": machine, "torch": torch.__version__, "mitsuba_variant": variant, "sizes": []}
    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for size in (int(s) for s in args.sizes.split(",")):
            report["sizes"].append(check_size(size, args, Path(tmp), device, variant))
    report["total_s"] = time.perf_counter() - t_all
    args.json.write_text(json.dumps(report, indent=2))

    print(f"# Guidance check: {machine}, torch {torch.__version__}, Mitsuba {variant}\n")
    print("| model | dtype | crop | loop iteration | LDS alone | LoRA | peak GiB (LoRA / loop / LDS) | SG gradients |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in report["sizes"]:
        peaks = " / ".join("n/a" if r[k] is None else f"{r[k]:.2f}" for k in ("lora_peak_gib", "loop_peak_gib", "lds_peak_gib"))
        print(f"| {r['native_px']} px {r['prediction_type']} | {r['dtype']} | {r['crop_px']} px, {r['spp']} spp | "
              f"{r['iteration_s']:.3f} s | {r['lds_iteration_s']:.3f} s | {r['lora_steps_per_s']:.2f} steps/s "
              f"(500: {500 / r['lora_steps_per_s']:.0f} s) | {peaks} | {'ok' if r['sg_gradients_ok'] else 'FAILED'} |")
    print(f"\nmethod.md targets: LDS iteration <= 0.3 s at 512 px; 500 LoRA steps <= 180 s. "
          f"Total {report['total_s']:.0f} s; figures in {args.json}")
    return 0 if all(r["sg_gradients_ok"] for r in report["sizes"]) else 1


if __name__ == "__main__":
    sys.exit(main())
