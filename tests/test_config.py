"""Shot-file loading: a valid shot, and one clear message for each kind of mistake."""
from __future__ import annotations

import dataclasses

import textwrap
from pathlib import Path

import numpy as np
import pytest

from vfxinsert.config import ShotConfig, load_shot
from vfxinsert.errors import ColorError, ConfigError

VALID = """
schema = 1
name = "sh010"

[plate]
path = "plate/sh010.####.exr"
frames = [1001, 1003]
colorspace = "ACEScg"

[camera]
focal_length_mm = 35.0
filmback_mm = [36.0, 24.0]
cam_to_world = [[1,0,0,0],[0,1,0,1.6],[0,0,1,0],[0,0,0,1]]

[ground]
height_m = 0.0
albedo = "plate"

[[asset]]
mesh = "assets/box.obj"
position_m = [0.0, 0.0, -3.0]
rotation_deg = [0.0, 30.0, 0.0]
scale = 1.0
material = { base_color = [0.8, 0.8, 0.8], roughness = 0.4, metallic = 0.0 }

[lighting]
init = "plate"
rotate_y_deg = 0.0
optimize = true

[guidance]
model = ""
prompt = "a photo of a {class}"

[render]
spp = 128
max_depth = 8

[output]
dir = "out"
"""


def write_shot(folder: Path, text: str = VALID) -> Path:
    (folder / "plate").mkdir(exist_ok=True)
    (folder / "assets").mkdir(exist_ok=True)
    (folder / "assets" / "box.obj").write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n")
    (folder / "light").mkdir(exist_ok=True)
    (folder / "light" / "onset.hdr").write_bytes(b"")
    shot = folder / "shot.toml"
    shot.write_text(textwrap.dedent(text))
    return shot


def test_valid_shot_loads_typed(tmp_path):
    shot = load_shot(write_shot(tmp_path))
    assert isinstance(shot, ShotConfig)
    assert shot.name == "sh010" and shot.plate.frames == (1001, 1003)
    assert shot.plate.path == tmp_path / "plate" / "sh010.####.exr"  # relative to the shot file
    assert shot.asset[0].mesh == tmp_path / "assets" / "box.obj"
    assert shot.asset[0].material.roughness == 0.4 and isinstance(shot.render.spp, int)
    assert shot.output.dir == tmp_path / "out"
    assert np.allclose(np.array(shot.camera.cam_to_world)[1, 3], 1.6)
    with pytest.raises(dataclasses.FrozenInstanceError):
        shot.name = "other"  # frozen


def test_architecture_example_keys_are_all_accepted(tmp_path):
    """Every key of the architecture.md example is a field (no key of the contract is rejected)."""
    shot = load_shot(write_shot(tmp_path, VALID.replace('init = "plate"', 'init = "hdri"\nhdri = "light/onset.hdr"')))
    assert shot.lighting.init == "hdri" and shot.lighting.hdri == tmp_path / "light" / "onset.hdr"
    assert shot.guidance.model == "" and shot.guidance.prompt == "a photo of a {class}"
    assert (shot.render.spp, shot.render.max_depth) == (128, 8) and shot.ground.albedo == "plate"


def test_defaults_when_sections_omitted(tmp_path):
    text = VALID.split("[ground]")[0] + '[[asset]]\nmesh = "assets/box.obj"\n'
    shot = load_shot(write_shot(tmp_path, text))
    assert shot.ground.albedo == "plate" and shot.output.compression == "zip"
    assert (shot.render.spp, shot.render.denoise) == (16, "oidn")   # as accurate as raw 128 (docs/benchmarks.md)
    assert shot.output.dir == tmp_path / "out"  # an omitted [output] still resolves beside the shot file


