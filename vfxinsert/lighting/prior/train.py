"""`vfxinsert train-prior`: train the lighting prior on a folder of HDR panoramas, reproducibly.

1. Split by panorama (data.split_panoramas); hash every file (the sidecar records them).
2. Synthesise a fixed bank of plates per panorama (seeded by (seed, panorama, crop)), cached as plain
   arrays (.npz, loaded without pickle) beside the output, so a resumed run does not redo it.
3. Train ``members`` networks one after the other (an ensemble, each its own seed) with AdamW and a
   cosine learning rate; every epoch draws its order, augmentation and dropout from (seed, epoch) and
   ends with a checkpoint (weights + optimiser moments as safetensors, the rest JSON), so a killed run
   resumes at the last epoch boundary and ends bit-identical to an uninterrupted one. A horizontal flip
   of plate + targets doubles the data.
4. Validate on the held-out panoramas (never seen in training) and write the weights (safetensors,
   float16) with a JSON sidecar: version, training-set hashes, split, settings, validation figures.
"""
from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np

from ...fsutil import atomic_output, atomic_write_text
from .data import SYNTHESIS_VERSION, analyse_panorama, file_sha256, synthesise
from .estimate import PRIOR_FORMAT, PRIOR_VERSION, expected_error_direction, network_outputs
from .model import GRID_H, GRID_W, NET_H, NET_W, PriorArch, build_network

Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class TrainSettings:
    """Everything that decides the result (the sidecar records it; a checkpoint resumes only under equal settings)."""

    crops_per_panorama: int = 400
    """Synthesised plates per training panorama (each also seen mirrored)."""
    val_crops_per_panorama: int = 24
    epochs: int = 10
    batch: int = 64
    lr: float = 2e-3
    weight_decay: float = 5e-4
    seed: int = 0
    direction_kappa: float = 25.0
    """Sharpness of the soft key-direction target (about 11 degrees wide)."""
    augment: bool = True
    """Per-epoch white balance and random erasing of the plates (see _batch)."""
    members: int = 4
    """Networks in the ensemble (each its own seed); their direction probabilities are averaged."""
    arch: PriorArch = field(default_factory=PriorArch)


@dataclass(frozen=True)
class Bank:
    images: np.ndarray        # (N, 3, NET_H, NET_W) float16
    scalars: np.ndarray       # (N, 3)
    key_direction: np.ndarray  # (N, 3)
    log_key_energy: np.ndarray  # (N, 3)
    log_key_sharpness: np.ndarray  # (N,)
    log_fill: np.ndarray      # (N, 3, GRID_H, GRID_W)
    panorama: np.ndarray      # (N,) index into the bank's panorama list

    def __len__(self) -> int:
        return len(self.images)


def build_bank(paths: list[Path], crops: int, seed: int, on_progress: Progress | None = None) -> Bank:
    """Synthesise ``crops`` plates per panorama, deterministic in (seed, panorama index, crop index)."""
    from ...color import ColorPipeline
    from ...plates import read_image

    colour = ColorPipeline()
    rows = {k: [] for k in Bank.__dataclass_fields__}
    total = len(paths) * crops
    for p_idx, path in enumerate(paths):
        pano = read_image(path).rgb
        light = analyse_panorama(pano)
        for c in range(crops):
            ex = synthesise(pano, light, np.random.default_rng([seed, p_idx, c]), colour)
            rows["images"].append(np.minimum(ex.image, 6e4).transpose(2, 0, 1).astype(np.float16))   # float16 range
            rows["scalars"].append(ex.scalars)
            rows["key_direction"].append(ex.key_direction)
            rows["log_key_energy"].append(ex.log_key_energy)
            rows["log_key_sharpness"].append(ex.log_key_sharpness)
            rows["log_fill"].append(ex.log_fill.transpose(2, 0, 1))
            rows["panorama"].append(p_idx)
            if on_progress:
                on_progress(p_idx * crops + c + 1, total, f"plates from {path.name}")
    # C order whatever the rows' strides: a reduction over a strided copy sums in another order, and a
    # bank read back from its cache must train bit-identically to a freshly built one
    return Bank(**{k: np.ascontiguousarray(np.stack(v) if k not in ("log_key_sharpness", "panorama") else np.asarray(v))
                   for k, v in rows.items()})


