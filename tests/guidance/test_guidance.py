"""Diffusion guidance: loading, LoRA personalisation, LDS / SDS, on a tiny real Stable Diffusion built here.

No weights are downloaded (conftest sets HF_HUB_OFFLINE). The tiny model (tests/guidance/tiny_sd.py) has the real
architecture classes at about 70 k parameters; the guidance maths is checked against a closed-form
denoiser whose optimum is known.
"""
from __future__ import annotations

import json
import math
import shutil
import zlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("transformers")
pytest.importorskip("peft")

from tiny_sd import NATIVE_PX  # noqa: E402
from sd_fixtures import _one_torch_thread, pickle_sd, tiny_sd  # noqa: E402,F401  (fixtures)

from vfxinsert.config import GuidanceConfig  # noqa: E402
from vfxinsert.errors import ConfigError, GuidanceError  # noqa: E402
from vfxinsert.guidance.loading import load_model  # noqa: E402
from vfxinsert.guidance.objectives import LDSObjective, SDSObjective, ScoreSettings  # noqa: E402
from vfxinsert.guidance.personalise import class_name, personalise, plate_display  # noqa: E402
from vfxinsert.guidance.stage import make_objective  # noqa: E402
from vfxinsert.lighting.loop import FrameTarget  # noqa: E402

SCENE_PROMPT = "a photo of sks scene"
FAST = GuidanceConfig(steps=40, lr=1e-2, preservation_images=2, sampling_steps=2, checkpoint_every=20)
"""Personalisation small enough for the tiny model on a CPU (seconds)."""


def stripes(h: int = 48, w: int = 64) -> np.ndarray:
    """A display-referred plate with structure the LoRA can learn (stripes over a gradient)."""
    yy, xx = np.mgrid[0:h, 0:w] / float(h)
    return np.stack([0.5 + 0.5 * np.sin(12.0 * xx), yy, 0.3 + 0.4 * (np.sin(9.0 * yy) > 0)], -1).astype(np.float32)


def denoising_loss(model, image: np.ndarray, prompt: str, *, personalised: bool, draws: int = 16) -> float:
    """Mean denoising error of the model on one image at fixed (t, noise) draws."""
    x = torch.as_tensor(image).permute(2, 0, 1)[None]
    x = torch.nn.functional.interpolate(x, size=(NATIVE_PX, NATIVE_PX), mode="bilinear", align_corners=False)
    g = torch.Generator().manual_seed(1234)
    total = 0.0
    with torch.no_grad():
        z0 = model.encode(x)
        for _ in range(draws):
            t = int(torch.randint(20, 980, (1,), generator=g))
            noise = torch.randn(z0.shape, generator=g)
            a = float(model.alphas_cumprod[t])
            z_t = math.sqrt(a) * z0 + math.sqrt(1 - a) * noise
            total += float((model.eps(z_t, t, [prompt], personalised=personalised) - noise).square().mean())
    return total / draws


# --------------------------------------------------------------------------------------------------
# Loading


