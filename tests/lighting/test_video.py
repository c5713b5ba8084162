"""Video shots: one shared lighting, per-frame tone curves that track exposure drift without flicker,
and movie plates end to end with their frame numbers."""
from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from test_cli import make_shot  # noqa: E402
from test_scene import sphere  # noqa: E402

from vfxinsert.camera import Intrinsics, euler_zxy_to_matrix  # noqa: E402
from vfxinsert.cli import main  # noqa: E402
from vfxinsert.exr import read_layers  # noqa: E402
from vfxinsert.lighting.panorama import hdri_to_mitsuba_env  # noqa: E402
from vfxinsert.config import OptimizeConfig  # noqa: E402
from vfxinsert.lighting.loop import FrameTarget, ReferenceObjective, optimise  # noqa: E402
from vfxinsert.lighting.models import TwoMapSG  # noqa: E402
from vfxinsert.lighting.panorama import perspective_view  # noqa: E402
from vfxinsert.composite import composite  # noqa: E402
from vfxinsert.scene import InsertScene, View  # noqa: E402
from vfxinsert.lighting.stage import crop_resample, object_window  # noqa: E402
from vfxinsert.lighting.tone import ToneCurves  # noqa: E402

FRAMES = 24
W, H, CROP = 160, 90, 40
SMOOTH = 1.0    # temporal smoothness of the tone curves (second differences)


def pan_problem(shared_data, exposures_ev):
    """A 24-frame pan across a real panorama; frame f's plate and reference are exposed by 2^ev[f]."""
    from vfxinsert.lighting.sg import fit_sg
    from vfxinsert.plates import read_image

    pano = read_image(shared_data / "hdri" / "potsdamer_platz_1k.hdr").rgb
    intr = Intrinsics(24.0, (36.0, 20.25), W, H)
    ball = sphere((0.0, 0.3, -3.0), 0.3, bsdf={"type": "diffuse", "reflectance": {"type": "rgb", "value": [0.6, 0.5, 0.4]}})
    bounds = (ball.vertices.min(0), ball.vertices.max(0))
    targets, scene = [], None
    for f in range(FRAMES):
        c2w = np.eye(4)
        c2w[:3, :3] = euler_zxy_to_matrix(-25.0, 8.0 - 16.0 * f / (FRAMES - 1), 0.0)
        c2w[1, 3] = 1.5
        window = object_window(bounds, 0.0, c2w, intr)
        view = View(c2w, intr.fov_x_deg, W, H, window=(window[0], window[1], window[2], window[2]), scale=CROP / window[2])
        if scene is None:
            scene = InsertScene([ball], ground_height_m=0.0, ground_albedo=(0.3,) * 3, view=view, env_height=64, max_depth=3)
            scene.set_env(hdri_to_mitsuba_env(pano, 64))
        scene.set_view(view)
        plate = crop_resample(perspective_view(pano, c2w, intr.fov_x_deg, W, H), window, CROP)
        reference = composite(scene.render(seed=100 + f, spp=256), plate)[3]
        gain = np.float32(2.0 ** exposures_ev[f])
        targets.append(FrameTarget(f, view, plate * gain, reference * gain))
    lighting = TwoMapSG(fit_sg(pano, lobes=16), 64, 200.0)
    return scene, targets, lighting


def effective_exposure_ev(tone: ToneCurves, frame_index: int, radiance: float = 0.3) -> float:
    """log2 of T_fg's gain at a mid-grey object radiance, averaged over the channels."""
    with torch.no_grad():
        x = torch.full((1, 3), radiance)
        return float(torch.log2(tone.fg(x, frame_index) / x).mean())


