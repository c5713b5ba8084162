"""The denoiser against raw renders: accuracy per time on one frame, and flicker on a moving-camera shot.

1. ``still``: raw renders at several spp and OIDN-denoised ones (vfxinsert.denoise), each against a
   converged reference (quality_scenes.errors: object, partly covered edge pixels, shadow), with the
   render and denoise times; and the share of the ground the object plays no part in (the reference's
   shadow exactly 1) that stays exactly 1.
2. ``shot``: a camera panning across the asset (quality_scenes.camera(t)), F frames. Flicker is the RMS
   of the frame-to-frame change's error, (x_t - x_{t-1}) - (ref_t - ref_{t-1}), over pixels fully
   covered in both frames (relative to the mean colour) and over the shadow region in both (absolute):
   what a viewer sees crawl. The references are converged renders of each frame.

3. ``target``: ``[render] noise_target`` (raw): the spp each target took and the error it reached.

Run:  nice -n 15 python benchmarks/denoise_quality.py still|shot|target [--asset teapot] [--size 480x270]
(prints Markdown tables; references are cached, see quality_scenes.reference)
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import quality_scenes as qs  # noqa: E402


def _variants(raw_spp, oidn_spp):
    return [("raw", s, None) for s in raw_spp] + [("oidn", s, "raw") for s in oidn_spp]


def _final(scene, seed, spp, method, edges):
    """(rgb, alpha, shadow, render s, denoise s) of one frame."""
    from vfxinsert.composite import composite
    from vfxinsert.denoise import denoise

    t0 = time.perf_counter()
    layers = scene.render(seed=seed, spp=spp)
    t1 = time.perf_counter()
    rgb, alpha, shadow, _ = composite(layers, 0.0)
    if method == "oidn":
        rgb, shadow = denoise(rgb, alpha, shadow, edges=edges)
    return rgb, alpha, shadow, t1 - t0, time.perf_counter() - t1


def still(args, w, h) -> None:
    from vfxinsert.composite import composite

    scene = qs.build(args.asset, w, h)
    ref = qs.reference(scene, f"{args.asset}-{w}x{h}-t0", args.reference_spp)
    rgb_r, alpha_r, shadow_r, _ = composite(ref, 0.0)
    untouched = (ref[..., 10] > 0.999) & (shadow_r.min(-1) == 1.0)
    scene.render(seed=0, spp=4)
    print(f"{args.asset}, {w}x{h}, depth 8, sampler {scene.sampler}, reference {args.reference_spp} spp\n")
    print("| method | spp | object rel. RMSE | edge rel. RMSE | shadow RMSE | untouched ground exactly 1 "
          "| render s | denoise s |")
    print("|---|---|---|---|---|---|---|---|")
    for method, spp, edges in _variants(args.raw_spp, args.oidn_spp) + [("oidn", args.oidn_spp[0], "oidn")]:
        rgb, alpha, shadow, tr, td = _final(scene, 1, spp, method, edges)
        e = qs.errors_of(rgb, alpha, shadow, rgb_r, alpha_r, shadow_r, ref[..., 10])
        name = method if edges != "oidn" else "oidn, OIDN at edges too"
        print(f"| {name} | {spp} | {e['object']:.4f} | {e['edge']:.4f} | {e['shadow']:.4f} | "
              f"{np.mean(shadow[untouched] == 1.0):.4f} | {tr:.2f} | {td:.2f} |")


def shot(args, w, h) -> None:
    from vfxinsert.composite import composite
    from vfxinsert.scene import View

    mesh = qs.parts(args.asset)
    scene = qs.build(args.asset, w, h, mesh_parts=mesh)
    ts = np.linspace(0.0, 1.0, args.frames)
    refs = []
    for i, t in enumerate(ts):
        scene.set_view(View(qs.camera(t), qs.FOV_X_DEG, w, h))
        refs.append(composite(qs.reference(scene, f"{args.asset}-{w}x{h}-shot{i}of{args.frames}",
                                           args.reference_spp, seed=20_000 + i), 0.0)[:3] + (None,))
    print(f"{args.asset}, {w}x{h}, {args.frames} frames panning 0.6 m, sampler {scene.sampler}, "
          f"references {args.reference_spp} spp\n")
    print("| method | spp | object error | object flicker | shadow error | shadow flicker | s per frame |")
    print("|---|---|---|---|---|---|---|")
    for method, spp, edges in _variants(args.raw_spp, args.oidn_spp):
        outs, secs = [], 0.0
        for i, t in enumerate(ts):
            scene.set_view(View(qs.camera(t), qs.FOV_X_DEG, w, h))
            rgb, alpha, shadow, tr, td = _final(scene, 100 + i, spp, method, edges)
            outs.append((rgb, shadow))
            secs += tr + td
        obj_e, sh_e, obj_f, sh_f = [], [], [], []
        for i in range(args.frames):
            rgb_r, alpha_r, shadow_r, _ = refs[i]
            full = alpha_r[..., 0] > 0.999
            region = (alpha_r[..., 0] == 0) & (shadow_r.mean(-1) < 0.98)
            obj_e.append(np.mean((outs[i][0][full] - rgb_r[full]) ** 2) / np.mean(rgb_r[full]) ** 2)
            sh_e.append(np.mean((outs[i][1][region] - shadow_r[region]) ** 2))
            if i:
                rgb_p, alpha_p, shadow_p, _ = refs[i - 1]
                both = full & (alpha_p[..., 0] > 0.999)
                d = (outs[i][0] - outs[i - 1][0]) - (rgb_r - rgb_p)
                obj_f.append(np.mean(d[both] ** 2) / np.mean(rgb_r[both]) ** 2)
                both = region & (alpha_p[..., 0] == 0) & (shadow_p.mean(-1) < 0.98)
                d = (outs[i][1] - outs[i - 1][1]) - (shadow_r - shadow_p)
                sh_f.append(np.mean(d[both] ** 2))
        r = lambda v: float(np.sqrt(np.mean(v)))  # noqa: E731
        print(f"| {method} | {spp} | {r(obj_e):.4f} | {r(obj_f):.4f} | {r(sh_e):.4f} | {r(sh_f):.4f} | "
              f"{secs / args.frames:.2f} |")


def target(args, w, h) -> None:
    """The noise_target stop: spp taken, the noise it estimated, and the error against the reference."""
    from vfxinsert.config import RenderConfig
    from vfxinsert.denoise import render_final

    scene = qs.build(args.asset, w, h)
    ref = qs.reference(scene, f"{args.asset}-{w}x{h}-t0", args.reference_spp)
    from vfxinsert.composite import composite

    rgb_r, alpha_r, shadow_r, _ = composite(ref, 0.0)
    print(f"{args.asset}, {w}x{h}, sampler {scene.sampler}, batches of 16 spp, reference {args.reference_spp} spp\n")
    print("| noise_target | spp taken | object rel. RMSE | shadow RMSE | s |")
    print("|---|---|---|---|---|")
    for t in args.targets:
        t0 = time.perf_counter()
        out = render_final(scene, 1, RenderConfig(spp=1024, noise_target=t, denoise="off"), w * h)
        e = qs.errors_of(out.rgb, out.alpha, out.shadow, rgb_r, alpha_r, shadow_r, ref[..., 10])
        print(f"| {t} | {out.spp} | {e['object']:.4f} | {e['shadow']:.4f} | {time.perf_counter() - t0:.1f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("case", choices=["still", "shot", "target"])
    ap.add_argument("--targets", type=float, nargs="+", default=[0.1, 0.05, 0.03])
    ap.add_argument("--asset", default="teapot", choices=sorted(qs.ASSETS))
    ap.add_argument("--size", default="480x270")
    ap.add_argument("--raw-spp", type=int, nargs="+", default=[16, 32, 64, 128])
    ap.add_argument("--oidn-spp", type=int, nargs="+", default=[16, 32, 64])
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--reference-spp", type=int, default=4096)
    args = ap.parse_args()
    w, h = (int(x) for x in args.size.split("x"))
    {"still": still, "shot": shot, "target": target}[args.case](args, w, h)


if __name__ == "__main__":
    main()
