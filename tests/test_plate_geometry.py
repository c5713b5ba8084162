"""Plate geometry end to end: non-square (anamorphic) pixels. A marker sphere rendered through `vfxinsert run`
must land on the plate pixel the pinhole model puts it on (closed form written here), to 0.5 px."""
from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import numpy as np
import pytest

from vfxinsert.check import check_shot
from vfxinsert.cli import main
from vfxinsert.exr import read_layers, write_exr

W, H = 160, 90
FOCAL_MM, FILMBACK_MM = 30.0, 36.0
MARKER = np.array([0.5, 1.3, -4.0])   # world position of the sphere's centre; the camera sits at (0, 1, 0)
RADIUS_M = 0.1


def expected_pixel(point: np.ndarray, pixel_aspect: float, width: int = W, height: int = H) -> np.ndarray:
    """Pinhole projection for the camera at (0, 1, 0) looking down -Z: x right, y down, centres at +0.5.

    The horizontal filmback fixes the FOV; a pixel is ``pixel_aspect`` times wider than tall, so the
    vertical scale in pixels is ``pixel_aspect`` times the horizontal one."""
    fx = width / (2.0 * FILMBACK_MM / (2.0 * FOCAL_MM))
    x, y, z = point - np.array([0.0, 1.0, 0.0])
    return np.array([width / 2 + fx * x / -z, height / 2 - fx * pixel_aspect * y / -z])


def make_marker_shot(folder: Path, shared: Path, pixel_aspect: float, camera_extra: str = "") -> Path:
    import trimesh

    (folder / "plate").mkdir(parents=True, exist_ok=True)
    grey = np.full((H, W), 0.18, np.float32)
    write_exr(folder / "plate" / "m.0001.exr", {"R": grey, "G": grey, "B": grey},
              attributes={"pixelAspectRatio": float(pixel_aspect)})
    trimesh.creation.icosphere(subdivisions=3, radius=RADIUS_M).export(folder / "marker.obj")
    shutil.copy(shared / "hdri" / "potsdamer_platz_1k.hdr", folder / "env.hdr")
    (folder / "shot.toml").write_text(textwrap.dedent(f"""\
        schema = 1
        name = "m"
        [plate]
        path = "plate/m.####.exr"
        frames = [1, 1]
        colorspace = "Linear Rec.709 (sRGB)"
        [camera]
        focal_length_mm = {FOCAL_MM}
        filmback_mm = [{FILMBACK_MM}, 20.25]
        cam_to_world = [[1,0,0,0],[0,1,0,1],[0,0,1,0],[0,0,0,1]]
        {camera_extra}
        [ground]
        albedo = [0.2, 0.2, 0.2]
        [[asset]]
        mesh = "marker.obj"
        position_m = [{MARKER[0]}, {MARKER[1]}, {MARKER[2]}]
        [lighting]
        init = "hdri"
        hdri = "env.hdr"
        optimize = false
        [render]
        spp = 16
        max_depth = 2
        """))
    return folder / "shot.toml"


def alpha_centroid(path: Path) -> np.ndarray:
    alpha = read_layers(path)[0]["A"].astype(np.float64)
    ys, xs = np.mgrid[0:alpha.shape[0], 0:alpha.shape[1]] + 0.5
    return np.array([(alpha * xs).sum(), (alpha * ys).sum()]) / alpha.sum()


@pytest.mark.parametrize("pixel_aspect", [1.0, 2.0])
def test_marker_lands_on_its_plate_pixel_with_square_and_anamorphic_pixels(tmp_path, shared_data, pixel_aspect):
    shot = make_marker_shot(tmp_path, shared_data, pixel_aspect)
    _, findings = check_shot(shot, run_llvm=False)
    assert all(f.ok for f in findings), [f for f in findings if not f.ok]
    if pixel_aspect != 1.0:
        assert any("pixel aspect 2 (non-square pixels" in f.detail for f in findings)
    assert main(["run", str(shot)]) == 0
    out = tmp_path / "out" / "m.0001.exr"
    layers, header = read_layers(out)
    assert layers["A"].shape == (H, W) and header["pixelAspectRatio"] == pixel_aspect
    found, want = alpha_centroid(out), expected_pixel(MARKER, pixel_aspect)
    assert np.abs(found - want).max() < 0.5, (found, want)
    # the marker is round on the display: its extent is 2x taller in plate pixels than wide when pa = 2
    alpha = layers["A"]
    cols, rows = (alpha > 0.5).any(axis=0).sum(), (alpha > 0.5).any(axis=1).sum()
    assert abs(rows / cols - pixel_aspect) < 0.35, (rows, cols)
    # above the horizon (no ground) the shadow stays exactly 1; below it the resampled ratio is < 1 somewhere
    shadow = layers["shadow.R"]
    assert np.all(shadow[:H // 2 - 2] == 1.0) and shadow[H // 2 + 2:].min() < 1.0


def test_an_absurd_pixel_aspect_fails_check(tmp_path, shared_data):
    shot = make_marker_shot(tmp_path, shared_data, 9.0)
    _, findings = check_shot(shot, run_llvm=False)
    assert any(not f.ok and "pixel aspect 9 is outside 0.25..4" in f.detail for f in findings)
