"""A tiny but real Stable Diffusion checkpoint for tests (no downloadable weights needed).

``build_tiny_sd(folder)`` writes a diffusers folder with the layout of a real SD 1.5 / 2.1 checkpoint:
``model_index.json``, a ``UNet2DConditionModel`` (cross-attention, so the LoRA has projections to adapt),
an ``AutoencoderKL`` (4 latent channels, scale factor 2), a ``CLIPTextModel``, a real ``CLIPTokenizer``
built from a ``vocab.json`` + ``merges.txt`` written here (letters, the words of the project's prompts),
and a ``DDPMScheduler`` with SD's scaled-linear betas. Every module is built after
``torch.manual_seed(0)``, so the weights are the same on every run. Native size: 32 px (16 x 16 latents).
"""
from __future__ import annotations

import json
import string
from pathlib import Path

NATIVE_PX = 32
MAX_TOKENS = 16
SPECIAL = ("<|startoftext|>", "<|endoftext|>", "<unk>")
WORDS = ("a", "photo", "of", "sks", "scene", "in", "teapot", "ball", "sphere")
"""Whole words in the vocabulary (each one token); anything else falls back to letters."""


def write_clip_vocab(folder: Path) -> tuple[Path, Path]:
    """A CLIP BPE vocabulary: specials, letters (inside and at the end of a word), and merges that build
    each of WORDS into one end-of-word token. Returns (vocab.json, merges.txt)."""
    folder.mkdir(parents=True, exist_ok=True)
    vocab: dict[str, int] = {}
    for token in (*SPECIAL, *string.ascii_lowercase, *(c + "</w>" for c in string.ascii_lowercase)):
        vocab.setdefault(token, len(vocab))
    merges: list[str] = []
    for word in WORDS:
        parts = list(word[:-1]) + [word[-1] + "</w>"]
        while len(parts) > 1:   # merge left to right: p h o t o</w> -> ph o t o</w> -> pho t o</w> ...
            pair = f"{parts[0]} {parts[1]}"
            merged = parts[0] + parts[1]
            if pair not in merges:
                merges.append(pair)
            vocab.setdefault(merged, len(vocab))
            parts = [merged] + parts[2:]
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    return folder / "vocab.json", folder / "merges.txt"


def tiny_components(workdir: Path) -> dict:
    """The five components, built in memory (deterministic)."""
    import torch
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    vocab, merges = write_clip_vocab(workdir / "vocab")
    tokenizer = CLIPTokenizer(vocab=str(vocab), merges=str(merges), unk_token="<unk>", model_max_length=MAX_TOKENS)
    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        sample_size=NATIVE_PX // 2, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(8, 16),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=16, attention_head_dim=4, norm_num_groups=4)
    torch.manual_seed(0)
    vae = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 8),
                        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
                        norm_num_groups=4, sample_size=NATIVE_PX)
    torch.manual_seed(0)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(json.loads(vocab.read_text())), hidden_size=16, intermediate_size=32, num_hidden_layers=2,
        num_attention_heads=2, max_position_embeddings=MAX_TOKENS, projection_dim=16,
        bos_token_id=0, eos_token_id=1, pad_token_id=1))
    scheduler = DDPMScheduler(num_train_timesteps=1000, beta_schedule="scaled_linear", beta_start=0.00085,
                              beta_end=0.012, clip_sample=False, steps_offset=1)
    return {"unet": unet, "vae": vae, "text_encoder": text_encoder, "tokenizer": tokenizer, "scheduler": scheduler}


def save_tiny_sd(components: dict, folder: Path, *, safe_serialization: bool = True) -> Path:
    """``save_pretrained`` every component into ``folder`` and write its model_index.json."""
    folder.mkdir(parents=True, exist_ok=True)
    index = {"_class_name": "StableDiffusionPipeline", "_diffusers_version": _version("diffusers"),
             "requires_safety_checker": False, "safety_checker": [None, None], "feature_extractor": [None, None]}
    for name, module in components.items():
        kwargs = {"safe_serialization": safe_serialization} if name in ("unet", "vae", "text_encoder") else {}
        module.save_pretrained(folder / name, **kwargs)
        library = "transformers" if name in ("text_encoder", "tokenizer") else "diffusers"
        index[name] = [library, type(module).__name__]
    (folder / "model_index.json").write_text(json.dumps(index, indent=2))
    return folder


def build_tiny_sd(folder: Path, *, safe_serialization: bool = True) -> Path:
    """Build and save a tiny SD into ``folder`` (see the module docstring)."""
    return save_tiny_sd(tiny_components(folder.parent / f"{folder.name}-src"), folder,
                        safe_serialization=safe_serialization)


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)