CASES = [
    # (what to change, exception type, words the one-line message must contain)
    (("[render]", "[render]\nsamples = 4"), ConfigError, ["[render]", "unknown key 'samples'", "spp, max_depth"]),
    (("spp = 128", 'spp = "lots"'), ConfigError, ["[render] spp", "expected an integer"]),
    (("spp = 128", "spp = 12.5"), ConfigError, ["[render] spp", "expected an integer"]),
    (("spp = 128", "spp = 100"), ConfigError, ["[render] spp", "not a power of two", "use 64 or 128"]),
    (("spp = 128", 'spp = 128\ndenoise = "fast"'), ConfigError, ["[render] denoise", "oidn"]),
    (("spp = 128", "spp = 128\nnoise_target = 1.5"), ConfigError, ["[render]", "noise_target < 1"]),
    (("optimize = true", "optimize = 1"), ConfigError, ["[lighting] optimize", "true or false"]),
    (("frames = [1001, 1003]", "frames = [1003, 1001]"), ConfigError, ["[plate] frames", "after last frame"]),
    (("frames = [1001, 1003]", "frames = [1001]"), ConfigError, ["[plate] frames", "expected 2 values"]),
    (('colorspace = "ACEScg"', 'colorspace = "ACEScgg"'), ColorError, ["[plate] colorspace", "'ACEScgg'", "use one of"]),
    (('mesh = "assets/box.obj"', 'mesh = "assets/missing.obj"'), ConfigError, ["[[asset]] #1 mesh", "file not found"]),
    (('mesh = "assets/box.obj"', 'mesh = "assets/box.fbx"'), ConfigError, ["mesh format '.fbx'", ".obj, .ply, .glb or .usd"]),
    (('path = "plate/sh010.####.exr"', 'path = "nowhere/sh010.####.exr"'), ConfigError, ["[plate] path", "file not found"]),
    (('init = "plate"', 'init = "hdri"'), ConfigError, ["[lighting] hdri", 'init = "hdri" needs an HDRI']),
    (('init = "plate"', 'init = "guess"'), ConfigError, ["[lighting] init", "'guess' is not allowed", "'plate', 'hdri', 'sky'"]),
    (("schema = 1", "schema = 2"), ConfigError, ["schema 2 is not supported"]),
    (('name = "sh010"', 'name = "sh 010"'), ConfigError, ["name 'sh 010'"]),
    (("scale = 1.0", "scale = 0.0"), ConfigError, ["[[asset]] #1 scale", "outside 1e-6..1e6"]),
    (("scale = 1.0", "scale = 1e300"), ConfigError, ["[[asset]] #1 scale", "outside 1e-6..1e6"]),
    (("roughness = 0.4", "roughness = 1.4"), ConfigError, ["material", "roughness must lie in 0..1"]),
    (("[0,0,1,0],[0,0,0,1]]", "[0,0,2,0],[0,0,0,1]]"), ConfigError, ["cam_to_world"]),
    (("cam_to_world = [[1,0,0,0],[0,1,0,1.6],[0,0,1,0],[0,0,0,1]]", ""), ConfigError, ["exactly one of cam_to_world"]),
    (("focal_length_mm = 35.0", "focal_length_mm = -35.0"), ConfigError, ["[camera]", "positive"]),
    (('albedo = "plate"', "albedo = [2.0, 0.5, 0.5]"), ConfigError, ["[ground] albedo", "outside 0..1"]),
    (('albedo = "plate"', 'albedo = "grey"'), ConfigError, ["[ground] albedo", "'grey' is not allowed"]),
    (("[plate]", "[plate]\ncolourspace = 'x'"), ConfigError, ["unknown key 'colourspace'", "colorspace"]),
    (("name = ", "nam = "), ConfigError, ["unknown key 'nam'"]),
    (('name = "sh010"\n', ""), ConfigError, ["missing required key 'name'"]),
    (("[render]", "[render\n"), ConfigError, ["not valid TOML"]),
    (("[plate]", "[plate]\nmissing_frames = \"skip\""), ConfigError, ["missing_frames", "'error', 'hold'"]),
]


@pytest.mark.parametrize("change,exc_type,words", CASES, ids=[c[0][1].strip()[:30] for c in CASES])
def test_each_mistake_names_itself(tmp_path, change, exc_type, words):
    old, new = change
    assert old in VALID
    with pytest.raises(exc_type) as info:
        load_shot(write_shot(tmp_path, VALID.replace(old, new, 1)))
    line = info.value.line()
    assert "\n" not in line and str(tmp_path / "shot.toml") in line
    for word in words:
        assert word in line, line


