"""The renderer against independent references: closed forms, finite differences, stock Mitsuba."""
from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from vfxinsert.camera import Intrinsics, project_to_pixels  # noqa: E402
from vfxinsert.lighting.panorama import hdri_to_mitsuba_env, mitsuba_env_directions  # noqa: E402
from vfxinsert.lighting.sg import SGLighting, SGLobes, sg_irradiance_closed_form  # noqa: E402
from vfxinsert.composite import composite  # noqa: E402
from vfxinsert.assets import MeshPart  # noqa: E402
from vfxinsert.scene import InsertScene, View  # noqa: E402


def sphere(centre, radius, n=24, bsdf=None, name="ball"):
    """A UV sphere mesh (independent of any asset file)."""
    th, ph = np.meshgrid(np.linspace(0, np.pi, n + 1), np.linspace(0, 2 * np.pi, 2 * n + 1), indexing="ij")
    v = np.stack([np.sin(th) * np.sin(ph), np.cos(th), np.sin(th) * np.cos(ph)], -1).reshape(-1, 3)
    idx = np.arange((n + 1) * (2 * n + 1)).reshape(n + 1, 2 * n + 1)
    a, b, c, d = idx[:-1, :-1], idx[1:, :-1], idx[1:, 1:], idx[:-1, 1:]
    faces = np.concatenate([np.stack([a, b, c], -1).reshape(-1, 3), np.stack([a, c, d], -1).reshape(-1, 3)])
    faces = faces[(faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2]) & (faces[:, 0] != faces[:, 2])]
    return MeshPart(name, v * radius + np.asarray(centre, float), faces, None, None, (0.8, 0.8, 0.8), 0.5, 0.0,
                    bsdf=bsdf)


def look_at(eye, target, up=(0, 1, 0)) -> np.ndarray:
    """OpenGL cam_to_world: the camera looks down -Z towards target."""
    eye, target, up = (np.asarray(x, float) for x in (eye, target, up))
    back = eye - target
    back /= np.linalg.norm(back)
    right = np.cross(up, back)
    right /= np.linalg.norm(right)
    m = np.eye(4)
    m[:3, 0], m[:3, 1], m[:3, 2], m[:3, 3] = right, np.cross(back, right), back, eye
    return m


DIFFUSE_WHITE = {"type": "diffuse", "reflectance": {"type": "rgb", "value": [1.0, 1.0, 1.0]}}


def test_white_furnace():
    """A white diffuse object (on a white ground) under a constant environment of radiance 1 renders 1."""
    view = View(look_at((0, 1.0, 3.0), (0, 0.5, 0)), 40.0, 48, 48)
    scene = InsertScene([sphere((0, 0.5, 0), 0.5, bsdf=DIFFUSE_WHITE)], ground_height_m=0.0,
                        ground_albedo=(1, 1, 1), view=view, env_height=16, max_depth=64)
    scene.set_env(np.ones((16, 34, 3), np.float32))
    layers = scene.render(seed=0, spp=64)
    alpha = layers[..., 3]
    inside = alpha > 0.999
    assert inside.sum() > 200
    assert layers[..., :3][inside].mean() == pytest.approx(1.0, abs=0.01)
    ground = layers[..., 10] > 0.999
    assert layers[..., 4:7][ground].mean() == pytest.approx(1.0, abs=0.01)   # with the object
    assert layers[..., 7:10][ground].mean() == pytest.approx(1.0, abs=0.01)  # without the object


def test_sg_lobe_irradiance_on_plane_matches_closed_form():
    """One SG lobe well above the horizon lights a diffuse plane with rho/pi * E, E in closed form."""
    rho = 0.5
    axis = np.array([0.3, math.sin(math.radians(60)), 0.2])
    axis /= np.linalg.norm(axis)
    lobes = SGLobes(axis[None], np.array([30.0]), np.array([[2.0, 1.0, 0.5]]))
    view = View(look_at((0, 2.0, 2.0), (0, 0, -1.0)), 50.0, 32, 32)
    # the object hides far away behind the camera: it must not shadow the patch we look at
    scene = InsertScene([sphere((0, 0.1, 60.0), 0.1)], ground_height_m=0.0, ground_albedo=(rho,) * 3,
                        view=view, env_height=256, max_depth=2, ground_half_size_m=200.0)
    scene.set_env(lobes.radiance(mitsuba_env_directions(256, 512)).astype(np.float32))
    layers = scene.render(seed=1, spp=256)
    ground = layers[..., 10] > 0.999
    measured = layers[..., 7:10][ground].mean(axis=0)
    expected = rho / math.pi * sg_irradiance_closed_form(axis, 30.0, [2.0, 1.0, 0.5], [0, 1, 0])
    np.testing.assert_allclose(measured, expected, rtol=0.01)


