"""The trainers on tiny models: losses go down, resume after SIGKILL, DDP on CPU, add-style, bad data."""

from __future__ import annotations

import csv
import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from fauve.models import load_model
from train_fixtures import make_photo, train_data  # noqa: F401 - pytest fixture

TINY = ["--size", "32", "--width", "0.25", "--batch-size", "2", "--sample-every", "1000", "--checkpoint-every", "5"]


def fauve(*args: str, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "fauve.cli", *args], capture_output=True, text=True, env=env, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"fauve {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc


def losses(folder: Path, column: str = "loss") -> list[float]:
    with (folder / "losses.csv").open() as f:
        return [float(row[column]) for row in csv.DictReader(f)]


def style_args(method: str, data) -> list[str]:
    if method in ("johnson", "ulyanov"):
        return ["--style", str(data["style"])]
    return ["--styles", str(data["styles"])]


@pytest.mark.parametrize("method", ["johnson", "ulyanov", "dumoulin", "msgnet", "adain"])
def test_tiny_run_lowers_loss_and_writes_a_loadable_model(method, train_data, tmp_path):
    out = tmp_path / method
    iters = "40"
    extra = ["--lr", "1e-3"] if method == "adain" else []
    fauve("train", method, "--content", str(train_data["content"]), *style_args(method, train_data), "-o", str(out), "--iters", iters, *TINY, *extra)
    curve = losses(out)
    assert len(curve) == int(iters)
    assert sum(curve[-5:]) / 5 < 0.7 * sum(curve[:5]) / 5, curve
    # The corrupt file was skipped and counted, not a crash.
    with (out / "losses.csv").open() as f:
        assert int(list(csv.DictReader(f))[-1]["skipped_images"]) == 1
    config = json.loads((out / "config.json").read_text())
    assert config["method"] == method
    assert config["loss_net"]["name"] == "vgg16" and config["loss_net"]["source"] in ("torchvision", "hed")
    assert (out / "samples.png").is_file() and (out / "README.md").is_file()
    model = load_model(out)
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        y = model(x)
    assert y.shape == x.shape and torch.isfinite(y).all()
    if method in ("dumoulin", "msgnet", "adain"):
        assert model.style_names == ["painting0", "painting1", "painting2"]


def test_resume_after_sigkill_follows_the_uninterrupted_curve(train_data, tmp_path):
    # The lr warm-up spans the kill, so the resumed run must rebuild it from the step alone; the
    # gradient clip's running norm comes back from the checkpoint.
    common = ["train", "ulyanov", "--content", str(train_data["content"]), "--style", str(train_data["style"]), "--iters", "30",
              "--warmup", "15", "--clip-grad", "2", *TINY]
    full = tmp_path / "full"
    fauve(*common, "-o", str(full))

    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "fauve.cli", *common, "-o", str(killed)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline:
        ckpt = killed / "checkpoint.pt"
        if ckpt.is_file() and torch.load(ckpt, weights_only=True)["step"] >= 10:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed / "config.json").exists(), "the run finished before it could be killed"
    fauve(*common, "-o", str(killed), "--resume")
    resumed, uninterrupted = losses(killed), losses(full)
    assert len(resumed) == len(uninterrupted) == 30
    for a, b in zip(resumed, uninterrupted):
        assert a == pytest.approx(b, rel=1e-4, abs=1e-6)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_two_processes_on_cpu(train_data, tmp_path):
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(_free_port()), "-m", "fauve.cli", "train", "ulyanov", "--content", str(train_data["content"]),
           "--style", str(train_data["style"]), "-o", str(out), "--iters", "12", "--device", "cpu", *TINY]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    curve = losses(out)
    assert len(curve) == 12  # rank 0 alone writes: one row per step
    assert curve[-1] < curve[0]
    assert load_model(out).method == "ulyanov"


def test_add_style_trains_new_rows_and_leaves_old_styles_bit_identical(train_data, tmp_path):
    base = tmp_path / "base"
    styles = sorted(train_data["styles"].iterdir())
    fauve("train", "dumoulin", "--content", str(train_data["content"]), "--style", str(styles[0]), "--style", str(styles[1]),
          "-o", str(base), "--iters", "10", *TINY)
    grown = tmp_path / "grown"
    fauve("train", "dumoulin", "--content", str(train_data["content"]), "--add-style", str(styles[2]), "--from", str(base),
          "-o", str(grown), "--iters", "15", *TINY)
    old, new = load_model(base), load_model(grown)
    assert new.style_names == ["painting0", "painting1", "painting2"]
    old_state, new_state = old.state_dict(), new.state_dict()
    for name, tensor in old_state.items():
        if name.endswith((".gamma", ".beta")):
            assert torch.equal(new_state[name][:2], tensor), name
            assert not torch.equal(new_state[name][2], tensor.mean(0)), f"{name}: the new row did not train"
        else:
            assert torch.equal(new_state[name], tensor), name
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        for i in range(2):
            assert torch.equal(old(x, torch.eye(2)[i]), new(x, torch.eye(3)[i]))
    assert losses(grown)[-1] < losses(grown)[0]
    assert new.style_sources == [p.name for p in styles[:3]]


