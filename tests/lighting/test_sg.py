"""Lighting: SG maths, the Mitsuba texel layout checked against Mitsuba's own emitter, exports."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from vfxinsert.lighting.environment import write_lighting
from vfxinsert.lighting.panorama import hdri_to_mitsuba_env, mitsuba_env_directions
from vfxinsert.lighting.sg import SGLighting, SGLobes, latlong_from_lobes, sg_irradiance_closed_form
from vfxinsert.lighting.panorama import texel_directions, texel_solid_angles


def lobes3():
    axis = np.array([[0.0, 1.0, 0.0], [1.0, 0.2, 0.0], [0.0, 0.3, -1.0]])
    return SGLobes(axis / np.linalg.norm(axis, axis=1, keepdims=True), np.array([3.0, 80.0, 15.0]),
                   np.array([[0.4, 0.5, 0.7], [30.0, 28.0, 25.0], [1.0, 0.5, 0.2]]))


def test_mitsuba_texel_directions_match_mitsubas_own_envmap():
    """Mitsuba evaluates a lone bright texel of our data exactly along the direction we assign it."""
    from vfxinsert.env import import_mitsuba

    mi = import_mitsuba()
    h = 16
    dirs = mitsuba_env_directions(h, 2 * h)
    for (y, x) in [(5, 7), (8, 20), (11, 30)]:
        data = np.zeros((h, 2 * h + 2, 3), np.float32)
        data[y, x + 1] = 1.0  # storage column x + 1 holds real column x
        scene = mi.load_dict({"type": "scene", "env": {"type": "envmap", "bitmap": mi.Bitmap(np.zeros((h, 2 * h, 3), np.float32))}})
        params = mi.traverse(scene)
        params["env.data"] = mi.TensorXf(data)
        params.update()
        si = mi.SurfaceInteraction3f()
        si.wi = mi.Vector3f(*(float(c) for c in -dirs[y, x + 1]))
        value = np.array(scene.environment().eval(si))
        assert value.ravel()[0] == pytest.approx(1.0, abs=1e-3), (y, x, value)


def test_torch_and_numpy_lobes_agree():
    import torch

    lobes = lobes3()
    light = SGLighting(lobes)
    env = light.mitsuba_env(64).detach().numpy()   # every lobe resolvable at 64 rows (max_sharpness 200)
    np.testing.assert_allclose(env, lobes.radiance(mitsuba_env_directions(64, 128)), rtol=1e-5, atol=1e-6)
    back = light.lobes()
    np.testing.assert_allclose(back.axis, lobes.axis, atol=1e-6)
    np.testing.assert_allclose(back.sharpness, lobes.sharpness, rtol=1e-6)
    assert isinstance(light.parameters()[0], torch.Tensor)


def test_closed_form_irradiance_matches_quadrature():
    axis = np.array([0.2, 0.9, 0.1])
    axis /= np.linalg.norm(axis)
    h = 512
    d = texel_directions(h, 2 * h)
    lobe = SGLobes(axis[None], np.array([40.0]), np.array([[1.0, 2.0, 3.0]]))
    L = lobe.radiance(d)
    cos = np.clip(d[..., 1], 0, None)[..., None]
    numeric = (L * cos * texel_solid_angles(h, 2 * h)[..., None]).sum((0, 1))
    np.testing.assert_allclose(sg_irradiance_closed_form(axis, 40.0, [1, 2, 3], [0, 1, 0]), numeric, rtol=2e-3)


def test_dominant_direction_is_the_sun():
    np.testing.assert_allclose(lobes3().dominant_direction(), lobes3().axis[1])


def test_hdri_rotation_moves_the_sun(shared_data):
    from vfxinsert.plates import read_image

    pano = read_image(shared_data / "hdri" / "rooitou_park_1k.hdr").rgb
    h = 128
    dirs = mitsuba_env_directions(h, 2 * h)
    for angle in (0.0, 90.0):
        env = hdri_to_mitsuba_env(pano, h, rotate_y_deg=angle)
        lum = env[..., 1]
        y, x = np.unravel_index(lum.argmax(), lum.shape)
        sun = dirs[y, x]
        if angle == 0.0:
            sun0 = sun
        else:  # +90 about +Y: a map direction d appears at Ry(90) d
            rot = np.array([[0, 0, 1], [0, 1, 0], [-1, 0, 0]], float)
            assert math.degrees(math.acos(np.clip(sun @ (rot @ sun0), -1, 1))) < 2.0


def test_lighting_export_round_trip(tmp_path):
    from vfxinsert.plates import read_image

    lobes = lobes3()
    latlong = latlong_from_lobes(lobes, 128)
    exr, js = write_lighting(tmp_path, latlong, lobes, {"source": "test"})
    back = read_image(exr)
    assert back.rgb.shape == (128, 256, 3)
    np.testing.assert_allclose(back.rgb, latlong, rtol=1e-6)
    doc = json.loads(js.read_text())
    again = SGLobes.from_json(doc["sg"])
    np.testing.assert_allclose(again.amplitude, lobes.amplitude)
    # the sun lobe's peak sits at the texel its axis points to (u = 0.25 faces +X)
    y, x = np.unravel_index(back.rgb[..., 1].argmax(), (128, 256))
    assert abs(x - 64) <= 1 and doc["latlong"]["convention"].startswith("+Y up")


def test_multi_start_candidates_move_the_key_to_other_bright_directions_above_the_horizon():
    from vfxinsert.lighting.sg import SGLobes, angular_error_deg

    axis = np.array([[0.0, 0.8, 0.6], [0.6, 0.8, 0.0], [0.0, -1.0, 0.0], [-0.6, 0.8, 0.0]])
    lobes = SGLobes(axis, np.full(4, 20.0), np.array([[9.0] * 3, [5.0] * 3, [7.0] * 3, [3.0] * 3]))
    starts = lobes.starts(4)
    keys = [s.dominant_direction() for s in starts]
    assert starts[0] is lobes and len(starts) == 4
    np.testing.assert_allclose(keys[1], axis[1])          # the next brightest lobe above the horizon, not the ground
    np.testing.assert_allclose(keys[2], axis[3])
    assert keys[3][1] > np.sin(np.radians(14)) and min(angular_error_deg(keys[3], k) for k in keys[:3]) >= 30
    for s in starts:                                       # the same lobes, only the key's place changes
        np.testing.assert_allclose(sorted(s.power()), sorted(lobes.power()))


def test_gathering_the_light_around_the_key_into_a_sun_keeps_its_power_and_the_rest():
    from vfxinsert.lighting.sg import SGLobes, angular_error_deg

    key = np.array([0.0, 0.5, -0.8]) / np.linalg.norm([0.0, 0.5, -0.8])
    axis = np.array([[0.0, 0.6, -0.8], [0.1, 0.4, -0.9], [0.0, 1.0, 0.0], [0.9, 0.1, 0.4]])
    axis /= np.linalg.norm(axis, axis=1, keepdims=True)
    amplitude = np.array([[4.0, 3.0, 2.0], [2.0, 2.0, 2.0], [0.5] * 3, [1.0] * 3])
    lobes = SGLobes(axis, np.array([10.0, 6.0, 3.0, 20.0]), amplitude)
    sun = lobes.with_sun(key, 200.0)
    near = [angular_error_deg(a, key) <= 25.0 for a in axis]
    assert near == [True, True, False, False]
    norm = lambda l: 2 * np.pi / l.sharpness * -np.expm1(-2 * l.sharpness)   # noqa: E731
    gathered = (sun.amplitude * norm(sun)[:, None])[:2].sum(0)
    np.testing.assert_allclose(gathered, (lobes.amplitude * norm(lobes)[:, None])[:2].sum(0), rtol=2e-3)
    k = int(np.argmax(sun.power()))
    np.testing.assert_allclose(sun.axis[k], key)
    np.testing.assert_allclose(sun.sharpness[k], 200.0)
    np.testing.assert_allclose(sun.amplitude[2:], lobes.amplitude[2:])     # the light elsewhere is left alone
    assert len(sun.axis) == len(lobes.axis)


def test_a_lobe_sharper_than_the_raster_keeps_its_energy_and_direction_without_aliasing():
    """A sun-sized lobe (lambda 1e5) on a 64 x 128 raster: drawn as the sharpest resolvable lobe with the
    same energy, so the raster's integral is the lobe's whatever its exact position between texels."""
    import math

    import torch

    from vfxinsert.lighting.panorama import mitsuba_env_directions
    from vfxinsert.lighting.sg import SUN_SHARPNESS, max_sharpness, sg_env_torch

    dirs = torch.tensor(mitsuba_env_directions(64, 128), dtype=torch.float32)
    theta = torch.arccos(dirs[..., 1].clamp(-1, 1))
    omega = torch.sin(theta) * (math.pi / 63) * (2 * math.pi / 128)
    omega[:, [0, -1]] = 0.0                                  # halo columns repeat real ones
    truth = 2 * math.pi * 10.0 / SUN_SHARPNESS
    energies = []
    for azimuth in np.linspace(0.0, 0.05, 6):              # a fraction of a texel apart
        axis = torch.tensor([[math.sin(azimuth) * 0.8, 0.6, -math.cos(azimuth) * 0.8]])
        env = sg_env_torch(dirs, axis, torch.tensor([math.log(SUN_SHARPNESS)]), torch.full((1, 3), math.log(10.0)),
                           max_sharpness(64))
        energies.append(float((env[..., 0] * omega).sum()))
    assert max(abs(e / truth - 1.0) for e in energies) < 0.03, energies
    naive = sg_env_torch(dirs, axis, torch.tensor([math.log(SUN_SHARPNESS)]), torch.full((1, 3), math.log(10.0)))
    assert float((naive[..., 0] * omega).sum()) < 0.5 * truth   # without it the sun misses the texel centres
