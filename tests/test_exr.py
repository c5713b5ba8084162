"""The insert EXR: layout, precision, compression, windows, metadata, atomic writes.

A real third-party reader (OpenImageIO's Python module, and ``oiiotool`` where it is installed) must
see what we wrote, not only our own reader.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import OpenEXR
import OpenImageIO as oiio
import pytest

from vfxinsert import camera, exr
from vfxinsert.errors import OutputError

H, W = 24, 40
CONTRACT = {"R", "G", "B", "A", "shadow.R", "shadow.G", "shadow.B", "comp.R", "comp.G", "comp.B"}
REPO = Path(__file__).resolve().parents[1]


def half_exact(rng: np.random.Generator, shape) -> np.ndarray:
    """Random values that half represents exactly (multiples of 1/256 below 4)."""
    return rng.integers(0, 1024, size=shape).astype(np.float32) / 256.0


@pytest.fixture
def intrinsics() -> camera.Intrinsics:
    return camera.Intrinsics(35.0, (36.0, 21.6), W, H)


@pytest.fixture
def cam_to_world() -> np.ndarray:
    c, s = np.cos(0.3), np.sin(0.3)
    m = np.array([[c, 0, s, 0.5], [0, 1, 0, 1.6], [-s, 0, c, 4.0], [0, 0, 0, 1]])
    return m


@pytest.fixture
def metadata(intrinsics, cam_to_world) -> exr.FrameMetadata:
    return exr.FrameMetadata(
        shot="demo", frame=1001, working_space="Linear Rec.709 (sRGB)",
        ocio_config="ocio://cg-config-v2.2.0_aces-v1.3_ocio-v2.4", ocio_cache_id="abc123",
        plate_colorspace="sRGB Encoded Rec.709 (sRGB)", plate_path="plate/demo.1001.exr",
        software_version="0.1.0+test", fps=Fraction(24000, 1001), cam_to_world=cam_to_world,
        intrinsics=intrinsics, extra={"lighting": '{"lobes": 4}'})


@pytest.fixture
def layers() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {"object_rgba": half_exact(rng, (H, W, 4)), "shadow_rgb": half_exact(rng, (H, W, 3)),
            "comp_rgb": half_exact(rng, (H, W, 3))}


def expected_channels(layers) -> dict[str, np.ndarray]:
    out = {c: layers["object_rgba"][..., i] for i, c in enumerate("RGBA")}
    out.update({f"shadow.{c}": layers["shadow_rgb"][..., i] for i, c in enumerate("RGB")})
    out.update({f"comp.{c}": layers["comp_rgb"][..., i] for i, c in enumerate("RGB")})
    return out


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".tmp" in p.name)


# --- layout and pixels ----------------------------------------------------------------------------

def test_contract_layers_round_trip_exactly(tmp_path, layers, metadata):
    path = tmp_path / "demo.1001.exr"
    exr.write_insert_layers(path, metadata=metadata, **layers)
    pixels, header = exr.read_layers(path)
    assert set(pixels) == CONTRACT  # exactly: no 'shadow.RGB.R' style names
    assert set(exr.INSERT_CHANNELS) == CONTRACT
    for name, values in expected_channels(layers).items():
        np.testing.assert_array_equal(pixels[name], values, err_msg=name)
        assert pixels[name].dtype == np.float32
    assert header["channels"] == {name: "half" for name in CONTRACT}
    assert header["compression"] == "zip"
    assert header["dataWindow"] == header["displayWindow"] == ((0, 0), (W - 1, H - 1))
    assert leftovers(tmp_path) == []


def test_float_precision_and_mixed_precision(tmp_path, layers, metadata):
    rng = np.random.default_rng(1)
    exact32 = {k: rng.random(v.shape, dtype=np.float32) for k, v in layers.items()}
    exr.write_insert_layers(tmp_path / "f.exr", metadata=metadata, precision="float", **exact32)
    pixels, header = exr.read_layers(tmp_path / "f.exr")
    assert set(header["channels"].values()) == {"float"}
    for name, values in expected_channels(exact32).items():
        np.testing.assert_array_equal(pixels[name], values)

    depth = rng.random((H, W)) * 1e5  # beyond half's range: data layers are float
    exr.write_exr(tmp_path / "m.exr", {"R": exact32["comp_rgb"][..., 0], "depth.Z": depth},
                  precision={"R": "half", "depth.Z": "float"})
    pixels, header = exr.read_layers(tmp_path / "m.exr")
    assert header["channels"] == {"R": "half", "depth.Z": "float"}
    np.testing.assert_array_equal(pixels["depth.Z"], depth.astype(np.float32))
    np.testing.assert_array_equal(pixels["R"], exact32["comp_rgb"][..., 0].astype(np.float16))


def test_strided_and_transposed_arrays_are_stored_as_seen(tmp_path):
    # The OpenEXR module copies raw buffers ignoring numpy strides; write_exr must not.
    grid = np.arange(48, dtype=np.float32).reshape(6, 8)
    matrix = np.arange(16, dtype=np.float32).reshape(4, 4).T  # F-ordered view
    exr.write_exr(tmp_path / "s.exr", {"R": grid[:, ::2], "G": grid[:4, :6].T}, precision="float",
                  attributes={"worldToCamera": matrix, "chromaticities": [np.float32(0.5)] * 8})
    pixels, header = exr.read_layers(tmp_path / "s.exr")
    np.testing.assert_array_equal(pixels["R"], grid[:, ::2])
    np.testing.assert_array_equal(pixels["G"], grid[:4, :6].T)
    np.testing.assert_array_equal(header["worldToCamera"], matrix)
    assert header["chromaticities"] == (0.5,) * 8


def test_non_finite_pixels_are_written_as_they_are(tmp_path):
    values = np.array([[np.nan, np.inf], [-np.inf, 1.0]], dtype=np.float32)
    exr.write_exr(tmp_path / "nan.exr", {"Y": values}, precision="float")
    pixels, _ = exr.read_layers(tmp_path / "nan.exr")
    np.testing.assert_array_equal(pixels["Y"], values)


@pytest.mark.parametrize("compression", ["zip", "piz", "dwaa", "none"])
def test_compression_is_recorded(tmp_path, compression):
    path = tmp_path / f"{compression}.exr"
    exr.write_exr(path, {"R": np.full((8, 8), 0.5)}, compression=compression)
    assert exr.read_layers(path)[1]["compression"] == compression
    spec = oiio.ImageInput.open(str(path)).spec()
    assert spec.get_string_attribute("compression") == compression


def test_unknown_compression_lists_valid_ones(tmp_path):
    with pytest.raises(OutputError, match="zip, piz, dwaa, none"):
        exr.write_exr(tmp_path / "x.exr", {"R": np.zeros((2, 2))}, compression="b44")
    assert not (tmp_path / "x.exr").exists()


def test_overscan_data_window_with_negative_origin(tmp_path, layers, metadata):
    pad = 8
    big = {k: np.pad(v, ((pad, pad), (pad, pad), (0, 0)), mode="edge") for k, v in layers.items()}
    path = tmp_path / "over.exr"
    exr.write_insert_layers(path, metadata=metadata, display_window=((0, 0), (W - 1, H - 1)),
                            data_origin=(-pad, -pad), **big)
    pixels, header = exr.read_layers(path)
    assert header["dataWindow"] == ((-pad, -pad), (W + pad - 1, H + pad - 1))
    assert header["displayWindow"] == ((0, 0), (W - 1, H - 1))
    assert pixels["R"].shape == (H + 2 * pad, W + 2 * pad)
    np.testing.assert_array_equal(pixels["R"][pad:-pad, pad:-pad], layers["object_rgba"][..., 0])
    spec = oiio.ImageInput.open(str(path)).spec()
    assert (spec.x, spec.y, spec.width, spec.height) == (-pad, -pad, W + 2 * pad, H + 2 * pad)
    assert (spec.full_x, spec.full_y, spec.full_width, spec.full_height) == (0, 0, W, H)


def test_display_window_must_match_the_camera(tmp_path, layers, metadata):
    wider = {k: np.pad(v, ((0, 0), (0, 1), (0, 0))) for k, v in layers.items()}  # 41 x 24
    with pytest.raises(OutputError, match="display window is 41x24 but the camera intrinsics are 40x24"):
        exr.write_insert_layers(tmp_path / "x.exr", metadata=metadata, **wider)
    assert list(tmp_path.iterdir()) == []


# --- bad input ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["shadow.RGB.R", "a b", "1shadow.R", "shadow.", ".R", "", "r-g",
                                  "sh\u00e4dow.R"])
def test_bad_channel_names_are_rejected(tmp_path, name):
    with pytest.raises(OutputError, match="channel name"):
        exr.write_exr(tmp_path / "x.exr", {"R": np.zeros((2, 2)), name: np.zeros((2, 2))})
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("channels, needle", [
    ({"R": np.zeros((2, 2, 3))}, "(H, W) array"),
    ({"R": np.zeros((0, 2))}, "non-empty"),
    ({"R": np.zeros((2, 2)), "G": np.zeros((2, 3))}, "channel G has shape (2, 3) but R has (2, 2)"),
    ({"R": np.zeros((2, 2), dtype=complex)}, "real numbers"),
    ({}, "no channels"),
])
def test_bad_shapes_are_rejected(tmp_path, channels, needle):
    with pytest.raises(OutputError) as info:
        exr.write_exr(tmp_path / "x.exr", channels)
    assert needle in str(info.value)


def test_bad_precision_and_attributes(tmp_path):
    chans = {"R": np.zeros((2, 2)), "depth.Z": np.zeros((2, 2))}
    with pytest.raises(OutputError, match="missing"):
        exr.write_exr(tmp_path / "x.exr", chans, precision={"R": "half"})
    with pytest.raises(OutputError, match="unknown precision"):
        exr.write_exr(tmp_path / "x.exr", chans, precision="double")
    with pytest.raises(OutputError, match="set by write_exr"):
        exr.write_exr(tmp_path / "x.exr", chans, attributes={"compression": "zip"})
    with pytest.raises(OutputError, match="'bad' has unsupported type object"):
        exr.write_exr(tmp_path / "x.exr", chans, attributes={"bad": object()})
    # numpy scalars (which the OpenEXR module refuses) are converted
    exr.write_exr(tmp_path / "ok.exr", chans, attributes={"vfxinsert/gain": np.float32(2.5)})
    assert exr.read_layers(tmp_path / "ok.exr")[1]["vfxinsert/gain"] == 2.5


def test_insert_layers_reject_wrong_layer_shapes(tmp_path, layers, metadata):
    bad = dict(layers, shadow_rgb=layers["shadow_rgb"][..., :1])
    with pytest.raises(OutputError, match=r"shadow_rgb must have shape \(H, W, 3\)"):
        exr.write_insert_layers(tmp_path / "x.exr", metadata=metadata, **bad)
    bad = dict(layers, comp_rgb=layers["comp_rgb"][:-1])
    with pytest.raises(OutputError, match="comp_rgb is 40x23 but object_rgba is 40x24"):
        exr.write_insert_layers(tmp_path / "x.exr", metadata=metadata, **bad)


# --- metadata -------------------------------------------------------------------------------------

def test_metadata_round_trip(tmp_path, layers, metadata, cam_to_world, intrinsics):
    path = tmp_path / "meta.exr"
    exr.write_insert_layers(path, metadata=metadata, **layers)
    _, header = exr.read_layers(path)
    np.testing.assert_allclose(header["chromaticities"],
                               (0.64, 0.33, 0.30, 0.60, 0.15, 0.06, 0.3127, 0.3290), atol=1e-7)
    assert header["framesPerSecond"] == Fraction(24000, 1001)
    assert isinstance(header["framesPerSecond"], Fraction)
    w2c, w2ndc = header["worldToCamera"], header["worldToNDC"]
    assert w2c.dtype == np.float32 and w2ndc.dtype == np.float32  # M44f, not M44d
    np.testing.assert_array_equal(w2c, camera.world_to_camera_exr(cam_to_world))
    np.testing.assert_array_equal(w2ndc, camera.world_to_ndc_exr(cam_to_world, intrinsics))
    assert header["owner"] == "vfxinsert"
    assert exr.LAYER_FORMULA == "comp = rgb + (1 - A) * plate * shadow"
    assert exr.LAYER_FORMULA in header["comments"]
    assert header["pixelAspectRatio"] == 1.0
    assert header["nuke/camera/focal"] == pytest.approx(35.0)
    assert header["nuke/camera/haperture"] == pytest.approx(36.0)
    assert header["nuke/camera/vaperture"] == pytest.approx(21.6)
    assert {k: v for k, v in header.items() if k.startswith("vfxinsert/")} == {
        "vfxinsert/shot": "demo", "vfxinsert/frame": "1001", "vfxinsert/version": "0.1.0+test",
        "vfxinsert/workingSpace": "Linear Rec.709 (sRGB)",
        "vfxinsert/ocioConfig": "ocio://cg-config-v2.2.0_aces-v1.3_ocio-v2.4",
        "vfxinsert/ocioCacheId": "abc123", "vfxinsert/plateColorspace": "sRGB Encoded Rec.709 (sRGB)",
        "vfxinsert/platePath": "plate/demo.1001.exr", "vfxinsert/lighting": '{"lobes": 4}'}


def test_the_ndc_matrix_in_the_file_hits_the_pinhole_pixel(tmp_path, layers, metadata, cam_to_world,
                                                            intrinsics):
    exr.write_insert_layers(tmp_path / "p.exr", metadata=metadata, **layers)
    m = exr.read_layers(tmp_path / "p.exr")[1]["worldToNDC"].astype(np.float64)
    point = np.array([0.9, 1.2, 1.0])
    p_h = np.append(point, 1.0) @ m
    px = p_h[:2] / p_h[3] * [W, H]
    np.testing.assert_allclose(px, camera.project_to_pixels(point[None], cam_to_world, intrinsics)[0],
                               atol=1e-3)
    assert 0 < px[0] < W and 0 < px[1] < H


def test_metadata_without_camera_and_acescg():
    md = exr.FrameMetadata("s", 1, "ACEScg", "cfg", "id", "ACEScg", "p.exr", "1.0")
    attrs = md.to_attributes()
    assert attrs["chromaticities"] == (0.713, 0.293, 0.165, 0.830, 0.128, 0.044, 0.32168, 0.33767)
    assert not {"worldToCamera", "worldToNDC", "framesPerSecond", "nuke/camera/focal"} & set(attrs)


def test_metadata_validation():
    args = ("s", 1, "Linear Rec.709 (sRGB)", "cfg", "id", "cs", "p.exr", "1.0")
    with pytest.raises(OutputError, match="'Linear Rec.709 \\(sRGB\\)', 'ACEScg'"):
        exr.FrameMetadata("s", 1, "ACES2065-1", *args[3:])
    with pytest.raises(OutputError, match="scale 2 on its X axis"):
        exr.FrameMetadata(*args, cam_to_world=np.diag([2.0, 1, 1, 1]))
    with pytest.raises(OutputError, match="fps"):
        exr.FrameMetadata(*args, fps=23.976)
    with pytest.raises(OutputError, match="collides"):
        exr.FrameMetadata(*args, extra={"shot": "x"})
    with pytest.raises(OutputError, match="strings"):
        exr.FrameMetadata(*args, extra={"n": 1})


# --- third-party readers --------------------------------------------------------------------------

def _oiiotool() -> str | None:
    found = shutil.which("oiiotool")
    local = Path(sys.executable).parent / "oiiotool"
    return found or (str(local) if local.exists() else None)


def test_openimageio_sees_the_layers(tmp_path, layers, metadata, cam_to_world):
    path = tmp_path / "oiio.exr"
    depth = np.arange(H * W, dtype=np.float32).reshape(H, W)
    chans = expected_channels(layers) | {"depth.Z": depth}
    precision = {name: "half" for name in CONTRACT} | {"depth.Z": "float"}
    exr.write_exr(path, chans, precision=precision, compression="piz",
                  attributes=metadata.to_attributes())

    inp = oiio.ImageInput.open(str(path))
    assert inp is not None, oiio.geterror()
    try:
        spec = inp.spec()
        names = list(spec.channelnames)
        assert set(names) == CONTRACT | {"depth.Z"}
        formats = dict(zip(names, (str(f) for f in spec.channelformats)))
        assert formats == {n: "half" for n in CONTRACT} | {"depth.Z": "float"}
        assert spec.get_string_attribute("compression") == "piz"
        assert (spec.x, spec.y, spec.width, spec.height) == (0, 0, W, H)
        assert (spec.full_width, spec.full_height) == (W, H)
        np.testing.assert_allclose(spec.getattribute("worldtocamera"),
                                   camera.world_to_camera_exr(cam_to_world).ravel(), atol=1e-7)
        assert spec.getattribute("worldToNDC") is not None
        assert tuple(spec.getattribute("framesPerSecond")) == (24000, 1001)
        assert spec.get_string_attribute("vfxinsert/shot") == "demo"
        assert spec.get_string_attribute("vfxinsert/ocioCacheId") == "abc123"
        pixels = inp.read_image(0, 0, 0, spec.nchannels, "float")
    finally:
        inp.close()
    for i, name in enumerate(names):
        np.testing.assert_array_equal(pixels[..., i], chans[name], err_msg=name)

    tool = _oiiotool()  # the OpenImageIO wheel ships it in the venv's bin; checked when present
    if tool is not None:
        info = subprocess.run([tool, "--info", "-v", str(path)], capture_output=True, text=True,
                              check=True).stdout
        listed = re.search(r"channel list: (.*)", info).group(1)
        entries = dict(re.fullmatch(r"(\S+?)(?: \((\w+)\))?", e.strip()).groups()
                       for e in listed.split(","))
        assert set(entries) == CONTRACT | {"depth.Z"}
        assert entries["depth.Z"] == "float" and entries["comp.R"] == "half"
        assert f"{W} x   {H}" in info or f"{W} x {H}" in re.sub(r"\s+", " ", info)
        assert 'compression: "piz"' in info
        assert 'vfxinsert/shot: "demo"' in info
        assert "framesPerSecond: 24000/1001" in info
        assert re.search(r"worldToCamera: [-\d.e, ]+", info)
        assert re.search(r"worldToNDC: [-\d.e, ]+", info)


def nuke_layer_and_channel(exr_name: str) -> tuple[str, str]:
    """Nuke's documented EXR name mapping (ExrChannelNameToNuke), for single-view files.

    Split at dots; drop leading digits of each part; other non-alphanumerics become '_'; all parts
    but the last, joined with '_', are the layer (none: 'rgba'); the last part R/r/red -> red, etc.
    """
    parts = [re.sub(r"[^A-Za-z0-9_]", "_", p.lstrip("0123456789")) for p in exr_name.split(".")]
    layer = "_".join(parts[:-1]) or "rgba"
    last = parts[-1]
    names = {"r": "red", "red": "red", "g": "green", "green": "green", "b": "blue", "blue": "blue",
             "a": "alpha", "alpha": "alpha"}
    return layer, names.get(last.lower(), last)


def test_nuke_sees_rgba_shadow_and_comp(tmp_path, layers, metadata):
    exr.write_insert_layers(tmp_path / "n.exr", metadata=metadata, **layers)
    names = exr.read_layers(tmp_path / "n.exr")[1]["channels"]
    mapped = [nuke_layer_and_channel(n) for n in names]
    assert {layer for layer, _ in mapped} == {"rgba", "shadow", "comp"}
    assert ("shadow", "red") in mapped and ("rgba", "alpha") in mapped
    assert len(set(mapped)) == len(mapped) == 10
    assert nuke_layer_and_channel("shadow.RGB.R") == ("shadow_RGB", "red")  # the trap we avoid


# --- atomic writes --------------------------------------------------------------------------------

def test_failed_write_leaves_previous_file_and_no_temp(tmp_path, layers, metadata, monkeypatch):
    path = tmp_path / "demo.1001.exr"
    exr.write_insert_layers(path, metadata=metadata, **layers)
    before = path.read_bytes()

    # (1) bad data discovered before anything is written
    bad = dict(layers, comp_rgb=layers["comp_rgb"][:, :-1])
    with pytest.raises(OutputError):
        exr.write_insert_layers(path, metadata=metadata, **bad)
    assert path.read_bytes() == before and leftovers(tmp_path) == []

    # (2) the writer dies half way: it has put bytes into the temp file, then fails
    def half_write(self, filename):
        Path(filename).write_bytes(b"v/1\x01 half an EXR")
        raise RuntimeError("No space left on device")

    monkeypatch.setattr(OpenEXR.File, "write", half_write)
    with pytest.raises(OutputError, match="No space left on device") as info:
        exr.write_insert_layers(path, metadata=metadata, **layers)
    assert str(path) in str(info.value) and "disk space" in str(info.value)
    assert path.read_bytes() == before and leftovers(tmp_path) == []

    # (3) a fresh path stays absent
    with pytest.raises(OutputError):
        exr.write_insert_layers(tmp_path / "new.exr", metadata=metadata, **layers)
    assert not (tmp_path / "new.exr").exists() and leftovers(tmp_path) == []


def test_os_errors_become_output_errors(tmp_path):
    (tmp_path / "taken.exr").mkdir()  # a folder where the file should go: the rename fails
    with pytest.raises(OutputError) as info:
        exr.write_exr(tmp_path / "taken.exr", {"R": np.zeros((2, 2))})
    assert "taken.exr" in str(info.value) and "Fix:" in str(info.value)
    assert leftovers(tmp_path) == []
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="output folder"):
        exr.write_exr(tmp_path / "file" / "x.exr", {"R": np.zeros((2, 2))})


KILLED_WRITER = textwrap.dedent("""
    import sys
    import numpy as np
    from vfxinsert.exr import write_exr
    rng = np.random.default_rng(0)
    n = 2048
    channels = {f"L{i}.R": rng.random((n, n), dtype=np.float32) for i in range(10)}
    write_exr(sys.argv[1], channels, precision="float", compression="zip")  # about 2 s of writing