def test_add_style_with_a_style_the_model_has_retrains_only_that_row_in_place(train_data, tmp_path):
    base = tmp_path / "base"
    styles = sorted(train_data["styles"].iterdir())[:3]
    fauve("train", "dumoulin", "--content", str(train_data["content"]), *[a for p in styles for a in ("--style", str(p))],
          "-o", str(base), "--iters", "6", *TINY)
    again = tmp_path / "again"
    fauve("train", "dumoulin", "--content", str(train_data["content"]), "--add-style", str(styles[1]), "--from", str(base),
          "-o", str(again), "--iters", "8", "--lattice-weight", "5", *TINY)
    old, new = load_model(base), load_model(again)
    assert new.style_names == old.style_names and new.style_sources == old.style_sources
    old_state, new_state = old.state_dict(), new.state_dict()
    for name, tensor in old_state.items():
        if name.endswith((".gamma", ".beta")):
            assert torch.equal(new_state[name][[0, 2]], tensor[[0, 2]]), name
        else:
            assert torch.equal(new_state[name], tensor), name
    assert any(not torch.equal(new_state[n][1], t[1]) for n, t in old_state.items() if n.endswith(".gamma")), "row 1 did not train"
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(old(x, torch.eye(3)[2]), new(x, torch.eye(3)[2]))
        assert not torch.equal(old(x, torch.eye(3)[1]), new(x, torch.eye(3)[1]))
    assert new.training_recipe["trained_styles"] == [styles[1].stem]


def test_init_from_a_trained_model_fine_tunes_and_ulyanov_seeds_every_dumoulin_style(train_data, tmp_path):
    content = str(train_data["content"])
    styles = sorted(train_data["styles"].iterdir())
    base = tmp_path / "base"
    fauve("train", "ulyanov", "--content", content, "--style", str(styles[0]), "-o", str(base), "--iters", "12",
          "--residual-output", *TINY)
    # ulyanov → dumoulin with lr 0: every style's row is the single-style model, so each style paints like it.
    seeded = tmp_path / "seeded"
    fauve("train", "dumoulin", "--content", content, "--style", str(styles[1]), "--style", str(styles[2]),
          "-o", str(seeded), "--iters", "1", "--lr", "0", "--init", str(base), *TINY)
    old, new = load_model(base), load_model(seeded)
    assert new.residual_output and new.width == old.width  # the architecture comes from --init
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        for i in range(2):
            assert torch.allclose(new(x, torch.eye(2)[i]), old(x), atol=1e-6)
    assert json.loads((seeded / "config.json").read_text())["training"]["init_from"] == "base"
    # Fine-tuning to another style starts where the base model is, far below a fresh run's first loss.
    tuned, fresh = tmp_path / "tuned", tmp_path / "fresh"
    for out, extra in ((tuned, ["--init", str(base)]), (fresh, ["--residual-output"])):
        fauve("train", "ulyanov", "--content", content, "--style", str(styles[0]), "-o", str(out), "--iters", "3", *TINY, *extra)
    assert losses(tuned, "style")[0] < 0.9 * losses(fresh, "style")[0]
    # A model of another method is refused before training, with a hint.
    proc = fauve("train", "johnson", "--content", content, "--style", str(styles[0]), "-o", str(tmp_path / "bad"),
                 "--init", str(seeded), *TINY, check=False)
    assert proc.returncode == 2 and "Cannot start a johnson run from a dumoulin model" in proc.stderr and "hint:" in proc.stderr