def _small_scene(spp_env=32):
    view = View(look_at((0, 1.2, 2.5), (0, 0.3, 0)), 45.0, 40, 40)
    scene = InsertScene([sphere((0, 0.35, 0), 0.35)], ground_height_m=0.0, ground_albedo=(0.4, 0.4, 0.4),
                        view=view, env_height=spp_env, max_depth=3)
    return scene


def test_gradients_match_central_differences():
    """d(scalar of the composite)/d(SG amplitude, axis, sharpness) against central finite differences.

    The adjoint pass uses other random numbers than the primal one (Mitsuba decorrelates them), so
    both sides are Monte Carlo estimates: 512 spp at 40x40 keeps their noise to about 2 %; the test
    allows 5 % relative error per derivative (measured: 0-2 %).
    """
    scene = _small_scene()
    lobes = SGLobes(np.array([[0.5, 0.8, 0.3], [-0.2, 0.5, -0.8]]) / np.array([[1.0], [1.0]]),
                    np.array([20.0, 4.0]), np.array([[3.0, 2.5, 2.0], [0.6, 0.7, 0.9]]))
    lobes = SGLobes(lobes.axis / np.linalg.norm(lobes.axis, axis=1, keepdims=True), lobes.sharpness, lobes.amplitude)
    plate = torch.full((40, 40, 3), 0.3)
    weights = torch.linspace(0.5, 1.5, 40 * 40 * 3).reshape(40, 40, 3)
    spp, seed = 512, 7

    def objective(light: SGLighting):
        layers = scene.render_torch(light.mitsuba_env(32), seed, spp)
        return (composite(layers, plate)[3] * weights).sum()

    light = SGLighting(lobes)
    objective(light).backward()
    analytic = {"amp": light.log_amplitude.grad[0, 0].item(), "axis": light.axis_raw.grad[0, 0].item(),
                "sharp": light.log_sharpness.grad[0].item()}
    h = 0.02
    for name, tensor, index in (("amp", "log_amplitude", (0, 0)), ("axis", "axis_raw", (0, 0)),
                                ("sharp", "log_sharpness", (0,))):
        values = []
        for sign in (+1, -1):
            probe = SGLighting(lobes)
            with torch.no_grad():
                getattr(probe, tensor)[index] += sign * h
                values.append(objective(probe).item())
        numeric = (values[0] - values[1]) / (2 * h)
        assert analytic[name] == pytest.approx(numeric, rel=0.05), (name, analytic[name], numeric)


def test_narrow_lobe_at_plus_x_lights_the_right_side():
    """Camera looking down -Z: a lobe at +X lights the object's +X side, which is the image's right."""
    view = View(np.eye(4), 40.0, 48, 48)  # at the origin, looking down -Z, +X to the right
    scene = InsertScene([sphere((0, 0, -4.0), 0.8)], ground_height_m=-5.0, ground_albedo=(0.2,) * 3,
                        view=view, env_height=64, max_depth=2)
    lobes = SGLobes(np.array([[1.0, 0.0, 0.0]]), np.array([200.0]), np.array([[50.0, 50.0, 50.0]]))
    scene.set_env(lobes.radiance(mitsuba_env_directions(64, 128)).astype(np.float32))
    rgb = scene.render(seed=0, spp=32)[..., :3].sum(-1)
    left, right = rgb[:, :24].sum(), rgb[:, 24:].sum()
    assert right > 20 * max(left, 1e-6)


