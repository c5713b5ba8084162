"""The lighting prior: a known answer learnt in seconds, the shipped weights, loading errors, resume."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from vfxinsert.errors import ConfigError
from vfxinsert.lighting.prior import data as pdata
from vfxinsert.lighting.prior import model
from vfxinsert.lighting.prior import SHIPPED
from vfxinsert.lighting.prior.estimate import estimate_world, expected_error_direction, heading_to_world, load_prior
from vfxinsert.lighting.prior.train import quick_settings, train_prior


def sun_direction(azimuth_deg: float, elevation_deg: float) -> np.ndarray:
    a, e = math.radians(azimuth_deg), math.radians(elevation_deg)
    return np.array([math.sin(a) * math.cos(e), math.sin(e), -math.cos(a) * math.cos(e)])


def procedural_panorama(sun: np.ndarray, height: int = 128) -> np.ndarray:
    """A clear sky brighter towards the sun, a sun disc, a plain ground: the sky gradient is the only cue
    a plate that does not see the sun has."""
    from vfxinsert.lighting.panorama import texel_directions

    d = texel_directions(height, 2 * height)
    cos = d @ sun
    sky = np.array([0.25, 0.4, 0.8]) * (1.0 + 6.0 * np.clip(cos, 0.0, 1.0)[..., None] ** 4)
    ground = np.full(3, 0.2) * (0.5 + 0.5 * sun[1])
    pano = np.where(d[..., 1:2] > 0.0, sky, ground)
    pano[cos > math.cos(math.radians(2.5))] = 3000.0
    return pano.astype(np.float32)


def write_panoramas(folder: Path, suns, prefix: str = "sky") -> list[Path]:
    from vfxinsert.exr import write_exr

    folder.mkdir()
    paths = []
    for i, sun in enumerate(suns):
        paths.append(folder / f"{prefix}_{i:02d}.exr")
        pano = procedural_panorama(sun)
        write_exr(paths[-1], {c: pano[..., k] for k, c in enumerate("RGB")}, precision="float")
    return paths


def test_a_tiny_prior_learns_the_sun_azimuth_from_the_sky_gradient(tmp_path):
    rng = np.random.default_rng(3)
    suns = [sun_direction(rng.uniform(-180, 180), rng.uniform(10, 45)) for _ in range(12)]
    train = write_panoramas(tmp_path / "train", suns[:8])
    val = write_panoramas(tmp_path / "val", suns[8:], prefix="held_out")
    settings = quick_settings(crops_per_panorama=40, val_crops_per_panorama=16, epochs=5, lr=3e-3)
    sidecar = train_prior(train, val, tmp_path / "tiny.safetensors", settings)
    figures = sidecar["validation_figures"]
    # chance is 90 degrees of azimuth error; the constant guess "overhead" has no azimuth at all
    assert figures["azimuth_error_deg_median_below_60"] < 40.0, figures
    assert figures["cases"] == 4 * 16
    assert {e["file"] for e in sidecar["train"]}.isdisjoint({e["file"] for e in sidecar["validation"]})
    # the weights load through the production loader and give world lighting for a plate
    prior = load_prior(tmp_path / "tiny.safetensors")
    cam = pdata.camera_pose(40.0, -10.0)
    from vfxinsert.lighting.panorama import perspective_view

    plate = perspective_view(procedural_panorama(suns[8]), cam, 60.0, 192, 108)
    world = estimate_world(prior, [plate], [cam], [60.0])
    lobes = world.lobes(8)
    assert lobes.axis.shape == (8, 3) and np.all(lobes.amplitude > 0)
    assert abs(np.linalg.norm(world.key_direction) - 1.0) < 1e-6


def test_training_resumes_after_a_kill_and_ends_bit_identical(tmp_path):
    rng = np.random.default_rng(5)
    paths = write_panoramas(tmp_path / "p", [sun_direction(rng.uniform(-180, 180), 30.0) for _ in range(3)])
    settings = quick_settings(crops_per_panorama=16, val_crops_per_panorama=4, epochs=2, members=2)
    whole = train_prior(paths[:2], paths[2:], tmp_path / "a" / "w.safetensors", settings, cache=tmp_path / "cache")

    class Killed(Exception):
        pass

    def kill_in_the_second_members_second_epoch(done, total, message):
        if message.startswith("member 2/2 epoch 2"):
            raise Killed

    out = tmp_path / "b" / "w.safetensors"
    with pytest.raises(Killed):
        train_prior(paths[:2], paths[2:], out, settings, cache=tmp_path / "cache",
                    on_progress=kill_in_the_second_members_second_epoch)
    assert not out.exists()
    assert json.loads((tmp_path / "b" / "w.m0.ckpt.json").read_text())["epoch"] == 2
    assert json.loads((tmp_path / "b" / "w.m1.ckpt.json").read_text())["epoch"] == 1
    resumed = train_prior(paths[:2], paths[2:], out, settings, cache=tmp_path / "cache")
    # tensor by tensor (the safetensors header's metadata order is not fixed between processes)
    from safetensors.torch import load_file

    a, b = load_file(str(tmp_path / "a" / "w.safetensors")), load_file(str(out))
    assert a.keys() == b.keys() and [k for k in a if not a[k].equal(b[k])] == []
    assert resumed["validation_figures"] == whole["validation_figures"]
    assert not list((tmp_path / "b").glob("*.ckpt.*"))
    assert len(load_prior(out).networks) == 2


def test_the_shipped_prior_loads_is_deterministic_and_its_sidecar_is_true(shared_data):
    prior = load_prior()
    sidecar = json.loads(SHIPPED.with_suffix(".json").read_text())
    assert SHIPPED.stat().st_size <= 20 * 1024 * 1024
    assert pdata.file_sha256(SHIPPED) == sidecar["weights_sha256"]
    train_names = {e["file"] for e in sidecar["train"]}
    val_names = {e["file"] for e in sidecar["validation"]}
    assert train_names.isdisjoint(val_names) and "rooitou_park_1k.hdr" in val_names
    assert len(val_names) >= len(train_names) / 5
    found = 0
    for entry in sidecar["train"] + sidecar["validation"]:
        for folder in ("hdri-train", "hdri"):
            if (shared_data / folder / entry["file"]).is_file():
                assert pdata.file_sha256(shared_data / folder / entry["file"]) == entry["sha256"], entry["file"]
                found += 1
    assert found == len(train_names) + len(val_names)      # every panorama it names, byte for byte
    from vfxinsert.lighting.panorama import perspective_view
    from vfxinsert.plates import read_image

    pano = read_image(shared_data / "hdri" / "rooitou_park_1k.hdr").rgb
    cam = pdata.camera_pose(100.0, -15.0)
    plate = perspective_view(pano, cam, 55.0, 320, 180)
    a = estimate_world(prior, [plate], [cam], [55.0])
    b = estimate_world(load_prior(), [plate], [cam], [55.0])
    assert np.array_equal(a.key_direction, b.key_direction) and np.array_equal(a.fill, b.fill)


def test_loading_refuses_what_is_not_a_prior_of_this_version(tmp_path):
    import torch
    from safetensors.torch import save_file

    with pytest.raises(ConfigError, match="does not exist"):
        load_prior(tmp_path / "missing.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(ConfigError, match="not a readable safetensors"):
        load_prior(tmp_path / "junk.safetensors")
    save_file({"x": torch.zeros(2)}, str(tmp_path / "other.safetensors"), metadata={"format": "something-else"})
    with pytest.raises(ConfigError, match="not a vfxinsert lighting prior"):
        load_prior(tmp_path / "other.safetensors")
    save_file({"x": torch.zeros(2)}, str(tmp_path / "old.safetensors"),
              metadata={"format": "vfxinsert-lighting-prior", "version": "0", "arch": "{}"})
    with pytest.raises(ConfigError, match="version 0"):
        load_prior(tmp_path / "old.safetensors")


def test_heading_frame_round_trip_and_a_light_in_view_is_ahead():
    from vfxinsert.lighting.panorama import texel_directions

    sun = sun_direction(70.0, 20.0)
    pano = procedural_panorama(sun)
    light = pdata.analyse_panorama(pano)
    assert float(light.key_direction @ sun) > math.cos(math.radians(3.0))
    # a camera heading towards the sun's azimuth sees it straight ahead (-Z) in its heading frame
    heading = math.degrees(math.atan2(-sun[0], -sun[2]))
    assert model.heading_of(pdata.camera_pose(heading, -10.0)) == pytest.approx(heading)
    ex = pdata.synthesise(pano, light, np.random.default_rng(0))
    assert ex.image.shape == (model.NET_H, model.NET_W, 3)
    grid = np.exp(8.0 * (texel_directions(model.GRID_H, model.GRID_W) @ np.array([0.0, 0.34, -0.94]) - 1.0))
    world = heading_to_world(grid / grid.sum(), heading)
    assert float(expected_error_direction(world / world.sum()) @ sun) > math.cos(math.radians(8.0))