def test_missing_shot_file(tmp_path):
    with pytest.raises(ConfigError, match="shot file not found"):
        load_shot(tmp_path / "nope.toml")


def test_pattern_without_frames(tmp_path):
    with pytest.raises(ConfigError, match=r"\[plate\] frames.*needs a frame range"):
        load_shot(write_shot(tmp_path, VALID.replace("frames = [1001, 1003]\n", "")))


def test_ocio_from_environment_then_pinned(tmp_path, monkeypatch):
    shot = load_shot(write_shot(tmp_path))
    monkeypatch.delenv("OCIO", raising=False)
    assert shot.color_pipeline().source.startswith("ocio://studio-config-v2.2.0")
    monkeypatch.setenv("OCIO", "ocio://cg-config-v2.2.0_aces-v1.3_ocio-v2.4")
    assert shot.color_pipeline().config_name == "cg-config-v2.2.0_aces-v1.3_ocio-v2.4"
    monkeypatch.setenv("OCIO", str(tmp_path / "missing.ocio"))
    with pytest.raises(ColorError, match="does not exist"):
        load_shot(write_shot(tmp_path))


def test_lighting_init_auto_is_the_hdri_when_given_else_the_prior(tmp_path):
    no_init = VALID.replace('init = "plate"\n', "")
    assert load_shot(write_shot(tmp_path, no_init)).lighting.init == "prior"
    with_hdri = VALID.replace('init = "plate"', 'hdri = "light/onset.hdr"')
    assert load_shot(write_shot(tmp_path, with_hdri)).lighting.init == "hdri"
    explicit = VALID.replace('init = "plate"', 'init = "auto"\nprior = "light/missing.safetensors"')
    with pytest.raises(ConfigError, match="missing.safetensors"):
        load_shot(write_shot(tmp_path, explicit))


def _plates(folder: Path, sub: str = "plate") -> list[Path]:
    (folder / sub).mkdir(exist_ok=True)
    files = [folder / sub / f"sh010.{f}.exr" for f in (1001, 1002, 1003)]
    for f in files:
        f.write_bytes(b"plate")
    return files


@pytest.mark.parametrize("layout", ["dir is the plate folder", "dir is the shot root with the plates in it",
                                    "dir is the shot root: the working plates would go to the plate folder",
                                    "dir is a symlink to the plate folder", "out/plate is a symlink"])
def test_an_output_dir_that_would_write_over_inputs_is_refused(tmp_path, layout):
    text = VALID
    if layout == "dir is the plate folder":
        text = VALID.replace('dir = "out"', 'dir = "plate"')
    elif layout == "dir is the shot root with the plates in it":
        text = VALID.replace('path = "plate/sh010.####.exr"', 'path = "sh010.####.exr"').replace('dir = "out"', 'dir = "."')
        _plates(tmp_path, ".")
    elif layout == "dir is the shot root: the working plates would go to the plate folder":
        text = VALID.replace('dir = "out"', 'dir = "."')
    elif layout == "dir is a symlink to the plate folder":
        (tmp_path / "out").symlink_to(tmp_path / "plate", target_is_directory=True)
    else:
        (tmp_path / "out").mkdir()
        (tmp_path / "elsewhere").mkdir()
        (tmp_path / "out" / "plate").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    shot = write_shot(tmp_path, text)
    plates = _plates(tmp_path)
    with pytest.raises(ConfigError) as info:
        load_shot(shot)
    assert "[output] dir" in str(info.value) and info.value.fix
    assert all(p.read_bytes() == b"plate" for p in plates)


def test_an_output_dir_beside_the_inputs_is_fine(tmp_path):
    _plates(tmp_path, "footage")
    text = VALID.replace('path = "plate/sh010.####.exr"', 'path = "footage/sh010.####.exr"').replace('dir = "out"', 'dir = "."')
    assert load_shot(write_shot(tmp_path, text)).output.dir == tmp_path     # working plates go to ./plate/