def test_a_ulyanov_run_may_start_from_one_style_of_a_dumoulin_model(train_data, tmp_path):
    content = str(train_data["content"])
    styles = sorted(train_data["styles"].iterdir())
    multi = tmp_path / "multi"
    fauve("train", "dumoulin", "--content", content, "--style", str(styles[0]), "--style", str(styles[1]), "-o", str(multi),
          "--iters", "6", "--residual-output", *TINY)
    # dumoulin → ulyanov with lr 0: the single-style net is the multi-style net at the row of the run's painting.
    single = tmp_path / "single"
    fauve("train", "ulyanov", "--content", content, "--style", str(styles[1]), "-o", str(single), "--iters", "1", "--lr", "0",
          "--init", str(multi), *TINY)
    old, new = load_model(multi), load_model(single)
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(new(x), old(x, torch.eye(2)[1]), atol=1e-6)
        assert not torch.allclose(new(x), old(x, torch.eye(2)[0]), atol=1e-6)  # the other row paints otherwise
    training = json.loads((single / "config.json").read_text())["training"]
    assert training["init_from"] == "multi" and training["init_style"] == styles[1].stem
    # The same row can teach it: the teacher's picture is the row's, so at lr 0 the distance to it is zero.
    taught = tmp_path / "taught"
    fauve("train", "ulyanov", "--content", content, "--style", str(styles[1]), "-o", str(taught), "--iters", "2", "--lr", "0",
          "--init", str(multi), "--teacher", str(multi), "--distill-weight", "1", *TINY)
    assert all(abs(v) < 1e-5 for v in losses(taught, "distill")), losses(taught, "distill")
    fauve("train", "ulyanov", "--content", content, "--style", str(styles[0]), "-o", str(tmp_path / "other"), "--iters", "2",
          "--lr", "0", "--init", str(multi), "--teacher", str(multi), "--distill-weight", "1", *TINY)
    assert all(abs(v) < 1e-5 for v in losses(tmp_path / "other", "distill"))
    # A net at row 0 taught for the painting of row 1 is far from its teacher: the painting picks the teacher's row.
    fauve("train", "ulyanov", "--content", content, "--style", str(styles[1]), "-o", str(tmp_path / "crossed"), "--iters", "2",
          "--lr", "0", "--init", str(tmp_path / "other"), "--teacher", str(multi), "--distill-weight", "1", *TINY)
    assert all(v > 1e-3 for v in losses(tmp_path / "crossed", "distill")), losses(tmp_path / "crossed", "distill")
    proc = fauve("train", "ulyanov", "--content", content, "--style", str(styles[2]), "-o", str(tmp_path / "untaught"),
                 "--teacher", str(multi), *TINY, check=False)
    assert proc.returncode == 2 and f"has no style '{styles[2].stem}'" in proc.stderr and "hint:" in proc.stderr
    # A painting the model was not trained on has no row: refused before training, with a hint.
    proc = fauve("train", "ulyanov", "--content", content, "--style", str(styles[2]), "-o", str(tmp_path / "bad"),
                 "--init", str(multi), *TINY, check=False)
    assert proc.returncode == 2 and f"has no style '{styles[2].stem}'" in proc.stderr and "hint:" in proc.stderr
    assert not (tmp_path / "bad" / "checkpoint.pt").exists()


def test_init_may_switch_nearest_to_bilinear_and_lattice_and_stripe_weights_are_logged(train_data, tmp_path):
    content, style = str(train_data["content"]), str(sorted(train_data["styles"].iterdir())[0])
    base, tuned = tmp_path / "base", tmp_path / "tuned"
    fauve("train", "ulyanov", "--content", content, "--style", style, "-o", str(base), "--iters", "3", *TINY)
    fauve("train", "ulyanov", "--content", content, "--style", style, "-o", str(tuned), "--iters", "2", "--lr", "0",
          "--init", str(base), "--upsample", "bilinear", "--lattice-weight", "5", "--stripe-weight", "2", *TINY)
    old, new = load_model(base), load_model(tuned)
    assert (old.upsample, new.upsample) == ("nearest", "bilinear")
    for name, tensor in old.state_dict().items():
        assert torch.equal(new.state_dict()[name], tensor), name
    config = json.loads((tuned / "config.json").read_text())
    assert config["upsample"] == "bilinear" and config["training"]["lattice_weight"] == 5.0 and config["training"]["stripe_weight"] == 2.0
    assert not {"lattice_weight", "stripe_weight"} & set(json.loads((base / "config.json").read_text())["training"])
    for column in ("lattice", "stripes"):
        values = losses(tuned, column)
        assert len(values) == 2 and all(v >= 0 and v == v for v in values)
        assert losses(base, column) == [0.0] * 3


def test_adain_init_keeps_the_decoder_and_takes_the_new_runs_paintings(train_data, tmp_path):
    content = str(train_data["content"])
    base, tuned = tmp_path / "base", tmp_path / "tuned"
    fauve("train", "adain", "--content", content, "--styles", str(train_data["styles"]), "-o", str(base), "--iters", "3", *TINY)
    two = tmp_path / "two-paintings"
    two.mkdir()
    for painting in sorted(train_data["styles"].iterdir())[:2]:
        (two / painting.name).write_bytes(painting.read_bytes())
    # 3 named styles → 2: the named-style statistics follow the new run, the decoder is the base's (lr 0).
    fauve("train", "adain", "--content", content, "--styles", str(two), "-o", str(tuned), "--iters", "1", "--lr", "0",
          "--init", str(base), *TINY)
    old, new = load_model(base), load_model(tuned)
    assert old.style_names[:2] == new.style_names and len(new.style_names) == 2
    assert torch.equal(new.style_means, old.style_means[:2]) and torch.equal(new.style_stds, old.style_stds[:2])
    for name, tensor in old.decoder.state_dict().items():
        assert torch.equal(new.decoder.state_dict()[name], tensor), name