def test_tiny_model_loads_offline_through_the_project_loader(tiny_sd):
    import os

    assert os.environ.get("HF_HUB_OFFLINE") == "1"
    model = load_model(tiny_sd.name, tiny_sd.parent)   # a folder relative to the shot's folder
    assert model.device == "cpu" and model.dtype == torch.float32
    assert model.native_px == NATIVE_PX and model.latent_shape == (4, NATIVE_PX // 2, NATIVE_PX // 2)
    assert model.lora_rank is None
    assert not any(p.requires_grad for m in (model.unet, model.vae, model.text_encoder) for p in m.parameters())
    assert model.tokenizer.tokenize(SCENE_PROMPT)[3] == "sks</w>"
    assert model.prompt_embeddings([SCENE_PROMPT, ""]).shape == (2, 16, 16)
    assert len(model.identity) == 32 and model.identity == load_model(str(tiny_sd), Path("/")).identity


def test_model_ids_must_be_pinned_and_come_from_the_cache_when_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(GuidanceError, match="not pinned"):
        load_model("someorg/somemodel", tmp_path)
    with pytest.raises(GuidanceError, match="not in the local Hugging Face cache") as info:
        load_model("someorg/somemodel@0123456789abcdef0123456789abcdef01234567", tmp_path)
    assert "hf download someorg/somemodel" in str(info.value)
    with pytest.raises(GuidanceError, match="does not exist"):
        load_model("./models/missing", tmp_path)
    with pytest.raises(GuidanceError, match="no diffusion model"):
        load_model("", tmp_path)


def test_pickle_only_checkpoint_is_refused_unless_allowed(pickle_sd, tiny_sd):
    assert list((pickle_sd / "unet").glob("*.bin")) and not list((pickle_sd / "unet").glob("*.safetensors"))
    with pytest.raises(GuidanceError) as info:
        load_model(str(pickle_sd), Path("/"))
    message = str(info.value)
    assert "unet" in message and "pickle" in message and "allow_pickle = true" in message
    allowed = load_model(str(pickle_sd), Path("/"), allow_pickle=True)
    safe = load_model(str(tiny_sd), Path("/"))
    z = torch.randn(1, *safe.latent_shape, generator=torch.Generator().manual_seed(0))
    assert torch.equal(allowed.eps(z, 300, [SCENE_PROMPT], personalised=False),
                       safe.eps(z, 300, [SCENE_PROMPT], personalised=False))   # same weights, other format


@pytest.mark.parametrize("component, remove", [
    ("unet", "unet"), ("vae", "vae/diffusion_pytorch_model.safetensors"), ("text_encoder", "text_encoder"),
    ("tokenizer", "tokenizer"), ("scheduler", "scheduler/scheduler_config.json"),
    ("model_index.json", "model_index.json"),
])
def test_an_incomplete_folder_names_the_missing_component(tiny_sd, tmp_path, component, remove):
    folder = tmp_path / "broken"
    shutil.copytree(tiny_sd, folder)
    target = folder / remove
    shutil.rmtree(target) if target.is_dir() else target.unlink()
    with pytest.raises(GuidanceError) as info:
        load_model(str(folder), tmp_path)
    assert component in str(info.value) and str(folder) in str(info.value)


# --------------------------------------------------------------------------------------------------
# Personalisation


def base_weights(model, clone: bool = False) -> dict:
    """Every non-LoRA weight of the model by name (peft renames an adapted Linear's weight to base_layer)."""
    return {name.replace(".base_layer", ""): p.detach().clone() if clone else p.detach()
            for m in (model.unet, model.vae, model.text_encoder)
            for name, p in m.named_parameters(prefix=type(m).__name__) if ".lora_" not in name}


def test_lora_training_lowers_its_loss_saves_reloads_and_changes_only_lora_weights(tiny_sd, tmp_path):
    model = load_model(str(tiny_sd), Path("/"))
    frozen = base_weights(model, clone=True)
    plate = stripes()
    steps = []
    personalise(model, [plate], class_name="teapot", settings=FAST, cache_dir=tmp_path / "cache",
                on_step=lambda i, n, loss: steps.append((i, n, loss)))
    assert [s[0] for s in steps] == list(range(1, FAST.steps + 1)) and all(s[1] == FAST.steps for s in steps)
    result = model.personalisation
    assert not result.reused and len(result.losses) == FAST.steps

    # the LoRA lowered the denoising loss of the plate under the scene prompt (fixed draws, adapter on / off)
    before = denoising_loss(model, plate, SCENE_PROMPT, personalised=False)
    after = denoising_loss(model, plate, SCENE_PROMPT, personalised=True)
    assert after < 0.97 * before, (before, after)
    assert np.mean(result.losses[-10:]) < np.mean(result.losses[:10])

    # only LoRA weights changed; the base model is untouched
    now = base_weights(model)
    assert now.keys() == frozen.keys()
    assert all(torch.equal(now[k], frozen[k]) for k in frozen)
    lora = model.lora_state()
    assert lora and all(".lora_A." in k or ".lora_B." in k for k in lora)
    assert {k.split(".")[-3] for k in lora} | {k.split(".")[-4] for k in lora} >= {"to_q", "to_k", "to_v"}
    assert any(k.endswith("to_out.0.lora_B.scene.weight") for k in lora)
    assert all(float(v.abs().max()) > 0 for k, v in lora.items() if ".lora_B." in k)   # B started at zero

    # saved as LoRA weights only (safetensors) + a description; a re-run reuses them exactly
    from safetensors.torch import load_file

    saved = load_file(str(result.folder / "lora.safetensors"))
    assert saved.keys() == lora.keys()
    info = json.loads((result.folder / "lora.json").read_text())
    assert info["settings"]["rank"] == 4 and info["class"] == "teapot"
    again = load_model(str(tiny_sd), Path("/"))
    calls = []
    personalise(again, [plate], class_name="teapot", settings=FAST, cache_dir=tmp_path / "cache",
                on_step=lambda *a: calls.append(a))
    assert again.personalisation.reused and not calls and again.personalisation.folder == result.folder
    z = torch.randn(1, *model.latent_shape, generator=torch.Generator().manual_seed(3))
    assert torch.equal(again.eps(z, 400, [SCENE_PROMPT], personalised=True),
                       model.eps(z, 400, [SCENE_PROMPT], personalised=True))
    # another plate, class or setting is another LoRA
    other = load_model(str(tiny_sd), Path("/"))
    personalise(other, [plate], class_name="ball", settings=GuidanceConfig(steps=1, preservation_images=0),
                cache_dir=tmp_path / "cache")
    assert other.personalisation.folder != result.folder and not other.personalisation.reused


def test_personalisation_resumes_from_its_checkpoint_and_ends_identically(tiny_sd, tmp_path):
    settings = GuidanceConfig(steps=8, lr=1e-2, preservation_images=1, sampling_steps=2, checkpoint_every=3)
    plates = [stripes(), stripes()[::-1].copy()]
    whole = personalise(load_model(str(tiny_sd), Path("/")), plates, class_name="teapot", settings=settings,
                        cache_dir=tmp_path / "a")

    class Interrupted(Exception):
        pass

    def stop_at_5(step, total, loss):
        if step == 5:
            raise Interrupted

    with pytest.raises(Interrupted):
        personalise(load_model(str(tiny_sd), Path("/")), plates, class_name="teapot", settings=settings,
                    cache_dir=tmp_path / "b", on_step=stop_at_5)
    folder = tmp_path / "b" / whole.personalisation.folder.name
    assert (folder / "checkpoint.safetensors").is_file() and not (folder / "lora.safetensors").exists()
    resumed = personalise(load_model(str(tiny_sd), Path("/")), plates, class_name="teapot", settings=settings,
                          cache_dir=tmp_path / "b")
    assert resumed.personalisation.resumed_from == 3
    assert not (folder / "checkpoint.safetensors").exists()
    assert resumed.personalisation.losses == pytest.approx(whole.personalisation.losses, rel=1e-5)
    a, b = whole.lora_state(), resumed.lora_state()
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_planted_pickles_in_the_lora_caches_run_no_code_and_are_recomputed(tiny_sd, tmp_path):
    """A cache holds data, never code: pickles planted as the checkpoint and the preservation latents of an
    interrupted personalisation are refused by safetensors, warned about, and the LoRA is trained afresh."""
    import pickle
    import warnings

    from vfxinsert.errors import VfxInsertWarning

    settings = GuidanceConfig(steps=4, lr=1e-2, preservation_images=1, sampling_steps=2, checkpoint_every=2)
    whole = personalise(load_model(str(tiny_sd), Path("/")), [stripes()], class_name="teapot", settings=settings,
                        cache_dir=tmp_path / "a")
    folder = tmp_path / "b" / whole.personalisation.folder.name
    folder.mkdir(parents=True)
    marker = tmp_path / "pwned"

    class Planted:
        def __reduce__(self):
            return (Path.touch, (marker,))

    for name in ("checkpoint.safetensors", "preservation.safetensors"):
        (folder / name).write_bytes(pickle.dumps(Planted()))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        again = personalise(load_model(str(tiny_sd), Path("/")), [stripes()], class_name="teapot", settings=settings,
                            cache_dir=tmp_path / "b")
    assert not marker.exists()
    said = [str(w.message) for w in caught if issubclass(w.category, VfxInsertWarning)]
    assert len(said) == 2 and all("it is recomputed" in line for line in said), said
    assert again.personalisation.resumed_from is None
    assert again.personalisation.losses == pytest.approx(whole.personalisation.losses, rel=1e-5)


@pytest.mark.parametrize("prediction", ["epsilon", "v_prediction", "sample"])
def test_every_prediction_type_converts_to_the_noise(tiny_sd, prediction):
    """SD 2.1 (768) predicts v, SD 1.5 / 2.1-base epsilon: a perfect prediction of the training target,
    whatever it is, must read back as exactly the injected noise."""
    model = load_model(str(tiny_sd), Path("/"))
    model.scheduler.register_to_config(prediction_type=prediction)
    g = torch.Generator().manual_seed(0)
    z0, noise = torch.randn(2, 1, *model.latent_shape, generator=g)
    t = 700
    a = float(model.alphas_cumprod[t])
    z_t = math.sqrt(a) * z0 + math.sqrt(1 - a) * noise
    model.model_output = lambda *args, **kwargs: model.training_target(z0, noise, t)
    assert torch.allclose(model.eps(z_t, t, [SCENE_PROMPT], personalised=False), noise, atol=1e-5)


def test_settings_are_validated():
    with pytest.raises(ConfigError, match="steps >= 1"):
        GuidanceConfig(steps=0).validate("[guidance]")
    with pytest.raises(ConfigError, match="class"):
        GuidanceConfig(guidance_prompt="a photo of a thing").validate("[guidance]")
    with pytest.raises(ConfigError, match="t_min"):
        ScoreSettings(t_min=0.7)
    assert ScoreSettings().t_max(0, 600) == pytest.approx(0.6) and ScoreSettings().t_max(599, 600) == pytest.approx(0.3)
    assert class_name(["stanford-bunny", "", "teapot", "teapot"]) == "stanford bunny and teapot"


# --------------------------------------------------------------------------------------------------
# The objectives through a real Mitsuba render


PX = 32


def scene_and_target(plate_value: float = 0.25):
    from test_scene import look_at, sphere

    from vfxinsert.scene import InsertScene, View

    view = View(look_at((0, 1.4, 2.6), (0, 0.25, 0)), 40.0, PX, PX)
    scene = InsertScene([sphere((0, 0.35, 0), 0.35, n=12)], ground_height_m=0.0, ground_albedo=(0.4,) * 3, view=view,
                        env_height=32, max_depth=3)
    return scene, FrameTarget(0, view, np.full((PX, PX, 3), plate_value, np.float32))


def sun_and_sky(scale: float = 1.0):
    from vfxinsert.lighting.sg import SGLobes

    sun = np.array([0.5, 0.6, -0.62]) / np.linalg.norm([0.5, 0.6, -0.62])
    return SGLobes(np.array([sun, [0.0, 1.0, 0.0]]), np.array([60.0, 2.0]),
                   scale * np.array([[30.0, 24.0, 18.0], [0.3, 0.4, 0.6]]))


def gradients_of_one_iteration(scene, target, objective, lighting, tone) -> list:
    """Run the real loop for one iteration with zero learning rates and no regularisers, and return the
    gradients it left on the lighting and tone parameters (all of them come from the objective)."""
    from vfxinsert.config import OptimizeConfig
    from vfxinsert.lighting.loop import optimise

    torch.set_num_threads(1)   # InsertScene set it to the CPU count
    settings = OptimizeConfig(iterations=1, crop_px=PX, spp=2, env_height=32, lr_lighting=0.0, lr_tone=0.0,
                             w_consistency=0.0, w_shadow_reg=0.0)
    result = optimise(scene, [target], lighting, tone, settings, objective, shot_name="grad")
    assert len(result.losses) == 1 and not result.retries
    return [p.grad for p in lighting.parameters() + tone.parameters()]


def test_lds_gradient_reaches_lighting_and_tone_and_is_exactly_zero_when_predictions_agree(tiny_sd):
    from vfxinsert.lighting.models import TwoMapSG
    from vfxinsert.lighting.tone import ToneCurves

    scene, target = scene_and_target()
    model = load_model(str(tiny_sd), Path("/"))
    model.add_lora(4)   # B = 0: the personalised UNet computes exactly what the base UNet does

    # same prompt (empty) for both terms and a zero LoRA: eps_lora == eps_base, so every gradient is exactly 0
    grads = gradients_of_one_iteration(scene, target, LDSObjective(model, ""), TwoMapSG(sun_and_sky(), 32, 200.0),
                                       ToneCurves(1))
    assert all(g is not None for g in grads)
    assert all(bool((g == 0).all()) for g in grads)

    # a LoRA that changes the prediction, and the scene prompt: finite, non-zero gradients on every parameter
    with torch.no_grad():
        for name, p in model.lora_named_parameters():
            if ".lora_B." in name:
                p.normal_(0.0, 0.5, generator=torch.Generator().manual_seed(zlib.crc32(name.encode())))
    lighting, tone = TwoMapSG(sun_and_sky(), 32, 200.0), ToneCurves(1)
    grads = gradients_of_one_iteration(scene, target, LDSObjective(model, SCENE_PROMPT), lighting, tone)
    names = ["fg axis", "fg sharpness", "fg amplitude", "sh axis", "sh sharpness", "sh amplitude",
             "exposure", "T_fg slopes", "T_sh slopes"]
    for name, g in zip(names, grads):
        assert bool(torch.isfinite(g).all()), name
        assert float(g.abs().max()) > 0.0, name


def test_sds_objective_runs_through_the_loop(tiny_sd):
    from vfxinsert.lighting.models import TwoMapSG
    from vfxinsert.lighting.tone import ToneCurves

    scene, target = scene_and_target()
    model = load_model(str(tiny_sd), Path("/"))
    grads = gradients_of_one_iteration(scene, target, SDSObjective(model, "a photo of a ball"),
                                       TwoMapSG(sun_and_sky(), 32, 200.0), ToneCurves(1))
    assert all(bool(torch.isfinite(g).all()) for g in grads) and float(grads[2].abs().max()) > 0.0
    with pytest.raises(GuidanceError, match="personalised"):
        LDSObjective(model, SCENE_PROMPT)   # LDS without a LoRA is refused


# --------------------------------------------------------------------------------------------------
# Known answer: the exact denoiser of a set of reference images


class ExactDenoiser:
    """The Bayes-optimal denoiser of a finite image set, in pixel space (no VAE):
    ``eps*(x_t, t) = (x_t - sqrt(a_t) E[x0 | x_t]) / sqrt(1 - a_t)``, the posterior mean taken exactly over
    the set (softmax of -|x_t - sqrt(a_t) x_i|^2 / (2 (1 - a_t))). The prompt picks the set: a non-empty
    prompt the references, the empty prompt a broad set (the "base model")."""

    native_px = None

    def __init__(self, references: np.ndarray, broad: np.ndarray):
        self.alphas_cumprod = torch.cumprod(1.0 - torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64), 0).float()
        self.sets = {True: self._to_x(references), False: self._to_x(broad)}

    @staticmethod
    def _to_x(images: np.ndarray):
        return torch.as_tensor(images, dtype=torch.float64).permute(0, 3, 1, 2) * 2.0 - 1.0

    def encode(self, image):
        return image * 2.0 - 1.0

    def eps(self, z_t, t, prompts, *, personalised):
        a = float(self.alphas_cumprod[t])
        z = z_t.double()
        out = []
        for prompt in prompts:
            x = self.sets[bool(prompt)]
            d2 = (z - math.sqrt(a) * x).square().flatten(1).sum(1)
            w = torch.softmax(-d2 / (2.0 * (1.0 - a)), 0)
            mean = (w[:, None, None, None] * x).sum(0, keepdim=True)
            out.append((z - math.sqrt(a) * mean) / math.sqrt(1.0 - a))
        return torch.cat(out).float()


