"""Plates: EXR / OIIO / movie readers, sequence patterns, missing-frame and non-finite policies.

Generated files (written here with OpenEXR, OpenImageIO and PyAV) check exact values; the real files in
shared_data (see its SOURCES.md) check that real-world inputs load or fail with a clear PlateError.
"""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import OpenEXR
import pytest
from conftest import SHARED_DATA

from vfxinsert.errors import FrameError, PlateError
from vfxinsert.plates import SequencePattern, _luminance_weights, open_plate, parse_pattern, read_image

# ----------------------------------------------------------------------------------------------------
# helpers


def i32(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.int32)


def write_exr(path: Path, channels: dict, **header) -> Path:
    """A single-part EXR; ``header`` keys are OpenEXR attribute names (dataWindow as int32 arrays)."""
    header.setdefault("compression", OpenEXR.ZIP_COMPRESSION)
    OpenEXR.File(header, channels).write(str(path))
    return path


def write_oiio(path: Path, pixels: np.ndarray, fmt: str, **attributes) -> Path:
    """An image written by OpenImageIO from (H, W, C) ``pixels`` stored as ``fmt`` ("uint8", "uint16", "float")."""
    import OpenImageIO as oiio

    h, w, c = pixels.shape
    spec = oiio.ImageSpec(w, h, c, fmt)
    for key, value in attributes.items():
        spec.attribute(key, value)
    out = oiio.ImageOutput.create(str(path))
    assert out.open(str(path), spec), oiio.geterror()
    assert out.write_image(pixels), out.geterror()
    out.close()
    return path


def ramp(h: int = 6, w: int = 8) -> np.ndarray:
    """(h, w) float32 with a distinct value per pixel: 10 * row + col."""
    return (10 * np.arange(h)[:, None] + np.arange(w)[None, :]).astype(np.float32)


def rgb_exr(path: Path, h: int = 6, w: int = 8, dtype=np.float16, **header) -> Path:
    r = ramp(h, w)
    return write_exr(path, {"R": r.astype(dtype), "G": (r + 100).astype(dtype), "B": (r + 200).astype(dtype)}, **header)


# ----------------------------------------------------------------------------------------------------
# EXR, generated


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_exr_half_and_float_values_are_exact(tmp_path, dtype):
    values = np.array([[0.0, 1.0, -2.5, 0.333], [65504.0, 1e-3, 7.0, 0.5]], dtype)
    path = write_exr(tmp_path / "a.exr", {"R": values, "G": values / 2, "B": -values, "A": values / 4})
    image = read_image(path)
    assert image.rgb.dtype == np.float32 and image.rgb.flags.c_contiguous and image.rgb.shape == (2, 4, 3)
    np.testing.assert_array_equal(image.rgb[..., 0], values.astype(np.float32))
    np.testing.assert_array_equal(image.rgb[..., 1], (values / 2).astype(np.float32))
    np.testing.assert_array_equal(image.rgb[..., 2], (-values).astype(np.float32))
    np.testing.assert_array_equal(image.alpha, (values / 4).astype(np.float32))
    assert image.channels == ("R", "G", "B", "A")
    assert image.display_window == ((0, 0), (3, 1)) and image.origin == (0, 0)
    assert image.pixel_aspect == 1.0 and image.nonfinite == 0 and image.held_from is None
    assert image.path == str(path)


def test_exr_uint_channels_become_float(tmp_path):
    ids = np.array([[0, 7, 123456]], np.uint32)
    path = write_exr(tmp_path / "u.exr", {"R": ids, "G": np.ones((1, 3), np.float16), "B": ids.astype(np.float32)})
    image = read_image(path)
    np.testing.assert_array_equal(image.rgb[0, :, 0], [0.0, 7.0, 123456.0])
    assert image.alpha is None and image.rgb.dtype == np.float32


@pytest.mark.parametrize("compression, lossless", [
    ("NO_COMPRESSION", True), ("RLE_COMPRESSION", True), ("ZIPS_COMPRESSION", True), ("PIZ_COMPRESSION", True),
    ("PXR24_COMPRESSION", True), ("ZSTD_COMPRESSION", True), ("B44A_COMPRESSION", False), ("DWAB_COMPRESSION", False)])
def test_exr_compressions(tmp_path, compression, lossless):
    h, w = 32, 48
    path = rgb_exr(tmp_path / "c.exr", h, w, compression=getattr(OpenEXR, compression))
    expected = ramp(h, w).astype(np.float16).astype(np.float32)
    if lossless:  # PXR24 is lossless for half channels (it only rounds 32-bit floats)
        np.testing.assert_array_equal(read_image(path).rgb[..., 0], expected)
    else:
        assert np.abs(read_image(path).rgb[..., 0] - expected).mean() < 0.5  # values span 0..357


def test_exr_layer_is_read_by_name(tmp_path):
    r = ramp()
    path = write_exr(tmp_path / "layers.exr", {
        "R": r, "G": r, "B": r,
        "diffuse.R": r + 1, "diffuse.G": r + 2, "diffuse.B": r + 3, "diffuse.A": np.full_like(r, 0.5),
        "depth.Z": r})
    image = read_image(path, layer="diffuse")
    assert image.channels == ("diffuse.R", "diffuse.G", "diffuse.B", "diffuse.A")
    np.testing.assert_array_equal(image.rgb, np.stack([r + 1, r + 2, r + 3], -1))
    np.testing.assert_array_equal(image.alpha, 0.5)
    main = read_image(path)
    assert main.alpha is None and main.channels == ("R", "G", "B")


def test_exr_unknown_layer_lists_channels_and_layers(tmp_path):
    r = ramp()
    path = write_exr(tmp_path / "layers.exr", {"R": r, "G": r, "B": r, "diffuse.R": r, "diffuse.G": r,
                                               "diffuse.B": r, "depth.Z": r})
    with pytest.raises(PlateError) as err:
        read_image(path, layer="specular")
    text = str(err.value)
    assert 'layer "specular" has no R,G,B' in text and "depth.Z" in text and str(path) in text
    assert 'plate.layer = ""' in text and '"diffuse"' in text


