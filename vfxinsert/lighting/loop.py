"""The lighting and tone optimisation loop (DiPIR section 3), written out in one function.

Per iteration, in this order: pick a frame -> render the crop (object under ``L_fg``, shadow under
``L_sh``) -> tone (``T_fg``, ``T_sh``) -> composite -> objective (+ consistency, shadow regulariser,
tone prior and smoothness) -> backward -> check for divergence -> Adam step -> clamp -> update the learning
rates. Every random draw takes a seed derived from (shot, frame, iteration), so a run is reproducible
and a run resumed from a checkpoint ends where an uninterrupted one does.

The objective is pluggable: ``ReferenceObjective`` (an image loss against a known composite; tests and
the ground-truth benchmark) here, the diffusion guidance (LDS, SDS) in guidance/objectives.py. Settings: the shot's ``[optimize]``
section (``config.OptimizeConfig``), consumed as it is.
"""
from __future__ import annotations

import copy
import hashlib
import io
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Protocol

import numpy as np

from ..color import srgb_encode_torch
from ..errors import OptimizeError
from ..seeds import frame_seed
from .sg import dominant_direction_latlong

if TYPE_CHECKING:
    from ..config import OptimizeConfig
    from .material import MaterialRefine
    from .models import TwoMapSG
    from .sg import SGLobes
    from ..scene import InsertScene, View
    from .tone import ToneCurves


@dataclass(frozen=True, eq=False)
class FrameTarget:
    """One frame the loop can sample: its crop view and the plate (and reference) at crop resolution."""

    frame: int
    view: View                       # a window of the frame rendered at crop_px x crop_px
    plate: np.ndarray                # (h, w, 3) working-space plate in the crop
    reference: np.ndarray | None = None   # (h, w, 3) known composite for the reference objective


class Objective(Protocol):
    """What judges a composite: ``comp`` (h, w, 3) torch, working space -> a torch scalar loss."""

    def __call__(self, comp, target: FrameTarget, iteration: int, iterations: int): ...


class LightingModel(Protocol):
    """What the loop needs of a lighting model (torch parameters and their environment maps)."""

    env_height: int
    """Rows of the Mitsuba env maps it rasterises to."""

    def parameters(self) -> list:
        """The torch leaf tensors Adam updates."""

    def maps(self, ramp: float):
        """(env_fg, env_sh): torch env data in Mitsuba's layout lighting the object and casting the shadow;
        ``ramp`` in 0..1 fuses them (1: one map)."""

    def regulariser(self, env_fg, env_sh, settings: OptimizeConfig):
        """The model's own loss terms (a torch scalar)."""

    def clamp_(self) -> None:
        """Keep the parameters in range after a step."""

    def exploded(self) -> bool:
        """True when a step has blown the lighting up (the loop restores the last good state)."""

    def radiance(self, dirs: np.ndarray) -> np.ndarray:
        """The final lighting along world directions (..., 3), numpy."""

    def describe(self) -> dict:
        """What lighting.json records of the model."""


class ReferenceObjective:
    """Squared error against a known composite on the sRGB display curve (as a viewer judges it; continued
    above 1 rather than clipped, so a sunlit highlight still says how bright the sun is), over the pixels
    where the reference differs from the plate (the object and its shadow), relative to the error of
    the plate left as it is: 1 = no better than inserting nothing, 0 = the reference. Relative, the loss is
    of order one whatever the crop, the object's size or the plate's exposure, as LDS (a mean) is, so the
    loop's regulariser weights (0.03, 0.01) weigh against it what DiPIR weighs them against: against the
    raw display MSE (about 1e-4 near the answer) they outweighed the image 1000 to 1, and the reference loop
    followed the regulariser (the benchmark's loop ceiling, docs/benchmarks.md)."""

    def __init__(self, device: str = "cpu"):
        self._cache: dict[int, object] = {}
        self.device = device

    def __call__(self, comp, target: FrameTarget, iteration: int, iterations: int):
        import torch

        if target.reference is None:
            raise OptimizeError(f"frame {target.frame} has no reference image", where="objective",
                                    fix="give a reference composite or use another objective")
        if target.frame not in self._cache:
            ref = torch.tensor(target.reference, device=self.device)
            plate = torch.as_tensor(target.plate, device=self.device)
            changed = ((ref - plate).abs().amax(-1) > 1e-4)[..., None].float()
            ref_display = srgb_encode_torch(ref, clip=False)
            untouched = ((srgb_encode_torch(plate, clip=False) - ref_display).square() * changed).sum()
            self._cache[target.frame] = (ref_display, changed, float(untouched.clamp_min(1e-12)))
        ref_display, mask, untouched = self._cache[target.frame]
        return ((srgb_encode_torch(comp, clip=False) - ref_display).square() * mask).sum() / untouched


