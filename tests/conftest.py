"""Shared fixtures. Real third-party data lives in ../shared/data beside the checkout."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("VFXINSERT_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder of real test data (HDRIs, EXRs, photos, videos, meshes); see its SOURCES.md."""
    if not SHARED_DATA.is_dir():
        pytest.fail(f"real test data not found at {SHARED_DATA}: check out ../shared beside the repo "
                    "or set VFXINSERT_SHARED_DATA")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    """A test that tries to download weights fails at once instead of hanging."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