def test_exr_multipart_picks_the_part_with_rgb_and_the_view(tmp_path):
    r = ramp()
    parts = [OpenEXR.Part({}, {"Z": r}, "depth"),
             OpenEXR.Part({"view": "left"}, {"R": r, "G": r, "B": r}, "rgba_left"),
             OpenEXR.Part({"view": "right"}, {"R": r + 1, "G": r, "B": r, "A": r}, "rgba_right")]
    path = tmp_path / "stereo.exr"
    OpenEXR.File(parts).write(str(path))
    assert read_image(path).rgb[0, 0, 0] == 0.0  # no view: the first part holding R,G,B
    assert read_image(path, view="left").alpha is None
    right = read_image(path, view="right")
    assert right.rgb[0, 0, 0] == 1.0 and right.alpha is not None
    with pytest.raises(PlateError, match=r'no part .* has view "centre".*"left", "right"'):
        read_image(path, view="centre")


def test_exr_view_on_a_file_without_views_is_an_error(tmp_path):
    path = rgb_exr(tmp_path / "mono.exr")
    with pytest.raises(PlateError, match=r'view "left".*plate.view = "" \(the file has no views\)'):
        read_image(path, view="left")


def test_exr_data_window_crop_and_keep_place_pixels_exactly(tmp_path):
    h, w = 6, 8
    r = ramp(h, w)
    # data window x -2..5, y 3..8 ; display window 0..9 x 0..9
    path = write_exr(tmp_path / "dw.exr", {"R": r, "G": r, "B": r, "A": np.ones_like(r)},
                     dataWindow=(i32(-2, 3), i32(w - 3, h + 2)), displayWindow=(i32(0, 0), i32(9, 9)),
                     pixelAspectRatio=2.0)
    crop = read_image(path)
    assert crop.rgb.shape == (10, 10, 3) and crop.origin == (0, 0)
    assert crop.display_window == ((0, 0), (9, 9)) and crop.pixel_aspect == 2.0
    expected = np.zeros((10, 10), np.float32)
    expected[3:9, 0:6] = r[:, 2:]  # display x 0..5 = data columns 2..7; display y 3..8 = data rows 0..5
    np.testing.assert_array_equal(crop.rgb[..., 0], expected)
    expected_alpha = np.zeros((10, 10), np.float32)
    expected_alpha[3:9, 0:6] = 1.0  # alpha 0 where the display window has no data
    np.testing.assert_array_equal(crop.alpha, expected_alpha)
    keep = read_image(path, overscan="keep")
    assert keep.origin == (-2, 0) and keep.rgb.shape == (10, 12, 3)  # x -2..9, y 0..9
    assert keep.display_window == ((0, 0), (9, 9))
    np.testing.assert_array_equal(keep.rgb[3:9, 0:8, 0], r)
    assert keep.rgb[:3].sum() == 0 and keep.rgb[9:].sum() == 0 and keep.rgb[:, 8:].sum() == 0
    # the same display pixel in both: display (x=1, y=4) -> data (col 3, row 1)
    assert crop.rgb[4, 1, 0] == keep.rgb[4, 1 - keep.origin[0], 0] == r[1, 3]


def test_exr_data_window_outside_display_window_is_all_zero(tmp_path):
    path = rgb_exr(tmp_path / "out.exr", dataWindow=(i32(0, 0), i32(7, 5)), displayWindow=(i32(100, 0), i32(109, 4)))
    image = read_image(path)
    assert image.rgb.shape == (5, 10, 3) and not image.rgb.any() and image.origin == (100, 0)
    keep = read_image(path, overscan="keep")
    assert keep.rgb.shape == (6, 110, 3) and keep.origin == (0, 0) and keep.rgb[0, 1, 0] == 1.0


def test_exr_tiled_mipmap_reads_full_resolution(tmp_path):
    import OpenImageIO as oiio

    pixels = np.random.default_rng(1).random((40, 64, 3)).astype(np.float32)
    config = oiio.ImageSpec()
    config.tile_width = config.tile_height = 16
    path = tmp_path / "tex.exr"
    assert oiio.ImageBufAlgo.make_texture(oiio.MakeTxTexture, oiio.ImageBuf(pixels), str(path), config)
    header = OpenEXR.File(str(path), header_only=True).parts[0].header
    assert header["tiles"].mode == OpenEXR.MIPMAP_LEVELS
    np.testing.assert_array_equal(read_image(path).rgb, pixels)


def test_exr_luminance_only_is_grey(tmp_path):
    y = ramp()
    image = read_image(write_exr(tmp_path / "y.exr", {"Y": y.astype(np.float16)}))
    assert image.channels == ("Y",)
    for c in range(3):
        np.testing.assert_array_equal(image.rgb[..., c], y)


def write_yc(path: Path, rgb: np.ndarray, chromaticities=None) -> Path:
    """``rgb`` stored as Y + 2x2-subsampled RY, BY (as OpenEXR's RgbaOutputFile does, without its filter)."""
    weights = _luminance_weights(chromaticities or (0.64, 0.33, 0.30, 0.60, 0.15, 0.06, 0.3127, 0.3290), "test")
    y = rgb @ weights

    def subsampled(plane: np.ndarray):
        # The binding wants a full-size array for a 2x2 channel but writes only its first H/2 * W/2 values
        # in memory order, so the samples (pixels with even x and y) go there.
        buffer = np.zeros(plane.shape, np.float32)
        buffer.ravel()[: plane[::2, ::2].size] = plane[::2, ::2].ravel()
        return OpenEXR.Channel(buffer, 2, 2)

    header = {} if chromaticities is None else {"chromaticities": tuple(chromaticities)}
    channels = {"Y": y.astype(np.float32), "RY": subsampled((rgb[..., 0] - y) / y),
                "BY": subsampled((rgb[..., 2] - y) / y)}
    return write_exr(path, channels, **header)


def test_luminance_weights_are_the_y_row_of_rgb_to_xyz():
    np.testing.assert_allclose(_luminance_weights((0.64, 0.33, 0.30, 0.60, 0.15, 0.06, 0.3127, 0.3290), "x"),
                               [0.2126, 0.7152, 0.0722], atol=2e-4)
    ap0 = _luminance_weights((0.7347, 0.2653, 0.0, 1.0, 0.0001, -0.077, 0.32168, 0.33767), "x")
    np.testing.assert_allclose(ap0, [0.3439664, 0.7281661, -0.0721325], atol=2e-4)  # ACES AP0 NPM, Y row
    with pytest.raises(PlateError, match="invalid chromaticities"):
        _luminance_weights((0.64, 0.0, 0.30, 0.60, 0.15, 0.06, 0.3127, 0.3290), "bad.exr")


