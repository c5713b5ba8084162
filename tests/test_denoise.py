"""Final-render sampling and denoising (vfxinsert/denoise.py) on real Mitsuba renders and real OIDN."""
from __future__ import annotations

import numpy as np
import pytest

from vfxinsert.composite import composite
from vfxinsert.config import RenderConfig
from vfxinsert.denoise import batch_noise, denoise, render_final, shadow_region
from vfxinsert.lighting.panorama import mitsuba_env_directions
from vfxinsert.lighting.sg import SGLobes
from vfxinsert.scene import SAMPLERS, InsertScene, View

from test_scene import look_at, sphere  # noqa: E402

pytest.importorskip("pyoidn")

W, H = 64, 48


def ball_scene(width: int, height: int) -> InsertScene:
    """A grey ball on the proxy ground under a sun and a sky, seen from 1.2 m up."""
    view = View(look_at((0, 1.2, 2.4), (0, 0.3, 0)), 50.0, width, height)
    s = InsertScene([sphere((0, 0.3, 0), 0.3)], ground_height_m=0.0, ground_albedo=(0.4,) * 3, view=view,
                    env_height=32, max_depth=3, ground_half_size_m=2.0)
    axis = np.array([[0.0, 1.0, 0.0], [0.5, 0.7, 0.5]])
    lobes = SGLobes(axis / np.linalg.norm(axis, axis=1, keepdims=True), np.array([2.0, 40.0]),
                    np.array([[0.5, 0.6, 0.8], [12.0, 11.0, 9.0]]))
    s.set_env(lobes.radiance(mitsuba_env_directions(32, 64)).astype(np.float32))
    return s


@pytest.fixture(scope="module")
def scene():
    return ball_scene(W, H)


@pytest.fixture(scope="module")
def reference(scene):
    return composite(scene.render(seed=99, spp=2048), 0.0)


def _errors(rgb, shadow, reference):
    rgb_r, alpha_r, shadow_r, _ = reference
    full = alpha_r[..., 0] > 0.999
    edge = (alpha_r[..., 0] > 0.05) & (alpha_r[..., 0] < 0.95)
    region = (alpha_r[..., 0] == 0) & (shadow_r.mean(-1) < 0.95)
    rms = lambda a, b, m: float(np.sqrt(np.mean((a[m] - b[m]) ** 2)))  # noqa: E731
    return rms(rgb, rgb_r, full), rms(rgb, rgb_r, edge), rms(shadow, shadow_r, region)


def test_denoised_layers_keep_the_identity_the_exact_plate_and_beat_raw(scene, reference):
    layers = scene.render(seed=1, spp=16)
    rgb, alpha, shadow, _ = composite(layers, 0.0)
    d_rgb, d_shadow = denoise(rgb, alpha, shadow)
    plate = np.random.default_rng(0).uniform(0.1, 2.0, (H, W, 3)).astype(np.float32)
    comp = d_rgb + (1.0 - alpha) * plate * d_shadow
    # the object is exactly absent where the raw render never saw it
    assert np.all(d_rgb[alpha[..., 0] == 0] == 0.0)
    # where raw says the object plays no part (ratio exactly 1), away from the visible shadow, the
    # multiplier stays exactly 1 and the composite is the plate (most such pixels, even at 64x48)
    exact = (shadow == 1.0).all(-1) & (alpha[..., 0] == 0)
    region = shadow_region(~(shadow == 1.0).all(-1), d_shadow)
    far = exact & ~region
    assert far.sum() > 0.6 * exact.sum()
    assert np.all(d_shadow[far] == 1.0) and np.array_equal(comp[far], plate[far])
    assert np.all(d_shadow[~region] == 1.0)
    # partly covered pixels are no worse than raw; the object and the shadow are better
    raw_full, raw_edge, raw_shadow = _errors(rgb, shadow, reference)
    den_full, den_edge, den_shadow = _errors(d_rgb, d_shadow, reference)
    assert den_edge <= raw_edge
    assert den_full < 0.7 * raw_full, (den_full, raw_full)
    assert den_shadow < 0.7 * raw_shadow, (den_shadow, raw_shadow)


def test_render_final_denoises_only_when_asked(scene):
    off = render_final(scene, 5, RenderConfig(spp=16, denoise="off"), W * H)
    raw = composite(scene.render(seed=5, spp=16), 0.0)
    assert np.array_equal(off.rgb, raw[0]) and np.array_equal(off.shadow, raw[2]) and off.spp == 16
    on = render_final(scene, 5, RenderConfig(spp=16, denoise="oidn"), W * H)
    assert np.array_equal(on.alpha, off.alpha) and not np.array_equal(on.rgb, off.rgb)


