"""Fixtures of the guidance tests: the tiny real Stable Diffusion (tiny_sd.py), saved once per run.

A module the test files import the fixtures from (``from sd_fixtures import tiny_sd``), not a conftest.py:
a second conftest module would shadow ``tests/conftest.py`` for ``from conftest import ...``."""
from __future__ import annotations

from pathlib import Path

import pytest

SCENE_PROMPT = "a photo of sks scene"


@pytest.fixture(scope="session")
def tiny_sd(tmp_path_factory) -> Path:
    """A tiny real SD saved once per test run with safetensors (a diffusers folder with model_index.json)."""
    pytest.importorskip("diffusers")
    from tiny_sd import save_tiny_sd, tiny_components

    components = tiny_components(tmp_path_factory.mktemp("tiny-sd-src"))
    tok = components["tokenizer"]
    assert tok.tokenize(SCENE_PROMPT) == ["a</w>", "photo</w>", "of</w>", "sks</w>", "scene</w>"]
    ids = tok(SCENE_PROMPT, padding="max_length", max_length=tok.model_max_length).input_ids
    assert len(ids) == tok.model_max_length and ids[0] == tok.bos_token_id and ids[6] == tok.eos_token_id
    return save_tiny_sd(components, tmp_path_factory.mktemp("models") / "tiny")


@pytest.fixture(scope="session")
def pickle_sd(tmp_path_factory) -> Path:
    """The same tiny SD saved with safe_serialization=False: its UNet and VAE are pickle (.bin) files."""
    from tiny_sd import build_tiny_sd

    return build_tiny_sd(tmp_path_factory.mktemp("models-pickle") / "tiny", safe_serialization=False)


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """The tiny model's kernels are microseconds long: one thread is fastest, and immune to a busy CPU.
    Autouse in every module that imports it."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
