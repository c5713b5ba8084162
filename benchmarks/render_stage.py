"""A whole shot's render stage at production size: N frames of a 1920x1080 plate with the teapot of the
quality benchmarks (benchmarks/quality_scenes.py, 11 % of the frame) under its HDRI, rendered by the CLI at
the shot file's `[render]` settings (default: the defaults of RenderConfig). Target: 100 frames under 20 min.

The plate stage and the lighting (the on-set HDRI, no optimisation) run first and are not timed; then
`vfxinsert run --stage render` is timed as a farm task would run it (a fresh process: interpreter start,
scene build and Mitsuba's compilation included, the EXR writes too).

Run:  python benchmarks/render_stage.py [--frames 100] [--size 1920x1080] [--render 'spp = 64']
      [--keep DIR]   (prints a Markdown row)
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import quality_scenes as qs  # noqa: E402


def make_shot(folder: Path, frames: int, width: int, height: int, render: str) -> Path:
    from vfxinsert.camera import Intrinsics
    from vfxinsert.exr import write_exr
    from vfxinsert.lighting.panorama import perspective_view
    from vfxinsert.plates import read_image

    (folder / "plate").mkdir(parents=True)
    c2w = qs.camera(0.0)
    intr = Intrinsics(24.0, (36.0, 36.0 * height / width), width, height)
    img = perspective_view(read_image(qs.HDRI).rgb, c2w, intr.fov_x_deg, width, height)
    first = folder / "plate" / "pl.1001.exr"
    write_exr(first, {c: np.ascontiguousarray(img[..., i]) for i, c in enumerate("RGB")})
    for f in range(1002, 1001 + frames):   # the same picture each frame: the render's cost does not depend on it
        shutil.copyfile(first, folder / "plate" / f"pl.{f}.exr")
    shutil.copy(qs.SHARED / "assets" / "teapot.obj", folder / "teapot.obj")
    name, position, scale, _ = qs.ASSETS["teapot"]
    m = qs.MATERIAL
    rows = ",".join("[" + ",".join(f"{v:.9g}" for v in row) + "]" for row in c2w)
    shot = folder / "shot.toml"
    shot.write_text(f"""schema = 1
name = "bench"
[plate]
path = "plate/pl.####.exr"
frames = [1001, {1000 + frames}]
colorspace = "Linear Rec.709 (sRGB)"
fps = 24
[camera]
focal_length_mm = 24.0
filmback_mm = [36.0, {36.0 * height / width:.9g}]
cam_to_world = [{rows}]
[ground]
albedo = [0.3, 0.3, 0.3]
[[asset]]
mesh = "teapot.obj"
position_m = {list(position)}
scale = {scale}
material = {{ base_color = {list(m["base_color"])}, roughness = {m["roughness"]}, metallic = {m["metallic"]} }}
[lighting]
init = "hdri"
hdri = "{qs.HDRI}"
optimize = false
[render]
{render}
[output]
dir = "out"
""")
    return shot


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--size", default="1920x1080")
    ap.add_argument("--render", default="", help="[render] lines of the shot file (default: the defaults)")
    ap.add_argument("--keep", type=Path, help="build the shot in this (new) folder and keep it")
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    folder = args.keep or Path(tempfile.mkdtemp(prefix="vfxinsert-render-stage-"))
    shot = make_shot(folder, args.frames, w, h, args.render.replace(";", "\n"))
    cli = [sys.executable, "-m", "vfxinsert", "run", str(shot)]
    subprocess.run(cli + ["--stage", "plate", "--stage", "lighting"], check=True, stdout=subprocess.DEVNULL)
    t0 = time.perf_counter()
    subprocess.run(cli + ["--stage", "render"], check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - t0
    from vfxinsert.exr import read_layers

    samples = read_layers(folder / "out" / "bench.1001.exr")[1].get("vfxinsert/samples", "?")
    print("| frames | size | [render] | samples taken | render stage s | s per frame | machine |")
    print("|---|---|---|---|---|---|---|")
    print(f"| {args.frames} | {w}x{h} | {args.render or '(defaults)'} | {samples} | {seconds:.0f} | "
          f"{seconds / args.frames:.2f} | {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"load {os.getloadavg()[0]:.1f} after |")
    if not args.keep:
        shutil.rmtree(folder)


if __name__ == "__main__":
    main()