def test_noise_target_stops_by_the_renders_own_variance(scene, reference):
    loose = render_final(scene, 7, RenderConfig(spp=512, noise_target=0.2, denoise="off"), W * H)
    tight = render_final(scene, 7, RenderConfig(spp=512, noise_target=0.03, denoise="off"), W * H)
    capped = render_final(scene, 7, RenderConfig(spp=64, noise_target=0.0001, denoise="off"), W * H)
    assert loose.spp == 32 and 32 < tight.spp <= 512 and capped.spp == 64
    # the estimate from the batches' spread matches the error against the converged reference
    layers = [scene.render(seed=50 + k, spp=16) for k in range(8)]
    parts = [composite(x, 0.0) for x in layers]
    obj, sh = batch_noise(np.mean(layers, axis=0), [p[0] for p in parts], [p[2] for p in parts])
    mean = composite(np.mean(layers, axis=0), 0.0)
    rgb_r, alpha_r, shadow_r, _ = reference
    full = (alpha_r[..., 0] > 0.999) & (mean[1][..., 0] > 0.999)
    true_obj = np.sqrt(np.mean((mean[0][full] - rgb_r[full]) ** 2)) / rgb_r[full].mean()
    assert 0.6 < obj / true_obj < 1.6, (obj, true_obj)
    assert 0.0 < sh < 0.2


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_every_sampler_keeps_the_ratio_exactly_one_where_the_object_plays_no_part(sampler):
    """The with/without ground estimates share each sample's random numbers whatever the sampler: with
    the object far behind the camera, every ground pixel's ratio is exactly 1."""
    view = View(look_at((0, 2.0, 2.0), (0, 0, -1.0)), 50.0, 24, 16)
    s = InsertScene([sphere((0, 0.1, 60.0), 0.1, n=8)], ground_height_m=0.0, ground_albedo=(0.5,) * 3, view=view,
                    env_height=16, max_depth=3, ground_half_size_m=200.0, sampler=sampler)
    s.set_env(np.random.default_rng(1).uniform(0.2, 3.0, (16, 34, 3)).astype(np.float32))
    layers = s.render(seed=3, spp=16)
    ground = layers[..., 10] > 0
    assert ground.sum() > 100
    assert np.array_equal(layers[..., 4:7][ground], layers[..., 7:10][ground])
    assert np.all(composite(layers, 0.0)[2] == 1.0)



def _denoised_shot(tmp_path, shared_data):
    from test_cli import make_shot

    shot = make_shot(tmp_path, shared_data)
    shot.write_text(shot.read_text().replace("spp = 8", 'spp = 8\ndenoise = "oidn"'))
    return shot


def test_check_runs_the_denoiser_when_the_shot_asks_for_it(tmp_path, shared_data):
    from vfxinsert.check import check_shot

    _, findings = check_shot(_denoised_shot(tmp_path, shared_data), run_llvm=False)
    (denoiser,) = [f for f in findings if f.topic == "denoiser"]
    assert denoiser.ok and "Open Image Denoise 2." in denoiser.detail


def test_check_names_a_broken_denoiser_install_in_one_line(tmp_path, shared_data):
    """A pyoidn whose native library does not load (what a half-installed wheel does) fails `check`, not the
    farm's render tasks an hour later."""
    import subprocess
    import sys

    shot = _denoised_shot(tmp_path / "shot", shared_data)
    broken = tmp_path / "site" / "pyoidn"
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text('raise ImportError("libOpenImageDenoise.so.2: cannot open shared object file")\n')
    env = {**__import__("os").environ, "PYTHONPATH": str(tmp_path / "site")}
    out = subprocess.run([sys.executable, "-m", "vfxinsert", "check", "--no-llvm", str(shot)], env=env,
                         capture_output=True, text=True)
    assert out.returncode == 1
    errors = [line for line in out.stderr.splitlines() if line.startswith("vfxinsert: error:")]
    assert len(errors) == 1 and "pyoidn" in errors[0] and "libOpenImageDenoise" in errors[0], out.stderr
    assert 'denoise = "off"' in errors[0]


def test_a_final_render_takes_exactly_its_spp_in_passes_of_a_power_of_four(scene):
    """128 spp = two 64-sample passes (multijitter would round one 128-sample render up to 132), and the
    frame is the mean of those passes."""
    from vfxinsert.denoise import pass_spp

    assert [pass_spp(s, 10**6) for s in (1, 2, 16, 32, 128, 512)] == [1, 1, 16, 16, 64, 256]
    assert pass_spp(1024, 4096 * 2160) == 64            # 8.8 M pixels x 256 would pass Mitsuba's 2^31 samples
    out = render_final(scene, 5, RenderConfig(spp=128, denoise="off"), W * H)
    passes = [scene.render(seed=5 + k * 7919, spp=64) for k in range(2)]
    assert out.spp == 128 and np.array_equal(out.rgb, composite((passes[0] + passes[1]) / 2, 0.0)[0])


def test_the_denoiser_leaves_the_ground_the_object_never_touches_exactly_as_it_was():
    """At 16 spp single samples of the object's faint bounce light are off 1 all over the ground; judging
    'a visible shadow' by them spread the denoiser over the untouched plate (1.4 % of it here, 10 % on the
    benchmark teapot). Of the ground a converged render says the object plays no part in, every pixel the
    raw render also left at exactly 1 stays exactly 1."""
    s = ball_scene(160, 120)
    _, ref_alpha, ref_shadow, _ = composite(s.render(seed=99, spp=1024), 0.0)
    rgb, alpha, shadow, _ = composite(s.render(seed=1, spp=16), 0.0)
    _, d_shadow = denoise(rgb, alpha, shadow)
    untouched = (ref_shadow == 1.0).all(-1) & (ref_alpha[..., 0] == 0) & (shadow == 1.0).all(-1)
    assert untouched.sum() > 3000
    assert np.all(d_shadow[untouched] == 1.0), 1.0 - float((d_shadow[untouched] == 1.0).all(-1).mean())
    visible = np.any(np.abs(ref_shadow - 1.0) > 0.1, axis=-1)
    assert not np.allclose(d_shadow[visible], shadow[visible])     # and the shadow itself is denoised