def srgb(x: np.ndarray) -> np.ndarray:
    from vfxinsert.color import srgb_encode_torch

    return srgb_encode_torch(torch.as_tensor(x, dtype=torch.float32)).numpy()


@pytest.mark.parametrize("kind", ["lds", "sds"])
@pytest.mark.parametrize("start", [0.15, 0.9])
def test_known_answer_exact_denoiser_pulls_the_exposure_to_the_truth(kind, start):
    """Composite = exposure * texture; the references were made at exposure 0.45. From 0.15 and from 0.9,
    LDS and SDS (through the objectives' own code path, pixel space) bring the exposure within 3 %.
    The broad set (the "base model") holds the textures at exposures from 1/4x to 2x the truth."""
    rng = np.random.default_rng(0)
    textures = rng.uniform(0.2, 1.0, size=(3, 12, 12, 3)).astype(np.float32)
    truth = 0.45
    references = srgb(truth * textures)
    broad = srgb(np.concatenate([truth * 2.0 ** e * textures for e in np.arange(-2.0, 1.01, 0.25)]))
    denoiser = ExactDenoiser(references, broad)
    objective = (LDSObjective if kind == "lds" else SDSObjective)(denoiser, "references", seed_key=f"ka-{kind}")
    log_gain = torch.tensor(math.log(start), requires_grad=True)
    opt = torch.optim.Adam([log_gain], lr=0.05)
    texture = torch.as_tensor(textures[0])
    target = FrameTarget(0, None, np.zeros((12, 12, 3), np.float32))
    n = 200
    for i in range(n):
        for g in opt.param_groups:
            g["lr"] = 0.05 * 0.1 ** (i / (n - 1))
        opt.zero_grad()
        objective(log_gain.exp() * texture, target, i, n).backward()
        opt.step()
    found = float(log_gain.detach().exp())
    assert abs(found / truth - 1.0) < 0.03, found