def cached_bank(cache: Path, paths: list[Path], hashes: list[str], crops: int, seed: int,
                on_progress: Progress | None) -> Bank:
    """The bank from its cache file when the inputs match (data only: npz without pickle), else built."""
    key = hashlib.sha256(json.dumps([SYNTHESIS_VERSION, hashes, crops, seed, NET_H, NET_W, GRID_H, GRID_W])
                         .encode()).hexdigest()[:16]
    file = cache / f"bank-{key}.npz"
    if file.is_file():
        try:
            with np.load(file, allow_pickle=False) as data:
                return Bank(**{k: data[k] for k in Bank.__dataclass_fields__})
        except (OSError, KeyError, ValueError):
            pass   # a damaged cache is rebuilt
    bank = build_bank(paths, crops, seed, on_progress)
    cache.mkdir(parents=True, exist_ok=True)
    with atomic_output(file) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **asdict(bank))
    return bank


def _batch(bank: Bank, idx: np.ndarray, flip: np.ndarray, kappa: float, rng: np.random.Generator | None = None):
    """Tensors for a batch; rows with ``flip`` are mirrored left-right (x -> -x in the heading frame).

    With ``rng`` (training) each plate also gets a fresh white balance (targets follow it), and half of
    them lose a random rectangle (filled with the plate's mean): 26 panoramas are few enough for a
    network to recognise each scene, and these make every epoch's plates new ones.
    """
    import torch

    from ..panorama import texel_directions, texel_solid_angles

    images = np.ascontiguousarray(bank.images[idx], dtype=np.float32)
    images[flip] = images[flip][..., ::-1]
    key = bank.key_direction[idx].copy()
    key[flip, 0] *= -1.0
    fill = bank.log_fill[idx].copy()
    fill[flip] = fill[flip][..., ::-1]    # column j <-> W-1-j is u <-> 1-u, i.e. x -> -x
    energy = bank.log_key_energy[idx].copy()
    if rng is not None:
        from ...color import RGB_LUMINANCE

        gain = np.exp(rng.normal(0.0, 0.15, (len(idx), 3)))
        gain /= (gain @ np.array(RGB_LUMINANCE))[:, None]
        images *= gain[:, :, None, None]
        fill += np.log(gain)[:, :, None, None]
        energy += np.log(gain)
        for i in np.flatnonzero(rng.uniform(size=len(idx)) < 0.5):
            h, w = (rng.uniform(0.2, 0.5, 2) * images.shape[2:]).astype(int)
            y, x = rng.integers(0, images.shape[2] - h), rng.integers(0, images.shape[3] - w)
            images[i, :, y:y + h, x:x + w] = images[i].mean((1, 2))[:, None, None]
    dirs = texel_directions(GRID_H, GRID_W).reshape(-1, 3)
    omega = (texel_solid_angles(GRID_H, GRID_W) * np.ones((1, GRID_W))).reshape(-1)
    target = omega * np.exp(kappa * (key @ dirs.T - 1.0))
    target /= target.sum(1, keepdims=True)
    t = lambda a: torch.tensor(np.ascontiguousarray(a), dtype=torch.float32)
    return (t(images), t(bank.scalars[idx]), t(target.reshape(-1, GRID_H, GRID_W)), t(energy),
            t(bank.log_key_sharpness[idx]), t(fill), t(key))


def losses(outputs, batch):
    """Direction cross-entropy (soft target over solid-angle weighted cells) + log L1 on the fill (solid-angle
    weighted), the key energy and the key sharpness."""
    import torch

    from ..panorama import texel_solid_angles

    logits, log_fill, log_energy, log_sharp = outputs
    _, _, target, t_energy, t_sharp, t_fill, _ = batch
    log_w = torch.tensor(np.log(texel_solid_angles(GRID_H, GRID_W) * np.ones((1, GRID_W))), dtype=torch.float32)
    log_p = torch.log_softmax((logits + log_w).flatten(1), dim=1)
    direction = -(target.flatten(1) * log_p).sum(1).mean()
    w = torch.tensor(texel_solid_angles(GRID_H, GRID_W) / (4 * math.pi), dtype=torch.float32)   # sums to 1
    fill = ((log_fill - t_fill).abs() * w).sum((1, 2, 3)).mean() / 3.0
    energy = (log_energy - t_energy).abs().mean()
    sharp = (log_sharp - t_sharp).abs().mean()
    parts = {"direction": direction, "fill": fill, "energy": energy, "sharpness": sharp}
    return direction + fill + 0.5 * energy + 0.2 * sharp, {k: float(v.detach()) for k, v in parts.items()}


