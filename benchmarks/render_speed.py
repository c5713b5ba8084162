"""Renderer speed and memory against stock Mitsuba, on one scene in one run.

1. Final render: the shadow-catcher integrator (all layers) vs a raw Mitsuba `path` render of the same
   scene (object + ground + env), same resolution, spp and depth. Target <= 1.10x.
2. One optimisation render: our layers forward + backward through torch (dr.wrap, SG env -> layers ->
   composite -> loss) vs a stock `prb` forward + backward of the same crop with an L2 loss on env.data.
   Target <= 1.5x.

Each case runs in its own process (so peak RSS is its own), warm-up first, median of N.
Run:  python benchmarks/render_speed.py [--repeats 5]   (prints a Markdown table)
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("VFXINSERT_SHARED_DATA", ROOT.parent / "shared" / "data"))
FINAL = dict(width=640, height=360, spp=64, max_depth=6)
OPTIM = dict(width=256, height=256, spp=16, max_depth=3)


def build(case: str):
    import numpy as np

    from vfxinsert.config import AssetConfig, MaterialConfig
    from vfxinsert.lighting.panorama import hdri_to_mitsuba_env
    from vfxinsert.plates import read_image
    from vfxinsert.assets import load_asset_parts
    from vfxinsert.scene import InsertScene, View

    cfg = FINAL if case.startswith("final") else OPTIM
    asset = AssetConfig(mesh=SHARED / "assets" / "stanford-bunny.obj", position_m=(0.0, -0.2, -1.6), scale=6.0,
                        material=MaterialConfig(base_color=(0.7, 0.6, 0.5), roughness=0.5))
    parts = load_asset_parts(asset, 0)
    c2w = np.eye(4)
    c2w[1, 3] = 0.6
    view = View(c2w, 50.0, cfg["width"], cfg["height"])
    env_h = 256 if case.startswith("final") else 64  # the optimisation rasterises SGs at 64 x 128 (method.md)
    env = hdri_to_mitsuba_env(read_image(SHARED / "hdri" / "rooitou_park_1k.hdr").rgb, env_h)
    scene = InsertScene(parts, ground_height_m=0.0, ground_albedo=(0.3, 0.3, 0.3), view=view, env_height=env_h,
                        max_depth=cfg["max_depth"])
    scene.set_env(env)
    return scene, env, cfg


def run_case(case: str, repeats: int) -> dict:
    import drjit as dr
    import mitsuba as mi
    import numpy as np

    scene, env, cfg = build(case)
    spp = cfg["spp"]
    if case == "final_ours":
        step = lambda seed: np.array(scene.render(seed, spp))  # noqa: E731
    elif case == "final_path":
        ref = mi.load_dict(scene.scene_dict({"type": "path", "max_depth": cfg["max_depth"]},
                                            mi.Bitmap(np.ones((256, 512, 3), np.float32))))
        p = mi.traverse(ref)
        p["env.data"] = mi.TensorXf(env)
        p.update()
        step = lambda seed: np.array(mi.render(ref, seed=seed, spp=spp))  # noqa: E731
    elif case == "optim_ours":
        import torch

        from vfxinsert.lighting.sg import SGLighting, SGLobes
        from vfxinsert.composite import composite

        rng = np.random.default_rng(0)
        axis = rng.normal(size=(32, 3))
        lobes = SGLobes(axis / np.linalg.norm(axis, axis=1, keepdims=True), np.full(32, 10.0), np.full((32, 3), 0.5))
        light = SGLighting(lobes)
        plate = torch.full((cfg["height"], cfg["width"], 3), 0.3)

        def step(seed):
            for t in light.parameters():
                t.grad = None
            layers = scene.render_torch(light.mitsuba_env(64), seed, spp)
            loss = composite(layers, plate)[3].square().mean()
            loss.backward()
            return light.log_amplitude.grad.numpy()
    elif case == "optim_prb":
        ref = mi.load_dict(scene.scene_dict({"type": "prb", "max_depth": cfg["max_depth"]},
                                            mi.Bitmap(np.ones((64, 128, 3), np.float32))))
        p = mi.traverse(ref)
        data = mi.TensorXf(np.ones((64, 130, 3), np.float32))

        def step(seed):
            dr.enable_grad(data)
            p["env.data"] = data
            p.update()
            img = mi.render(ref, p, seed=seed, spp=spp)
            dr.backward(dr.mean(dr.square(img)))
            g = dr.grad(data)
            dr.eval(g)
            dr.sync_thread()
            return np.array(g)
    else:
        raise SystemExit(f"unknown case {case}")
    times = []
    for k in range(repeats + 1):
        t = time.perf_counter()
        step(100 + k)
        dr.sync_thread()
        if k:  # the first run compiles kernels
            times.append(time.perf_counter() - t)
    samples = cfg["width"] * cfg["height"] * spp
    return {"case": case, "median_s": statistics.median(times), "min_s": min(times),
            "msamples_per_s": samples / statistics.median(times) / 1e6,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, **cfg}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case, args.repeats)))
        return
    rows = {}
    for case in ("final_path", "final_ours", "optim_prb", "optim_ours"):
        out = subprocess.run([sys.executable, __file__, "--case", case, "--repeats", str(args.repeats)],
                             capture_output=True, text=True, check=True)
        rows[case] = json.loads(out.stdout.strip().splitlines()[-1])
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
    print(f"Machine: {cpu}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"median of {args.repeats} warm runs, each case in its own process.\n")
    print("| case | what | resolution | spp | depth | median s | Msamples/s | peak RSS MB |")
    print("|---|---|---|---|---|---|---|---|")
    what = {"final_path": "stock `path`, forward", "final_ours": "shadow catcher, all layers, forward",
            "optim_prb": "stock `prb`, forward + backward (L2 on env.data)",
            "optim_ours": "ours: SG env -> layers -> composite -> loss, forward + backward"}
    for case, r in rows.items():
        print(f"| {case} | {what[case]} | {r['width']}x{r['height']} | {r['spp']} | {r['max_depth']} | "
              f"{r['median_s']:.3f} | {r['msamples_per_s']:.2f} | {r['peak_rss_mb']:.0f} |")
    final = rows["final_ours"]["median_s"] / rows["final_path"]["median_s"]
    optim = rows["optim_ours"]["median_s"] / rows["optim_prb"]["median_s"]
    print(f"\nFinal render vs raw `path`: **{final:.2f}x** (target <= 1.10x). "
          f"Optimisation render vs stock `prb`: **{optim:.2f}x** (target <= 1.5x).")


if __name__ == "__main__":
    main()