@dataclass
class OptimResult:
    """What the loop did: the optimised lighting and tone (the same objects it was given), the loss per
    iteration, the divergence recoveries, its time and the iteration it resumed from."""

    lighting: LightingModel
    tone: ToneCurves
    losses: list[float]
    retries: list[str] = field(default_factory=list)
    seconds: float = 0.0
    resumed_from: int | None = None
    objectives: list[float] = field(default_factory=list)
    """The objective's part of each iteration's loss (without the lighting's regularisers, whose value
    includes a map's entropy: not comparable between starts)."""


def _snapshot(params: list, opt) -> dict:
    return {"params": [p.detach().clone() for p in params], "opt": copy.deepcopy(opt.state_dict())}


def _restore(snapshot: dict, params: list, opt) -> None:
    import torch

    with torch.no_grad():
        for p, v in zip(params, snapshot["params"]):
            p.copy_(v)
    opt.load_state_dict(copy.deepcopy(snapshot["opt"]))


def settings_digest(settings: OptimizeConfig) -> str:
    """Identity of every setting the loop reads (the checkpoint's key)."""
    return hashlib.sha256(json.dumps(asdict(settings), sort_keys=True, default=str).encode()).hexdigest()[:16]


def optimise(scene: InsertScene, targets: list[FrameTarget], lighting: LightingModel, tone: ToneCurves,
             settings: OptimizeConfig,
             objective: Objective, *, shot_name: str, checkpoint: Path | None = None,
             on_iteration: Callable[[int, int, float], None] | None = None,
             material: MaterialRefine | None = None) -> OptimResult:
    """Optimise ``lighting`` and ``tone`` (and ``material``, when given) so the composites of ``targets``
    minimise ``objective``.

    ``scene`` is an InsertScene whose film is ``crop_px`` square; each target's view is a window of its
    frame rendered at that size. ``tone`` has one curve pair per target (same order).
    """
    import torch

    from ..fsutil import atomic_write_bytes
    from ..composite import composite

    n = settings.iterations
    groups = []
    if lighting.parameters():   # a fixed lighting (regrade) has none
        groups.append({"params": lighting.parameters(), "lr": settings.lr_lighting, "base_lr": settings.lr_lighting})
    if settings.optimise_tone:
        groups.append({"params": tone.parameters(), "lr": settings.lr_tone, "base_lr": settings.lr_tone})
    if material is not None:
        groups.append({"params": material.parameters(), "lr": settings.lr_material, "base_lr": settings.lr_material})
    params = lighting.parameters() + tone.parameters() + (material.parameters() if material is not None else [])
    opt = torch.optim.Adam(groups)
    key = f"{settings_digest(settings)}:{shot_name}:{[t.frame for t in targets]}"
    losses: list[float] = []
    objectives: list[float] = []      # the objective's part of each loss (without the regularisers)
    retries: list[str] = []
    lr_scale = 1.0
    start = 0
    resumed_from = None
    if checkpoint is not None and checkpoint.is_file():
        # a cache holds data, never code: tensors and plain values only (torch refuses any other pickle),
        # and a checkpoint that cannot be read that way (damaged, planted) is recomputed, not trusted
        try:
            state = torch.load(io.BytesIO(checkpoint.read_bytes()), weights_only=True)
        except Exception:   # torch raises UnpicklingError, RuntimeError, EOFError... for a bad file
            state = {}
        if isinstance(state, dict) and state.get("key") == key:
            _restore(state["snapshot"], params, opt)
            losses, retries, lr_scale, start = state["losses"], state["retries"], state["lr_scale"], state["iteration"]
            objectives = state.get("objectives", [])
            resumed_from = start
    t0 = time.perf_counter()
    good = _snapshot(params, opt)
    i = start
    attempts = 0
    while i < n:
        # --- pick a frame: every frame once per epoch, in an order seeded by the epoch (each frame's
        # tone curves get the same number of updates; iid sampling starved some frames)
        epoch, slot = divmod(i, len(targets))
        index = int(np.random.default_rng(frame_seed(shot_name, 0, epoch)).permutation(len(targets))[slot])
        target = targets[index]
        scene.set_view(target.view)
        seed = frame_seed(shot_name, target.frame, i) + 7919 * attempts
        for g in opt.param_groups:   # exponential decay, scaled down after each divergence
            g["lr"] = g["base_lr"] * lr_scale * settings.lr_final_fraction ** (i / max(n - 1, 1))
        opt.zero_grad(set_to_none=True)
        ramp = settings.fusion_ramp(i)
        # --- render: object under L_fg, shadow under L_sh (one render once the maps are fused)
        env_fg, env_sh = lighting.maps(ramp)
        mats = material.values() if material is not None else None
        layers_fg = scene.render_torch(env_fg, seed, settings.spp, materials=mats)
        layers_sh = layers_fg if ramp >= 1.0 else scene.render_torch(env_sh, seed + 1, settings.spp, slot="shadow",
                                                                     materials=mats)
        rgb, alpha = layers_fg[..., 0:3], layers_fg[..., 3:4]
        _, _, ratio, _ = composite(layers_sh, 0.0)
        # --- tone and composite: comp = T_fg(I) * A + plate * T_sh(ratio) * (1 - A)
        radiance = rgb / alpha.clamp_min(1e-4)
        plate = torch.as_tensor(target.plate, device=rgb.device)
        comp = tone.fg(radiance, index) * alpha + plate * tone.sh(ratio, index) * (1.0 - alpha)
        # --- objective and regularisers
        image_loss = objective(comp, target, i, n)
        loss = image_loss + lighting.regulariser(env_fg, env_sh, settings)
        if settings.optimise_tone:
            loss = loss + settings.tone_prior * tone.prior()
            if len(targets) > 2:
                loss = loss + settings.tone_smoothness * tone.smoothness()
        loss.backward()
        grads_ok = all(p.grad is None or bool(torch.isfinite(p.grad).all()) for p in params)
        if not math.isfinite(loss.item()) or not grads_ok:
            attempts += 1
            lr_scale *= 0.5
            retries.append(f"iteration {i}: non-finite {'loss' if not math.isfinite(loss.item()) else 'gradient'}; "
                           f"restored the last good state, learning rate x{lr_scale:g}")
            if attempts > settings.max_retries:
                raise OptimizeError(f"diverged at iteration {i} after {attempts - 1} recoveries",
                                        where=f"shot {shot_name}", fix="lower [optimize] lr_lighting or check the plate")
            _restore(good, params, opt)
            continue
        # --- step, clamp, update
        opt.step()
        lighting.clamp_()
        tone.clamp_()
        if material is not None:
            material.clamp_()
        if lighting.exploded():
            attempts += 1
            lr_scale *= 0.5
            retries.append(f"iteration {i}: lighting exploded; restored the last good state, learning rate x{lr_scale:g}")
            if attempts > settings.max_retries:
                raise OptimizeError(f"lighting exploded at iteration {i}", where=f"shot {shot_name}",
                                        fix="lower [optimize] lr_lighting")
            _restore(good, params, opt)
            continue
        attempts = 0
        good = _snapshot(params, opt)
        losses.append(float(loss.item()))
        objectives.append(float(image_loss.item()))
        i += 1
        if on_iteration:
            on_iteration(i, n, losses[-1])
        if checkpoint is not None and (i % settings.checkpoint_every == 0 or i == n):
            buf = io.BytesIO()
            torch.save({"key": key, "snapshot": good, "losses": losses, "objectives": objectives, "retries": retries,
                        "lr_scale": lr_scale, "iteration": i}, buf)
            atomic_write_bytes(checkpoint, buf.getvalue())
    if settings.optimise_tone and len(targets) > 2:
        # temporally smoothed per-frame curves (a window of plate frames): no flicker, ramps kept
        tone.smooth_in_time_([t.frame for t in targets], settings.tone_window_frames)
    return OptimResult(lighting, tone, losses, retries, time.perf_counter() - t0, resumed_from, objectives)