def evaluate(networks: list, bank: Bank, kappa: float, names: list[str] | None = None) -> dict:
    """Validation figures: key direction error (median, all cases, and per panorama when ``names`` are
    given), azimuth error of keys below 60 degrees elevation, and the mean log errors of fill and key energy."""
    import torch

    for network in networks:
        network.eval()
    errors, azimuth, fill_err, energy_err = [], [], [], []
    with torch.no_grad():
        for start in range(0, len(bank), 128):
            idx = np.arange(start, min(start + 128, len(bank)))
            batch = _batch(bank, idx, np.zeros(len(idx), bool), kappa)
            probs, log_fill, log_energy, _ = network_outputs(networks, batch[0].numpy(), batch[1].numpy())
            for i, k in enumerate(batch[6].numpy()):
                d = expected_error_direction(probs[i])
                errors.append(math.degrees(math.acos(float(np.clip(d @ k, -1, 1)))))
                if math.degrees(math.asin(float(np.clip(k[1], -1, 1)))) < 60.0:
                    a = math.atan2(d[0], -d[2]) - math.atan2(k[0], -k[2])
                    azimuth.append(abs(math.degrees(math.atan2(math.sin(a), math.cos(a)))))
            fill_err.append(np.abs(log_fill - batch[5].numpy()).mean((1, 2, 3)))
            energy_err.append(np.abs(log_energy - batch[3].numpy()).mean(1))
    per = {}
    for p_idx, name in enumerate(names or []):
        sel = bank.panorama == p_idx
        per[name] = round(float(np.median(np.asarray(errors)[sel])), 1) if sel.any() else None
    return {"cases": len(bank), "direction_error_deg_median": float(np.median(errors)),
            **({"direction_error_deg_median_per_panorama": per} if per else {}),
            "direction_error_deg_mean": float(np.mean(errors)),
            "azimuth_error_deg_median_below_60": float(np.median(azimuth)) if azimuth else None,
            "log_fill_l1": float(np.concatenate(fill_err).mean()),
            "log_key_energy_l1": float(np.concatenate(energy_err).mean())}


def _settings_key(settings: TrainSettings, hashes: list[str]) -> str:
    return hashlib.sha256(json.dumps([_jsonable(settings), hashes], sort_keys=True).encode()).hexdigest()[:16]


def _jsonable(settings: TrainSettings) -> dict:
    d = asdict(settings)
    d["arch"] = settings.arch.to_dict()
    return d


def _save_checkpoint(path: Path, network, optimiser, state: dict) -> None:
    from safetensors.torch import save_file

    tensors = {f"model.{k}": v.detach().contiguous() for k, v in network.state_dict().items()}
    for idx, s in optimiser.state_dict()["state"].items():
        for k, v in s.items():
            tensors[f"opt.{idx}.{k}"] = v.detach().contiguous().reshape(v.shape)
    with atomic_output(path.with_suffix(".ckpt.safetensors")) as tmp:
        save_file(tensors, str(tmp))
    atomic_write_text(path.with_suffix(".ckpt.json"), json.dumps(state, indent=1))


def _load_checkpoint(path: Path, network, optimiser, key: str) -> dict | None:
    """The checkpoint's state when it exists, is readable and belongs to these settings; else None."""
    from safetensors.torch import load_file

    meta, weights = path.with_suffix(".ckpt.json"), path.with_suffix(".ckpt.safetensors")
    try:
        state = json.loads(meta.read_text())
        if state.get("key") != key:
            return None
        tensors = load_file(str(weights))
        network.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        opt_state = optimiser.state_dict()
        for idx in opt_state["state"] or range(len(opt_state["param_groups"][0]["params"])):
            names = [k for k in tensors if k.startswith(f"opt.{idx}.")]
            if names:
                opt_state["state"][idx] = {k.split(".", 2)[2]: tensors[k] for k in names}
        optimiser.load_state_dict(opt_state)
        return state
    except (OSError, ValueError, KeyError, RuntimeError):
        return None