@pytest.mark.parametrize("chromaticities", [None, (0.7347, 0.2653, 0.0, 1.0, 0.0001, -0.077, 0.32168, 0.33767)])
def test_exr_luminance_chroma_constant_colour_round_trips(tmp_path, chromaticities):
    rgb = np.broadcast_to(np.array([0.6, 0.3, 0.1], np.float32), (8, 12, 3)).copy()
    image = read_image(write_yc(tmp_path / "yc.exr", rgb, chromaticities))
    assert image.channels == ("Y", "RY", "BY") and image.rgb.shape == (8, 12, 3)
    np.testing.assert_allclose(image.rgb, rgb, rtol=1e-4)


def test_exr_luminance_chroma_smooth_image_is_upsampled_in_the_right_orientation(tmp_path):
    yy, xx = np.mgrid[0:64, 0:96].astype(np.float32)
    rgb = np.stack([0.2 + xx / 120, 0.3 + yy / 100, 0.6 - xx / 400 - yy / 200], -1).astype(np.float32)
    image = read_image(write_yc(tmp_path / "smooth.exr", rgb))
    # away from the borders (the filter reaches 13 pixels) the half-band filter follows a smooth ramp;
    # at the borders it repeats the edge samples
    np.testing.assert_allclose(image.rgb[14:-14, 14:-14], rgb[14:-14, 14:-14], rtol=0.002)
    np.testing.assert_allclose(image.rgb, rgb, atol=0.02)


# ----------------------------------------------------------------------------------------------------
# PNG / TIFF / JPEG / DPX / HDR, generated


def test_png_8bit_exact(tmp_path):
    pixels = np.array([[[0, 128, 255], [1, 2, 3]]], np.uint8)
    image = read_image(write_oiio(tmp_path / "a.png", pixels, "uint8"))
    np.testing.assert_allclose(image.rgb, pixels / 255, rtol=1e-7)  # OIIO scales by 1/255: within 1 ulp
    np.testing.assert_array_equal(np.round(image.rgb * 255), pixels)
    assert image.rgb[0, 0, 2] == 1.0 and image.rgb[0, 0, 0] == 0.0
    assert image.alpha is None and image.display_window == ((0, 0), (1, 0)) and image.channels == ("R", "G", "B")


def test_png_16bit_exact(tmp_path):
    pixels = np.array([[[0, 32768, 65535]]], np.uint16)
    image = read_image(write_oiio(tmp_path / "a.png", pixels, "uint16"))
    np.testing.assert_allclose(image.rgb[0, 0], [0, 32768 / 65535, 1.0], rtol=1e-7)
    assert image.rgb[0, 0, 2] == 1.0 and image.rgb[0, 0, 0] == 0.0


def test_png_alpha_is_not_premultiplied(tmp_path):
    pixels = np.array([[[200, 100, 50, 128]]], np.uint8)
    path = write_oiio(tmp_path / "rgba.png", pixels, "uint8", **{"oiio:UnassociatedAlpha": 1})
    image = read_image(path)
    np.testing.assert_allclose(image.rgb[0, 0], np.array([200, 100, 50]) / 255, rtol=1e-7)  # not 200 * 128 / 255
    assert image.alpha[0, 0] == pytest.approx(128 / 255, rel=1e-7) and image.channels == ("R", "G", "B", "A")


def test_tiff_16bit_grey_becomes_rgb(tmp_path):
    grey = np.array([[[0], [32768], [65535]]], np.uint16)
    image = read_image(write_oiio(tmp_path / "g.tif", grey, "uint16"))
    assert image.rgb.shape == (1, 3, 3) and image.channels == ("Y",)
    for c in range(3):
        np.testing.assert_allclose(image.rgb[0, :, c], [0, 32768 / 65535, 1.0], rtol=1e-7)


def test_tiff_16bit_rgb_exact(tmp_path):
    pixels = np.array([[[65535, 32768, 1]]], np.uint16)
    image = read_image(write_oiio(tmp_path / "c.tiff", pixels, "uint16"))
    np.testing.assert_allclose(image.rgb[0, 0], np.array([65535, 32768, 1]) / 65535, rtol=1e-7)
    assert image.rgb[0, 0, 0] == 1.0


def test_jpeg_loads(tmp_path):
    pixels = np.full((16, 24, 3), (200, 100, 50), np.uint8)
    image = read_image(write_oiio(tmp_path / "a.jpg", pixels, "uint8"))
    assert image.rgb.shape == (16, 24, 3) and image.rgb.dtype == np.float32
    np.testing.assert_allclose(image.rgb.mean(axis=(0, 1)), np.array([200, 100, 50]) / 255, atol=3 / 255)


def test_dpx_10bit(tmp_path):
    codes = np.array([[[0, 512, 1023]]], np.uint16)
    path = write_oiio(tmp_path / "a.dpx", codes * 64, "uint16", **{"oiio:BitsPerSample": 10})
    np.testing.assert_allclose(read_image(path).rgb[0, 0], codes[0, 0] / 1023, atol=0.5 / 1023)


def test_radiance_hdr(tmp_path):
    pixels = np.array([[[1.0, 2.0, 3.0], [0.25, 0.25, 0.25], [5000.0, 4000.0, 100.0]]], np.float32)
    image = read_image(write_oiio(tmp_path / "a.hdr", pixels, "float"))
    np.testing.assert_allclose(image.rgb, pixels, rtol=0.02, atol=30)  # RGBE: 8-bit mantissas, shared exponent
    assert image.rgb[0, 0, 2] == 3.0 and image.alpha is None


# ----------------------------------------------------------------------------------------------------
# non-finite values


def nonfinite_exr(tmp_path) -> Path:
    r = np.array([[np.nan, np.inf, -np.inf, 2.0]], np.float32)
    return write_exr(tmp_path / "nan.exr", {"R": r, "G": np.ones_like(r), "B": np.ones_like(r),
                                            "A": np.array([[1, 1, 1, np.nan]], np.float32)})


def test_nonfinite_zero(tmp_path):
    image = read_image(nonfinite_exr(tmp_path))
    assert image.nonfinite == 4
    np.testing.assert_array_equal(image.rgb[0, :, 0], [0, 0, 0, 2])
    np.testing.assert_array_equal(image.alpha[0], [1, 1, 1, 0])


def test_nonfinite_clamp(tmp_path):
    image = read_image(nonfinite_exr(tmp_path), nonfinite="clamp")
    assert image.nonfinite == 4
    np.testing.assert_array_equal(image.rgb[0, :, 0], [0, 65504, -65504, 2])


def test_nonfinite_error(tmp_path):
    with pytest.raises(PlateError, match=r'4 NaN/Inf pixel values.*plate.nonfinite = "zero"'):
        read_image(nonfinite_exr(tmp_path), nonfinite="error")


