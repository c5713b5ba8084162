"""`vfxinsert regrade`: after the plate is graded, the tone curves alone are fitted again; the lighting stays."""
from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("torch")

from test_cli import make_shot, make_validation_shot  # noqa: E402

from vfxinsert.cli import main  # noqa: E402
from vfxinsert.exr import read_layers, write_exr  # noqa: E402

GRADE = 1.6   # the colourist brightens the plate by about 0.68 stops


def object_gain_stops(tone) -> float:
    """T_fg's gain at mid-grey object radiances (stops), averaged over the keyframes and channels."""
    import torch

    from vfxinsert.lighting.tone import tone_for_frame

    x = torch.full((1, 3), 0.2)
    with torch.no_grad():
        return float(np.mean([torch.log2(tone_for_frame(tone, f.frame).fg(x, 0) / x).mean() for f in tone.frames]))


def test_regrade_refits_the_tone_to_a_graded_plate_and_keeps_the_lighting(tmp_path, shared_data, capsys):
    from vfxinsert.config import load_shot
    from vfxinsert.lighting.environment import read_environment

    shot = make_validation_shot(tmp_path, shared_data, "iterations = 40\ncrop_px = 32\nspp = 4\nlr_tone = 0.1\n"
                                "tone_updates = 10\nstarts = 1\nsun_test = false\n")
    assert main(["run", str(shot)]) == 0
    config = load_shot(shot)
    before = read_environment(config)
    exposure_before = object_gain_stops(before.tone)

    # the grade: plate and (validation shot) reference brightened alike, as a colourist's grade would be
    for folder, name in ((tmp_path / "solve" / "plate", "sh"), (tmp_path / "ref", "ref")):
        for f in (1, 2, 3):
            layers, _ = read_layers(folder / f"{name}.{f:04d}.exr")
            write_exr(folder / f"{name}.{f:04d}.exr", {c: layers[c] * GRADE for c in "RGB"})
    capsys.readouterr()
    assert main(["regrade", str(shot)]) == 0
    said = capsys.readouterr()
    assert "regrade: fitting the tone curves" in said.out + said.err
    after = read_environment(config)
    assert np.array_equal(after.mitsuba_data, before.mitsuba_data)          # the lighting is kept exactly
    exposure_after = object_gain_stops(after.tone)
    assert exposure_after - exposure_before > 0.2, (exposure_before, exposure_after)   # brighter plate, brighter object
    doc = json.loads((tmp_path / "solve" / "out" / "lighting.json").read_text())
    assert doc["regrade"]["tone_only"] is True and doc["regrade"]["lr_lighting"] == 0.0
    capsys.readouterr()
    assert main(["run", str(shot)]) == 0                                     # the solve matches the graded plate
    assert "lighting: up to date" in capsys.readouterr().out


def test_regrade_before_any_run_says_what_to_do(tmp_path, shared_data, capsys):
    shot = make_shot(tmp_path, shared_data, lighting='init = "plate"')
    assert main(["regrade", str(shot)]) == 1
    assert "run the lighting stage first" in capsys.readouterr().err