def test_known_answer_lds_pulls_the_lighting_towards_the_lighting_of_the_references():
    """Through Mitsuba: references are composites rendered under a sun + sky; the lighting starts 4x too
    dark, and LDS with the exact denoiser of those references (base: the same scene under 1/8x-2.8x the
    light) brings the object's displayed brightness within 15 % of the references' (from about half as bright)."""
    from vfxinsert.lighting.panorama import mitsuba_env_directions
    from vfxinsert.config import OptimizeConfig
    from vfxinsert.lighting.loop import optimise
    from vfxinsert.lighting.models import TwoMapSG
    from vfxinsert.composite import composite
    from vfxinsert.lighting.tone import ToneCurves

    scene, target = scene_and_target()
    torch.set_num_threads(1)

    def render(scale: float, seed: int) -> np.ndarray:
        scene.set_env(sun_and_sky(scale).radiance(mitsuba_env_directions(32, 64)).astype(np.float32))
        return composite(scene.render(seed=seed, spp=16), target.plate)[3]

    references = np.stack([srgb(render(1.0, s)) for s in (1, 2)])
    broad = np.stack([srgb(render(2.0 ** e, 3)) for e in np.arange(-3.0, 1.6, 0.5)])
    objective = LDSObjective(ExactDenoiser(references, broad), "references", seed_key="ka-light")
    lighting = TwoMapSG(sun_and_sky(0.25), 32, 200.0)
    settings = OptimizeConfig(iterations=60, crop_px=PX, spp=4, env_height=32, lr_lighting=0.05, optimise_tone=False)
    optimise(scene, [target], lighting, ToneCurves(1), settings, objective, shot_name="ka-light")

    alpha = scene.render(seed=5, spp=16)[..., 3] > 0.99

    def object_brightness(image):   # on the display view, as the denoiser sees it (highlights clip)
        return float(srgb(image)[alpha].mean())

    truth = object_brightness(render(1.0, 7))
    start = object_brightness(render(0.25, 7))
    scene.set_env(lighting.radiance(mitsuba_env_directions(32, 64)).astype(np.float32))
    found = object_brightness(composite(scene.render(seed=7, spp=16), target.plate)[3])
    assert abs(start / truth - 1.0) > 0.35
    assert abs(found / truth - 1.0) < 0.15, (start, found, truth)