def test_nonfinite_error_is_a_frame_error_in_a_plate(tmp_path):
    path = nonfinite_exr(tmp_path)
    with open_plate(path, nonfinite="error") as plate:
        with pytest.raises(FrameError) as err:
            plate.read(1)
    assert err.value.frame == 1 and "NaN/Inf" in str(err.value)


# ----------------------------------------------------------------------------------------------------
# bad files and options


def test_missing_file(tmp_path):
    with pytest.raises(PlateError, match=r"nope\.exr: file not found.*plate\.path"):
        read_image(tmp_path / "nope.exr")


def test_unknown_extension(tmp_path):
    (tmp_path / "a.gif").write_bytes(b"GIF89a")
    with pytest.raises(PlateError, match=r"unknown image extension '\.gif'.*\.exr"):
        read_image(tmp_path / "a.gif")


def test_not_an_exr(tmp_path):
    (tmp_path / "bad.exr").write_bytes(b"not an exr at all")
    with pytest.raises(PlateError, match=r"bad\.exr: cannot read OpenEXR file .*corrupt, truncated"):
        read_image(tmp_path / "bad.exr")


def test_truncated_exr(tmp_path):
    path = rgb_exr(tmp_path / "full.exr", h=64, w=64, compression=OpenEXR.NO_COMPRESSION)
    cut = tmp_path / "cut.exr"
    cut.write_bytes(path.read_bytes()[:-4000])
    with pytest.raises(PlateError, match=r"cut\.exr: cannot read OpenEXR file"):
        read_image(cut)


@pytest.mark.parametrize("name", ["a.png", "a.jpg", "a.tif"])
def test_truncated_or_corrupt_oiio_images(tmp_path, name):
    rng = np.random.default_rng(0)
    path = write_oiio(tmp_path / name, rng.integers(0, 255, (64, 64, 3), dtype=np.uint8), "uint8")
    cut = tmp_path / ("cut_" + name)
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(PlateError, match=r"cut_a\.\w+: cannot (read image pixels|open image)"):
        read_image(cut)
    junk = tmp_path / ("junk_" + name)
    junk.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(PlateError, match=r"junk_a\.\w+: cannot open image"):
        read_image(junk)


def test_two_colour_channels_is_an_error(tmp_path):
    path = write_oiio(tmp_path / "rg.tif", np.zeros((2, 3, 2), np.uint8), "uint8")  # R, G and no alpha
    with pytest.raises(PlateError, match=r"rg\.tif: image has 2 colour channels \('R', 'G'\).*grey or RGB"):
        read_image(path)


def test_grey_alpha_png(tmp_path):
    pixels = np.array([[[51, 255], [102, 0]]], np.uint8)
    image = read_image(write_oiio(tmp_path / "ya.png", pixels, "uint8", **{"oiio:UnassociatedAlpha": 1}))
    assert image.channels == ("Y", "A") and image.rgb.shape == (1, 2, 3)
    np.testing.assert_allclose(image.rgb[0, :, 1], [0.2, 0.4], rtol=1e-6)
    np.testing.assert_array_equal(image.alpha, [[1.0, 0.0]])


def test_bad_option_values(tmp_path):
    path = rgb_exr(tmp_path / "a.exr")
    with pytest.raises(PlateError, match=r"plate.overscan = 'pad' is not one of 'crop', 'keep'"):
        read_image(path, overscan="pad")
    with pytest.raises(PlateError, match=r"plate.nonfinite = 'nan'"):
        read_image(path, nonfinite="nan")
    with pytest.raises(PlateError, match=r"plate.missing_frames = 'skip'"):
        open_plate(path, missing="skip")


def test_subsampled_rgb_channel_is_an_error(tmp_path):
    r = ramp()
    path = write_exr(tmp_path / "sub.exr", {"R": r, "G": r, "B": OpenEXR.Channel(r, 2, 2)})
    with pytest.raises(PlateError, match=r"channel B is subsampled 2x2"):
        read_image(path)


# ----------------------------------------------------------------------------------------------------
# sequence patterns


@pytest.mark.parametrize("path, frame, expected", [
    ("shot/plate.####.exr", 7, "shot/plate.0007.exr"),
    ("shot/plate.####.exr", 12345, "shot/plate.12345.exr"),
    ("shot/plate.####.exr", -1, "shot/plate.-001.exr"),  # Nuke / printf: the sign counts towards the width
    ("shot/plate.####.exr", -1234, "shot/plate.-1234.exr"),
    ("plate.###.exr", -1, "plate.-01.exr"),
    ("plate_#.png", 3, "plate_3.png"),
    ("plate.%04d.exr", 42, "plate.0042.exr"),
    ("plate.%04d.exr", -42, "plate.-042.exr"),
    ("plate.%d.exr", 42, "plate.42.exr"),
    ("plate.%d.exr", -3, "plate.-3.exr"),
    ("v2_##_plate.tif", 5, "v2_05_plate.tif"),
])
def test_pattern_path_for(path, frame, expected):
    assert parse_pattern(path).path_for(frame) == expected


def test_pattern_fields_and_no_pattern():
    assert parse_pattern("a/b.%04d.exr") == SequencePattern("a/b.%04d.exr", "a/b.", 4, ".exr")
    assert parse_pattern("plate.exr") is None
    assert parse_pattern("shots/#12/plate.exr") is None  # a '#' in the folder is literal
    assert parse_pattern("shots/#12/plate.##.exr").path_for(3) == "shots/#12/plate.03.exr"


@pytest.mark.parametrize("path", ["plate.##.v##.exr", "plate.%04d.%d.exr", "plate.##.%04d.exr"])
def test_pattern_with_two_runs_is_an_error(path):
    with pytest.raises(PlateError, match="has 2 frame-number runs.*plate.####.exr"):
        parse_pattern(path)


# ----------------------------------------------------------------------------------------------------
# sequences


def make_sequence(folder: Path, frames, name="plate.{:04d}.exr", value_of=float) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    for f in frames:
        v = np.full((2, 3), value_of(f), np.float32)
        write_exr(folder / name.format(f), {"R": v, "G": v, "B": v})
    return str(folder / "plate.####.exr")


def test_sequence_missing_frame_error_policy(tmp_path):
    pattern = make_sequence(tmp_path / "seq", [1, 2, 4, 5])
    with open_plate(pattern, (1, 5)) as plate:
        assert plate.kind == "sequence" and plate.frames == (1, 2, 3, 4, 5) and plate.fps is None
        assert plate.missing_frames() == [3]
        assert plate.read(4).rgb[0, 0, 0] == 4.0 and plate.read(4).path.endswith("plate.0004.exr")
        with pytest.raises(FrameError) as err:
            plate.read(3)
    assert err.value.frame == 3
    assert "plate.0003.exr: frame 3 is missing" in str(err.value) and 'missing_frames = "hold"' in str(err.value)


