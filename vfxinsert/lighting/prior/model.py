"""The lighting prior's network and what its outputs mean.

A small CNN (after Hold-Geoffroy et al. 2017 / Gardner et al. 2017: a convolutional encoder over the
plate, direction as a classification over sphere bins rather than a regressed vector, so an ambiguous
plate gives a multi-modal answer whose mode is still a real light, not the mean of two). The last
feature map is flattened, not pooled, so the network keeps *where* in the frame the bright sky, the lit
faces and the shadows are. Camera pitch, field of view and aspect enter the fully connected layer.

Outputs, all in the camera's heading frame (see data.py):
- ``direction_logits`` (GRID_H x GRID_W): where the key light is;
- ``log_fill`` (3 x GRID_H x GRID_W): log(fill radiance / plate normaliser + FLOOR);
- ``log_key_energy`` (3): log(key energy / normaliser + FLOOR); ``log_key_sharpness`` (1).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from ...color import RGB_LUMINANCE

GRID_H, GRID_W = 16, 32          # the prior's lat-long grid (heading frame): key-direction bins and fill map
NET_H, NET_W = 72, 128           # the plate as the network sees it (16:9; other aspects are resampled)
FLOOR = 1e-3                     # log floor of relative radiance / energy


@dataclass(frozen=True)
class PriorArch:
    """Network size; stored in the weights' metadata so a studio-trained prior of another size loads."""

    widths: tuple[int, ...] = (24, 32, 48, 64, 96, 128)
    hidden: int = 384
    dropout: float = 0.3
    input_pool: int = 1
    """Average-pool the plate by this factor first: coarser plates keep the light's layout (bright sky,
    lit faces, shadows) and lose the texture that lets a network recognise its training scenes."""
    pool: str = "flatten"
    """"flatten": the last feature map as it is; "mean": averaged over the image, with pixel coordinates as
    two extra input channels so *where* survives (far fewer weights: less room to memorise panoramas)."""

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict) -> "PriorArch":
        return cls(widths=tuple(int(w) for w in data["widths"]), hidden=int(data["hidden"]),
                   dropout=float(data["dropout"]), pool=str(data.get("pool", "flatten")),
                   input_pool=int(data.get("input_pool", 1)))


OUTPUTS = GRID_H * GRID_W * 4 + 4


def build_network(arch: PriorArch):
    """The CNN (torch.nn.Module). Strides: 2 on every layer but the last; 72 x 128 in -> 3 x 4 (or so) out."""
    import torch
    from torch import nn

    class PriorNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.coords = arch.pool == "mean"
            layers, c_in = [], 5 if self.coords else 3
            for i, c in enumerate(arch.widths):
                stride = 2 if i < len(arch.widths) - 1 else 1
                layers += [nn.Conv2d(c_in, c, 3, stride, 1, bias=False), nn.BatchNorm2d(c), nn.SiLU()]
                c_in = c
            self.encoder = nn.Sequential(*([nn.AvgPool2d(arch.input_pool)] if arch.input_pool > 1 else []), *layers)
            with torch.no_grad():
                n = arch.widths[-1] if self.coords else self.encoder(torch.zeros(1, 3, NET_H, NET_W)).numel()
            self.head = nn.Sequential(nn.Dropout(arch.dropout), nn.Linear(n + 3, arch.hidden), nn.SiLU(),
                                      nn.Dropout(arch.dropout / 2), nn.Linear(arch.hidden, OUTPUTS))

        def forward(self, image, scalars):
            """image (B, 3, NET_H, NET_W) plate / normaliser (linear); scalars (B, 3)."""
            x = torch.log2(image.clamp_min(2.0 ** -10)) / 8.0
            if self.coords:
                ys = torch.linspace(-1.0, 1.0, x.shape[2]).view(1, 1, -1, 1).expand(x.shape[0], 1, -1, x.shape[3])
                xs = torch.linspace(-1.0, 1.0, x.shape[3]).view(1, 1, 1, -1).expand(x.shape[0], 1, x.shape[2], -1)
                x = self.encoder(torch.cat([x, xs, ys], dim=1)).mean((2, 3))
            else:
                x = self.encoder(x).flatten(1)
            out = self.head(torch.cat([x, scalars], dim=1))
            g = GRID_H * GRID_W
            return (out[:, :g].view(-1, GRID_H, GRID_W), out[:, g:4 * g].view(-1, 3, GRID_H, GRID_W),
                    out[:, 4 * g:4 * g + 3], out[:, 4 * g + 3] + 4.0)

    return PriorNet()


# --------------------------------------------------------------------------------------------------
# What the network sees: the plate resampled and normalised, the camera as three numbers.


def plate_normaliser(rgb: np.ndarray) -> float:
    """Geometric mean luminance of a working-space plate: the unit of the prior's radiometric outputs.

    Robust to a sun in view (a mean would follow it) and to clipped highlights.
    """
    lum = np.maximum(np.asarray(rgb, np.float64) @ np.array(RGB_LUMINANCE), 1e-4)
    return float(np.exp(np.log(lum).mean()))


def heading_of(cam_to_world: np.ndarray) -> float:
    """The camera's heading in degrees: the rotation about +Y that takes -Z to its horizontal view direction."""
    forward = np.asarray(cam_to_world, float)[:3, :3] @ np.array([0.0, 0.0, -1.0])
    return math.degrees(math.atan2(-forward[0], -forward[2]))


def pitch_of(cam_to_world: np.ndarray) -> float:
    forward = np.asarray(cam_to_world, float)[:3, :3] @ np.array([0.0, 0.0, -1.0])
    return math.degrees(math.asin(float(np.clip(forward[1] / np.linalg.norm(forward), -1.0, 1.0))))


def camera_scalars(pitch_deg: float, fov_x_deg: float, aspect: float) -> np.ndarray:
    return np.array([math.radians(pitch_deg), math.radians(fov_x_deg), math.log(aspect)], np.float32)


def resample_area(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resample (H, W, C) to (height, width, C), area-averaging when shrinking (separable, exact weights)."""
    def weights(n_in: int, n_out: int) -> np.ndarray:
        edges = np.linspace(0.0, n_in, n_out + 1)
        w = np.zeros((n_out, n_in))
        for i in range(n_out):
            a, b = edges[i], edges[i + 1]
            if b - a < 1.0:   # enlarging: linear interpolation at the centre
                c = (a + b) / 2 - 0.5
                j = int(np.clip(np.floor(c), 0, n_in - 1))
                f = float(np.clip(c - j, 0.0, 1.0))
                w[i, j] += 1 - f
                w[i, min(j + 1, n_in - 1)] += f
                continue
            for j in range(int(np.floor(a)), int(np.ceil(b))):
                w[i, j] = min(b, j + 1) - max(a, j)
            w[i] /= w[i].sum()
        return w

    rows, cols = weights(image.shape[0], height), weights(image.shape[1], width)
    tmp = np.tensordot(rows, image.astype(np.float64), axes=(1, 0))          # (height, W, C)
    return np.tensordot(cols, tmp, axes=(1, 1)).transpose(1, 0, 2).astype(np.float32)