def test_adain_identity_weight_teaches_the_decoder_to_rebuild_the_photo(train_data, tmp_path):
    content, styles = str(train_data["content"]), str(train_data["styles"])
    runs = {w: tmp_path / f"id{w}" for w in ("0", "50")}
    for w, out in runs.items():
        fauve("train", "adain", "--content", content, "--styles", styles, "-o", str(out), "--iters", "30", "--lr", "1e-3",
              "--identity-weight", w, *TINY)
    # Held-out photos from the training photos' generator, which the identity loss teaches the decoder to
    # rebuild. Weight 50 against 0: with weight 5 and one uniform-noise picture the two decoders' errors
    # changed places between CPUs (AMD EPYC: passed; Intel Xeon with AVX-512: 0.143 vs 0.115).
    rng = np.random.default_rng(1)
    photo = torch.from_numpy(np.stack([np.asarray(make_photo(rng, (32, 32)), np.float32) / 255 for _ in range(4)])).permute(0, 3, 1, 2)
    errors = {}
    for w, out in runs.items():
        model = load_model(out).float().eval()
        with torch.no_grad():
            errors[w] = float((model.decoder(model.encode(photo)["relu4_1"]) - photo).pow(2).mean())
    assert errors["50"] < 0.7 * errors["0"], errors
    assert json.loads((runs["50"] / "config.json").read_text())["training"]["identity_weight"] == 50.0


def test_snapshots_keep_earlier_states_as_loadable_model_folders(train_data, tmp_path):
    out = tmp_path / "run"
    fauve("train", "ulyanov", "--content", str(train_data["content"]), "--style", str(train_data["style"]), "-o", str(out),
          "--iters", "6", "--snapshot-every", "3", "--lr", "1e-2", *TINY)
    assert sorted(p.name for p in (out / "snapshots").iterdir()) == ["step000003", "step000006"]
    early, late, final = (load_model(p) for p in (out / "snapshots" / "step000003", out / "snapshots" / "step000006", out))
    assert early.training_recipe["iters"] == 3 and late.training_recipe["iters"] == 6
    assert (out / "snapshots" / "step000003" / "samples.png").is_file()
    weights = lambda m: torch.cat([p.detach().flatten() for p in m.parameters()])  # noqa: E731
    assert torch.equal(weights(late), weights(final))  # the last snapshot is the exported model
    assert not torch.equal(weights(early), weights(final))  # an earlier state, kept


@pytest.mark.parametrize("method", ["ulyanov", "msgnet", "adain"])
def test_shift_weight_adds_its_weighted_term_to_the_loss_and_logs_it(method, train_data, tmp_path):
    """--shift-weight W: with the weights frozen (--lr 0), each step's loss is the plain run's + W × its logged
    shift term, which is > 0 for an untrained net (strided layers are not shift-equivariant)."""
    content = str(train_data["content"])
    plain, shifted = tmp_path / "plain", tmp_path / "shifted"
    for out, extra in ((plain, []), (shifted, ["--shift-weight", "2"])):
        fauve("train", method, "--content", content, *style_args(method, train_data), "-o", str(out), "--iters", "3", "--lr", "0",
              *extra, *TINY)
    terms = losses(shifted, "shift")
    assert len(terms) == 3 and all(t > 1e-4 for t in terms)
    assert losses(plain, "shift") == [0.0] * 3
    for a, b, t in zip(losses(plain), losses(shifted), terms):
        assert b == pytest.approx(a + 2 * t, rel=1e-3)
    assert json.loads((shifted / "config.json").read_text())["training"]["shift_weight"] == 2.0