def test_sequence_missing_frame_hold_policy(tmp_path):
    pattern = make_sequence(tmp_path / "seq", [3, 4, 7])
    with open_plate(pattern, (1, 8), missing="hold") as plate:
        assert plate.missing_frames() == [1, 2, 5, 6, 8]
        held = plate.read(6)
        assert held.held_from == 4 and held.rgb[0, 0, 0] == 4.0 and held.path.endswith("plate.0004.exr")
        assert plate.source_path(6).endswith("plate.0004.exr")
        assert plate.read(8).held_from == 7
        first = plate.read(1)  # no earlier frame: the nearest later one
        assert first.held_from == 3 and first.rgb[0, 0, 0] == 3.0
        assert plate.read(4).held_from is None


def test_sequence_printf_pattern(tmp_path):
    make_sequence(tmp_path, [10, 11, 12])
    with open_plate(str(tmp_path / "plate.%04d.exr"), (10, 12)) as plate:
        assert [plate.read(f).rgb[0, 0, 0] for f in plate.frames] == [10.0, 11.0, 12.0]
        assert plate.missing_frames() == []


def test_sequence_negative_frames(tmp_path):
    folder = tmp_path / "neg"
    folder.mkdir()
    for f in (-2, -1, 0, 1):
        v = np.full((1, 1), f, np.float32)
        write_exr(folder / parse_pattern("plate.####.exr").path_for(f), {"R": v, "G": v, "B": v})
    assert (folder / "plate.-002.exr").is_file()
    with open_plate(folder / "plate.####.exr", (-2, 1)) as plate:
        assert [plate.read(f).rgb[0, 0, 0] for f in plate.frames] == [-2.0, -1.0, 0.0, 1.0]


def test_sequence_needs_frames(tmp_path):
    pattern = make_sequence(tmp_path, [1])
    with pytest.raises(PlateError, match=r"needs a frame range.*plate.frames = \[first, last\]"):
        open_plate(pattern)


@pytest.mark.parametrize("frames, message", [((5, 1), "first frame 5 is after last frame 1"),
                                             ((1, 2, 3), r"plate.frames = \[1, 2, 3\] is not \[first, last\]"),
                                             ((1.5, 2), r"is not \[first, last\]")])
def test_bad_frame_ranges(tmp_path, frames, message):
    pattern = make_sequence(tmp_path, [1])
    with pytest.raises(PlateError, match=message):
        open_plate(pattern, frames)


def test_sequence_folder_missing(tmp_path):
    with pytest.raises(PlateError, match=r"folder .*nowhere not found.*plate.path"):
        open_plate(tmp_path / "nowhere" / "plate.####.exr", (1, 3))


def test_sequence_with_no_frame_present(tmp_path):
    pattern = make_sequence(tmp_path, [1, 2], name="plate.{:03d}.exr")  # written with 3 digits, asked with 4
    with pytest.raises(PlateError, match=r"none of the 2 frames 1-2 exists .*plate.0001.exr.*padding"):
        open_plate(pattern, (1, 2))


def test_sequence_unknown_extension(tmp_path):
    with pytest.raises(PlateError, match=r"unknown image-sequence extension '\.mp4'"):
        open_plate(tmp_path / "clip.####.mp4", (1, 2))


def test_sequence_unreadable_frame_is_a_frame_error(tmp_path):
    pattern = make_sequence(tmp_path, [1, 3])
    (tmp_path / "plate.0002.exr").write_bytes(b"half written")
    with open_plate(pattern, (1, 3)) as plate:
        assert plate.missing_frames() == []
        with pytest.raises(FrameError) as err:
            plate.read(2)
        assert plate.read(3).rgb[0, 0, 0] == 3.0  # the shot goes on
    assert err.value.frame == 2 and "plate.0002.exr: cannot read OpenEXR file" in str(err.value)


def test_reading_outside_the_range_is_a_frame_error(tmp_path):
    pattern = make_sequence(tmp_path, [1, 2])
    with open_plate(pattern, (1, 2)) as plate:
        with pytest.raises(FrameError, match="frame 9 is outside the plate's frames 1-2") as err:
            plate.read(9)
    assert err.value.frame == 9


# ----------------------------------------------------------------------------------------------------
# stills


def test_still_plate(tmp_path):
    path = rgb_exr(tmp_path / "still.exr")
    with open_plate(path) as plate:
        assert plate.kind == "image" and plate.frames == (1,) and plate.missing_frames() == []
        assert plate.read(1).rgb.shape == (6, 8, 3)
    with open_plate(path, (5, 8)) as plate:
        assert plate.frames == (5, 6, 7, 8)
        np.testing.assert_array_equal(plate.read(5).rgb, plate.read(8).rgb)
        assert plate.read(7).held_from is None and plate.source_path(6) == str(path)


def test_still_plate_errors(tmp_path):
    with pytest.raises(PlateError, match=r"gone\.exr: file not found"):
        open_plate(tmp_path / "gone.exr")
    (tmp_path / "a.xyz").write_bytes(b"?")
    with pytest.raises(PlateError, match=r"unknown plate extension '\.xyz'.*\.mp4"):
        open_plate(tmp_path / "a.xyz")
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with open_plate(tmp_path / "broken.png", (1, 2)) as plate:  # per-frame problem, not a whole-plate one
        with pytest.raises(FrameError, match=r"broken\.png: cannot open image") as err:
            plate.read(2)
    assert err.value.frame == 2


# ----------------------------------------------------------------------------------------------------
# movies, generated


def frame_colour(i: int) -> np.ndarray:
    """The solid colour (0..255) of generated movie frame index ``i`` (0-based): R steps by 8 per frame."""
    return np.array([8 * i + 4, 250 - 8 * i, 128 if i % 2 else 64], np.float32)


@pytest.fixture(scope="module", params=[("mp4", "libx264", "yuv420p"), ("mkv", "libx264", "yuv420p10le"),
                                        ("avi", "mpeg4", "yuv420p")], ids=["mp4-h264", "mkv-h264-10bit", "avi-mpeg4"])
