"""Architecture options beyond the formula tests: the residual output and the config round trip."""

from __future__ import annotations

import pytest
import torch

from fauve.models import build_model, load_model


def output_conv(model) -> torch.nn.Conv2d:
    return model.decoder[-1].conv if model.method == "msgnet" else model.net.out.conv


@pytest.mark.parametrize("method", ["johnson", "ulyanov", "dumoulin", "msgnet"])
def test_residual_output_starts_as_the_identity_and_survives_save_load(method, tmp_path):
    kw = {"num_styles": 2} if method in ("dumoulin", "msgnet") else {}
    model = build_model(method, width=0.25, residual_output=True, **kw).eval()
    x = torch.rand(1, 3, 36, 44)
    with torch.no_grad():
        assert torch.equal(model(x), x)
        output_conv(model).bias.fill_(0.1)  # a trained model differs from the identity
        y = model(x)
    model.save_pretrained(tmp_path)
    loaded = load_model(tmp_path)
    assert loaded.residual_output is True
    with torch.no_grad():
        assert torch.allclose(loaded(x), y)
        assert torch.allclose(y, x + 0.1)


@pytest.mark.parametrize("method", ["ulyanov", "msgnet"])
def test_paper_generator_has_no_input_skip(method):
    model = build_model(method, width=0.25).eval()
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert not torch.allclose(model(x), x, atol=0.05)


@pytest.mark.parametrize("method", ["johnson", "ulyanov", "dumoulin", "msgnet"])
def test_bilinear_upsampling_shares_the_nearest_weights_and_survives_save_load(method, tmp_path):
    """``upsample="bilinear"`` changes only the resize: a nearest model's weights load into it
    (what ``fauve train --init M --upsample bilinear`` relies on), the outputs differ, and the
    choice is kept in config.json."""
    kw = {"num_styles": 2} if method in ("dumoulin", "msgnet") else {}
    torch.manual_seed(0)
    nearest = build_model(method, width=0.25, **kw).eval()
    bilinear = build_model(method, width=0.25, upsample="bilinear", **kw).eval()
    bilinear.load_state_dict(nearest.state_dict())
    x = torch.rand(1, 3, 36, 44)
    with torch.no_grad():
        y = bilinear(x)
        assert y.shape == x.shape and not torch.allclose(y, nearest(x), atol=1e-3)
    bilinear.save_pretrained(tmp_path)
    loaded = load_model(tmp_path)
    assert loaded.upsample == "bilinear"
    with torch.no_grad():
        assert torch.allclose(loaded(x), y, atol=1e-6)
    with pytest.raises(ValueError, match="nearest, bilinear or transposed" if method != "msgnet" else "nearest or bilinear"):
        build_model(method, width=0.25, upsample="bicubic", **kw)


def _grid_rows(path, size: int) -> list[torch.Tensor]:
    import numpy as np
    from PIL import Image

    from fauve.sample_grid import PADDING

    grid = torch.from_numpy(np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255).permute(2, 0, 1)
    step = size + PADDING
    return [torch.stack([grid[:, PADDING + r * step:PADDING + r * step + size, PADDING + c * step:PADDING + c * step + size]
                         for c in range(2)]) for r in range(grid.shape[1] // step)]


def test_sample_grid_shows_the_bundled_photos_then_one_row_per_style(tmp_path):
    from fauve.sample_grid import render_sample_grid, sample_photos

    torch.manual_seed(0)
    model = build_model("dumoulin", width=0.25, num_styles=3).eval()
    with torch.no_grad():  # give each style its own γ, β (a fresh model starts them all at 1, 0)
        for p in model.parameters():
            if p.dim() == 2 and p.shape[0] == 3:
                p.normal_(1.0, 0.5)
    path = render_sample_grid(model, tmp_path / "samples.png", size=48)
    rows = _grid_rows(path, 48)
    assert len(rows) == 4
    assert (rows[0] - sample_photos(48)).abs().max() <= 1 / 255 + 1e-6
    styled = rows[1:]
    for i in range(3):
        assert (styled[i] - rows[0]).abs().mean() > 0.02
        for j in range(i):
            assert (styled[i] - styled[j]).abs().mean() > 0.01


def test_msgnet_covariance_style_stat_is_the_gram_of_centred_features_and_survives_save_load(tmp_path):
    """``style_stat="covariance"``: G_s = (F − μ)(F − μ)ᵀ / (C·H·W) = Gram(F) − μμᵀ / C, the Gram minus the
    outer product of the per-channel means; the same weights as a Gram model; kept in config.json."""
    torch.manual_seed(0)
    gram_net = build_model("msgnet", width=0.25, num_styles=1).eval()
    cov_net = build_model("msgnet", width=0.25, num_styles=1, style_stat="covariance").eval()
    cov_net.load_state_dict(gram_net.state_dict())
    style = torch.rand(1, 3, 48, 40)
    with torch.no_grad():
        f = gram_net.encoder(style)
        c = f.shape[1]
        mu = f.mean(dim=(2, 3)).reshape(1, c, 1)
        gram = gram_net.style_gram(style)
        expected = gram - mu @ mu.transpose(1, 2) / c  # Gram / (C·H·W) minus μμᵀ / C
        got = cov_net.style_gram(style)
    assert torch.allclose(got, expected, atol=1e-6)
    assert float((got - gram).abs().max()) > 1e-3  # not the Gram
    cov_net.save_pretrained(tmp_path)
    assert load_model(tmp_path).style_stat == "covariance"
    assert build_model("msgnet", width=0.25).hub_config()["style_stat"] == "gram"
    with pytest.raises(ValueError, match="gram or covariance"):
        build_model("msgnet", width=0.25, style_stat="corr")
