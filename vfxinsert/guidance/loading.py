"""Loading a Stable Diffusion checkpoint for guidance: resolve ``[guidance] model``, check the folder, load it.

A diffusers checkpoint (SD 1.5 / 2.1 class) from a local folder or a pinned model id, safetensors only
unless pickle files are explicitly allowed, fp16 on CUDA and fp32 on the CPU. The components are loaded
with their own classes (UNet, VAE, CLIP text encoder, CLIP tokenizer, scheduler); no pipeline object.
torch, diffusers and transformers are imported inside the functions that use them.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from pathlib import Path

from ..errors import GuidanceError
from .model import GuidanceModel

COMPONENTS = ("unet", "vae", "text_encoder", "tokenizer", "scheduler")
"""The parts of a Stable Diffusion checkpoint guidance needs (subfolders of a diffusers folder)."""
_PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
_MODEL_ID = re.compile(r"^(?P<repo>[A-Za-z0-9][\w.-]*/[\w.-]+)(?:@(?P<revision>[\w./-]+))?$")


def _truthy(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def _weights(sub: Path) -> tuple[list[Path], list[Path]]:
    files = sorted(p for p in sub.iterdir() if p.is_file())
    return [p for p in files if p.suffix == ".safetensors"], [p for p in files if p.suffix in _PICKLE_SUFFIXES]


def _variant(safetensors: list[Path]) -> str | None:
    """diffusers' weight variant ("fp16") when only variant files are present, else None."""
    plain = [p for p in safetensors if "." not in p.stem]   # model.safetensors, model-00001-of-00002.safetensors
    if plain or not safetensors:
        return None
    return safetensors[0].stem.rsplit(".", 1)[-1]


def check_model_folder(folder: Path, *, allow_pickle: bool = False) -> dict[str, str | None]:
    """Check that ``folder`` holds every component guidance needs, before loading anything.

    Returns the weight variant per weighted component (None: the plain files). Raises GuidanceError
    naming the first missing component, or the component whose weights are pickle files only when
    ``allow_pickle`` is false.
    """
    if not (folder / "model_index.json").is_file():
        raise GuidanceError("not a diffusers model folder (no model_index.json)", where=str(folder),
                            fix="point [guidance] model at a folder written by diffusers' save_pretrained")
    variants: dict[str, str | None] = {}
    for name in ("unet", "vae", "text_encoder"):
        sub = folder / name
        if not (sub / "config.json").is_file():
            raise GuidanceError(f"the model folder is missing its {name} (no {name}/config.json)", where=str(folder),
                                fix=f"copy the complete checkpoint, including the {name}/ folder")
        safe, pickled = _weights(sub)
        if not safe and not pickled:
            raise GuidanceError(f"the model folder is missing its {name} weights (no .safetensors file in {name}/)",
                                where=str(sub), fix=f"copy the {name} weights into {sub}")
        if not safe and not allow_pickle:
            raise GuidanceError(f"the {name} weights are pickle files only ({', '.join(p.name for p in pickled)}); "
                                "loading a pickle can run arbitrary code", where=str(sub),
                                fix="convert the checkpoint to safetensors, or, if you trust where it came from, "
                                    "set [guidance] allow_pickle = true")
        variants[name] = _variant(safe)
    tok = folder / "tokenizer"
    if not ((tok / "tokenizer.json").is_file() or ((tok / "vocab.json").is_file() and (tok / "merges.txt").is_file())):
        raise GuidanceError("the model folder is missing its tokenizer (tokenizer/tokenizer.json, or "
                            "tokenizer/vocab.json + merges.txt)", where=str(folder),
                            fix="copy the complete checkpoint, including the tokenizer/ folder")
    if not (folder / "scheduler" / "scheduler_config.json").is_file():
        raise GuidanceError("the model folder is missing its scheduler (no scheduler/scheduler_config.json)",
                            where=str(folder), fix="copy the complete checkpoint, including the scheduler/ folder")
    return variants


def model_fingerprint(folder: Path) -> str:
    """Identity of a checkpoint folder for cache keys: every config file, and each weight file's name, size
    and the SHA-256 of its first and last MiB (a full hash of gigabytes of weights would take minutes;
    safetensors headers, which list every tensor, sit in the first MiB)."""
    h = hashlib.sha256()
    for name in ("model_index.json", *COMPONENTS):
        path = folder / name
        files = [path] if path.is_file() else sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else []
        for p in files:
            h.update(str(p.relative_to(folder)).encode())
            if p.suffix in (".json", ".txt"):
                h.update(p.read_bytes())
                continue
            size = p.stat().st_size
            h.update(str(size).encode())
            with open(p, "rb") as fh:
                h.update(fh.read(1 << 20))
                if size > 2 << 20:
                    fh.seek(-(1 << 20), os.SEEK_END)
                    h.update(fh.read(1 << 20))
    return h.hexdigest()[:32]


