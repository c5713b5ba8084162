"""Camera conventions: intrinsics, rigid poses, Nuke .chan (ZXY), pinhole projection, EXR matrices.

Expected values are computed by hand in the tests (explicit matrices, tan of known angles), never
with the functions under test.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from vfxinsert.camera import (
    ChanTrack,
    Intrinsics,
    pose_for_frame,
    project_to_pixels,
    read_chan,
    validate_cam_to_world,
    vfov_for_frame,
    world_to_camera_exr,
    world_to_ndc_exr,
    write_chan,
)
from vfxinsert.errors import ConfigError, OutputError

HD = Intrinsics(focal_length_mm=35.0, filmback_mm=(36.0, 24.0), width_px=1920, height_px=1080)


def random_rigid(rng: np.random.Generator) -> np.ndarray:
    """A random rotation (QR of a Gaussian matrix, det +1) and translation, built without camera.py."""
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    m = np.eye(4)
    m[:3, :3] = q
    m[:3, 3] = rng.uniform(-5, 5, size=3)
    return m


# --- intrinsics -----------------------------------------------------------------------------------

def test_fov_from_focal_and_filmback():
    assert HD.fov_x_deg == pytest.approx(2 * math.degrees(math.atan(18.0 / 35.0)))
    # vertical extent = horizontal extent * H / W (square pixels)
    assert HD.fov_y_deg == pytest.approx(2 * math.degrees(math.atan(18.0 / 35.0 * 1080 / 1920)))
    fx, fy = HD.focal_px
    assert fx == pytest.approx(1920 * 35.0 / 36.0)
    assert fy == pytest.approx(fx)


def test_anamorphic_pixel_aspect():
    ana = Intrinsics(50.0, (36.0, 24.0), 2048, 858, pixel_aspect=2.0)
    # displayed width is 2048 * 2 square units
    assert ana.fov_y_deg == pytest.approx(2 * math.degrees(math.atan(18.0 / 50.0 * 858 / 4096)))
    fx, fy = ana.focal_px
    assert fy == pytest.approx(2.0 * fx)


def test_from_vfov_inverts_fov_y_and_matches_nuke_when_filmback_has_plate_aspect():
    again = Intrinsics.from_vfov(HD.fov_y_deg, HD.filmback_mm, 1920, 1080)
    assert again.focal_length_mm == pytest.approx(35.0)
    assert again.fov_x_deg == pytest.approx(HD.fov_x_deg)
    # Nuke's chan import: focal = vaperture / (2 tan(vfov / 2)); same when vap/hap = H/W.
    vfov = 2 * math.degrees(math.atan(20.25 / (2 * 35.0)))
    nuke_like = Intrinsics.from_vfov(vfov, (36.0, 20.25), 1920, 1080)
    assert nuke_like.focal_length_mm == pytest.approx(35.0)


@pytest.mark.parametrize("kwargs, needle", [
    (dict(focal_length_mm=0.0), "focal_length_mm"),
    (dict(focal_length_mm=float("nan")), "focal_length_mm"),
    (dict(filmback_mm=(36.0,)), "filmback_mm"),
    (dict(filmback_mm=(36.0, -1.0)), "filmback_mm"),
    (dict(width_px=0), "width_px"),
    (dict(height_px=10.5), "height_px"),
    (dict(pixel_aspect=0.0), "pixel_aspect"),
])
def test_intrinsics_rejects_bad_values(kwargs, needle):
    args = dict(focal_length_mm=35.0, filmback_mm=(36.0, 24.0), width_px=64, height_px=32)
    args.update(kwargs)
    with pytest.raises(ConfigError, match=needle):
        Intrinsics(**args)


def test_from_vfov_rejects_bad_fov():
    with pytest.raises(ConfigError, match="vertical field of view"):
        Intrinsics.from_vfov(180.0, (36.0, 24.0), 64, 32)


# --- rigid poses ----------------------------------------------------------------------------------

def test_validate_accepts_rigid_and_small_noise():
    m = random_rigid(np.random.default_rng(1))
    out = validate_cam_to_world(m.tolist(), where="camera.cam_to_world")
    assert out.dtype == np.float64 and np.array_equal(out, m)
    noisy = m.copy()
    noisy[:3, :3] += 1e-6
    validate_cam_to_world(noisy, where="x")


def _problem(m: np.ndarray) -> str:
    with pytest.raises(ConfigError) as info:
        validate_cam_to_world(m, where="shot.toml camera.cam_to_world")
    assert "shot.toml camera.cam_to_world" in str(info.value)
    assert info.value.fix
    return str(info.value)


def test_validate_names_the_problem():
    assert "scale 2 on its X axis" in _problem(np.diag([2.0, 1.0, 1.0, 1.0]))
    assert "scale 0.5 on its Z axis" in _problem(np.diag([1.0, 1.0, 0.5, 1.0]))
    assert "reflection" in _problem(np.diag([1.0, 1.0, -1.0, 1.0]))
    shear = np.eye(4)
    shear[:3, 1] = [math.sin(0.1), math.cos(0.1), 0.0]  # unit length, but not perpendicular to X
    assert "shear" in _problem(shear)
    assert "4x4" in _problem(np.eye(3))
    nan = np.eye(4)
    nan[0, 3] = np.nan
    assert "NaN" in _problem(nan)
    row = np.eye(4)
    row[3, 0] = 1.0
    assert "last row" in _problem(row)
    with pytest.raises(ConfigError, match="numeric"):
        validate_cam_to_world([["a"] * 4] * 4, where="x")


# --- .chan ----------------------------------------------------------------------------------------

def _one_line_pose(tmp_path, rx, ry, rz, t=(0.0, 0.0, 0.0)):
    p = tmp_path / "one.chan"
    p.write_text(f"1 {t[0]} {t[1]} {t[2]} {rx} {ry} {rz}\n")
    return read_chan(p).cam_to_world[0]


def test_chan_known_rotations(tmp_path):
    forward, right = np.array([0.0, 0.0, -1.0, 0.0]), np.array([1.0, 0.0, 0.0, 0.0])
    # ry = 90: right-hand turn about +Y, the view direction -Z becomes -X.
    m = _one_line_pose(tmp_path, 0, 90, 0, t=(1.0, 2.0, 3.0))
    expected_ry90 = np.array([[0, 0, 1, 1], [0, 1, 0, 2], [-1, 0, 0, 3], [0, 0, 0, 1]], float)
    np.testing.assert_allclose(m, expected_ry90, atol=1e-12)
    np.testing.assert_allclose(m @ forward, [-1, 0, 0, 0], atol=1e-12)
    # rx = 90 tilts the camera up: -Z becomes +Y.
    np.testing.assert_allclose(_one_line_pose(tmp_path, 90, 0, 0) @ forward, [0, 1, 0, 0], atol=1e-12)
    # rz = 90 rolls: camera right +X becomes +Y.
    np.testing.assert_allclose(_one_line_pose(tmp_path, 0, 0, 90) @ right, [0, 1, 0, 0], atol=1e-12)
    # Order ZXY (Z first, then X): right +X -Z-> +Y -X-> +Z. (X first would give +Y.)
    np.testing.assert_allclose(_one_line_pose(tmp_path, 90, 0, 90) @ right, [0, 0, 1, 0], atol=1e-12)
    # Then Y last: forward -Z -X-> +Y -Y-> +Y; right +X -Y(90)-> -Z. (Y before X would differ.)
    m = _one_line_pose(tmp_path, 90, 90, 0)
    np.testing.assert_allclose(m @ forward, [0, 1, 0, 0], atol=1e-12)
    np.testing.assert_allclose(m @ right, [0, 0, -1, 0], atol=1e-12)


def test_chan_round_trip_with_vfov(tmp_path):
    rng = np.random.default_rng(7)
    frames = [1001, 1002, 1003, 1005, 1010]
    poses = np.stack([random_rigid(rng) for _ in frames])
    vfov = rng.uniform(20, 60, size=len(frames))
    path = tmp_path / "cam.chan"
    write_chan(path, frames, poses, vfov)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp file left
    track = read_chan(path)
    assert track.frames == tuple(frames)
    np.testing.assert_allclose(track.cam_to_world, poses, atol=1e-9)
    np.testing.assert_allclose(track.vfov_deg, vfov, atol=1e-9)
    assert not track.cam_to_world.flags.writeable
    np.testing.assert_allclose(pose_for_frame(track, 1005), poses[3], atol=1e-9)
    assert vfov_for_frame(track, 1010) == pytest.approx(vfov[4])


def test_chan_round_trip_gimbal_lock_and_unwrapped_angles(tmp_path):
    path = tmp_path / "a.chan"
    path.write_text("1 0 0 0 90 30 20\n2 0 0 0 -90 -40 10\n")
    locked = read_chan(path)
    write_chan(tmp_path / "b.chan", locked.frames, locked.cam_to_world)
    np.testing.assert_allclose(read_chan(tmp_path / "b.chan").cam_to_world, locked.cam_to_world,
                               atol=1e-9)
    # A pan through 180 degrees must not jump by 360 in the written ry column.
    path.write_text("".join(f"{i} 0 0 0 0 {ry} 0\n" for i, ry in enumerate([170, 178, 186, 194], 1)))
    track = read_chan(path)
    write_chan(tmp_path / "c.chan", track.frames, track.cam_to_world)
    ry = [float(line.split()[5]) for line in (tmp_path / "c.chan").read_text().splitlines()]
    assert np.all(np.diff(ry) > 0) and np.allclose(np.diff(ry), 8.0)
    assert vfov_for_frame(track, 1) is None


def test_chan_ignores_comments_and_blank_lines(tmp_path):
    path = tmp_path / "c.chan"
    path.write_text("# exported from Nuke\n\n1001 0 1.6 0 0 0 0  # first\n   \n1002 0 1.6 1 0 0 0\n")
    track = read_chan(path)
    assert track.frames == (1001, 1002)
    assert track.vfov_deg is None
    np.testing.assert_allclose(track.cam_to_world[1, :3, 3], [0, 1.6, 1])


@pytest.mark.parametrize("text, line, needle", [
    ("1 0 0 0 0 0\n", 1, "7 or 8 columns"),
    ("1 0 0 0 0 0 0\n2 0 0 x 0 0 0\n", 2, "column 4 is not a number"),
    ("1 0 0 0 0 0 0\n1 0 0 0 0 0 0\n", 2, "duplicate frame 1"),
    ("2 0 0 0 0 0 0\n1 0 0 0 0 0 0\n", 2, "out-of-order frame 1"),
    ("1 0 0 0 0 0 0\n\n2 0 0 0 0 0 0 40\n", 3, "line 1 has 7"),
    ("1.5 0 0 0 0 0 0\n", 1, "whole frame"),
    ("1 0 0 0 0 0 0 200\n", 1, "vertical FOV"),
    ("1 0 0 nan 0 0 0\n", 1, "not finite"),
])
def test_chan_errors_name_file_and_line(tmp_path, text, line, needle):
    path = tmp_path / "bad.chan"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        read_chan(path)
    assert f"{path}:{line}" in str(info.value)
    assert needle in str(info.value)


def test_chan_missing_or_empty_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        read_chan(tmp_path / "nope.chan")
    (tmp_path / "empty.chan").write_text("# nothing\n")
    with pytest.raises(ConfigError, match="no data lines"):
        read_chan(tmp_path / "empty.chan")


def test_pose_for_frame_outside_track_says_what_is_covered():
    track = ChanTrack(frames=(1001, 1002, 1003), cam_to_world=np.stack([np.eye(4)] * 3),
                      source="cam.chan")
    with pytest.raises(ConfigError, match=r"frame 1004 .* covers frames 1001-1003") as info:
        pose_for_frame(track, 1004)
    assert "cam.chan" in str(info.value)
    gappy = ChanTrack(frames=(1, 3), cam_to_world=np.stack([np.eye(4)] * 2))
    with pytest.raises(ConfigError, match="with gaps"):
        pose_for_frame(gappy, 2)


def test_write_chan_rejects_scaled_pose(tmp_path):
    with pytest.raises(OutputError, match="scale 3 on its Y axis"):
        write_chan(tmp_path / "x.chan", [1], np.diag([1.0, 3.0, 1.0, 1.0])[None])
    assert not (tmp_path / "x.chan").exists()


# --- projection -----------------------------------------------------------------------------------

def test_point_straight_ahead_projects_to_centre():
    c2w = np.eye(4)
    c2w[:3, 3] = [1.0, 1.6, 2.0]
    px = project_to_pixels(np.array([[1.0, 1.6, -7.0]]), c2w, HD)
    np.testing.assert_allclose(px, [[960.0, 540.0]], atol=1e-9)


def test_edges_of_the_field_of_view_project_to_the_image_edges():
    depth = 4.0
    tan_half_x = 18.0 / 35.0  # haperture / (2 focal), by hand
    tan_half_y = tan_half_x * 1080 / 1920
    pts = np.array([[tan_half_x * depth, 0, -depth],    # right edge
                    [-tan_half_x * depth, 0, -depth],   # left edge
                    [0, tan_half_y * depth, -depth],    # top edge (y down in pixels)
                    [0, 0, +depth]])                    # behind the camera
    px = project_to_pixels(pts, np.eye(4), HD)
    np.testing.assert_allclose(px[:3], [[1920, 540], [0, 540], [960, 0]], atol=1e-9)
    assert np.all(np.isnan(px[3]))


@pytest.mark.parametrize("intr", [HD, Intrinsics(50.0, (24.9, 18.7), 640, 360, pixel_aspect=1.5)])
def test_exr_matrices_agree_with_pinhole_projection(intr):
    rng = np.random.default_rng(3)
    c2w = random_rigid(rng)
    # random points in front of the camera, within and beyond the frame
    cam_pts = np.column_stack([rng.uniform(-3, 3, 50), rng.uniform(-2, 2, 50), -rng.uniform(1, 20, 50)])
    world = cam_pts @ c2w[:3, :3].T + c2w[:3, 3]
    expected = project_to_pixels(world, c2w, intr)

    m_ndc = world_to_ndc_exr(c2w, intr)
    assert m_ndc.dtype == np.float32 and m_ndc.shape == (4, 4)
    p_h = np.column_stack([world, np.ones(len(world))]) @ m_ndc.astype(np.float64)  # row vectors
    ndc = p_h[:, :2] / p_h[:, 3:4]
    np.testing.assert_allclose(ndc * [intr.width_px, intr.height_px], expected, atol=2e-2)
    assert np.all((p_h[:, 2] / p_h[:, 3] > 0) & (p_h[:, 2] / p_h[:, 3] < 1))  # NDC z in range
    assert abs(np.linalg.det(m_ndc.astype(np.float64))) > 0  # invertible

    assert m_ndc.flags.c_contiguous  # the OpenEXR module ignores strides when storing it
    m_cam = world_to_camera_exr(c2w)
    assert m_cam.dtype == np.float32 and m_cam.flags.c_contiguous
    m_cam = m_cam.astype(np.float64)
    exr_cam = np.column_stack([world, np.ones(len(world))]) @ m_cam
    # OpenEXR camera space = ours with z flipped: +x right, +y up, +z forward
    np.testing.assert_allclose(exr_cam[:, :3], cam_pts * [1, 1, -1], atol=1e-4)


def test_world_to_camera_exr_puts_a_point_ahead_at_positive_z():
    c2w = _rot_y_deg(90.0)  # looks down world -X
    c2w[:3, 3] = [0.0, 1.6, 0.0]
    ahead = np.array([-5.0, 1.6, 0.0, 1.0])
    right_up = np.array([-5.0, 2.6, -1.0, 1.0])  # camera right is world -Z after the turn
    m = world_to_camera_exr(c2w)
    assert m.dtype == np.float32
    np.testing.assert_allclose(ahead @ m, [0, 0, 5, 1], atol=1e-6)
    np.testing.assert_allclose(right_up @ m, [1, 1, 5, 1], atol=1e-6)


def _rot_y_deg(angle: float) -> np.ndarray:
    c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    return np.array([[c, 0, s, 0], [0, 1, 0, 0], [-s, 0, c, 0], [0, 0, 0, 1]])