def choose_start(scene: InsertScene, targets: list[FrameTarget], starts: list[SGLobes], make_tone: Callable,
                 settings: OptimizeConfig, objective: Objective, *, shot_name: str,
                 device: str = "cpu") -> tuple[TwoMapSG, dict]:
    """The two SG maps the run starts from, and what lighting.json records of the choice.

    With one start: ``starts[0]``, no trial runs. With several (the initial lighting and its key moved to
    other candidate directions, ``SGLobes.starts``): each runs ``settings.start_iterations`` iterations
    of this loop from fresh tone curves, scored by the mean objective (without the regularisers) over the
    second half of its run; the lowest wins (a wrong initial key direction otherwise often leaves the loop
    in a basin it cannot leave).
    """
    from .models import TwoMapSG

    record = {"scores": [], "chosen": 0, "key_directions": [s.dominant_direction().tolist() for s in starts]}
    if len(starts) > 1:
        record["scores"] = [_trial(scene, targets, TwoMapSG(s, settings.env_height, device=device), make_tone(),
                                   settings, objective, f"{shot_name}:start{k}") for k, s in enumerate(starts)]
        record["chosen"] = int(np.argmin(record["scores"]))
    return TwoMapSG(starts[record["chosen"]], settings.env_height, device=device), record


def solve_sg(scene: InsertScene, targets: list[FrameTarget], init: SGLobes, settings: OptimizeConfig,
             objective: Objective, *, shot_name: str, device: str = "cpu", say: Callable[[str], None] = lambda m: None,
             run_message: str = "", checkpoint: Path | None = None,
             on_iteration: Callable[[int, int, float], None] | None = None,
             material: MaterialRefine | None = None) -> tuple[TwoMapSG, ToneCurves, OptimResult, dict]:
    """The solve of SG lobes from ``init``, as ``run`` and ``bench`` do it: the multi-start
    (``choose_start``), the run (``optimise``; ``run_message`` is said before it), and the sun test
    (``sun_test``) when ``settings.sun_test``. Returns the lighting, its tone curves, the run's result and
    what lighting.json records of the starts and the sun test."""
    from .tone import ToneCurves

    def make_tone() -> ToneCurves:
        return ToneCurves(len(targets), device=device)

    starts = init.starts(settings.starts)
    if len(starts) > 1:
        say(f"lighting: trying {len(starts)} starting key directions, {settings.start_iterations} iterations each")
    lighting, record = choose_start(scene, targets, starts, make_tone, settings, objective, shot_name=shot_name,
                                    device=device)
    tone = make_tone()
    if run_message:
        say(run_message)
    result = optimise(scene, targets, lighting, tone, settings, objective, shot_name=shot_name, checkpoint=checkpoint,
                      on_iteration=on_iteration, material=material)
    if settings.sun_test:
        say(f"lighting: sun test ({settings.start_iterations} iterations as solved and with a sun at the key)")
        lighting, tone, record["sun_test"] = sun_test(scene, targets, lighting, tone, settings, objective,
                                                      shot_name=shot_name, device=device)
        if record["sun_test"]["kept"] == "sun":
            say(f"lighting: the key is a sun; refined it for {settings.sun_iterations} iterations")
    return lighting, tone, result, record


