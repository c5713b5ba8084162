"""OCIO: round trips, no-op for the same space, independent reference values, config resolution."""
from __future__ import annotations

import numpy as np
import pytest

from vfxinsert.color import PINNED_CONFIG, ColorPipeline, resolve_config_source
from vfxinsert.errors import ColorError


@pytest.fixture(scope="module")
def pipe():
    return ColorPipeline()


def test_pinned_config_is_not_latest(pipe):
    assert "latest" not in PINNED_CONFIG and pipe.config_name == "studio-config-v2.2.0_aces-v1.3_ocio-v2.4"


def test_same_space_is_noop(pipe):
    x = np.random.default_rng(0).uniform(-0.1, 20.0, (17, 23, 3)).astype(np.float32)
    assert np.array_equal(pipe.to_working(x, "Linear Rec.709 (sRGB)"), x)
    assert np.array_equal(pipe.to_working(x, "lin_srgb"), x)  # alias of the same space


def test_acescg_round_trip_and_reference_matrix(pipe):
    x = np.random.default_rng(1).uniform(0.0, 50.0, (8, 9, 3)).astype(np.float32)
    ap1 = pipe.from_working(x, "ACEScg")
    # Independent reference: the published Rec.709 -> AP1 (D65 -> D60 Bradford) matrix.
    m = np.array([[0.6130974, 0.3395231, 0.0473795], [0.0701937, 0.9163539, 0.0134524],
                  [0.0206156, 0.1095698, 0.8698146]])
    np.testing.assert_allclose(ap1, x @ m.T, rtol=2e-3, atol=1e-4)
    np.testing.assert_allclose(pipe.to_working(ap1, "ACEScg"), x, rtol=1e-4, atol=1e-5)


def test_display_round_trip_against_srgb_formula(pipe):
    x = np.linspace(0.0, 1.0, 3 * 64, dtype=np.float32).reshape(8, 8, 3)
    disp = pipe.to_display(x)
    srgb = np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055)  # IEC 61966-2-1
    np.testing.assert_allclose(disp, srgb, atol=2e-3)
    np.testing.assert_allclose(pipe.from_display(disp), x, atol=2e-4)


def test_srgb_texture_plate_to_linear(pipe):
    x = np.full((2, 2, 3), 0.5, np.float32)
    assert pipe.to_working(x, "sRGB - Texture")[0, 0, 0] == pytest.approx(((0.5 + 0.055) / 1.055) ** 2.4, abs=1e-4)


def test_conversions_repeat_exactly_and_leave_the_input_alone(pipe):
    x = np.linspace(0.0, 2.0, 48, dtype=np.float32).reshape(4, 4, 3)
    before = x.copy()
    first = pipe.to_working(x, "ACEScg")
    assert np.array_equal(pipe.to_working(x, "ACEScg"), first) and np.array_equal(x, before)
    assert not np.allclose(first, x)   # ACEScg -> Rec.709 is not the identity


def test_srgb_transfer_is_the_display_view_and_inverts(pipe):
    import torch

    from vfxinsert.color import srgb_decode, srgb_encode_torch

    x = np.linspace(0.0, 1.0, 30, dtype=np.float32).reshape(10, 1, 3)
    encoded = srgb_encode_torch(torch.from_numpy(x)).numpy()
    assert np.allclose(encoded, pipe.to_display(x), atol=2e-3)   # OCIO's sRGB 'Un-tone-mapped' view
    assert np.allclose(srgb_decode(encoded), x, atol=1e-5)


def test_input_untouched_and_non_contiguous_ok(pipe):
    x = np.random.default_rng(2).uniform(0, 1, (10, 12, 4)).astype(np.float32)
    view = x[:, ::2, :3]  # non-contiguous
    before = view.copy()
    out = pipe.to_working(view, "ACEScg")
    assert out.shape == (10, 6, 3) and np.array_equal(view, before)


def test_unknown_names(pipe):
    with pytest.raises(ColorError, match="'Rec709 linear'.*use one of"):
        pipe.canonical("Rec709 linear", "x")
    with pytest.raises(ColorError, match="view 'Filmic'"):
        ColorPipeline(view="Filmic").check_display_view("x")


def test_resolution_order(monkeypatch):
    monkeypatch.setenv("OCIO", "/some/config.ocio")
    assert resolve_config_source("ocio://cg-config-v2.2.0_aces-v1.3_ocio-v2.4")[1] == "shot file [color] config"
    assert resolve_config_source("") == ("/some/config.ocio", "$OCIO")
    monkeypatch.delenv("OCIO")
    assert resolve_config_source("") == (PINNED_CONFIG, "pinned built-in config")


# --------------------------------------------------------------------------------------------------
# A studio config: its scene_linear role as the working space, and per-shot OCIO context variables


def _write_spi1d(path, gain: float) -> None:
    """A 1D LUT (Sony .spi1d) mapping 0..1 linearly to 0..gain: a per-shot grade of known effect."""
    path.write_text(f"Version 1\nFrom 0.0 1.0\nLength 2\nComponents 1\n{{\n0.0\n{gain}\n}}\n")