def resolve_model(model: str, shot_dir: Path, *, allow_pickle: bool = False) -> Path:
    """The local folder of ``model``: a folder (relative to the shot's folder) or a pinned Hub id
    ``org/name@revision`` taken from the local Hugging Face cache (downloaded first when the network is
    allowed and reachable; ``local_files_only`` when ``HF_HUB_OFFLINE`` is set or the Hub cannot be reached)."""
    if not model:
        raise GuidanceError("no diffusion model is set", where="[guidance] model",
                            fix="set [guidance] model to a diffusers folder or a pinned id (org/name@revision)")
    local = Path(model).expanduser()
    local = local if local.is_absolute() else Path(shot_dir) / local
    if local.is_dir():
        return local
    match = _MODEL_ID.match(model)
    if local.exists() or not match or model.startswith((".", "/", "~")):
        raise GuidanceError(f"model folder {local} does not exist" if not local.exists() else
                            f"{local} is not a folder", where="[guidance] model",
                            fix="give a diffusers model folder (relative to the shot file) or a pinned id "
                                "org/name@revision")
    if not match["revision"]:
        raise GuidanceError(f"model id {model!r} is not pinned (and no folder {local} exists)",
                            where="[guidance] model",
                            fix=f"pin a revision, e.g. {model}@<commit hash>, so every run uses the same weights")
    return _hub_snapshot(match["repo"], match["revision"], allow_pickle)


def _hub_snapshot(repo: str, revision: str, allow_pickle: bool) -> Path:
    from huggingface_hub import snapshot_download

    ignore = ["*.fp16.*", "*non_ema*", "*.msgpack", "*.h5", "*.onnx", "*.pb"]
    if not allow_pickle:
        ignore += [f"*{s}" for s in _PICKLE_SUFFIXES]
    kwargs = dict(repo_id=repo, revision=revision, allow_patterns=["model_index.json", *(f"{c}/*" for c in COMPONENTS)],
                  ignore_patterns=ignore)
    attempts = [True] if _truthy("HF_HUB_OFFLINE") else [False, True]
    error: Exception | None = None
    for local_only in attempts:
        try:
            return Path(snapshot_download(**kwargs, local_files_only=local_only))
        except Exception as exc:  # huggingface_hub raises several unrelated types (network, cache, revision)
            error = exc
    raise GuidanceError(f"model {repo}@{revision} is not in the local Hugging Face cache and cannot be downloaded "
                        f"({type(error).__name__}: {error})", where="[guidance] model",
                        fix=f"on a machine with network run `hf download {repo} --revision {revision}` (and copy "
                            "the cache), or point [guidance] model at a local diffusers folder")


@contextlib.contextmanager
def _no_progress_bars():
    """transformers' and diffusers' loading bars off while loading (library code does not print)."""
    import diffusers.utils.logging as diffusers_logging
    import transformers.utils.logging as transformers_logging

    states = [(m, m.is_progress_bar_enabled()) for m in (diffusers_logging, transformers_logging)]
    for m, _ in states:
        m.disable_progress_bar()
    try:
        yield
    finally:
        for m, enabled in states:
            if enabled:
                m.enable_progress_bar()


def load_model(model: str, shot_dir: Path, *, allow_pickle: bool = False, device: str | None = None,
               dtype=None) -> GuidanceModel:
    """Load a Stable Diffusion checkpoint for guidance (see ``resolve_model`` for what ``model`` may be).

    ``device``: "cuda" when available, else "cpu"; ``dtype``: float16 on CUDA, float32 on the CPU.
    Safetensors only unless ``allow_pickle``. Weights are frozen.
    """
    import torch

    folder = resolve_model(model, shot_dir, allow_pickle=allow_pickle)
    variants = check_model_folder(folder, allow_pickle=allow_pickle)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = dtype or (torch.float16 if str(device).startswith("cuda") else torch.float32)

    import diffusers
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    common = dict(local_files_only=True, use_safetensors=None if allow_pickle else True)
    index = json.loads((folder / "model_index.json").read_text())
    scheduler_name = (index.get("scheduler") or [None, None])[1]
    scheduler_cls = getattr(diffusers, str(scheduler_name), None)
    if scheduler_cls is None or not hasattr(scheduler_cls, "from_pretrained"):
        scheduler_cls = diffusers.DDPMScheduler   # only the noise schedule is used; any SD config carries it
    loaders = {
        "unet": lambda: UNet2DConditionModel.from_pretrained(folder, subfolder="unet", torch_dtype=dtype,
                                                             variant=variants["unet"], **common),
        "vae": lambda: AutoencoderKL.from_pretrained(folder, subfolder="vae", torch_dtype=dtype,
                                                     variant=variants["vae"], **common),
        "text_encoder": lambda: CLIPTextModel.from_pretrained(folder, subfolder="text_encoder", dtype=dtype,
                                                              variant=variants["text_encoder"], **common),
        "tokenizer": lambda: CLIPTokenizer.from_pretrained(folder, subfolder="tokenizer", local_files_only=True),
        "scheduler": lambda: scheduler_cls.from_pretrained(folder, subfolder="scheduler", local_files_only=True),
    }
    parts = {}
    with _no_progress_bars():
        for name, load in loaders.items():
            try:
                parts[name] = load()
            except (OSError, ValueError, KeyError, RuntimeError) as exc:
                raise GuidanceError(f"cannot load the {name}: {exc}", where=str(folder / name),
                                    fix="check that the folder holds a Stable Diffusion 1.5 / 2.1 class "
                                        "checkpoint") from exc
    scheduler = parts["scheduler"]
    prediction = scheduler.config.get("prediction_type", "epsilon")
    if prediction not in ("epsilon", "v_prediction", "sample"):
        raise GuidanceError(f"unsupported prediction type {prediction!r}", where=str(folder / "scheduler"),
                            fix="use a checkpoint predicting epsilon, v or the sample")
    for name in ("unet", "vae", "text_encoder"):
        parts[name].requires_grad_(False)
        parts[name].eval()
        parts[name].to(device)
    return GuidanceModel(**parts, identity=model_fingerprint(folder), source=model, folder=folder, device=str(device),
                         dtype=dtype)