def movie(request, tmp_path_factory) -> str:
    """30 solid-colour frames at 24 fps; H.264 with B-frames and a keyframe every 10 frames."""
    import av

    ext, codec, pix_fmt = request.param
    path = tmp_path_factory.mktemp("movie") / f"clip.{ext}"
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=24)
        stream.width, stream.height, stream.pix_fmt = 64, 48, pix_fmt
        stream.options = {"g": "10", "bf": "2"} if codec == "libx264" else {"g": "10", "qscale": "2"}
        for i in range(30):
            pixels = np.broadcast_to(frame_colour(i).astype(np.uint8), (48, 64, 3)).copy()
            for packet in stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return str(path)


def which_frame(image) -> int:
    """The 1-based number of the generated frame ``image`` shows (nearest colour), checking it is close."""
    mean = image.rgb.mean(axis=(0, 1)) * 255
    best = int(np.argmin([np.abs(mean - frame_colour(i)).sum() for i in range(30)]))  # neighbours differ by 80
    assert np.abs(mean - frame_colour(best)).max() < 6, f"frame colour {mean} is not a generated one"
    return best + 1


def test_movie_frames_seek_and_sequential(movie):
    with open_plate(movie) as plate:
        assert plate.kind == "movie" and plate.frames == tuple(range(1, 31)) and plate.fps == Fraction(24)
        assert isinstance(plate.fps, Fraction) and plate.missing_frames() == []
        for n in (17, 3, 30, 10, 11, 1, 20, 9):  # out of order, across keyframes, both ends
            image = plate.read(n)
            assert which_frame(image) == n
            assert image.rgb.shape == (48, 64, 3) and image.rgb.dtype == np.float32 and image.path == movie
            assert image.channels == ("R", "G", "B") and image.display_window == ((0, 0), (63, 47))
            if movie.endswith(".mkv"):  # 10-bit source: decoded as 16-bit RGB, not rounded to 8 bits
                assert not np.allclose(image.rgb * 255, np.round(image.rgb * 255), atol=1e-3)
    with open_plate(movie) as plate:
        assert [which_frame(plate.read(n)) for n in plate.frames] == list(plate.frames)  # sequential decode


def test_movie_sub_range_and_errors(movie, tmp_path):
    with open_plate(movie, (5, 7)) as plate:
        assert plate.frames == (5, 6, 7) and which_frame(plate.read(6)) == 6
        with pytest.raises(FrameError, match="frame 8 is outside"):
            plate.read(8)
    for frames in ((0, 3), (25, 31)):
        with pytest.raises(PlateError, match=r"outside the movie's 30 frames \(1-30\).*\[1, 30\]"):
            open_plate(movie, frames)


def test_movie_file_errors(tmp_path):
    with pytest.raises(PlateError, match=r"none\.mov: movie file not found"):
        open_plate(tmp_path / "none.mov")
    (tmp_path / "junk.mp4").write_bytes(b"\x00" * 100)
    with pytest.raises(PlateError, match=r"junk\.mp4: cannot open movie"):
        open_plate(tmp_path / "junk.mp4")


def test_movie_without_video(tmp_path):
    import av

    audio_only = tmp_path / "sound.mkv"
    with av.open(str(audio_only), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=8000)
        samples = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        samples.sample_rate = 8000
        for packet in list(stream.encode(samples)) + list(stream.encode()):
            container.mux(packet)
    with pytest.raises(PlateError, match=r"sound\.mkv: the movie has no video stream"):
        open_plate(audio_only)


def test_movie_without_a_keyframe(tmp_path):
    """An MPEG-TS stream whose only keyframe was cut off: packets, but nothing decodable from them."""
    import av

    whole = tmp_path / "whole.ts"
    rng = np.random.default_rng(0)
    with av.open(str(whole), "w", format="mpegts") as container:
        stream = container.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.options = {"g": "1000"}
        for _ in range(60):
            frame = av.VideoFrame.from_ndarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    cut = tmp_path / "cut.mkv"  # FFmpeg probes the content, not the name
    cut.write_bytes(whole.read_bytes()[188 * 60:])  # whole 188-byte TS packets, the first GOP start gone
    with pytest.raises(PlateError, match=r"cut\.mkv: the movie has no decodable video frames"):
        open_plate(cut)


def test_movie_frame_the_decoder_never_gives_is_a_frame_error(movie):
    with open_plate(movie) as plate:
        plate._movie.pts[4] = plate._movie.pts[-1] + 1000  # an index entry no frame of the stream has
        with pytest.raises(FrameError, match=r"movie frame 5 \(pts \d+\) was not produced by the decoder") as err:
            plate.read(5)
        assert err.value.frame == 5
        assert which_frame(plate.read(6)) == 6  # the reader recovers with a fresh seek


def test_truncated_faststart_movie_is_detected(tmp_path):
    import av

    path = tmp_path / "fast.mp4"
    rng = np.random.default_rng(0)
    with av.open(str(path), "w", options={"movflags": "faststart"}) as container:  # index first, then the data
        stream = container.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for _ in range(20):
            frame = av.VideoFrame.from_ndarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size * 2 // 3])
    with pytest.raises(PlateError, match=r"cut\.mp4: the movie is truncated: its header lists 20 frames but only"):
        open_plate(cut)


# ----------------------------------------------------------------------------------------------------
# real data (shared_data, see SOURCES.md)

REAL_IMAGES = sorted(str(p.relative_to(SHARED_DATA)) for folder in ("exr", "hdri", "photos")
                     for p in (SHARED_DATA / folder).glob("*") if p.is_file())
REAL_VIDEOS = sorted(str(p.relative_to(SHARED_DATA)) for p in (SHARED_DATA / "video").glob("*") if p.is_file())