def test_latlong_marker_in_centre_column_is_straight_ahead_of_a_camera_looking_down_plus_z():
    """A stock Mitsuba `path` render of our env data: the marker at the map's centre column appears at
    the centre of a camera turned to look down +Z (the lat-long convention of architecture.md)."""
    h = 64
    latlong = np.zeros((h, 2 * h, 3), np.float32)
    latlong[h // 2 - 2:h // 2 + 2, h - 2:h + 2] = 100.0      # texel centres around u = 0.5, v = 0.5
    look_plus_z = np.diag([-1.0, 1.0, -1.0, 1.0])
    scene = InsertScene([sphere((0, 0, -50.0), 0.01)], ground_height_m=-100.0, ground_albedo=(0.1,) * 3,
                        view=View(look_plus_z, 30.0, 31, 31), env_height=h)
    import mitsuba as mi

    ref = mi.load_dict(scene.scene_dict({"type": "path", "max_depth": 2}, mi.Bitmap(np.zeros((h, 2 * h, 3), np.float32)),
                                        with_object=False, with_ground=False))
    params = mi.traverse(ref)
    params["env.data"] = mi.TensorXf(hdri_to_mitsuba_env(latlong, h))
    params.update()
    img = np.array(mi.render(ref, spp=16))[..., :3].sum(-1)
    # the marker's centroid (its pixels tie at full radiance under a stratified sampler: not argmax)
    ys, xs = np.nonzero(img > 0.5 * img.max())
    assert 4 <= len(ys) < 400 and abs(ys.mean() - 15) <= 1 and abs(xs.mean() - 15) <= 1


def test_composite_with_true_hdri_matches_plain_mitsuba_path_render(shared_data):
    """The composite over a plate (a stock `path` render of env + ground, no object: what the camera
    saw on set) equals a stock `path` render with the object, within Monte Carlo noise."""
    import mitsuba as mi

    from vfxinsert.plates import read_image

    pano = read_image(shared_data / "hdri" / "potsdamer_platz_1k.hdr").rgb
    env = hdri_to_mitsuba_env(pano, 128)
    view = View(look_at((0, 1.0, 2.4), (0, 0.35, 0)), 45.0, 48, 40)
    part = sphere((0, 0.35, 0), 0.35, bsdf={"type": "diffuse", "reflectance": {"type": "rgb", "value": [0.7, 0.5, 0.3]}})
    scene = InsertScene([part], ground_height_m=0.0, ground_albedo=(0.35, 0.3, 0.25), view=view, env_height=128,
                        max_depth=4, ground_half_size_m=30.0)
    scene.set_env(env)

    def stock(with_object: bool, seed: int) -> np.ndarray:
        ref = mi.load_dict(scene.scene_dict({"type": "path", "max_depth": 4}, mi.Bitmap(np.ones((128, 256, 3), np.float32)),
                                            with_object=with_object))
        p = mi.traverse(ref)
        p["env.data"] = mi.TensorXf(env)
        p.update()
        return np.array(mi.render(ref, seed=seed, spp=1024))[..., :3]

    plate = stock(False, 11)
    reference = stock(True, 12)
    comp = composite(scene.render(seed=13, spp=1024), plate)[3]
    # per-pixel: within MC noise; on average: unbiased
    rel = np.abs(comp - reference) / np.maximum(reference, 1e-3)
    assert np.median(rel) < 0.03
    assert comp.mean() == pytest.approx(reference.mean(), rel=0.01)


def test_outside_object_and_shadow_the_composite_is_the_plate_exactly():
    view = View(look_at((0, 1.5, 3.0), (0, 0.3, 0)), 60.0, 64, 48)
    scene = InsertScene([sphere((0, 0.3, 0), 0.3)], ground_height_m=0.0, ground_albedo=(0.4,) * 3, view=view,
                        env_height=32, max_depth=3, ground_half_size_m=2.0)
    lobes = SGLobes(np.array([[0.0, 1.0, 0.0], [0.6, 0.6, 0.5]]) / np.array([[1.0], [np.linalg.norm([0.6, 0.6, 0.5])]]),
                    np.array([2.0, 60.0]), np.array([[0.5, 0.6, 0.8], [20.0, 18.0, 15.0]]))
    scene.set_env(lobes.radiance(mitsuba_env_directions(32, 64)).astype(np.float32))
    layers = scene.render(seed=3, spp=64)
    plate = np.random.default_rng(0).uniform(0.1, 2.0, (48, 64, 3)).astype(np.float32)
    rgb, alpha, shadow, comp = composite(layers, plate)
    away = (alpha[..., 0] == 0) & (layers[..., 10] == 0)     # neither object nor ground: the sky, the far field
    assert away.sum() > 500
    assert np.array_equal(comp[away], plate[away]) and np.all(shadow[away] == 1.0)
    ground_only = (alpha[..., 0] == 0) & (layers[..., 10] == 1)
    exact = np.all(shadow == 1.0, axis=-1) & ground_only
    # shared random numbers: many ground pixels (measured 35 % with `independent`, 28-29 % with the default
    # `multijitter`: well-spread samples leave fewer pixels whose samples all miss the object's influence)
    assert exact.sum() > 0.2 * ground_only.sum()
    assert np.array_equal(comp[exact], plate[exact])
    assert shadow[ground_only].min() < 0.5                     # and a real shadow exists


def test_window_render_is_a_crop_of_the_full_render():
    """An off-axis window renders exactly the same part of the image as a crop of the full frame."""
    c2w = look_at((0.3, 1.2, 2.5), (0, 0.3, 0))
    full = View(c2w, 50.0, 64, 48)
    window = View(c2w, 50.0, 64, 48, window=(30, 20, 24, 20), scale=2.0)
    part = sphere((0, 0.3, 0), 0.3)
    a_full = InsertScene([part], ground_height_m=0, ground_albedo=(0.3,) * 3, view=full, env_height=16)
    a_win = InsertScene([part], ground_height_m=0, ground_albedo=(0.3,) * 3, view=window, env_height=16)
    for s in (a_full, a_win):
        s.set_env(np.ones((16, 34, 3), np.float32))
    alpha_full = a_full.render(0, 256)[..., 3]
    alpha_win = a_win.render(0, 64)[..., 3]
    crop = alpha_full[20:40, 30:54]
    down = alpha_win.reshape(20, 2, 24, 2).mean(axis=(1, 3))
    assert np.abs(down - crop).mean() < 0.02
    # and the projection of the sphere's centre (independent pinhole model) lands where alpha peaks
    px = project_to_pixels(np.array([[0, 0.3, 0]]), c2w, Intrinsics(35.0, (2 * 35.0 * math.tan(math.radians(25)), 24.0), 64, 48))[0]
    ys, xs = np.nonzero(alpha_full > 0.5)
    assert abs(xs.mean() + 0.5 - px[0]) < 1.0 and abs(ys.mean() + 0.5 - px[1]) < 1.0


def test_pose_update_in_place_equals_a_fresh_scene():
    part = sphere((0, 0.3, 0), 0.3)
    v1 = View(look_at((0, 1.2, 2.5), (0, 0.3, 0)), 45.0, 32, 24)
    v2 = View(look_at((0.8, 1.0, 2.2), (0, 0.3, 0)), 40.0, 32, 24)
    moved = InsertScene([part], ground_height_m=0, ground_albedo=(0.3,) * 3, view=v1, env_height=16)
    moved.set_env(np.ones((16, 34, 3), np.float32))
    moved.set_view(v2)
    fresh = InsertScene([part], ground_height_m=0, ground_albedo=(0.3,) * 3, view=v2, env_height=16)
    fresh.set_env(np.ones((16, 34, 3), np.float32))
    assert np.array_equal(moved.render(5, 16), fresh.render(5, 16))


def test_squeeze_columns_averages_wide_pixels_in_numpy_and_torch():
    """Anamorphic renders: the square-pixel film back to the plate's wide pixels by area weights."""
    import torch

    from vfxinsert.scene import View, squeeze_columns

    rng = np.random.default_rng(0)
    layers = rng.uniform(0, 1, (3, 8, 11)).astype(np.float32)
    pairs = squeeze_columns(layers, 4)
    assert np.allclose(pairs, 0.5 * (layers[:, 0::2] + layers[:, 1::2]))          # 2:1: means of pairs
    odd = squeeze_columns(layers, 6)                                              # 4:3: fractional overlaps
    assert np.allclose(odd.mean(axis=1), layers.mean(axis=1), atol=1e-6)          # light is conserved
    assert np.allclose(odd[:, 0], 0.75 * layers[:, 0] + 0.25 * layers[:, 1], atol=1e-6)   # covers [0, 4/3)
    assert np.allclose(odd[:, 1], 0.5 * layers[:, 1] + 0.5 * layers[:, 2], atol=1e-6)    # covers [4/3, 8/3)
    t = torch.tensor(layers, requires_grad=True)
    out = squeeze_columns(t, 6)
    assert np.allclose(out.detach().numpy(), odd, atol=1e-6)
    out.sum().backward()
    assert t.grad is not None and np.allclose(t.grad.numpy(), 0.75)               # d(sum)/d(input) = 6 / 8
    assert squeeze_columns(layers, 8) is layers
    view = View(np.eye(4), 60.0, 160, 90, pixel_aspect=2.0)
    assert view.film_size == (160, 90) and view.render_size == (320, 90)
