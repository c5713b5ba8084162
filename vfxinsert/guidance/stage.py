"""The guidance of one shot: load ``[guidance] model``, personalise it when the method needs it, and
build the objective of ``[guidance] method`` (``objectives.OBJECTIVES``) for the lighting loop, seeing
composites through the shot's display view (view.py)."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from ..errors import ConfigError
from .objectives import OBJECTIVES, ScoreDistillation
from .view import DisplayView

if TYPE_CHECKING:
    from ..config import GuidanceConfig, ShotConfig


def make_objective(shot: ShotConfig, plates: list[np.ndarray], *, settings: GuidanceConfig | None = None,
                   view: DisplayView | None = None, on_step: Callable[[int, int, float], None] | None = None,
                   device: str | None = None) -> ScoreDistillation:
    """The guidance objective of a shot: load ``[guidance] model``; for a personalised method (LDS)
    personalise it on the working-space ``plates`` seen through ``view`` (cached under
    ``<output.dir>/.cache/lora-<key>/``) and judge with its guidance prompt ("a photo of a {class} in sks
    scene"); else (SDS) use the base model and the class prompt (``[guidance] prompt``).

    ``settings``: the shot's ``[guidance]`` section unless given (tests, benchmarks); ``view``: the shot's
    display view unless given.
    """
    from .loading import load_model
    from .personalise import class_name, personalise, plate_display

    g = settings or shot.guidance
    if g.method not in OBJECTIVES:
        raise ConfigError(f"guidance method {g.method!r} is not one of {sorted(OBJECTIVES)}", where="[guidance] method",
                          fix=f"use one of: {', '.join(map(repr, OBJECTIVES))}")
    objective_cls = OBJECTIVES[g.method]
    view = view or DisplayView.bake(shot.color_pipeline())
    score = g.score_settings()
    label = class_name([a.label or Path(a.mesh).stem for a in shot.asset])
    model = load_model(g.model, Path(shot.path).parent, allow_pickle=g.allow_pickle, device=device)
    if not objective_cls.personalised:
        return objective_cls(model, g.prompt.replace("{class}", label), settings=score, seed_key=shot.name, view=view)
    personalise(model, [plate_display(p, view) for p in plates], class_name=label, settings=g,
                cache_dir=Path(shot.output.dir) / ".cache", on_step=on_step)
    return objective_cls(model, g.guidance_prompt.replace("{class}", label), settings=score, seed_key=shot.name,
                         view=view)


def guidance_objective(shot: ShotConfig, plates: list[np.ndarray], say: Callable[[str], None]):
    """(objective, record): the shot's guidance objective, personalised on the keyframes' working-space
    ``plates`` when its method needs it, and what lighting.json records of it (every [guidance] knob used)."""
    g = shot.guidance

    def on_step(step: int, total: int, loss: float) -> None:
        if step == 1 or step % 50 == 0 or step == total:
            say(f"guidance: personalising the model to the plate, step {step}/{total}, loss {loss:.4f}")

    say(f"guidance: loading {g.model} ({g.method})")
    objective = make_objective(shot, plates, on_step=on_step)
    info = {**g.record(), "prompt_used": objective.prompt, "view": objective.view.describe(),
            "native_px": objective.denoiser.native_px}
    done = objective.denoiser.personalisation
    if done is not None:
        say(f"guidance: LoRA {'reused from' if done.reused else 'trained in'} {done.folder}"
            + ("" if done.reused else f" ({done.seconds:.0f} s)"))
        info.update(lora=str(done.folder), lora_reused=done.reused, lora_seconds=round(done.seconds, 3))
    return objective, info
