"""Build shots/demo from real CC0 data: a short camera pan across a Poly Haven panorama.

The plate frames are perspective views of the panorama (no parallax: the camera only rotates about
the panorama's centre), stored as ACEScg half EXRs so the demo exercises the OCIO conversion; the
camera move is a Nuke .chan track; the asset is the Utah teapot. Run from the repository root:

    python scripts/make_demo_shot.py [--shared ../shared/data]
"""
from __future__ import annotations

import argparse
import math
import shutil
from pathlib import Path

import numpy as np

from vfxinsert.camera import euler_zxy_to_matrix, write_chan
from vfxinsert.color import ColorPipeline
from vfxinsert.exr import write_exr
from vfxinsert.lighting.panorama import perspective_view
from vfxinsert.plates import read_image

ROOT = Path(__file__).resolve().parents[1]
PANORAMA = "hdri/rooitou_park_1k.hdr"  # CC0, Poly Haven "rooitou_park": low visible sun, flat grass
ASSET = "assets/teapot.obj"            # Utah teapot (Newell 1975), public domain
FRAMES = range(1001, 1013)
WIDTH, HEIGHT = 480, 270
FOCAL_MM, FILMBACK_MM = 24.0, (36.0, 20.25)
CAMERA_HEIGHT_M = 1.6
PITCH_DEG = -14.0
YAW_DEG = (6.0, -6.0)  # a slow pan right over the shot


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "data")
    args = parser.parse_args()
    shot = ROOT / "shots" / "demo"
    (shot / "plate").mkdir(parents=True, exist_ok=True)
    (shot / "assets").mkdir(exist_ok=True)
    (shot / "light").mkdir(exist_ok=True)
    shutil.copyfile(args.shared / ASSET, shot / "assets" / Path(ASSET).name)
    shutil.copyfile(args.shared / PANORAMA, shot / "light" / Path(PANORAMA).name)

    pano = read_image(args.shared / PANORAMA).rgb
    to_acescg = ColorPipeline()
    fov_x = math.degrees(2 * math.atan(FILMBACK_MM[0] / (2 * FOCAL_MM)))
    poses = []
    for i, frame in enumerate(FRAMES):
        yaw = YAW_DEG[0] + (YAW_DEG[1] - YAW_DEG[0]) * i / (len(FRAMES) - 1)
        c2w = np.eye(4)
        c2w[:3, :3] = euler_zxy_to_matrix(PITCH_DEG, yaw, 0.0)
        c2w[1, 3] = CAMERA_HEIGHT_M
        poses.append(c2w)
        rgb = perspective_view(pano, c2w, fov_x, WIDTH, HEIGHT, supersample=3)
        acescg = to_acescg.from_working(rgb, "ACEScg")
        write_exr(shot / "plate" / f"demo.{frame:04d}.exr",
                  {"R": acescg[..., 0], "G": acescg[..., 1], "B": acescg[..., 2]},
                  precision="half", compression="zip",
                  attributes={"comments": f"perspective view of Poly Haven rooitou_park (CC0), frame {frame}"})
    write_chan(shot / "camera.chan", list(FRAMES), np.stack(poses))


if __name__ == "__main__":
    main()