def write_studio_config(folder):
    """scene_linear = ACEScg (the reference); Linear Rec.709 as the pinned config defines it; a plate colorspace
    whose file transform reads ``grade_$SHOT.spi1d``; an sRGB display."""
    import PyOpenColorIO as ocio

    pinned = ColorPipeline()
    config = ocio.Config.CreateRaw()
    for name in list(config.getColorSpaceNames()):
        config.removeColorSpace(name)
    config.setSearchPath(str(folder))
    config.addColorSpace(ocio.ColorSpace(ocio.REFERENCE_SPACE_SCENE, name="ACEScg", encoding="scene-linear"))
    rec709 = ocio.ColorSpace(ocio.REFERENCE_SPACE_SCENE, name="Linear Rec.709 (sRGB)", encoding="scene-linear")
    rec709.setTransform(pinned.processor("Linear Rec.709 (sRGB)", "ACEScg").createGroupTransform(),
                        ocio.COLORSPACE_DIR_TO_REFERENCE)
    config.addColorSpace(rec709)
    graded = ocio.ColorSpace(ocio.REFERENCE_SPACE_SCENE, name="plate_graded")
    graded.setTransform(ocio.FileTransform(src="grade_$SHOT.spi1d", interpolation=ocio.INTERP_LINEAR),
                        ocio.COLORSPACE_DIR_TO_REFERENCE)
    config.addColorSpace(graded)
    config.addColorSpace(ocio.ColorSpace(ocio.REFERENCE_SPACE_SCENE, name="Raw", isData=True))
    config.addDisplayView("sRGB - Display", "Un-tone-mapped", "Raw", "")
    for role, cs in (("scene_linear", "ACEScg"), ("default", "ACEScg"), ("data", "Raw")):
        config.setRole(role, cs)
    config.addEnvironmentVar("SHOT", "default")
    (folder / "studio.ocio").write_text(config.serialize())
    _write_spi1d(folder / "grade_a.spi1d", 2.0)
    _write_spi1d(folder / "grade_b.spi1d", 0.5)
    _write_spi1d(folder / "grade_default.spi1d", 1.0)
    return folder / "studio.ocio"


def test_studio_scene_linear_is_the_working_space_unless_the_shot_names_one(tmp_path):
    from vfxinsert.color import WORKING_SPACE, resolve_working_space

    studio = str(write_studio_config(tmp_path))
    assert resolve_working_space(studio, "") == "ACEScg"                 # the studio's scene_linear role
    assert resolve_working_space(studio, "Linear Rec.709 (sRGB)") == "Linear Rec.709 (sRGB)"
    assert resolve_working_space(studio, "scene_linear") == "ACEScg"     # a role by name
    assert resolve_working_space(PINNED_CONFIG, "") == WORKING_SPACE     # the built-in: Rec.709 as always
    assert resolve_working_space(PINNED_CONFIG, "scene_linear") == "ACEScg"


def test_context_variables_pick_the_shots_grade_and_enter_the_cache_id(tmp_path):
    from vfxinsert.color import portable_config

    studio = str(write_studio_config(tmp_path))
    x = np.full((2, 2, 3), 0.25, np.float32)
    ap1 = {}
    for shot in ("a", "b"):
        pipe = ColorPipeline(source=studio, working_space="ACEScg", context=(("SHOT", shot),))
        ap1[shot] = pipe.to_working(x, "plate_graded")
        ap1[shot + "_id"] = pipe.cache_id
    assert np.allclose(ap1["a"], 0.5) and np.allclose(ap1["b"], 0.125)   # gain 2 and 0.5 on 0.25
    assert ap1["a_id"] != ap1["b_id"]                                      # so the inputs hashes differ
    assert np.allclose(ColorPipeline(source=studio, working_space="ACEScg").to_working(x, "plate_graded"), 0.25)
    # the portable export for Nuke bakes the shot's context: no variable left to set there
    baked = ColorPipeline(source=studio, working_space="ACEScg", context=(("SHOT", "a"),))
    text, luts = portable_config(baked, ["plate_graded"], "sh")
    (tmp_path / "baked").mkdir()
    (tmp_path / "baked" / "baked.ocio").write_text(text)
    for name, lut in luts.items():
        (tmp_path / "baked" / name).write_text(lut)
    assert "$SHOT" not in text and len(luts) == 1 and "!<FileTransform> {src: lut_001.clf" in text
    assert np.allclose(ColorPipeline(source=str(tmp_path / "baked" / "baked.ocio"), working_space="ACEScg")
                       .to_working(x, "plate_graded"), 0.5)
    missing = ColorPipeline(source=studio, working_space="ACEScg", context=(("SHOT", "zz"),))
    with pytest.raises(ColorError, match="context"):
        missing.to_working(x, "plate_graded")


def test_a_shot_file_sets_the_context_and_gets_the_studio_working_space(tmp_path, shared_data):
    from test_cli import make_shot

    from vfxinsert.config import load_shot
    from vfxinsert.errors import ConfigError
    from vfxinsert.nuke import nuke_config_path

    write_studio_config(tmp_path)
    shot_file = make_shot(tmp_path, shared_data)
    text = shot_file.read_text().replace('colorspace = "Linear Rec.709 (sRGB)"', 'colorspace = "plate_graded"')
    shot_file.write_text(text + '[color]\nconfig = "studio.ocio"\ncontext = [["SHOT", "b"]]\n')
    shot = load_shot(shot_file)
    pipe = shot.color_pipeline()
    assert pipe.working_space == "ACEScg" and pipe.context == (("SHOT", "b"),)
    assert np.allclose(pipe.to_working(np.full((1, 1, 3), 0.5, np.float32), "plate_graded"), 0.25)
    assert nuke_config_path(shot) == shot.output.dir / "ocio" / "sh.ocio"   # a context: the baked export
    shot_file.write_text(text + '[color]\nconfig = "studio.ocio"\ncontext = [["SHOT", "b"], ["SHOT", "a"]]\n')
    with pytest.raises(ConfigError, match="unique variable names"):
        load_shot(shot_file)