# --------------------------------------------------------------------------------------------------
# The shot-level entry point


def guidance_shot(folder: Path, shared: Path, model: Path, extra: str = "") -> Path:
    from test_cli import make_shot

    shot = make_shot(folder, shared, lighting='init = "plate"\noptimize = true')
    shot.write_text(shot.read_text() + f'[guidance]\nmodel = "{model}"\n{extra}'
                    '[optimize]\niterations = 3\ncrop_px = 32\nspp = 2\nstarts = 1\nsun_test = false\n')
    return shot


def test_make_objective_personalises_once_per_shot_and_reuses_the_cache(tiny_sd, tmp_path, shared_data):
    from vfxinsert.config import load_shot

    shot = load_shot(guidance_shot(tmp_path / "shot", shared_data, tiny_sd))
    plates = [plate_display(np.full((36, 64, 3), 0.2, np.float32) + np.linspace(0, 0.5, 64)[None, :, None])]
    settings = replace(shot.guidance, steps=3, preservation_images=1, sampling_steps=2)
    progress = []
    lds = make_objective(shot, plates, settings=settings, on_step=lambda *a: progress.append(a))
    assert isinstance(lds, LDSObjective) and lds.prompt == "a photo of a teapot in sks scene"
    assert len(progress) == 3 and lds.denoiser.personalisation.folder.parent == shot.output.dir / ".cache"
    again = make_objective(shot, plates, settings=settings)
    assert again.denoiser.personalisation.reused
    sds = make_objective(shot, plates, settings=replace(shot.guidance, method="sds"))
    assert isinstance(sds, SDSObjective) and sds.prompt == "a photo of a teapot" and sds.denoiser.lora_rank is None
    with pytest.raises(ConfigError, match="lds"):
        make_objective(shot, plates, settings=replace(shot.guidance, method="dds"))


