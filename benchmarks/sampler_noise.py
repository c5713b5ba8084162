"""Noise per sample of Mitsuba's samplers on the render stage's scene, against a converged reference.

For each sampler and spp: the object's relative RMSE and the shadow's RMSE (quality_scenes.errors)
against a 4096-spp ``independent`` render (unbiased whatever the sampler), averaged over seeds, and the
render time. "efficiency" is independent's error^2 x time over the sampler's at the same spp (> 1: the
sampler reaches a given noise sooner). It also checks, per sampler, that the shadow ratio stays exactly 1
where the object plays no part (the with/without estimates share each sample's random numbers).

Run:  nice -n 15 python benchmarks/sampler_noise.py [--asset teapot] [--size 320x180] [--spp 16 64]
(prints a Markdown table)
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import quality_scenes as qs  # noqa: E402


def main() -> None:
    from vfxinsert.composite import composite
    from vfxinsert.scene import SAMPLERS

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--asset", default="teapot", choices=sorted(qs.ASSETS))
    ap.add_argument("--size", default="320x180")
    ap.add_argument("--spp", type=int, nargs="+", default=[16, 64])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--reference-spp", type=int, default=4096)
    ap.add_argument("--samplers", nargs="+", default=list(SAMPLERS))
    args = ap.parse_args()
    w, h = (int(x) for x in args.size.split("x"))
    mesh = qs.parts(args.asset)
    ref_scene = qs.build(args.asset, w, h, sampler="independent", mesh_parts=mesh)
    reference = qs.reference(ref_scene, f"{args.asset}-{w}x{h}-independent-t0", args.reference_spp)
    rows, base = [], {}
    for sampler in args.samplers:
        scene = qs.build(args.asset, w, h, sampler=sampler, mesh_parts=mesh)
        scene.render(seed=0, spp=4)   # compile
        for spp in args.spp:
            errs, times, exact = [], [], []
            for seed in range(args.seeds):
                t0 = time.perf_counter()
                layers = scene.render(seed=seed + 1, spp=spp)
                times.append(time.perf_counter() - t0)
                errs.append(qs.errors(layers, reference))
                shadow = composite(layers, np.zeros((h, w, 3), np.float32))[2]
                untouched = (layers[..., 10] > 0.999) & (reference[..., 7:10].sum(-1) > 0) & \
                            (composite(reference, np.zeros((h, w, 3), np.float32))[2].min(-1) == 1.0)
                exact.append(float(np.mean(shadow[untouched] == 1.0)))
            obj = float(np.sqrt(np.mean([e["object"] ** 2 for e in errs])))
            sh = float(np.sqrt(np.mean([e["shadow"] ** 2 for e in errs])))
            t = float(np.median(times))
            if sampler == "independent":
                base[spp] = (obj, sh, t)
            b = base.get(spp)
            eff = (lambda e0, e: f"{e0 ** 2 * b[2] / (e ** 2 * t):.2f}") if b else (lambda e0, e: "")
            rows.append(f"| {sampler} | {spp} | {obj:.4f} | {sh:.4f} | {t:.2f} | "
                        f"{eff(b[0], obj) if b else ''} | {eff(b[1], sh) if b else ''} | {min(exact):.4f} |")
    print(f"{args.asset}, {w}x{h}, depth 8, reference {args.reference_spp} spp independent, {args.seeds} seeds\n")
    print("| sampler | spp | object rel. RMSE | shadow RMSE | time s | object efficiency | shadow efficiency "
          "| untouched ground exactly 1 |")
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