def test_adain_at_relu3_1_trains_there_and_an_init_keeps_its_layer(train_data, tmp_path):
    content, styles = str(train_data["content"]), str(train_data["styles"])
    out, tuned = tmp_path / "r31", tmp_path / "tuned"
    fauve("train", "adain", "--content", content, "--styles", styles, "-o", str(out), "--layer", "relu3_1", "--iters", "40",
          "--lr", "1e-3", *TINY[:1], "36", *TINY[2:])  # 36 px: a multiple of 4 is enough at relu3_1
    curve = losses(out)
    assert sum(curve[-5:]) / 5 < 0.7 * sum(curve[:5]) / 5, curve
    config = json.loads((out / "config.json").read_text())
    assert config["layer"] == "relu3_1"
    assert config["training"]["content_layers"] == ["relu3_1"]
    assert config["training"]["style_layers"] == ["relu1_1", "relu2_1", "relu3_1"]
    model = load_model(out).float().eval()
    assert model.style_means.shape == model.style_stds.shape == (3, 256)
    assert model.size_multiple == 4 and len(model.encoder) == 12  # VGG16 features up to relu3_1
    with torch.no_grad():
        y = model(torch.rand(1, 3, 36, 44))
        stats = model.style_stats(torch.rand(2, 3, 40, 40))
        mixed = model(torch.rand(1, 3, 36, 44), style_stats=stats, style_weights=torch.tensor([0.5, 0.5]))
    assert y.shape == mixed.shape == (1, 3, 36, 44) and stats[0].shape == (2, 256)
    # --init takes the model's layer; asking for the other one fails before training, saying what to do.
    fauve("train", "adain", "--content", content, "--styles", styles, "-o", str(tuned), "--iters", "1", "--init", str(out), *TINY)
    assert json.loads((tuned / "config.json").read_text())["layer"] == "relu3_1"
    proc = fauve("train", "adain", "--content", content, "--styles", styles, "-o", str(tmp_path / "x"), "--iters", "1",
                 "--init", str(out), "--layer", "relu4_1", *TINY, check=False)
    assert proc.returncode == 2 and "has AdaIN at relu3_1" in proc.stderr and "hint:" in proc.stderr
    proc = fauve("train", "adain", "--content", content, "--styles", styles, "-o", str(tmp_path / "y"), "--iters", "1",
                 "--layer", "relu3_1", "--style-layers", "relu3_1,relu4_1", *TINY, check=False)
    assert proc.returncode == 2 and "style layers among relu1_1,relu2_1,relu3_1" in proc.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["ulyanov", "--content", "{empty}", "--style", "{style}"], "holds no images"),
        (["ulyanov", "--content", "{content}", "--style", "/nonexistent/style.jpg"], "does not exist"),
        (["ulyanov", "--content", "{content}", "--style", "{style}", "--size", "16"], "too small"),
    ],
)
def test_bad_data_fails_before_training_with_a_clear_error(args, message, train_data, tmp_path):
    filled = [a.format(**{k: str(v) for k, v in train_data.items()}) for a in args]
    proc = fauve("train", *filled, "-o", str(tmp_path / "out"), check=False)
    assert proc.returncode == 2
    assert message in proc.stderr and "hint:" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out" / "losses.csv").exists()


def test_time_limit_stops_writes_a_model_and_resume_continues(train_data, tmp_path):
    out = tmp_path / "timed"
    common = ["train", "ulyanov", "--content", str(train_data["content"]), "--style", str(train_data["style"]), "-o", str(out), *TINY]
    proc = fauve(*common, "--iters", "100000", "--time-limit", "3")
    assert "--time-limit 3 s reached" in proc.stdout
    steps = len(losses(out))
    assert 0 < steps < 100000
    recipe = json.loads((out / "config.json").read_text())["training"]
    assert recipe["iters"] == steps and recipe["planned_iters"] == 100000
    assert torch.load(out / "checkpoint.pt", weights_only=True)["step"] == steps
    model = load_model(out)
    with torch.no_grad():
        assert torch.isfinite(model(torch.rand(1, 3, 32, 32))).all()
    fauve(*common, "--iters", str(steps + 5), "--resume")
    assert [int(s) for s in losses(out, "step")] == list(range(1, steps + 6))
    assert json.loads((out / "config.json").read_text())["training"]["iters"] == steps + 5


def test_grad_clip_caps_a_spike_at_a_multiple_of_the_running_norm_and_survives_a_checkpoint():
    from fauve.train.loop import GradClip

    w = torch.nn.Parameter(torch.zeros(10))
    clip = GradClip([w], ratio=2.0, device=torch.device("cpu"))
    gen = torch.Generator().manual_seed(0)
    for _ in range(GradClip.START + 30):  # ordinary steps: gradients of norm ~1, never clipped
        w.grad = torch.randn(10, generator=gen) / 10**0.5
        before = w.grad.clone()
        clip()
        assert torch.equal(w.grad, before) or w.grad.norm() <= 2.0 * 1.5
    typical = float(clip.ema)
    assert 0.5 < typical < 1.5
    w.grad = torch.full((10,), 100.0)  # one odd crop: a gradient ~300× the usual
    assert float(clip()) == pytest.approx(100.0 * 10**0.5)
    assert float(w.grad.norm()) == pytest.approx(2.0 * typical, rel=1e-5)
    assert float(clip.ema) < 1.05 * typical  # the spike does not drag the average up
    restored = GradClip([w], ratio=2.0, device=torch.device("cpu"))
    restored.load(clip.state())
    assert (float(restored.ema), restored.seen) == (float(clip.ema), clip.seen)
    off = GradClip([w], ratio=0.0, device=torch.device("cpu"))
    w.grad = torch.full((10,), 100.0)
    off()
    assert float(w.grad.norm()) == pytest.approx(100.0 * 10**0.5)


def test_style_lr_mult_lets_dumoulin_style_rows_move_further(train_data, tmp_path):
    from fauve.models.layers import ConditionalInstanceNorm

    def spread(mult: str) -> float:
        out = tmp_path / f"mult{mult}"
        fauve("train", "dumoulin", "--content", str(train_data["content"]), "--styles", str(train_data["styles"]), "-o", str(out),
              "--iters", "10", "--lr", "1e-3", "--style-lr-mult", mult, *TINY)
        assert json.loads((out / "config.json").read_text())["training"].get("style_lr_mult", 1.0) == float(mult)
        norms = [m for m in load_model(out).modules() if isinstance(m, ConditionalInstanceNorm)]
        # Every row starts at γ = 1, β = 0: how far the style rows moved from there.
        with torch.no_grad():
            return sum(float((m.gamma - 1).abs().mean() + m.beta.abs().mean()) for m in norms) / len(norms)

    assert spread("10") > 4 * spread("1")