""")


@pytest.mark.parametrize("previous", [False, True], ids=["fresh", "over-previous"])
def test_sigkill_mid_write_leaves_nothing_at_the_final_path(tmp_path, previous):
    path = tmp_path / "big.exr"
    if previous:
        exr.write_exr(path, {"R": np.ones((4, 4))})
        before = path.read_bytes()
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(path)], env=env,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    try:
        while not (temps := [p for p in tmp_path.iterdir() if p != path]) \
                or temps[0].stat().st_size == 0:
            assert proc.poll() is None, f"writer ended early: {proc.stderr.read().decode()}"
            assert time.monotonic() < deadline, "the writer never started writing"
            time.sleep(0.005)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL  # killed while writing, not after it had finished
    if previous:
        assert path.read_bytes() == before
    else:
        assert not path.exists()
    # the half-written file keeps its hidden temporary name (the writer's pid in it)
    assert len(temps) == 1 and temps[0].name.startswith(".big.") and temps[0].name.endswith(f"_{proc.pid}.tmp.exr")


def test_stale_temporaries_of_dead_writers_are_swept(tmp_path):
    """A writer killed mid-write leaves its hidden temporary; the next stage run removes it, but never
    the temporary of a writer that is still alive."""
    import os
    import subprocess
    import sys

    from vfxinsert.fsutil import sweep_stale_temps, temp_path_for

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = temp_path_for(tmp_path / "frame.0001.exr").with_name(
        temp_path_for(tmp_path / "frame.0001.exr").name.replace(f"_{os.getpid()}.", f"_{dead.pid}."))
    stale.write_bytes(b"half")
    other_node = tmp_path / f".frame.0004.some-other-node_{dead.pid}.tmp.exr"
    other_node.write_bytes(b"half")
    live = temp_path_for(tmp_path / "frame.0002.exr")   # this process's own name
    live.write_bytes(b"half")
    finished = tmp_path / "frame.0003.exr"
    finished.write_bytes(b"done")
    deeper = tmp_path / "report" / stale.name.replace(".frame.0001.", ".contact.").replace(".exr", ".png")
    deeper.parent.mkdir()
    deeper.write_bytes(b"half")                       # a killed report writer's image, one folder down
    half_folder = tmp_path / stale.name.replace(".frame.0001.", ".report.").replace(".tmp.exr", ".tmp")
    (half_folder / "img").mkdir(parents=True)         # a killed atomic_folder's temporary folder
    assert sorted(sweep_stale_temps(tmp_path)) == sorted([stale, deeper, half_folder])
    assert not stale.exists() and not deeper.exists() and not half_folder.exists()
    assert live.exists() and finished.exists() and other_node.exists()