def test_a_new_guidance_objective_is_one_class_and_one_mapping_line(tiny_sd, tmp_path, shared_data, monkeypatch):
    """How to add a guidance loss: subclass ScoreDistillation (its direction) and map a method name to it
    in OBJECTIVES; make_objective builds it for a shot, and config's allowed methods are the mapping's."""
    import typing

    from vfxinsert.config import GuidanceConfig, GuidanceMethod, load_shot
    from vfxinsert.guidance.objectives import OBJECTIVES, ScoreDistillation

    class PlainDenoising(ScoreDistillation):   # the class: the denoiser's noise estimate minus the noise
        def direction(self, z_t, t, noise):
            return self.denoiser.eps(z_t, t, [self.prompt], personalised=False) - noise

    monkeypatch.setitem(OBJECTIVES, "plain", PlainDenoising)   # the line
    assert typing.get_args(GuidanceMethod) == ("lds", "sds")  # the shot file's methods come from OBJECTIVES
    assert typing.get_type_hints(GuidanceConfig)["method"] is GuidanceMethod
    shot = load_shot(guidance_shot(tmp_path / "shot", shared_data, tiny_sd))
    plates = [plate_display(np.full((36, 64, 3), 0.2, np.float32))]
    objective = make_objective(shot, plates, settings=replace(shot.guidance, method="plain"))
    assert isinstance(objective, PlainDenoising) and objective.prompt == "a photo of a teapot"
    comp = torch.full((32, 32, 3), 0.3, requires_grad=True)
    loss = objective(comp, FrameTarget(1, None, np.zeros((32, 32, 3), np.float32)), 0, 10)
    loss.backward()
    assert torch.isfinite(loss) and comp.grad is not None and comp.grad.abs().sum() > 0