def test_a_slimmer_student_distils_its_teacher_and_a_wrong_teacher_is_refused(train_data, tmp_path):
    content, styles = str(train_data["content"]), str(train_data["styles"])
    teacher, student = tmp_path / "teacher", tmp_path / "student"
    fauve("train", "dumoulin", "--content", content, "--styles", styles, "-o", str(teacher), "--iters", "10",
          *TINY, "--width", "0.5")
    # Distillation alone (no perceptual terms): the student's pictures move towards the teacher's.
    fauve("train", "dumoulin", "--content", content, "--styles", styles, "-o", str(student), "--iters", "40", *TINY,
          "--lr", "3e-3", "--teacher", str(teacher), "--distill-weight", "1", "--content-weight", "0", "--style-weight", "0")
    curve = losses(student, "distill")
    assert len(curve) == 40 and sum(curve[-5:]) / 5 < 0.7 * sum(curve[:5]) / 5, curve
    assert losses(teacher, "distill") == [0.0] * 10
    config = json.loads((student / "config.json").read_text())
    assert config["width"] == 0.25 and config["training"]["teacher"] == "teacher" and config["training"]["distill_weight"] == 1.0
    # A teacher whose styles differ from the run's is refused before training, with a hint.
    one = tmp_path / "one"
    proc = fauve("train", "dumoulin", "--content", content, "--style", str(train_data["style"]), "-o", str(one), "--iters", "2",
                 *TINY, "--teacher", str(teacher), check=False)
    assert proc.returncode == 2 and "has the styles" in proc.stderr and "hint:" in proc.stderr
    proc = fauve("train", "ulyanov", "--content", content, "--style", str(train_data["style"]), "-o", str(one), "--iters", "2",
                 *TINY, "--distill-weight", "5", check=False)
    assert proc.returncode == 2 and "needs a --teacher" in proc.stderr


def test_msgnet_and_adain_distil_a_dumoulin_teacher_of_the_same_paintings_and_refuse_other_teachers(train_data, tmp_path):
    content, styles = str(train_data["content"]), str(train_data["styles"])
    teacher, student = tmp_path / "dumoulin", tmp_path / "msgnet"
    fauve("train", "dumoulin", "--content", content, "--styles", styles, "-o", str(teacher), "--iters", "10", *TINY)
    # Distillation alone: the msgnet's pictures (style Gram from its own encoder) move towards the dumoulin net's.
    fauve("train", "msgnet", "--content", content, "--styles", styles, "-o", str(student), "--iters", "40", *TINY,
          "--lr", "3e-3", "--teacher", str(teacher), "--distill-weight", "1", "--content-weight", "0", "--style-weight", "0")
    curve = losses(student, "distill")
    assert len(curve) == 40 and sum(curve[-5:]) / 5 < 0.7 * sum(curve[:5]) / 5, curve
    assert json.loads((student / "config.json").read_text())["training"]["teacher"] == "dumoulin"
    single = tmp_path / "ulyanov"
    fauve("train", "ulyanov", "--content", content, "--style", str(train_data["style"]), "-o", str(single), "--iters", "2", *TINY)
    proc = fauve("train", "msgnet", "--content", content, "--style", str(train_data["style"]), "-o", str(tmp_path / "x"),
                 "--iters", "2", *TINY, "--teacher", str(single), check=False)
    assert proc.returncode == 2 and "distils from msgnet or dumoulin" in proc.stderr and "hint:" in proc.stderr
    # adain too: the decoder's pictures move towards the dumoulin net's for each sample's painting.
    decoder = tmp_path / "adain"
    fauve("train", "adain", "--content", content, "--styles", styles, "-o", str(decoder), "--iters", "40", *TINY, "--upsample", "bilinear",
          "--lr", "3e-3", "--teacher", str(teacher), "--distill-weight", "1", "--content-weight", "0", "--style-weight", "0")
    curve = losses(decoder, "distill")
    assert len(curve) == 40 and sum(curve[-5:]) / 5 < 0.7 * sum(curve[:5]) / 5, curve
    # The saved decoder is the one trained: bilinear (session 14 found adain models saved as nearest whatever they trained with).
    assert {m.mode for m in load_model(decoder).decoder if isinstance(m, torch.nn.Upsample)} == {"bilinear"}
    proc = fauve("train", "adain", "--content", content, "--styles", styles, "-o", str(tmp_path / "y"), "--iters", "2", *TINY,
                 "--teacher", str(student), check=False)
    assert proc.returncode == 2 and "distils from dumoulin" in proc.stderr