def _train_member(member: int, settings: TrainSettings, train_bank: Bank, val_bank: Bank | None, val_names: list[str],
                  ckpt: Path, key: str, device: str, on_progress: Progress | None):
    """Train one member of the ensemble (its own seed), resuming from its checkpoint; returns (network, history)."""
    import torch

    seed = settings.seed + 1000 * member
    torch.manual_seed(seed)
    network = build_network(settings.arch).to(device)
    optimiser = torch.optim.AdamW(network.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    state = _load_checkpoint(ckpt, network, optimiser, key) or {"key": key, "epoch": 0, "history": []}
    steps_per_epoch = len(train_bank) // settings.batch
    total = settings.epochs * steps_per_epoch
    label = f"member {member + 1}/{settings.members} " if settings.members > 1 else ""
    for epoch in range(state["epoch"], settings.epochs):
        network.train()
        rng = np.random.default_rng([seed, epoch])
        torch.manual_seed(seed * 100003 + epoch)
        order = rng.permutation(len(train_bank))
        flips = rng.uniform(size=len(train_bank)) < 0.5
        sums: dict[str, float] = {}
        for step in range(steps_per_epoch):
            done = epoch * steps_per_epoch + step
            lr = settings.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * done / total)))
            for g in optimiser.param_groups:
                g["lr"] = lr
            idx = order[step * settings.batch:(step + 1) * settings.batch]
            batch = [t.to(device) for t in _batch(train_bank, idx, flips[idx], settings.direction_kappa,
                                                  rng if settings.augment else None)]
            loss, parts = losses(network(batch[0], batch[1]), batch)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            for k, v in parts.items():
                sums[k] = sums.get(k, 0.0) + v
            if on_progress:
                on_progress(member * total + done + 1, settings.members * total,
                            f"{label}epoch {epoch + 1}/{settings.epochs} loss {loss.item():.3f}")
        record = {"member": member, "epoch": epoch + 1, **{k: v / steps_per_epoch for k, v in sums.items()}}
        if val_bank is not None and ((epoch + 1) % 4 == 0 or epoch + 1 == settings.epochs):
            record["validation"] = evaluate([network.cpu()], val_bank, settings.direction_kappa, val_names)
            network.to(device)
        state["history"].append(record)
        state["epoch"] = epoch + 1
        _save_checkpoint(ckpt, network, optimiser, state)
    return network.cpu().eval(), state["history"]


def train_prior(train_paths: list[Path], val_paths: list[Path], out: Path, settings: TrainSettings = TrainSettings(),
                device: str = "cpu", on_progress: Progress | None = None, cache: Path | None = None) -> dict:
    """Train, validate and write ``out`` (.safetensors) + ``out.json``; returns the sidecar."""
    import torch
    from safetensors.torch import save_file

    t_start = time.perf_counter()
    out = Path(out)
    cache = cache or out.parent / ".cache"
    hashes = [file_sha256(p) for p in train_paths]
    val_hashes = [file_sha256(p) for p in val_paths]
    train_bank = cached_bank(cache, train_paths, hashes, settings.crops_per_panorama, settings.seed, on_progress)
    val_bank = cached_bank(cache, val_paths, val_hashes, settings.val_crops_per_panorama, settings.seed + 1,
                           on_progress) if val_paths else None
    val_names = [p.name for p in val_paths]
    key = _settings_key(settings, hashes)
    members, history = [], []
    for m in range(settings.members):
        network, hist = _train_member(m, settings, train_bank, val_bank, val_names, _member_checkpoint(out, m),
                                      key, device, on_progress)
        members.append(network)
        history += hist

    validation = evaluate(members, val_bank, settings.direction_kappa, val_names) if val_bank is not None else None
    tensors = {}
    for m, network in enumerate(members):
        for k, v in network.state_dict().items():
            v = v.detach()
            tensors[f"m{m}.{k}"] = (v.to(torch.float16) if v.dtype.is_floating_point else v).contiguous()
    meta = {"format": PRIOR_FORMAT, "version": str(PRIOR_VERSION), "arch": json.dumps(settings.arch.to_dict()),
            "members": str(len(members))}
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(out) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    from ... import __version__

    sidecar = {"format": PRIOR_FORMAT, "version": PRIOR_VERSION, "vfxinsert": __version__,
               "weights_sha256": file_sha256(out),
               "train": [{"file": p.name, "sha256": h} for p, h in zip(train_paths, hashes)],
               "validation": [{"file": p.name, "sha256": h} for p, h in zip(val_paths, val_hashes)],
               "settings": _jsonable(settings), "device": device,
               "train_examples": len(train_bank) * 2, "validation_examples": len(val_bank) if val_bank else 0,
               "validation_figures": validation, "history": history,
               "seconds": round(time.perf_counter() - t_start, 1)}
    atomic_write_text(out.with_suffix(".json"), json.dumps(sidecar, indent=1))
    for m in range(settings.members):
        ckpt = _member_checkpoint(out, m)
        for leftover in (ckpt.with_suffix(".ckpt.json"), ckpt.with_suffix(".ckpt.safetensors")):
            leftover.unlink(missing_ok=True)
    return sidecar


def _member_checkpoint(out: Path, member: int) -> Path:
    """The stem the checkpoint files of one member hang off (``<out>.m0.ckpt.json`` ...)."""
    return out.with_name(f"{out.stem}.m{member}{out.suffix}")


def quick_settings(**overrides) -> TrainSettings:
    """Small settings for tests and smoke runs."""
    base = TrainSettings(crops_per_panorama=32, val_crops_per_panorama=8, epochs=2, batch=16,
                         arch=PriorArch(widths=(8, 12, 16, 24), hidden=64, dropout=0.1))
    return replace(base, **overrides)
