"""The learned lighting prior (``[lighting] init = "prior"``): data.py synthesises training plates from HDR
panoramas, model.py is the network, train.py trains it (`vfxinsert train-prior`), estimate.py turns a
shot's plates into world-space SG lighting. The shipped weights live in ``weights/``."""
from __future__ import annotations

from pathlib import Path

SHIPPED = Path(__file__).with_name("weights") / "prior.safetensors"


def prior_path(path: Path | str | None) -> Path:
    """The prior file a setting names: the shipped one when unset."""
    return Path(path) if path else SHIPPED
