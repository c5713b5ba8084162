"""Lat-long convention, checked against hand-computed directions (architecture.md)."""
from __future__ import annotations

import math

import numpy as np

from vfxinsert.lighting.panorama import direction_to_uv, perspective_view, rotation_y, texel_directions, texel_solid_angles, uv_to_direction


def test_landmarks():
    np.testing.assert_allclose(uv_to_direction(np.array(0.5), np.array(0.5)), [0, 0, 1], atol=1e-12)   # centre: +Z
    np.testing.assert_allclose(uv_to_direction(np.array(0.25), np.array(0.5)), [1, 0, 0], atol=1e-12)  # u=0.25: +X
    np.testing.assert_allclose(uv_to_direction(np.array(0.0), np.array(0.5)), [0, 0, -1], atol=1e-12)
    np.testing.assert_allclose(uv_to_direction(np.array(0.3), np.array(0.0)), [0, 1, 0], atol=1e-12)   # row 0: zenith


def test_round_trip():
    d = np.random.default_rng(0).normal(size=(1000, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    u, v = direction_to_uv(d)
    np.testing.assert_allclose(uv_to_direction(u, v), d, atol=1e-9)


def test_rotation_right_hand_rule():
    np.testing.assert_allclose(rotation_y(90) @ [0, 0, 1], [1, 0, 0], atol=1e-12)


def test_solid_angles_cover_sphere():
    assert math.isclose(texel_solid_angles(64, 128).sum() * 128, 4 * math.pi, rel_tol=1e-12)


def test_marker_in_centre_column_is_straight_ahead_of_a_camera_looking_down_plus_z():
    h, w = 64, 128
    pano = np.zeros((h, w, 3), np.float32)
    pano[h // 2 - 1:h // 2 + 1, w // 2 - 1:w // 2 + 1] = 1.0  # marker around u = 0.5, horizon
    look_plus_z = np.diag([-1.0, 1.0, -1.0, 1.0])  # OpenGL camera (looks down its -Z) turned to face +Z
    img = perspective_view(pano, look_plus_z, 60.0, 33, 33)
    y, x = np.unravel_index(img[..., 0].argmax(), img.shape[:2])
    assert (y, x) == (16, 16)
    # and rotating the map by +90 deg about +Y moves the marker to +X: a camera facing +X sees it.
    look_plus_x = np.eye(4)
    look_plus_x[:3, :3] = rotation_y(-90)  # the camera's -Z turned to +X
    np.testing.assert_allclose(look_plus_x[:3, :3] @ [0, 0, -1], [1, 0, 0], atol=1e-12)
    img = perspective_view(pano, look_plus_x, 60.0, 33, 33, rotate_y_deg=90.0)
    assert np.unravel_index(img[..., 0].argmax(), img.shape[:2]) == (16, 16)


def test_texel_directions_match_uv():
    d = texel_directions(4, 8)
    np.testing.assert_allclose(d[2, 4], uv_to_direction(np.array(4.5 / 8), np.array(2.5 / 4)))