def test_msgnet_distils_a_dumoulin_teacher_alone_with_distill_only_which_needs_a_teacher(train_data, tmp_path):
    content, styles = str(train_data["content"]), str(train_data["styles"])
    teacher, student = tmp_path / "dumoulin", tmp_path / "msgnet"
    fauve("train", "dumoulin", "--content", content, "--styles", styles, "-o", str(teacher), "--iters", "10", *TINY)
    fauve("train", "msgnet", "--content", content, "--styles", styles, "-o", str(student), "--iters", "40", *TINY,
          "--lr", "3e-3", "--teacher", str(teacher), "--distill-weight", "1", "--distill-only")
    curve = losses(student, "distill")
    assert len(curve) == 40 and sum(curve[-5:]) / 5 < 0.7 * sum(curve[:5]) / 5, curve
    # Content and style were not computed: the loss is the distance to the teacher's pictures alone.
    assert all(math.isnan(v) for v in losses(student, "content") + losses(student, "style"))
    assert losses(student, "loss") == pytest.approx(curve, rel=1e-3)  # the log keeps 4 digits of distill
    training = json.loads((student / "config.json").read_text())["training"]
    assert training["distill_only"] is True and set(training["final_losses"]) == {"loss", "tv", "distill"}
    for method, extra in (("msgnet", []), ("adain", ["--teacher", str(teacher)])):
        proc = fauve("train", method, "--content", content, "--styles", styles, "-o", str(tmp_path / method / "x"), "--iters", "2", *TINY,
                     "--distill-only", *extra, check=False)
        assert proc.returncode == 2 and "--distill-only" in proc.stderr, proc.stderr


def test_bf16_on_the_cpu_trains_like_fp32_and_fp16_on_the_cpu_is_refused(train_data, tmp_path):
    content, style = str(train_data["content"]), str(train_data["style"])
    runs = {}
    for precision in ("fp32", "bf16"):
        out = tmp_path / precision
        fauve("train", "ulyanov", "--content", content, "--style", style, "-o", str(out), "--iters", "30", *TINY,
              "--device", "cpu", "--precision", precision, "--channels-last")
        runs[precision] = losses(out)
        assert json.loads((out / "config.json").read_text())["training"]["precision"] == precision
    # Same seed, same crops: bf16 autocast computes the first loss to within its rounding, and learns as well.
    assert runs["bf16"][0] == pytest.approx(runs["fp32"][0], rel=0.03)
    assert sum(runs["bf16"][-5:]) / 5 < 0.7 * sum(runs["bf16"][:5]) / 5, runs["bf16"]
    with torch.no_grad():
        assert torch.isfinite(load_model(tmp_path / "bf16")(torch.rand(1, 3, 32, 32))).all()
    proc = fauve("train", "ulyanov", "--content", content, "--style", style, "-o", str(tmp_path / "fp16"), "--iters", "2", *TINY,
                 "--device", "cpu", "--precision", "fp16", check=False)
    assert proc.returncode == 2 and "needs a CUDA GPU" in proc.stderr and "bf16" in proc.stderr
    assert not (tmp_path / "fp16" / "losses.csv").exists()


