"""The loop's ceiling on panoramas the prior never saw: `bench`'s `reference` rows (the loop from the
`plate` init against the true composite) on the lighting prior's validation panoramas.

    python benchmarks/loop_ceiling.py [--starts 3] [--cases rooitou_park,...] [--iterations 300]
                                      [--env-height 64] [--out FILE]

One camera heading per panorama (120 degrees from the key light's azimuth, the plate camera of the
prior's bench: pitch -12 degrees, 24 mm, the teapot 4 m ahead). Prints the per-case table and the
medians of the key-light direction (the 1k map's dominant light, and the same taken on the 64 x 128
raster the result is read on), object and shadow errors (Markdown). CPU, offline.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np


def main() -> int:
    from vfxinsert.bench import PLATE_CAMERA, format_table, run_case, shared_data, validation_panoramas
    from vfxinsert.lighting.prior.estimate import load_prior
    from vfxinsert.plates import read_image

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--starts", type=int, default=3, help="[optimize] starts of the loop (1: no multi-start)")
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--env-height", type=int, help="[optimize] env_height of the loop (default: the default, 64)")
    parser.add_argument("--cases", help="comma-separated panorama stems (default: all validation panoramas)")
    parser.add_argument("--out", type=Path, help="also write the Markdown here")
    args = parser.parse_args()
    sidecar = load_prior(None).sidecar()
    paths = validation_panoramas(sidecar, [shared_data() / "hdri-train", shared_data() / "hdri"])
    if args.cases:
        wanted = set(args.cases.split(","))
        paths = [p for p in paths if p.stem.removesuffix("_1k") in wanted]
    rows = []
    t0 = time.perf_counter()
    for path in paths:
        name = path.stem.removesuffix("_1k")
        case_rows = run_case(name, read_image(path).rgb, offset_deg=120.0, camera=PLATE_CAMERA,
                             iterations=args.iterations, starts=args.starts, env_height=args.env_height,
                             on_progress=lambda m: print(m, file=sys.stderr, flush=True))
        rows += case_rows
        for r in case_rows:   # each case as soon as it is done (a long run can be read while it goes on)
            print(f"case {r.case} {r.method}: key-light error {r.light_error_deg:.1f} deg (on the 64-row raster "
                  f"{r.light_error_64_deg:.1f}), object error "
                  f"{r.object_error:.3f}, shadow error {r.shadow_error:.3f} (same seed {r.shadow_error_same_seed:.3f}, in the crop "
                  f"{r.shadow_error_in_crop:.3f}), "
                  f"{r.seconds:.0f} s", file=sys.stderr, flush=True)
    lines = [f"Loop ceiling, starts = {args.starts}, env_height = {args.env_height or 64}, {len(paths)} validation panoramas, "
             f"{time.perf_counter() - t0:.0f} s in all.", "", format_table(rows, args.iterations), "",
             "| method | key-light error median (min-max) deg | the same, truth on the 64-row raster | object error median | "
             "shadow error median (min-max) | same seed: shadow error median (min-max) | same seed, in the crop |",
             "|---|---|---|---|---|---|---|"]
    for method in dict.fromkeys(r.method for r in rows):
        sel = [r for r in rows if r.method == method]
        light = [r.light_error_deg for r in sel]
        light64 = [r.light_error_64_deg for r in sel]
        shadow = [r.shadow_error for r in sel]
        same = [r.shadow_error_same_seed for r in sel]
        crop = [r.shadow_error_in_crop for r in sel]
        lines.append(f"| {method} | {np.median(light):.1f} ({min(light):.1f}-{max(light):.1f}) | "
                     f"{np.median(light64):.1f} ({min(light64):.1f}-{max(light64):.1f}) | "
                     f"{np.median([r.object_error for r in sel]):.3f} | {np.median(shadow):.3f} "
                     f"({min(shadow):.3f}-{max(shadow):.3f}) | {np.median(same):.3f} ({min(same):.3f}-{max(same):.3f}) | "
                     f"{np.median(crop):.3f} ({min(crop):.3f}-{max(crop):.3f}) |")
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