def test_run_end_to_end_with_the_tiny_model_on_cpu(tiny_sd, tmp_path, shared_data, capsys):
    """`vfxinsert run` with [guidance] model set: personalise -> optimise (LDS) -> render, on the CPU."""
    from vfxinsert.cli import main
    from vfxinsert.exr import read_layers

    shot = guidance_shot(tmp_path / "shot", shared_data, tiny_sd,
                         "steps = 4\npreservation_images = 1\n")
    assert main(["run", str(shot)]) == 0
    out = tmp_path / "shot" / "out"
    description = json.loads((out / "lighting.json").read_text())
    assert description["optimised"] is True and description["objective"] == "guidance"
    assert description["iterations"] == 3 and all(math.isfinite(v) for v in description["losses"])
    # every method knob used is recorded: [guidance] (its defaults here) and [optimize] as resolved
    g, o = description["guidance"], description["optimize"]
    assert (g["t_min"], g["t_max_start"], g["t_max_end"], g["lds_base"], g["weight"]) == (0.02, 0.6, 0.3, "base", 1.0)
    assert g["guidance_prompt"] == "a photo of a {class} in sks scene" and g["view"].startswith("sRGB - Display")
    assert (o["crop_px_used"], o["w_consistency"], o["w_shadow_reg"], o["fusion"]) == (32, 0.03, 0.01, "ramp")
    assert o["keyframes_used"] == [1] and o["tone_window_frames"] == 13
    loras = list((out / ".cache").glob("lora-*/lora.safetensors"))
    assert len(loras) == 1
    layers, _ = read_layers(out / "sh.0002.exr")
    assert all(np.isfinite(layers[c]).all() for c in ("R", "G", "B", "A"))
    assert main(["run", str(shot)]) == 0   # a re-run reuses everything
    assert "up to date" in capsys.readouterr().err