@pytest.mark.parametrize("method", ["ulyanov", "dumoulin"])
def test_pruning_keeps_the_channels_with_the_largest_norm_scale(method):
    from fauve.models import build_model
    from fauve.train.prune import prune_state

    torch.manual_seed(0)
    styles = {"num_styles": 3} if method == "dumoulin" else {}
    wide = build_model(method, width=0.5, **styles).eval()
    slim = build_model(method, width=0.25, **styles).eval()
    state = wide.state_dict()
    # Make a random half of every channel group dead (γ = β = 0 in each norm that writes to it); the rest get
    # random weights. Dead channels carry zeros that no later layer can see, so the slim net that keeps exactly
    # the live ones computes the wide net's function.
    scale_keys = [k for k in state if k.endswith(("gamma", "norm1.weight", "norm2.weight")) or ".down_norms." in k or ".up_norms." in k]
    for key in state:
        if key.endswith(("conv.weight", "conv.bias")):
            state[key] = torch.randn_like(state[key]) * 0.2
    groups = {"down_norms.0": None, "down_norms.1": None, "up_norms.0": None, "up_norms.1": None, "trunk": None}
    for key in scale_keys:
        prefix = key.rsplit(".", 1)[0]
        group = "trunk" if prefix.endswith(("down_norms.2", "norm2")) else prefix
        n = state[key].shape[-1]
        if groups.get(group) is None:
            groups[group] = torch.randperm(n)[: n // 2]
        value = torch.rand_like(state[key]) + 0.5
        value[..., groups[group]] = 0.0
        state[key] = value
    wide.load_state_dict(state)
    slim.load_state_dict(prune_state(wide.state_dict(), slim.state_dict()))
    x = torch.rand(2, 3, 32, 32)
    w = torch.eye(3)[1] if method == "dumoulin" else None
    with torch.no_grad():
        assert torch.allclose(slim(x, w), wide(x, w), atol=1e-4)


def test_init_with_a_smaller_width_prunes_the_model(train_data, tmp_path):
    content, style = str(train_data["content"]), str(train_data["style"])
    wide, slim = tmp_path / "wide", tmp_path / "slim"
    fauve("train", "ulyanov", "--content", content, "--style", style, "-o", str(wide), "--iters", "3", *TINY, "--width", "0.5")
    fauve("train", "ulyanov", "--content", content, "--style", style, "-o", str(slim), "--iters", "2", *TINY,
          "--init", str(wide), "--width", "0.25")
    config = json.loads((slim / "config.json").read_text())
    assert config["width"] == 0.25 and config["training"]["pruned_from_width"] == 0.5
    assert load_model(slim).net.down[0].conv.weight.shape[0] == 8
    proc = fauve("train", "ulyanov", "--content", content, "--style", style, "-o", str(tmp_path / "bad"), "--iters", "1", *TINY,
                 "--init", str(slim), "--width", "0.5", check=False)
    assert proc.returncode == 2 and "does not fit --init" in proc.stderr and "hint:" in proc.stderr


def test_msgnet_with_covariance_style_stat_trains_stores_covariances_and_an_init_keeps_it(train_data, tmp_path):
    first, second = tmp_path / "cov", tmp_path / "cov2"
    common = ["--content", str(train_data["content"]), "--styles", str(train_data["styles"]), *TINY]
    fauve("train", "msgnet", *common, "-o", str(first), "--iters", "20", "--style-stat", "covariance")
    model = load_model(first)
    assert model.style_stat == "covariance"
    curve = losses(first)
    assert sum(curve[-5:]) < sum(curve[:5]), curve
    # The stored Gram of each named style is its covariance from the trained encoder, as a style image gives it.
    from fauve.train.data import load_style

    painting = next(p for p in Path(train_data["styles"]).iterdir() if p.stem == model.style_names[0])
    img = load_style(painting, 256)  # the run's --style-size (default 256)
    with torch.no_grad():
        feats = model.encoder(img)
        centred = feats - feats.mean(dim=(2, 3), keepdim=True)
        c, n = feats.shape[1], feats[0, 0].numel()
        covariance = centred.reshape(c, n) @ centred.reshape(c, n).T / (c * n)
        gram = feats.reshape(c, n) @ feats.reshape(c, n).T / (c * n)
    assert torch.allclose(model.style_grams[0], covariance, atol=1e-5)
    assert not torch.allclose(model.style_grams[0], gram, atol=1e-3)
    fauve("train", "msgnet", *common, "-o", str(second), "--iters", "5", "--init", str(first))
    assert load_model(second).style_stat == "covariance"


def test_adain_margin_trains_on_the_pipelines_picture_and_records_it(train_data, tmp_path):
    """--margin 16: the picture the losses see is the network run on the crop with 16 px mirrored around it,
    cropped back (what the pipeline shows), not the network on the bare crop; the recipe records it."""
    from fauve.models.layers import mean_std
    from fauve.train.data import load_style
    from fauve.train.loop import TrainConfig
    from fauve.train.methods import method_class

    paths = sorted(str(p) for p in Path(train_data["styles"]).iterdir())
    cfg = TrainConfig(method="adain", content=str(train_data["content"]), styles=paths, out="unused", size=48, batch_size=2,
                      width=0.25, adain_layer="relu3_1", margin=16).fill_defaults()
    method = method_class("adain")(cfg, [load_style(p, 256) for p in paths], [Path(p).stem for p in paths], torch.device("cpu"))
    net = method.build().eval()
    content = torch.rand(2, 3, 48, 48, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = method.loss(net, content, step=3).output
        _, style = method.style_batch(3, 2)
        means, stds = mean_std(net.encode(style)[net.layer])
        for k in range(2):
            stats = (means[k].flatten()[None], stds[k].flatten()[None])
            mirrored = torch.nn.functional.pad(content[k : k + 1], (16, 16, 16, 16), mode="reflect")
            pipeline = net(mirrored, style_stats=stats)[..., 16:-16, 16:-16]
            bare = net(content[k : k + 1], style_stats=stats)
            assert torch.allclose(out[k], pipeline[0], atol=1e-5)
            assert (out[k] - bare[0]).abs().max() > 1e-3
    common = ["--content", str(train_data["content"]), "--styles", str(train_data["styles"]), "--layer", "relu3_1", "--iters", "2",
              *TINY[:1], "48", *TINY[2:]]
    fauve("train", "adain", *common, "-o", str(tmp_path / "m"), "--margin", "16")
    assert json.loads((tmp_path / "m" / "config.json").read_text())["training"]["margin"] == 16
    proc = fauve("train", "adain", *common, "-o", str(tmp_path / "x"), "--margin", "6", check=False)
    assert proc.returncode == 2 and "--margin 16" in proc.stderr
