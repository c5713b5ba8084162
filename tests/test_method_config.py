"""[guidance] and [optimize]: every [ours] value of method.md is a shot-file key with a default and a check."""
from __future__ import annotations

import dataclasses

import pytest

from test_config import VALID, write_shot

from vfxinsert.config import GuidanceConfig, OptimizeConfig, load_shot
from vfxinsert.errors import ConfigError
from vfxinsert.guidance.objectives import ScoreSettings
from vfxinsert.tomltypes import shot_keys

METHOD_KEYS = {
    "guidance": {"t_min", "t_max_start", "t_max_end", "t_schedule", "lds_base", "scene_prompt", "guidance_prompt",
                 "prompt", "weight", "guidance_scale", "steps", "rank", "lr", "preservation_images", "sampling_steps",
                 "sampling_guidance", "crop_scale"},
    "optimize": {"iterations", "crop_px", "spp", "max_depth", "lr_lighting", "lr_tone", "lr_final_fraction",
                 "env_height", "w_consistency", "w_shadow_reg", "fusion", "fusion_start", "fusion_end", "starts",
                 "start_iterations", "keyframes", "tone_updates", "tone_smoothness", "tone_window_frames"},
}


def test_every_method_value_is_a_shot_file_key_and_the_objectives_defaults_are_the_keys_defaults():
    assert METHOD_KEYS["guidance"] <= set(shot_keys(GuidanceConfig()))
    assert METHOD_KEYS["optimize"] <= set(shot_keys(OptimizeConfig()))
    score, g = ScoreSettings(), GuidanceConfig()
    for f in ("t_min", "t_max_start", "t_max_end", "t_schedule", "lds_base", "weight", "guidance_scale"):
        assert getattr(g, f) == getattr(score, f), f
    assert g.score_settings() == score


def with_keys(section: str, lines: str) -> str:
    """VALID with ``lines`` added to its [section] (appended as a new table when VALID has none)."""
    header = f"[{section}]\n"
    return VALID.replace(header, header + lines + "\n", 1) if header in VALID else VALID + f"\n{header}{lines}\n"


def test_method_keys_load_from_the_shot_file(tmp_path):
    text = with_keys("optimize", 'crop_px = 192\nfusion = "off"\nw_consistency = 0.1\nstarts = 1\ntone_window_frames = 25')
    text = text.replace("[guidance]\n", '[guidance]\nt_min = 0.05\nt_max_start = 0.8\nt_max_end = 0.4\nt_schedule = "constant"\n'
                        'lds_base = "personalised"\nscene_prompt = "a photo of zwx scene"\n'
                        'guidance_prompt = "a {class} in zwx scene"\n', 1)
    shot = load_shot(write_shot(tmp_path, text))
    o, g = shot.optimize, shot.guidance
    assert (o.crop_px, o.fusion, o.w_consistency, o.starts, o.tone_window_frames) == (192, "off", 0.1, 1, 25)
    assert o.fusion_ramp(599) == 0.0
    s = g.score_settings()
    assert (s.t_min, s.t_max(0, 100), s.t_max(99, 100), s.lds_base) == (0.05, 0.8, 0.8, "personalised")
    assert g.scene_prompt == "a photo of zwx scene"


@pytest.mark.parametrize("section, line, words", [
    ("guidance", "t_min = 0.7", ["t_min", "t_max"]),
    ("guidance", 't_schedule = "cosine"', ["t_schedule", "'linear', 'constant'"]),
    ("guidance", 'lds_base = "lora"', ["lds_base", "'base', 'personalised'"]),
    ("guidance", 'guidance_prompt = "a photo"', ["guidance_prompt", "{class}"]),
    ("guidance", "crop_scale = [0.5, 0.2]", ["crop_scale"]),
    ("optimize", "fusion_start = 0.9", ["fusion_start < fusion_end"]),
    ("optimize", 'crop_px = "big"', ["crop_px", "'big' is not allowed"]),
    ("optimize", "w_shadow_reg = -1.0", ["weights must be >= 0"]),
    ("optimize", "env_height = 63", ["env_height"]),
    ("optimize", "starts = 0", ["starts >= 1"]),
])
def test_bad_method_values_name_their_key(tmp_path, section, line, words):
    with pytest.raises(ConfigError) as info:
        load_shot(write_shot(tmp_path, with_keys(section, line)))
    message = info.value.line()
    assert f"[{section}]" in message and all(w in message for w in words), message


def test_the_crop_follows_the_device_and_the_keyframes_get_enough_updates():
    auto = OptimizeConfig()
    assert auto.crop_size(cuda=False, native_px=768) == 256          # a CPU: 256 px, never less
    assert auto.crop_size(cuda=True, native_px=768) == 768           # a GPU: the model's native size
    assert auto.crop_size(cuda=True, native_px=None) == 256          # no model (reference objective)
    assert dataclasses.replace(auto, crop_px=96).crop_size(cuda=True, native_px=512) == 96
    assert auto.solve_keyframes(240) == 12                          # 600 // 50: every keyframe >= 50 steps
    assert dataclasses.replace(auto, iterations=3000).solve_keyframes(240) == 24
    assert auto.solve_keyframes(5) == 5 and dataclasses.replace(auto, iterations=10).solve_keyframes(5) == 1
