"""vfxinsert side by side with Blender Cycles on the same scene, camera, HDRI and ground.

The scene is quality_scenes' (an asset on the shadow-catcher ground under rooitou_park, 256-row env);
Cycles renders it in a separate venv with ``bpy==4.2.0`` (benchmarks/cycles_render.py: CPU, fixed
threads, shadow-catcher plane, equal bounces, box filter, no adaptive sampling, no denoise). For each
case it reports, from two seeds per renderer (no reference needed for noise):

- time per frame at equal spp (vfxinsert's render call vs Cycles' render call, persistent data on);
- noise: object = RMS(seed 1 - seed 2) / sqrt 2 over pixels fully covered in both, relative to the mean
  colour; shadow = the same, absolute, over ground pixels where either render's shadow is below 0.98;
- time to equal noise = (t x noise^2) of vfxinsert over Cycles' (noise^2 falls as 1/spp), for raw
  vfxinsert and for ``denoise = "oidn"`` at a lower spp (its noise then is its seed-to-seed spread,
  its bias is measured by benchmarks/denoise_quality.py);
- alignment: IoU of alpha > 0.5; shadow agreement: mean |difference| of the multipliers over that
  region; object brightness: mean colour ratio vfxinsert / Cycles over the fully covered pixels,
  for Mitsuba's ``principled`` (what vfxinsert renders), and with ``--materials`` for a Lambert material
  in both and for Mitsuba's ``roughplastic`` (an energy-conserving GGX coat over the diffuse base: the
  candidate mapping to Cycles' Principled) against Cycles' Principled.

Run (set up the Blender venv once: python3.11 -m venv /work/venv-bpy && /work/venv-bpy/bin/pip install
bpy==4.2.0; it is never a dependency of vfxinsert or of its tests):
    nice -n 15 python benchmarks/cycles_compare.py --blender-python /work/venv-bpy/bin/python \
        --asset teapot --size 480x270 --spp 64 [--denoise-spp 16] [--materials]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import quality_scenes as qs  # noqa: E402


def write_job(folder: Path, scene, parts, spp: int, seeds, material: dict, threads: int) -> None:
    from vfxinsert.exr import write_exr
    from vfxinsert.lighting.panorama import box_downsample
    from vfxinsert.plates import read_image

    env = box_downsample(read_image(qs.HDRI).rgb, qs.ENV_HEIGHT)
    write_exr(folder / "env.exr", {c: np.ascontiguousarray(env[..., i]) for i, c in enumerate("RGB")}, precision="float")
    np.savez(folder / "mesh.npz", vertices=np.concatenate([p.vertices for p in parts]),
             faces=np.concatenate([p.faces + sum(len(q.vertices) for q in parts[:i]) for i, p in enumerate(parts)]))
    w, h = scene.view.film_size
    job = {"width": w, "height": h, "max_depth": scene.max_depth, "threads": threads, "env": "env.exr",
           "mesh": "mesh.npz", "fov_x_deg": scene.view.fov_x_deg, "cam_to_world": np.asarray(scene.view.cam_to_world).tolist(),
           "ground": {"half_size": scene.ground_half_size_m, "centre": scene.ground_centre,
                      "height": scene.ground_height_m, "albedo": scene.ground_albedo},
           "material": material, "renders": [[spp, s] for s in seeds]}
    (folder / "scene.json").write_text(json.dumps(job))


def run_cycles(blender_python: str, folder: Path) -> dict:
    script = Path(__file__).resolve().parent / "cycles_render.py"
    subprocess.run([blender_python, str(script), str(folder)], check=True, stdout=subprocess.DEVNULL)
    return json.loads((folder / "cycles_times.json").read_text())


def read_cycles(path: Path):
    """(rgb premultiplied, alpha, shadow multiplier) of a Cycles multilayer EXR."""
    import OpenEXR

    with OpenEXR.File(str(path), separate_channels=True) as f:
        ch = f.parts[0].channels
        get = lambda name: np.asarray(ch[name].pixels, np.float32)  # noqa: E731
        layer = next(n.rsplit(".", 2)[0] for n in ch if n.endswith("Combined.R"))
        rgb = np.stack([get(f"{layer}.Combined.{c}") for c in "RGB"], -1)
        alpha = get(f"{layer}.Combined.A")[..., None]
        shadow = np.stack([get(f"{layer}.Shadow Catcher.{c}") for c in "RGB"], -1)
    return rgb, alpha, shadow


def noise(a, b, full, region) -> tuple[float, float]:
    """(object relative, shadow absolute) seed-to-seed noise of two renders (rgb, alpha, shadow)."""
    obj = np.sqrt(np.mean((a[0][full] - b[0][full]) ** 2) / 2) / np.mean(0.5 * (a[0][full] + b[0][full]))
    sh = np.sqrt(np.mean((a[2][region] - b[2][region]) ** 2) / 2)
    return float(obj), float(sh)


def vfx_renders(scene, spp: int, seeds, denoise: bool):
    from vfxinsert.composite import composite
    from vfxinsert.denoise import denoise as oidn

    out, times = [], []
    for seed in seeds:
        t0 = time.perf_counter()
        rgb, alpha, shadow, _ = composite(scene.render(seed=seed, spp=spp), 0.0)
        if denoise:
            rgb, shadow = oidn(rgb, alpha, shadow)
        times.append(time.perf_counter() - t0)
        out.append((rgb, alpha, shadow))
    return out, float(np.median(times))


def compare(args, w, h) -> None:
    parts = qs.parts(args.asset)
    tris = sum(len(p.faces) for p in parts)
    t0 = time.perf_counter()
    scene = qs.build(args.asset, w, h, mesh_parts=parts)
    scene.render(seed=0, spp=1)
    build_s = time.perf_counter() - t0
    seeds = (1, 2)
    principled = {"type": "principled", **{k: v for k, v in qs.MATERIAL.items()}}
    with tempfile.TemporaryDirectory(prefix="cycles-") as tmp:
        folder = Path(tmp)
        write_job(folder, scene, parts, args.spp, seeds, principled, args.threads)
        times = run_cycles(args.blender_python, folder)
        cyc = [read_cycles(folder / f"cycles_{args.spp}_{s}.exr") for s in seeds]
        t_c = float(np.median(list(times.values())))
        vfx, t_v = vfx_renders(scene, args.spp, seeds, False)
        full = (cyc[0][1][..., 0] > 0.999) & (cyc[1][1][..., 0] > 0.999) & (vfx[0][1][..., 0] > 0.999)
        shadow_region = ((cyc[0][2].mean(-1) < 0.98) | (vfx[0][2].mean(-1) < 0.98)) & \
            (cyc[0][1][..., 0] < 1e-3) & (vfx[0][1][..., 0] < 1e-3)
        n_c, n_v = noise(*cyc, full, shadow_region), noise(*vfx, full, shadow_region)
        rows = [("vfxinsert", args.spp, t_v, n_v), ("Cycles", args.spp, t_c, n_c)]
        if args.denoise_spp:
            den, t_d = vfx_renders(scene, args.denoise_spp, seeds, True)
            rows.insert(1, ("vfxinsert + oidn", args.denoise_spp, t_d, noise(*den, full, shadow_region)))
        a_v, a_c = vfx[0][1][..., 0] > 0.5, cyc[0][1][..., 0] > 0.5
        iou = float((a_v & a_c).sum() / (a_v | a_c).sum())
        sh_diff = float(np.abs(np.mean([v[2] for v in vfx], 0) - np.mean([c[2] for c in cyc], 0))[shadow_region].mean())
        bright = {"principled": _brightness(vfx, cyc, full)}
        if args.materials:
            bright.update(_materials(args, scene, parts, w, h, full, cyc, folder))
    print(f"### {args.asset} ({tris:,} triangles), {w}x{h}, depth {scene.max_depth}, sampler {scene.sampler}, "
          f"{args.threads} threads; vfxinsert scene build + first render {build_s:.1f} s\n")
    print("| renderer | spp | s per frame | object noise | shadow noise | time ratio equal spp | "
          "equal object noise | equal shadow noise |")
    print("|---|---|---|---|---|---|---|---|")
    for name, spp, t, (no, ns) in rows:
        ratio = lambda n, nc: t * n ** 2 / (t_c * nc ** 2)  # noqa: E731
        print(f"| {name} | {spp} | {t:.2f} | {no:.4f} | {ns:.4f} | {t / t_c:.3f} | {ratio(no, n_c[0]):.3f} | "
              f"{ratio(ns, n_c[1]):.3f} |")
    print(f"\nalpha IoU {iou:.4f}; shadow mean |difference| {sh_diff:.4f} over {int(shadow_region.sum())} px; "
          "object colour vfxinsert / Cycles: " + ", ".join(f"{k} {v:.3f}" for k, v in bright.items()))


def _brightness(vfx, cyc, full) -> float:
    v = np.mean([x[0][full] for x in vfx], 0)
    c = np.mean([x[0][full] for x in cyc], 0)
    return float(v.mean() / c.mean())


def _materials(args, scene, parts, w, h, full, cyc_principled, folder: Path) -> dict:
    """Object brightness of a roughplastic coat against Cycles' Principled, and of Lambert in both."""
    from dataclasses import replace

    def with_bsdf(bsdf: dict):
        return qs.build(args.asset, w, h, mesh_parts=[replace(p, bsdf=bsdf) for p in parts])

    colour = {"type": "rgb", "value": list(qs.MATERIAL["base_color"])}
    coat = with_bsdf({"type": "roughplastic", "distribution": "ggx", "alpha": qs.MATERIAL["roughness"] ** 2,
                      "int_ior": 1.5, "nonlinear": False, "diffuse_reflectance": colour})
    out = {"roughplastic": _brightness(vfx_renders(coat, args.spp, (1, 2), False)[0], cyc_principled, full)}
    write_job(folder, scene, parts, args.spp, (1, 2), {"type": "diffuse", "base_color": colour["value"]}, args.threads)
    run_cycles(args.blender_python, folder)
    cyc = [read_cycles(folder / f"cycles_{args.spp}_{s}.exr") for s in (1, 2)]
    lambert = with_bsdf({"type": "diffuse", "reflectance": colour})
    out["Lambert"] = _brightness(vfx_renders(lambert, args.spp, (1, 2), False)[0], cyc, full)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--blender-python", default=os.environ.get("VFXINSERT_BPY_PYTHON", "/work/venv-bpy/bin/python"))
    ap.add_argument("--asset", default="teapot", choices=sorted(qs.ASSETS))
    ap.add_argument("--size", default="480x270")
    ap.add_argument("--spp", type=int, default=64)
    ap.add_argument("--denoise-spp", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--materials", action="store_true", help="also compare the material models (more renders)")
    args = ap.parse_args()
    w, h = (int(x) for x in args.size.split("x"))
    compare(args, w, h)


if __name__ == "__main__":
    main()