def test_per_frame_tone_tracks_an_exposure_ramp_within_a_tenth_of_a_stop(shared_data):
    true_ev = np.linspace(0.0, 1.0, FRAMES)          # auto-exposure drifting up one stop over the shot
    scene, targets, lighting = pan_problem(shared_data, true_ev)
    tone = ToneCurves(FRAMES)
    settings = OptimizeConfig(iterations=288, crop_px=CROP, spp=8, lr_lighting=0.0, lr_tone=0.2, tone_smoothness=SMOOTH)
    optimise(scene, targets, lighting, tone, settings, ReferenceObjective(), shot_name="drift")
    found = np.array([effective_exposure_ev(tone, i) for i in range(FRAMES)])
    # the lighting's overall scale and the exposure trade off: compare relative to the shot's mean
    error = (found - found.mean()) - (true_ev - true_ev.mean())
    assert np.abs(error).max() < 0.1, np.round(error, 3)


def test_static_exposure_does_not_flicker(shared_data):
    scene, targets, lighting = pan_problem(shared_data, np.zeros(FRAMES))
    tone = ToneCurves(FRAMES)
    settings = OptimizeConfig(iterations=288, crop_px=CROP, spp=8, lr_lighting=0.02, lr_tone=0.2, tone_smoothness=SMOOTH)
    optimise(scene, targets, lighting, tone, settings, ReferenceObjective(), shot_name="static")
    from vfxinsert.lighting.panorama import mitsuba_env_directions
    from vfxinsert.lighting.tone import ToneExport, apply_tone

    scene.set_env(lighting.radiance(mitsuba_env_directions(64, 128)).astype(np.float32))
    curves = ToneExport.from_curves(tone, list(range(FRAMES)))
    # Flicker is what the per-frame curves add: apply every frame's curves to one and the same render
    # (the shared lighting and the geometry do not change between frames in the object's own colour).
    scene.set_view(targets[0].view)
    rgb0, alpha, shadow, _ = composite(scene.render(seed=7, spp=256), targets[0].plate)
    inside = alpha[..., 0] > 0.99
    means = []
    for i in range(FRAMES):
        rgb, _ = apply_tone(curves, i, rgb0, alpha, shadow)
        means.append((np.clip(rgb[inside], 0, 1) ** (1 / 2.2)).mean(0))
    means = np.array(means)
    jitter = np.abs(np.diff(means, axis=0)) / means[:-1]
    assert jitter.max() < 0.01, (jitter.max(), np.round(means[:, 1], 4).tolist())


def test_movie_plate_end_to_end_keeps_frame_numbers(tmp_path, shared_data, capsys):
    import av

    movie = shared_data / "video" / "bottle-detection.mp4"
    shot = make_shot(tmp_path, shared_data, lighting='init = "plate"\nlobes = 6\noptimize = false')
    text = shot.read_text().replace('path = "plate/sh.####.exr"', f'path = "{movie}"')
    text = text.replace("frames = [1, 3]", "frames = [10, 12]").replace('colorspace = "Linear Rec.709 (sRGB)"',
                                                                         'colorspace = "sRGB - Texture"')
    shot.write_text(text)
    assert main(["run", str(shot)]) == 0
    out = tmp_path / "out"
    assert sorted(p.name for p in out.glob("sh.*.exr")) == ["sh.0010.exr", "sh.0011.exr", "sh.0012.exr"]
    # frame 10 of the plate stage is the 10th frame of the movie, decoded independently here
    with av.open(str(movie)) as container:
        for i, decoded in enumerate(container.decode(video=0)):
            if i == 9:
                tenth = decoded.to_ndarray(format="rgb24").astype(np.float32) / 255.0
                break
    from vfxinsert.color import ColorPipeline

    expected = ColorPipeline().to_working(tenth, "sRGB - Texture")
    plate, _ = read_layers(out / "plate" / "sh.0010.exr")
    got = np.stack([plate[c] for c in "RGB"], -1)
    np.testing.assert_allclose(got, expected, rtol=2e-3, atol=1e-4)
    with av.open(str(out / "preview.mp4")) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264" and stream.codec_context.pix_fmt == "yuv420p"
        assert abs(float(stream.average_rate) - 29.83) < 0.05
        assert sum(1 for _ in container.decode(video=0)) == 3
    assert math.isfinite(float(got.mean()))
