"""GPU path check for the render stage (issue 15, item 6): vfxinsert's renders on Mitsuba's ``cuda_ad_rgb``.

What it runs, through vfxinsert's own scene and denoise code (benchmarks/quality_scenes.py's scene):
1. a final frame at ``--size`` (1920x1080) and ``--spp`` (128), depth 8, teapot and the 1.1M-triangle
   bunny: scene build time, median render time after a warm-up, and the checks the CPU tests make
   (the ground the object plays no part in has a shadow ratio of exactly 1; the composite equals the
   plate there);
2. the same frame at 16 spp + ``denoise = "oidn"`` (OIDN on the CPU: pyoidn's numpy path);
3. one optimisation iteration: 32 SG lobes -> env (torch, CUDA) -> differentiable layers of a 256x256
   crop at 16 spp, depth 3 -> composite -> L2 loss -> backward, median after warm-up.

It prints a Markdown table to paste into docs/benchmarks.md. Run on a machine with an NVIDIA GPU, from
the repository root, with the project's environment plus a CUDA build of torch:
    python scripts/gpu_render_check.py [--size 1920x1080] [--spp 128] [--repeats 3]
Without a usable GPU it stops at once with exit status 2 and says why. CI never runs it.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
NO_GPU = 2


def fail(message: str) -> int:
    print(f"gpu_render_check: {message}", file=sys.stderr)
    return NO_GPU


def timed(fn, repeats: int) -> float:
    fn()   # warm-up: kernels compile on the first call
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="1920x1080")
    parser.add_argument("--spp", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--assets", nargs="+", default=["teapot", "bunny1m"])
    args = parser.parse_args(argv)
    w, h = (int(x) for x in args.size.split("x"))
    try:
        import torch
    except ImportError:
        return fail("torch is not installed; set up the project's environment first")
    if not torch.cuda.is_available():
        return fail("no CUDA GPU is visible to torch; run this on a GPU machine with a CUDA build of torch")
    from vfxinsert.env import import_mitsuba
    from vfxinsert.errors import SetupError

    try:
        mi = import_mitsuba("cuda_ad_rgb")
    except SetupError as exc:
        return fail(f"Mitsuba's cuda_ad_rgb variant cannot start: {exc}")

    import quality_scenes as qs

    from vfxinsert.composite import composite
    from vfxinsert.denoise import denoise
    from vfxinsert.lighting.sg import SGLighting, SGLobes
    from vfxinsert.scene import InsertScene, View

    print(f"GPU: {torch.cuda.get_device_name(0)}; Mitsuba {mi.__version__} {mi.variant()}; torch {torch.__version__}\n")
    print("| case | asset | triangles | size | spp | build s | median s | Msamples/s | check |")
    print("|---|---|---|---|---|---|---|---|---|")
    plate = np.random.default_rng(0).uniform(0.1, 2.0, (h, w, 3)).astype(np.float32)
    for asset in args.assets:
        parts = qs.parts(asset)
        tris = sum(len(p.faces) for p in parts)
        t0 = time.perf_counter()
        scene = qs.build(asset, w, h, mesh_parts=parts)
        build = time.perf_counter() - t0
        t = timed(lambda: scene.render(seed=1, spp=args.spp), args.repeats)
        layers = scene.render(seed=2, spp=args.spp)
        rgb, alpha, shadow, comp = composite(layers, plate)
        away = (alpha[..., 0] == 0) & np.all(shadow == 1.0, axis=-1)
        ok = bool(np.array_equal(comp[away], plate[away])) and away.mean() > 0.3
        print(f"| final | {asset} | {tris:,} | {w}x{h} | {args.spp} | {build:.2f} | {t:.3f} | "
              f"{w * h * args.spp / t / 1e6:.0f} | {'ok' if ok else 'FAILED'} (exact plate on {away.mean():.0%}) |")

        def low_denoised():
            r, a, s, _ = composite(scene.render(seed=3, spp=16), 0.0)
            return denoise(r, a, s)

        t = timed(low_denoised, args.repeats)
        print(f"| final + oidn (CPU) | {asset} | {tris:,} | {w}x{h} | 16 | | {t:.3f} | | |")

    rng = np.random.default_rng(0)
    axis = rng.normal(size=(32, 3))
    lobes = SGLobes(axis / np.linalg.norm(axis, axis=1, keepdims=True), np.full(32, 10.0), np.full((32, 3), 0.5))
    full = View(qs.camera(), qs.FOV_X_DEG, w, h, window=(w // 2 - 128, h // 2 - 128, 256, 256))
    scene = InsertScene(qs.parts("teapot"), ground_height_m=0.0, ground_albedo=(0.3,) * 3, view=full, env_height=64,
                        max_depth=3)
    crop_plate = torch.full((256, 256, 3), 0.3, device="cuda")
    target = torch.full((256, 256, 3), 0.25, device="cuda")
    light = SGLighting(lobes, device="cuda")
    opt = torch.optim.Adam(light.parameters(), lr=0.01)

    def iteration():
        opt.zero_grad()
        layers = scene.render_torch(light.mitsuba_env(64), 7, 16)
        loss = ((composite(layers, crop_plate)[3] - target) ** 2).mean()
        loss.backward()
        opt.step()
        torch.cuda.synchronize()

    t = timed(iteration, max(args.repeats, 5))
    print(f"| optimisation iteration | teapot | | 256x256 | 16 | | {t:.3f} | | fwd + bwd, 32 SG |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
