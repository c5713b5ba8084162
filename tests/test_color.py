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
