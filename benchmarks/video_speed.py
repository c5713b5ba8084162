"""Video shots: optimisation time for 1, 10 and 100 frames at equal iterations, and per-frame render
time for N frames. Target: 100 frames <= 1.1x the time of 1 frame (the loop samples one frame per
iteration, so its cost grows with iterations, not frames); renders linear in frames.

Run:  python benchmarks/video_speed.py [--iterations 60]   (prints a Markdown table)
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=60)
    args = parser.parse_args()
    from test_scene import sphere

    from vfxinsert.camera import Intrinsics, euler_zxy_to_matrix
    from vfxinsert.lighting.panorama import mitsuba_env_directions
    from vfxinsert.lighting.sg import SGLobes
    from vfxinsert.config import OptimizeConfig
    from vfxinsert.lighting.loop import FrameTarget, ReferenceObjective, optimise
    from vfxinsert.lighting.models import TwoMapSG
    from vfxinsert.composite import composite
    from vfxinsert.scene import InsertScene, View
    from vfxinsert.lighting.stage import object_window
    from vfxinsert.lighting.tone import ToneCurves

    W, H, CROP = 320, 180, 64
    intr = Intrinsics(24.0, (36.0, 20.25), W, H)
    ball = sphere((0.0, 0.3, -3.0), 0.3)
    bounds = (ball.vertices.min(0), ball.vertices.max(0))
    lobes = SGLobes(np.array([[0.5, 0.6, -0.62], [0, 1, 0]]) / np.array([[np.linalg.norm([0.5, 0.6, -0.62])], [1]]),
                    np.array([120.0, 2.0]), np.array([[60.0, 45.0, 30.0], [0.3, 0.4, 0.6]]))

    def views(n):
        out = []
        for f in range(n):
            c2w = np.eye(4)
            c2w[:3, :3] = euler_zxy_to_matrix(-25.0, 8.0 - 16.0 * f / max(n - 1, 1), 0.0)
            c2w[1, 3] = 1.5
            x0, y0, side = object_window(bounds, 0.0, c2w, intr)
            out.append((View(c2w, intr.fov_x_deg, W, H, window=(x0, y0, side, side), scale=CROP / side),
                        View(c2w, intr.fov_x_deg, W, H)))
        return out

    rows = []
    for n in (1, 10, 100):
        vs = views(n)
        scene = InsertScene([ball], ground_height_m=0.0, ground_albedo=(0.3,) * 3, view=vs[0][0], env_height=64,
                            max_depth=3)
        scene.set_env(lobes.radiance(mitsuba_env_directions(64, 128)).astype(np.float32))
        plate = np.full((CROP, CROP, 3), 0.25, np.float32)
        t0 = time.perf_counter()
        targets = []
        for f, (crop, _) in enumerate(vs):
            scene.set_view(crop)
            targets.append(FrameTarget(f, crop, plate, composite(scene.render(seed=f, spp=64), plate)[3]))
        setup = time.perf_counter() - t0
        axis = np.random.default_rng(0).normal(size=(8, 3))
        init = SGLobes(axis / np.linalg.norm(axis, axis=1, keepdims=True), np.full(8, 10.0), np.ones((8, 3)))
        result = optimise(scene, targets, TwoMapSG(init, 64, 200.0), ToneCurves(n),
                          OptimizeConfig(iterations=args.iterations, crop_px=CROP, spp=16), ReferenceObjective(),
                          shot_name=f"bench{n}")
        rows.append((n, result.seconds, setup))
    renders = []
    full = InsertScene([ball], ground_height_m=0.0, ground_albedo=(0.3,) * 3, view=views(1)[0][1], env_height=64,
                       max_depth=6)
    full.set_env(lobes.radiance(mitsuba_env_directions(64, 128)).astype(np.float32))
    full.render(0, 4)  # compile
    for n in (1, 10, 30):
        t0 = time.perf_counter()
        for f, (_, v) in enumerate(views(n)):
            full.set_view(v)
            full.render(f, 64)
        renders.append((n, time.perf_counter() - t0))
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
    print(f"Machine: {cpu}, {os.cpu_count()} CPUs. Optimisation: {args.iterations} iterations, {CROP} px crops, 16 spp, "
          f"2 renders per iteration; renders: {W}x{H}, 64 spp, depth 6.\n")
    print("| frames in the solve | loop time (s) | x 1 frame | setup: reference renders (s) |")
    print("|---|---|---|---|")
    for n, loop, setup in rows:
        print(f"| {n} | {loop:.2f} | {loop / rows[0][1]:.2f} | {setup:.2f} |")
    print("\n| frames rendered | total (s) | per frame (s) |")
    print("|---|---|---|")
    for n, total in renders:
        print(f"| {n} | {total:.2f} | {total / n:.3f} |")


if __name__ == "__main__":
    main()
