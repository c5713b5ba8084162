"""Plate geometry end to end: non-square (anamorphic) pixels and ST-map lens distortion. A marker sphere
rendered through `vfxinsert run` must land on the plate pixel the pinhole model (and the lens) puts it
on (closed forms written here), to 0.5 px."""
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


def make_marker_shot(folder: Path, shared: Path, pixel_aspect: float, camera_extra: str = "",
                     marker: np.ndarray = MARKER) -> Path:
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
        position_m = [{marker[0]}, {marker[1]}, {marker[2]}]
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
    import av

    with av.open(str(tmp_path / "out" / "preview.mp4")) as movie:   # dailies play unsqueezed
        assert movie.streams.video[0].codec_context.sample_aspect_ratio == pixel_aspect
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


# --------------------------------------------------------------------------------------------------
# Lens distortion: a redistort ST-map (Nuke's convention, lens.py)

K_RADIAL = 0.3   # undistorted radius = distorted radius * (1 + k r^2), r in half-widths: needs overscan
LENS_MARKER = np.array([1.2, 1.5, -4.0])


def undistorted_of(p_d: np.ndarray) -> np.ndarray:
    """Where a plate (distorted) position comes from in the undistorted image (pixels, y down)."""
    c = np.array([W / 2, H / 2])
    r2 = (((p_d - c) / (W / 2)) ** 2).sum(axis=-1, keepdims=True)
    return c + (p_d - c) * (1 + K_RADIAL * r2)


def write_stmap(path: Path) -> None:
    ys, xs = np.mgrid[0:H, 0:W] + 0.5
    p_u = undistorted_of(np.stack([xs, ys], axis=-1))
    u, v = p_u[..., 0] / W, 1.0 - p_u[..., 1] / H        # Nuke: u from the left, v from the bottom
    write_exr(path, {"R": u.astype(np.float32), "G": v.astype(np.float32), "B": np.zeros((H, W), np.float32)},
              precision="float")


def test_marker_lands_on_its_distorted_plate_pixel_and_the_nk_redistorts_with_the_same_map(tmp_path, shared_data):
    import nkparser
    from scipy.ndimage import map_coordinates
    from test_nuke import expand_hashes, simulate

    write_stmap(tmp_path / "stmap.exr")
    shot = make_marker_shot(tmp_path, shared_data, 1.0, camera_extra='distortion = "stmap.exr"', marker=LENS_MARKER)
    _, findings = check_shot(shot, run_llvm=False)
    assert all(f.ok for f in findings), [f for f in findings if not f.ok]
    lens = next(f.detail for f in findings if f.topic == "lens")
    assert "renders undistorted over" in lens
    assert main(["run", str(shot)]) == 0
    out = tmp_path / "out"
    # where the pinhole puts the marker in the undistorted image, then through the lens onto the plate
    p_u = expected_pixel(LENS_MARKER, 1.0)
    p_d = p_u.copy()
    for _ in range(50):   # invert undistorted_of by fixed-point iteration
        p_d = p_d + (p_u - undistorted_of(p_d))
    assert np.abs(undistorted_of(p_d) - p_u).max() < 1e-9 and np.abs(p_d - p_u).max() > 2.0   # the lens matters
    found = alpha_centroid(out / "m.0001.exr")
    assert np.abs(found - p_d).max() < 0.5, (found, p_d, p_u)
    # the undistorted render: overscan in its data window, the marker at its pinhole position there
    layers_u, header_u = read_layers(out / "undistorted" / "m.0001.exr")
    (ax0, ay0), (ax1, ay1) = header_u["dataWindow"]
    assert header_u["displayWindow"] == ((0, 0), (W - 1, H - 1)) and ax0 < 0 and ay0 < 0 and ax1 >= W and ay1 >= H
    a = layers_u["A"].astype(np.float64)
    ys, xs = np.mgrid[ay0:ay1 + 1, ax0:ax1 + 1] + 0.5
    assert np.abs(np.array([(a * xs).sum(), (a * ys).sum()]) / a.sum() - p_u).max() < 0.5
    # the .nk: STMap(stmap = the shot's map, src = the undistorted render) feeds the comp
    nk = out / "m.nk"
    assert nkparser.Script.from_file(nk).diagnostics == []
    _, nodes, _ = simulate(nk.read_text())
    assert nodes["Redistort"].cls == "STMap" and nodes["Redistort"].inputs == ["ReadSTMap", "ReadUndistorted"]
    assert nodes["Redistort"].knobs["uv"] == "rgb"
    assert nodes["ShuffleShadow"].inputs == ["Redistort"] and nodes["ObjectOver"].inputs[1] == "Redistort"
    assert expand_hashes(nodes["ReadUndistorted"].knobs["file"], 1) == out / "undistorted" / "m.0001.exr"
    stmap_file = Path(nodes["ReadSTMap"].knobs["file"])
    assert stmap_file == tmp_path / "stmap.exr" and stmap_file.is_file()
    # what Nuke's STMap computes, written here with scipy (bilinear): the undistorted alpha at the map's (u, v)
    uv = read_layers(stmap_file)[0]
    x_src = uv["R"] * W - 0.5 - ax0          # u * width = x from the left edge; array column = x - 0.5 - origin
    y_src = (1.0 - uv["G"]) * H - 0.5 - ay0   # v from the bottom
    warped = map_coordinates(a, [y_src, x_src], order=1, mode="nearest")
    delivered = read_layers(out / "m.0001.exr")[0]["A"]
    assert np.abs(warped - delivered).max() < 2e-3   # the same map, the same image: equal to half precision