def _trial(scene, targets, lighting, tone, settings: OptimizeConfig, objective: Objective, shot_name: str) -> float:
    """Mean objective over the second half of a ``start_iterations`` run (the regularisers left out: their
    value includes a map's entropy, not comparable between lightings)."""
    from dataclasses import replace

    probe = replace(settings, iterations=settings.start_iterations, checkpoint_every=settings.start_iterations)
    result = optimise(scene, targets, lighting, tone, probe, objective, shot_name=shot_name)
    tail = result.objectives[len(result.objectives) // 2:] or [math.inf]
    return float(np.mean(tail))


def sun_test(scene: InsertScene, targets: list[FrameTarget], lighting: TwoMapSG, tone: ToneCurves,
             settings: OptimizeConfig, objective: Objective, *, shot_name: str,
             device: str = "cpu") -> tuple[TwoMapSG, ToneCurves, dict]:
    """After the run: is the key a sun? (``[optimize] sun_test``; lighting.json records the answer.)

    Gradient descent does not turn a broad key into a sun (measured: from a broad lobe on the true sun's
    direction the loop stays broad, at twice the loss of a sharp one; its shadow's hardness gives the loss
    no slope towards a small source). So the solved maps are run on for ``start_iterations`` as they are
    and with the light around their key (the brightest direction above the horizon) gathered into a lobe
    as sharp as the optimisation raster draws (``SGLobes.with_sun``), each from a copy of the run's tone
    curves; when the sun scores lower, it goes on for ``sun_iterations`` more and is returned with its
    curves, else ``lighting`` and ``tone`` as they were. A room's or an overcast sky's key stays broad.
    """
    from dataclasses import replace

    from .models import TwoMapSG
    from .panorama import texel_directions
    from .sg import max_sharpness

    if settings.fusion != "off":   # the solve ended fused: its maps go on fused (unfused they were never fitted)
        settings = replace(settings, fused=True)
    dirs = texel_directions(64, 128)
    sky = lighting.radiance(dirs) * (dirs[..., 1:2] > math.sin(math.radians(2.0)))   # a sun below it casts no shadow
    key = dominant_direction_latlong(sky)
    sharpness = max_sharpness(settings.env_height)
    fg, sh = lighting.fg.lobes(), lighting.sh.lobes()
    runs = {"broad": (TwoMapSG(fg, settings.env_height, device=device, init_sh=sh), copy.deepcopy(tone)),
            "sun": (TwoMapSG(fg.with_sun(key, sharpness), settings.env_height, device=device,
                             init_sh=sh.with_sun(key, sharpness)), copy.deepcopy(tone))}
    scores = {name: _trial(scene, targets, light, curves, settings, objective, f"{shot_name}:sun-test:{name}")
              for name, (light, curves) in runs.items()}
    kept = min(scores, key=scores.get)
    record = {"key_direction": key.tolist(), "sharpness": sharpness, "scores": scores, "kept": kept}
    if kept == "broad":
        return lighting, tone, record
    sun, curves = runs["sun"]
    optimise(scene, targets, sun, curves, replace(settings, iterations=settings.sun_iterations,
                                                  checkpoint_every=settings.sun_iterations), objective,
             shot_name=f"{shot_name}:sun")
    return sun, curves, record
