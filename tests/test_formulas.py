"""The papers' formulas hold for our layers, every generator keeps odd sizes, and saved models reload exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fauve.models import build_model, load_model
from fauve.models.layers import EPS, CoMatch, ConditionalInstanceNorm, InstanceNorm, adain, gram_matrix, mean_std
from fauve.pipeline import Stylizer

METHODS = ["johnson", "ulyanov", "dumoulin", "msgnet", "adain"]
STYLES = {"dumoulin": ["a", "b", "c"], "msgnet": ["a", "b"], "adain": ["a", "b"]}


def tiny(method: str) -> torch.nn.Module:
    """A tiny model of ``method`` whose every parameter and buffer is random (as after training)."""
    torch.manual_seed(0)
    names = STYLES.get(method)
    kw = {"num_styles": len(names), "style_names": names} if names else {}
    if method == "msgnet":
        kw["num_blocks"] = 1
    model = build_model(method, width=0.125, **kw)
    with torch.no_grad():
        for name, tensor in list(model.named_parameters()) + list(model.named_buffers()):
            leaf = name.rsplit(".", 1)[-1]
            if not tensor.is_floating_point() or name.startswith("encoder.") and method == "adain":
                continue
            if leaf in ("running_var", "style_stds"):
                tensor.uniform_(0.5, 1.5)
            elif leaf in ("running_mean", "style_means", "bias", "beta"):
                tensor.normal_(0.0, 0.1)
            elif leaf == "gamma" or (leaf == "weight" and tensor.dim() == 1):
                tensor.normal_(1.0, 0.3)
            elif leaf == "style_grams":
                tensor.uniform_(0.0, 0.01)
    return model.eval()


def test_instance_norm_output_has_zero_mean_and_unit_variance():
    x = torch.randn(2, 5, 13, 17) * 3.0 + 7.0
    y = InstanceNorm(5)(x)
    mean = y.mean(dim=(2, 3))
    var = y.var(dim=(2, 3), unbiased=False)
    assert torch.allclose(mean, torch.zeros_like(mean), atol=1e-5)
    assert torch.allclose(var, torch.ones_like(var), atol=1e-3)  # eps = 1e-5 against a variance of ~9


def test_cin_with_one_hot_weights_is_instance_norm_with_that_rows_affine():
    torch.manual_seed(1)
    cin = ConditionalInstanceNorm(6, num_styles=4)
    with torch.no_grad():
        cin.gamma.normal_(1.0, 0.5)
        cin.beta.normal_(0.0, 0.5)
    x = torch.randn(3, 6, 9, 11)
    for k in range(4):
        w = torch.zeros(3, 4)
        w[:, k] = 1.0
        expected = torch.nn.functional.instance_norm(x, weight=cin.gamma[k], bias=cin.beta[k], eps=EPS)
        assert torch.allclose(cin(x, w), expected, atol=1e-5)


def test_cin_mixing_is_linear_in_the_weights():
    torch.manual_seed(2)
    cin = ConditionalInstanceNorm(4, num_styles=3)
    with torch.no_grad():
        cin.gamma.normal_(1.0, 0.5)
        cin.beta.normal_(0.0, 0.5)
    x = torch.randn(1, 4, 8, 8)
    w1, w2 = torch.tensor([[0.2, 0.5, 0.3]]), torch.tensor([[0.7, 0.0, 0.3]])
    a, b = 0.3, 1.7
    assert torch.allclose(cin(x, a * w1 + b * w2), a * cin(x, w1) + b * cin(x, w2), atol=1e-5)


def test_adain_output_has_the_styles_channel_mean_and_std():
    torch.manual_seed(3)
    content = torch.randn(2, 8, 10, 12) * 2.0 + 1.0
    style_mean = torch.randn(2, 8, 1, 1)
    style_std = torch.rand(2, 8, 1, 1) + 0.5
    out_mean, out_std = mean_std(adain(content, style_mean, style_std))
    assert torch.allclose(out_mean, style_mean, atol=1e-5)
    assert torch.allclose(out_std, style_std, atol=1e-3)


def test_untrained_msgnet_already_tells_two_styles_apart_after_instance_norm():
    from fauve.models import build_model

    torch.manual_seed(0)
    model = build_model("msgnet", width=0.5, num_styles=2).eval()
    photo, dark, light = torch.rand(1, 3, 96, 96), torch.rand(1, 3, 96, 96) ** 3, torch.rand(1, 3, 96, 96).sqrt()

    def normalised(weight: torch.Tensor) -> list[torch.Tensor]:
        with torch.no_grad():
            model.comatch.weight.copy_(weight)
            f = model.encoder(photo)
            return [torch.nn.functional.instance_norm(model.comatch(f, model.style_gram(s))) for s in (dark, light)]

    c = model.comatch.weight.shape[-1]
    start = normalised(model.comatch.weight.detach().clone())
    reference = normalised(torch.empty(1, c, c).uniform_(0.0, 0.02))  # the reference code's start
    gap = float((start[0] - start[1]).abs().mean())
    assert gap > 0.04 and gap > 3 * float((reference[0] - reference[1]).abs().mean())


def test_comatch_shapes_and_zero_weight_gives_zero():
    torch.manual_seed(4)
    layer = CoMatch(16)
    x = torch.randn(3, 16, 7, 9)
    gram = gram_matrix(torch.randn(1, 16, 5, 5))
    y = layer(x, gram)
    assert y.shape == x.shape and gram.shape == (1, 16, 16)
    # Y = (W·G)ᵀ X̃ by hand, for the first sample
    expected = ((layer.weight[0] @ gram[0]).T @ x[0].reshape(16, -1)).reshape(16, 7, 9)
    assert torch.allclose(y[0], expected, atol=1e-5)
    with torch.no_grad():
        layer.weight.zero_()
    assert torch.count_nonzero(layer(x, gram)) == 0


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("size", [(33, 47), (17, 16), (50, 19), (16, 101)])
def test_every_generator_keeps_odd_sizes_through_the_pipeline(method, size):
    stylizer = Stylizer(tiny(method), device="cpu")
    rgb = np.random.default_rng(0).random((*size, 3), dtype=np.float32)
    out = stylizer.run(rgb)
    assert out.shape == rgb.shape and np.isfinite(out).all()


@pytest.mark.parametrize("method", METHODS)
def test_save_load_round_trip_gives_identical_outputs(method, tmp_path):
    model = tiny(method)
    model.save_pretrained(tmp_path / method)
    assert {"config.json", "model.safetensors"} <= {p.name for p in (tmp_path / method).iterdir()}
    assert not list((tmp_path / method).glob("*.bin")) and not list((tmp_path / method).glob("*.pt"))  # no pickles
    loaded = load_model(tmp_path / method)
    assert type(loaded) is type(model)
    x = torch.rand(1, 3, 32, 40)
    with torch.no_grad():
        if method in STYLES:
            w = torch.tensor([0.25] + [0.75 / (len(STYLES[method]) - 1)] * (len(STYLES[method]) - 1))
            a, b = model(x, w), loaded(x, w)
        else:
            a, b = model(x), loaded(x)
    assert torch.equal(a, b)
    assert loaded.style_names == model.style_names


def test_lattice_penalty_is_zero_on_photos_and_texture_and_its_gradient_removes_a_grid():
    """losses.lattice_penalty: 0 for the photo and for broadband texture added to it, ≫0 for a faint
    4 px pattern; descending it alone removes the pattern (eval's grid score falls under the limit)
    and leaves the photo (the picture moves towards it)."""
    from pathlib import Path

    from fauve import losses
    from fauve.artifacts import GRID_LIMIT, GridMeter
    from fauve.evaluate import load_tensor

    samples = Path(__file__).resolve().parents[1] / "core" / "samples"
    photo = load_tensor(samples / "lighthouse.jpg", 128)[..., :128, :128]
    gen = torch.Generator().manual_seed(0)
    texture = torch.nn.functional.avg_pool2d(torch.randn(1, 1, 130, 130, generator=gen), 3, 1)
    pattern = (torch.rand(1, 1, 4, 4, generator=gen) * 2 - 1).repeat(1, 1, 32, 32)
    assert float(losses.lattice_penalty(photo, photo)) == 0.0
    assert float(losses.lattice_penalty(photo + 0.05 * texture, photo)) < 0.01
    gridded = photo + 0.03 * pattern
    start = float(losses.lattice_penalty(gridded, photo))
    assert start > 1.0

    def grid(picture: torch.Tensor) -> float:
        meter = GridMeter()
        meter.add(picture[0].clamp(0, 1).permute(1, 2, 0).numpy(), photo[0].permute(1, 2, 0).numpy())
        return meter.score()["worst"]

    assert grid(gridded) > 10 * GRID_LIMIT
    image = gridded.clone().requires_grad_(True)
    opt = torch.optim.Adam([image], lr=2e-3)
    for _ in range(60):
        opt.zero_grad()
        losses.lattice_penalty(image, photo).backward()
        opt.step()
    final = image.detach()
    assert float(losses.lattice_penalty(final, photo)) < 0.05 * start
    assert grid(final) < GRID_LIMIT
    assert (final - photo).pow(2).mean() < (gridded - photo).pow(2).mean()


def test_stripe_penalty_matches_the_eval_score_and_its_gradient_removes_hatching():
    """losses.stripe_penalty: its axis excess is fauve.artifacts.axis_excess's (the eval score) to 1e-3; 0 for
    the photo and for noise added to it, >0 for fine horizontal hatching, which descending it alone
    removes (the eval stripe score falls under the limit) while the picture moves towards the photo."""
    from pathlib import Path

    import numpy as np

    from fauve import losses
    from fauve.artifacts import STRIPE_LIMIT, StripeMeter, axis_excess
    from fauve.evaluate import load_tensor

    samples = Path(__file__).resolve().parents[1] / "core" / "samples"
    photo = load_tensor(samples / "lighthouse.jpg", 160)[..., :96, :128]
    gen = torch.Generator().manual_seed(0)
    rows = torch.arange(96, dtype=torch.float32)[:, None]
    hatched = photo + 0.12 * torch.sin(2 * torch.pi * rows / 4.5).expand(1, 3, 96, 128)
    noisy = photo + 0.05 * torch.randn(photo.shape, generator=gen)

    def rgb(t: torch.Tensor) -> np.ndarray:
        return t[0].permute(1, 2, 0).numpy()

    def stripes(t: torch.Tensor) -> float:
        meter = StripeMeter()
        meter.add(rgb(t.clamp(0, 1)), rgb(photo))
        return meter.score()["worst"]

    for picture in (photo, hatched):
        ours = losses._axis_excess(picture)[0]
        y = rgb(picture) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        theirs = axis_excess(y)
        assert abs(float(ours[0]) / theirs["horizontal"] - 1) < 1e-3 and abs(float(ours[1]) / theirs["vertical"] - 1) < 1e-3
    assert float(losses.stripe_penalty(photo, photo)) == 0.0
    assert float(losses.stripe_penalty(noisy, photo)) == 0.0
    start = float(losses.stripe_penalty(hatched, photo))
    assert start > 1.0 and stripes(hatched) > 1.5 * STRIPE_LIMIT
    image = hatched.clone().requires_grad_(True)
    opt = torch.optim.Adam([image], lr=3e-3)
    for _ in range(80):
        opt.zero_grad()
        losses.stripe_penalty(image, photo).backward()
        opt.step()
    final = image.detach()
    assert float(losses.stripe_penalty(final, photo)) < 0.1 * start
    assert stripes(final) < STRIPE_LIMIT
    assert (final - photo).pow(2).mean() < (hatched - photo).pow(2).mean()


def test_shift_equivariance_loss_ignores_texture_that_follows_the_photo_and_its_gradient_removes_a_fixed_grid():
    """losses.shift_equivariance_loss: ~0 for a picture made from the photo by any local operation
    (blur, a texture of its pixels), about the amplitude for a pattern tied to the pixel lattice; descending it
    alone flattens a learnable 4 px tile added to the photo (the eval's grid score falls under the limit)."""
    from pathlib import Path

    from fauve import losses
    from fauve.artifacts import GRID_LIMIT, GridMeter
    from fauve.evaluate import load_tensor

    samples = Path(__file__).resolve().parents[1] / "core" / "samples"
    photo = load_tensor(samples / "lighthouse.jpg", 128)[..., :128, :128]
    blur = torch.full((3, 1, 5, 5), 1 / 25)

    def painterly(x: torch.Tensor) -> torch.Tensor:  # local, so it moves with the photo
        return torch.nn.functional.conv2d(x, blur, padding=2, groups=3) + 0.1 * torch.sin(40 * x)

    for shift in ((1, 0), (3, 5), (4, 6)):
        assert float(losses.shift_equivariance_loss(painterly, photo, painterly(photo), shift)) < 1e-6
    gen = torch.Generator().manual_seed(0)
    tile = torch.nn.Parameter(torch.rand(1, 3, 4, 4, generator=gen) * 0.1)

    def gridded(x: torch.Tensor) -> torch.Tensor:  # the tile starts at pixel (0, 0) whatever the crop
        h, w = x.shape[-2:]
        return x + tile.repeat(1, 1, h // 4 + 1, w // 4 + 1)[..., :h, :w]

    with torch.no_grad():
        start = float(losses.shift_equivariance_loss(gridded, photo, gridded(photo), (1, 2)))
    assert start > 0.02
    with pytest.raises(ValueError, match="not \\(0, 0\\)"):
        losses.shift_equivariance_loss(gridded, photo, gridded(photo), (0, 0))
    opt = torch.optim.Adam([tile], lr=1e-2)
    decay = torch.optim.lr_scheduler.LinearLR(opt, 1.0, 0.0, 200)  # an L1 loss: Adam's steps stay ~lr to the end
    for step in range(200):
        opt.zero_grad()
        losses.shift_equivariance_loss(gridded, photo, gridded(photo), (1 + step % 3, step % 4)).backward()
        opt.step()
        decay.step()
    with torch.no_grad():
        final = gridded(photo)
        assert float(losses.shift_equivariance_loss(gridded, photo, final, (1, 2))) < 0.1 * start
    meter = GridMeter()
    meter.add(final[0].clamp(0, 1).permute(1, 2, 0).numpy(), photo[0].permute(1, 2, 0).numpy())
    assert meter.score()["worst"] < GRID_LIMIT