#: files with no R,G,B / Y image in the main layer, and what the error must say
EXPECTED_ERRORS = {
    "exr/WideFloatRange.exr": ("the main layer has no R,G,B", "channels: G", "no R,G,B or Y image"),
    "exr/v1.7.test.tiled.exr": ("the main layer has no R,G,B", "channels: G, Z"),
    "exr/dwaHalfWithLayerPrefix.exr": ("albedo.B, albedo.G, albedo.R", 'set plate.layer = "albedo"'),
}
#: (width, height) per SOURCES.md (the display window for EXRs)
SIZES = {
    "exr/AllHalfValues.exr": (256, 256), "exr/Beachball_multipart.0001.exr": (2048, 1556),
    "exr/BrightRingsNanInf.exr": (800, 800), "exr/Carrots.exr": (600, 400), "exr/ColorCodedLevels.exr": (512, 512),
    "exr/CrissyField.exr": (1218, 810), "exr/Desk.exr": (644, 874), "exr/DisplayWindow_t07.exr": (481, 371),
    "exr/DisplayWindow_t08.exr": (501, 401), "exr/DisplayWindow_t09.exr": (200, 300),
    "exr/DisplayWindow_t15.exr": (481, 371), "exr/Garden.exr": (874, 493), "exr/channelTestSinglePart.exr": (16, 16),
    "exr/comp_dwaa_v2.exr": (587, 675), "exr/comp_dwab_v2.exr": (587, 675),
    "exr/imitateProductionLayers2.exr": (16, 16),
    "exr/layers.10x10.exr": (10, 10), "exr/manifest_id.exr": (100, 100), "exr/v1.7.test.1.exr": (217, 197),
    "hdri/KernerEnvLatLong.exr": (1024, 512), "hdri/StageEnvLatLong.exr": (1000, 500),
    "photos/coffee.png": (600, 400), "photos/rocket.jpg": (640, 427), "photos/CrissyField.jpg": (1218, 810),
    "photos/Desk.jpg": (644, 874),
}
#: max over R,G,B per SOURCES.md (for the EXRs: where alpha does not set the table's max)
PEAKS = {
    "hdri/empty_warehouse_01_1k.hdr": 430, "hdri/st_fagans_interior_1k.hdr": 1272, "hdri/studio_small_03_1k.hdr": 3568,
    "hdri/lebombo_1k.hdr": 41.25, "hdri/rooitou_park_1k.hdr": 6.912e4, "hdri/venice_sunset_1k.hdr": 6496,
    "hdri/kiara_1_dawn_1k.hdr": 102.5, "hdri/potsdamer_platz_1k.hdr": 11.81, "hdri/KernerEnvLatLong.exr": 1678,
    "hdri/StageEnvLatLong.exr": 4096, "exr/Desk.exr": 233.8, "exr/Garden.exr": 10.21, "exr/Carrots.exr": 0.9663,
    "exr/comp_dwaa_v2.exr": 501.5, "exr/comp_dwab_v2.exr": 501.5, "exr/BrightRingsNanInf.exr": 1025,
    "exr/AllHalfValues.exr": 65504, "exr/CrissyField.exr": 1.742,  # the RGB of CrissyField a little above its Y
}


@pytest.mark.parametrize("name", REAL_IMAGES)
def test_real_image_loads_or_fails_clearly(shared_data, name):
    path = shared_data / name
    try:
        image = read_image(path)
    except PlateError as exc:
        assert name in EXPECTED_ERRORS, f"unexpected PlateError: {exc}"
        for text in EXPECTED_ERRORS[name] + (str(path),):
            assert text in str(exc)
        return
    assert name not in EXPECTED_ERRORS
    h, w = image.rgb.shape[:2]
    (x0, y0), (x1, y1) = image.display_window
    assert image.rgb.shape == (y1 - y0 + 1, x1 - x0 + 1, 3) and image.origin == (x0, y0)
    assert image.rgb.dtype == np.float32 and image.rgb.flags.c_contiguous and np.isfinite(image.rgb).all()
    if image.alpha is not None:
        assert image.alpha.shape == (h, w) and np.isfinite(image.alpha).all()
    if name in SIZES:
        assert (w, h) == SIZES[name]
    if name.startswith("photos/"):
        assert image.rgb.min() >= 0 and image.rgb.max() <= 1 and image.rgb.max() > 0.9
    if name in PEAKS:
        assert image.rgb.max() == pytest.approx(PEAKS[name], rel=0.04)


def test_real_crissy_field_from_luminance_chroma(shared_data):
    exr = read_image(shared_data / "exr/CrissyField.exr")
    jpg = read_image(shared_data / "photos/CrissyField.jpg")
    assert exr.channels == ("Y", "RY", "BY") and exr.rgb.shape == jpg.rgb.shape == (810, 1218, 3)
    assert 1.5 < exr.rgb.max() < 2.0 and exr.rgb.min() >= 0
    display = np.clip(exr.rgb, 0, None) ** (1 / 2.2)  # roughly the JPEG's encoding
    for c in range(3):
        assert np.corrcoef(display[..., c].ravel(), jpg.rgb[..., c].ravel())[0, 1] > 0.99
    # hue direction: normalised colour (r, g, b) / (r + g + b) agrees pixel by pixel, not only brightness
    def chroma(x):
        return x / (x.sum(-1, keepdims=True) + 1e-6)
    for c in range(3):
        assert np.corrcoef(chroma(display)[..., c].ravel(), chroma(jpg.rgb)[..., c].ravel())[0, 1] > 0.9
    # the dry grass at the bottom: R > G > B in both; the overcast sky at the top: near neutral in both
    for image in (exr.rgb, jpg.rgb):
        r, g, b = image[-200:].mean(axis=(0, 1))
        assert r > g > b
        top = image[:150].mean(axis=(0, 1))
        assert top.max() / top.min() < 1.1


def test_real_garden_is_grey(shared_data):
    image = read_image(shared_data / "exr/Garden.exr")
    assert image.channels == ("Y",) and image.rgb.shape == (493, 874, 3)
    assert (image.rgb[..., 0] == image.rgb[..., 1]).all() and (image.rgb[..., 1] == image.rgb[..., 2]).all()


@pytest.mark.parametrize("name, display, data, aspect", [
    ("t07", ((-40, -40), (440, 330)), ((0, 0), (399, 299)), 1.0),
    ("t08", ((0, 0), (500, 400)), ((30, 40), (429, 339)), 1.0),
    ("t09", ((400, 0), (599, 299)), ((0, 0), (399, 299)), 1.0),
    ("t15", ((-40, -40), (440, 330)), ((0, 0), (399, 299)), 1.5),
])
def test_real_display_windows(shared_data, name, display, data, aspect):
    path = shared_data / f"exr/DisplayWindow_{name}.exr"
    raw = OpenEXR.File(str(path), separate_channels=True).parts[0].channels["R"].pixels.astype(np.float32)
    crop = read_image(path)
    keep = read_image(path, overscan="keep")
    assert crop.display_window == keep.display_window == display and crop.pixel_aspect == aspect
    assert crop.origin == display[0]
    (dx0, dy0), (dx1, dy1) = data
    union = ((min(dx0, display[0][0]), min(dy0, display[0][1])), (max(dx1, display[1][0]), max(dy1, display[1][1])))
    assert keep.origin == union[0]
    assert keep.rgb.shape == (union[1][1] - union[0][1] + 1, union[1][0] - union[0][0] + 1, 3)
    ox, oy = keep.origin
    np.testing.assert_array_equal(keep.rgb[dy0 - oy:dy1 - oy + 1, dx0 - ox:dx1 - ox + 1, 0], raw)
    if name == "t09":  # the windows do not overlap: all background
        assert crop.rgb.shape == (300, 200, 3) and not crop.rgb.any()
    else:  # every data pixel lies inside the display window: crop holds all of it, zero around
        cx, cy = crop.origin
        np.testing.assert_array_equal(crop.rgb[dy0 - cy:dy1 - cy + 1, dx0 - cx:dx1 - cx + 1, 0], raw)
        assert crop.rgb[..., 0].sum() == pytest.approx(float(raw.sum()), rel=1e-6)  # and nothing else


def test_real_beachball_multipart_views(shared_data):
    path = shared_data / "exr/Beachball_multipart.0001.exr"
    right = read_image(path, view="right")
    left = read_image(path, view="left")
    assert right.display_window == left.display_window == ((0, 0), (2047, 1555))
    assert right.rgb.shape == left.rgb.shape == (1556, 2048, 3) and right.alpha is not None
    assert not np.array_equal(right.rgb, left.rgb)  # the two eyes differ (shifted ball)
    first = read_image(path)
    np.testing.assert_array_equal(first.rgb, right.rgb)  # rgba_right is the first part
    # the ball sits where its part's data window is: nothing outside it
    assert right.alpha[:, :654].max() == 0 and right.alpha[245:1121, 654:1531].max() > 0.9
    with pytest.raises(PlateError, match=r'view "middle".*"left", "right"'):
        read_image(path, view="middle")
    keep = read_image(path, view="right", overscan="keep")
    assert keep.origin == (0, 0) and keep.rgb.shape == right.rgb.shape  # data inside display: keep == crop


@pytest.mark.parametrize("name, nan_inf", [("AllHalfValues.exr", 6138 + 6), ("BrightRingsNanInf.exr", 6 + 12)])
def test_real_nonfinite_counts_and_policies(shared_data, name, nan_inf):
    path = shared_data / "exr" / name
    zero = read_image(path)
    assert zero.nonfinite == nan_inf
    clamp = read_image(path, nonfinite="clamp")
    assert clamp.nonfinite == nan_inf and np.isfinite(clamp.rgb).all()
    raw = np.stack([c.pixels for n, c in sorted(OpenEXR.File(str(path), separate_channels=True).parts[0]
                                                .channels.items(), reverse=True)], -1).astype(np.float32)  # R, G, B
    assert (clamp.rgb[np.isposinf(raw)] == 65504).all() and (clamp.rgb[np.isneginf(raw)] == -65504).all()
    assert (zero.rgb[~np.isfinite(raw)] == 0).all() and (clamp.rgb[np.isnan(raw)] == 0).all()
    finite = np.isfinite(raw)
    np.testing.assert_array_equal(zero.rgb[finite], raw[finite])
    with pytest.raises(PlateError, match=f"{nan_inf} NaN/Inf pixel values"):
        read_image(path, nonfinite="error")


def test_real_layer_prefixed_file(shared_data):
    path = shared_data / "exr/dwaHalfWithLayerPrefix.exr"
    with pytest.raises(PlateError, match='set plate.layer = "albedo"'):
        read_image(path)
    image = read_image(path, layer="albedo")
    assert image.rgb.shape == (5, 5, 3) and image.channels == ("albedo.R", "albedo.G", "albedo.B")
    np.testing.assert_allclose(image.rgb.mean(axis=(0, 1)), [0.3, 0.6, 0.9], atol=0.01)


def test_real_wide_float_range_has_no_rgb(shared_data):
    with pytest.raises(PlateError, match="channels: G. Fix: the file holds no R,G,B or Y image"):
        read_image(shared_data / "exr/WideFloatRange.exr")


def test_real_layers_and_parts(shared_data):
    character = read_image(shared_data / "exr/channelTestSinglePart.exr", layer="character")
    assert character.channels == ("character.R", "character.G", "character.B", "character.A")
    production = read_image(shared_data / "exr/imitateProductionLayers2.exr")
    np.testing.assert_allclose(production.rgb.mean(axis=(0, 1)), [0.1, 0.2, 0.3], atol=1e-6)
    tiny = read_image(shared_data / "exr/layers.10x10.exr", layer="1", overscan="keep")
    assert tiny.rgb.shape == (10, 10, 3) and tiny.channels == ("1.R", "1.G", "1.B")


def test_real_tiled_mipmap_envmap(shared_data):
    image = read_image(shared_data / "hdri/KernerEnvLatLong.exr")
    assert image.rgb.shape == (512, 1024, 3) and image.alpha.shape == (512, 1024)
    assert image.rgb.max() == 1678.0


@pytest.mark.parametrize("name", REAL_VIDEOS)
def test_real_video_opens(shared_data, name):
    with open_plate(shared_data / name) as plate:
        assert plate.kind == "movie" and plate.frames[0] == 1 and plate.fps > 0
        last = plate.read(plate.frames[-1])
        assert last.rgb.ndim == 3 and last.rgb.shape[2] == 3 and 0 <= last.rgb.min() and last.rgb.max() <= 1


@pytest.mark.parametrize("name, count, fps, size, wanted", [
    ("bottle-detection.mp4", 1189, Fraction(179, 6), (640, 360), (1000, 3, 1189, 250, 251, 252, 500, 1)),
    ("one-by-one-person-detection.mp4", 1394, Fraction(10), (768, 432), (1394, 700, 10, 11, 1, 150, 141)),
])
def test_real_video_frame_accuracy(shared_data, name, count, fps, size, wanted):
    """Seeking straight to a frame gives the same pixels as decoding the file from its start."""
    import av

    path = shared_data / "video" / name
    with open_plate(path) as plate:
        assert len(plate.frames) == count and plate.fps == fps
        direct = {n: plate.read(n).rgb for n in wanted}  # out of order, far apart, across keyframes
    assert direct[1].shape == (size[1], size[0], 3)
    with av.open(str(path)) as container:
        for n, frame in enumerate(container.decode(video=0), 1):
            if n in direct:
                np.testing.assert_array_equal(np.round(direct[n] * 255), frame.to_ndarray(format="rgb24"))
        assert n == count
    with open_plate(path, (245, 256)) as plate:  # the sequential path of the reader, across a keyframe
        for n in plate.frames:
            image = plate.read(n)
            if n in direct:
                np.testing.assert_array_equal(image.rgb, direct[n])
