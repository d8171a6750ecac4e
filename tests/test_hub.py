"""The Hub end to end: the real huggingface_hub client against tests/hub_server.py on 127.0.0.1.

huggingface_hub reads HF_ENDPOINT / HF_HOME / HF_HUB_OFFLINE at import time, so every client call
runs in a subprocess (the ``fauve`` CLI or ``python -c``) with its own environment
(../shared/research/hub.md). The server runs in this process, so tests see its request log and
its storage on disk.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from fauve.models import build_model

REPO = "fauve/tiny-ulyanov"


# -- helpers ------------------------------------------------------------------------------------------
def hub_env(server, home: Path, *, offline: bool = False, catalog: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_")) and k != "FAUVE_CATALOG"}
    env.update(HF_ENDPOINT=server.url, HF_HOME=str(home), HF_HUB_DISABLE_XET="1", HF_HUB_DISABLE_TELEMETRY="1",
               HF_HUB_DISABLE_IMPLICIT_TOKEN="1", PYTHONUNBUFFERED="1")
    if offline:
        env["HF_HUB_OFFLINE"] = "1"
    if catalog is not None:
        env["FAUVE_CATALOG"] = str(catalog)
    return env


def fauve(env: dict, *args: str, ok: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "fauve.cli", *args], capture_output=True, text=True, env=env, timeout=300)
    if ok and proc.returncode != 0:
        raise AssertionError(f"fauve {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    if not ok:
        assert proc.returncode == 2, (proc.returncode, proc.stderr[-3000:])
        assert "Traceback" not in proc.stderr and "hint:" in proc.stderr, proc.stderr
    return proc


def fauve_json(env: dict, *args: str) -> dict:
    return json.loads(fauve(env, *args, "--json").stdout)


def python(env: dict, code: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


HUB_CALLS = """
import json, sys
from fauve.errors import FauveError
from fauve import hub

def attempt(fn, *args, **kwargs):
    # A FauveError becomes {"error", "hint", "code"}; anything else is a traceback and fails the test.
    try:
        result = fn(*args, **kwargs)
    except FauveError as err:
        return {"error": err.message, "hint": err.hint, "code": err.code}
    if hasattr(result, "folder"):
        return {"folder": str(result.folder), "commit": result.commit, "downloaded": result.downloaded}
    if hasattr(result, "commit_oid"):
        return {"commit": result.commit_oid, "changed": result.changed, "notes": result.notes}
    return result
"""


def hub_calls(env: dict, body: str) -> dict:
    """Run fauve.hub calls in one torch-free subprocess; ``body`` fills ``out`` (printed as JSON)."""
    code = HUB_CALLS + "out = {}\n" + textwrap.dedent(body) + "\nassert 'torch' not in sys.modules\nprint(json.dumps(out))\n"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def tiny_model(folder: Path, method: str = "ulyanov", seed: int = 0, **config) -> Path:
    torch.manual_seed(seed)
    config = {"width": 0.125, **config}
    model = build_model(method, **config)
    with torch.no_grad():  # a distinct, non-trivial function per seed
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    model.save_pretrained(folder)
    return folder


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


TEST_IMAGE = "np.random.default_rng(7).integers(0, 256, (40, 48, 3), dtype=np.uint8)"

STYLIZE = """
import json, sys, numpy as np
from fauve.catalog import resolve_style
from fauve.pipeline import Stylizer
res = resolve_style(sys.argv[1])
out = Stylizer(res.model, device="cpu").run({image})
np.save(sys.argv[2], out)
print(json.dumps({{"source": res.source, "path": res.path, "style": res.style, "notes": res.notes}}))
""".format(image=TEST_IMAGE)


def stylize_in_subprocess(env: dict, ref: str, out: Path) -> dict:
    proc = subprocess.run([sys.executable, "-c", STYLIZE, ref, str(out)], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def stylize_here(folder: Path) -> np.ndarray:
    from fauve.models import load_model
    from fauve.pipeline import Stylizer

    return Stylizer(load_model(folder), device="cpu").run(eval(TEST_IMAGE))


def resolve_gets(requests: list[tuple[str, str]], filename: str) -> list[tuple[str, str]]:
    return [r for r in requests if r[0] == "GET" and "/resolve/" in r[1] and r[1].endswith("/" + filename)]


# -- tests ---------------------------------------------------------------------------------------------
def test_publish_pull_round_trip_then_cache_then_offline(hub_server, tmp_path):
    folder = tiny_model(tmp_path / "model")
    (folder / "checkpoint.pt").write_bytes(b"not for the Hub")  # training leftovers are not published
    env = hub_env(hub_server, tmp_path / "hf")

    pub = fauve_json(env, "hub", "publish", str(folder), "--repo", REPO)
    assert pub["card"] == "kept"  # save_pretrained already wrote a fauve card (not the mixin's generic one)
    assert set(pub["files"]) == {".gitattributes", "README.md", "config.json", "model.safetensors"}
    record = hub_server.commit_record(REPO)
    assert record["id"] == pub["commit"] and record["title"].startswith("Upload ulyanov model")
    assert hub_server.file_path(REPO, "model.safetensors").read_bytes() == (folder / "model.safetensors").read_bytes()
    card = (folder / "README.md").read_text()
    meta = yaml.safe_load(card.split("---")[1])
    assert meta["library_name"] == "fauve" and meta["pipeline_tag"] == "image-to-image"
    assert {"style-transfer", "ulyanov"} <= set(meta["tags"]) and meta["license"]
    assert "arXiv:1607.08022" in card and "BSDS500" in card

    assert pub["changed"]
    # Publishing the same folder again makes no new commit.
    again = hub_calls(env, f'out["r"] = attempt(hub.publish, r"{folder}", "{REPO}", private=True)')["r"]
    assert again["commit"] == pub["commit"] and not again["changed"] and "is public" in again["notes"][0]

    pulled = fauve_json(env, "hub", "pull", REPO)
    snap = Path(pulled["folder"])
    assert snap == tmp_path / "hf" / "hub" / "models--fauve--tiny-ulyanov" / "snapshots" / pub["commit"]
    assert pulled["downloaded"] and not pulled["from_cache"]
    assert (snap / "model.safetensors").read_bytes() == (folder / "model.safetensors").read_bytes()

    # Identical pixels from the published folder and from the Hub (via the HF cache).
    here = stylize_here(folder)
    info = stylize_in_subprocess(env, REPO, tmp_path / "hub.npy")
    assert info["source"] == "hub" and Path(info["path"]) == snap
    assert np.array_equal(np.load(tmp_path / "hub.npy"), here) and here.std() > 1

    # A second pull is served from the cache: no new GET of the weights.
    seen = len(hub_server.requests)
    again = hub_calls(env, f'out["r"] = attempt(hub.pull, "{REPO}")')["r"]
    assert not again["downloaded"] and again["folder"] == pulled["folder"]
    assert not resolve_gets(hub_server.requests_since(seen), "model.safetensors")
    assert hub_server.requests_since(seen)  # it did ask the Hub for the current commit

    # Server gone, HF_HUB_OFFLINE=1: loading still works, from the cache.
    hub_server.stop()
    offline = hub_env(hub_server, tmp_path / "hf", offline=True)
    assert hub_calls(offline, f'out["r"] = attempt(hub.pull, "{REPO}")')["r"]["folder"] == pulled["folder"]
    info = stylize_in_subprocess(offline, REPO, tmp_path / "offline.npy")
    assert info["source"] == "cached"
    assert np.array_equal(np.load(tmp_path / "offline.npy"), here)


def test_tampered_file_on_the_server_is_detected(hub_server, tmp_path):
    folder = tiny_model(tmp_path / "model")
    env = hub_env(hub_server, tmp_path / "hf")
    for repo, damage in (("fauve/flipped", "flip"), ("fauve/truncated", "truncate")):
        hub_server.seed(repo, folder)
        blob = hub_server.file_path(repo, "model.safetensors")
        data = bytearray(blob.read_bytes())
        if damage == "flip":  # same size: only a checksum can tell
            data[len(data) // 2] ^= 0xFF
        else:
            data = data[:-100]
        blob.write_bytes(bytes(data))
        err = fauve(env, "hub", "pull", repo, ok=False).stderr
        if damage == "flip":
            assert "model.safetensors" in err and "checksum" in err and "--force" in err
        else:
            assert "wrong size" in err and "--force" in err
        snapshots = tmp_path / "hf" / "hub" / f"models--{repo.replace('/', '--')}" / "snapshots"
        assert not list(snapshots.glob("*/model.safetensors")), "a corrupt file stayed in the cache"


def test_model_info_with_and_without_revision_tree_and_pull_by_revision(hub_server, tmp_path):
    v1 = tiny_model(tmp_path / "v1", seed=1)
    v2 = tiny_model(tmp_path / "v2", seed=2)
    (v2 / "samples").mkdir()
    (v2 / "samples" / "grid.png").write_bytes(b"\x89PNG fake grid")
    first = hub_server.seed(REPO, v1, message="v1")
    second = hub_server.seed(REPO, v2, message="v2")
    assert first != second
    env = hub_env(hub_server, tmp_path / "hf")

    got = python(env, f"""
        import json
        from huggingface_hub import HfApi
        api = HfApi()
        head = api.model_info("{REPO}")
        old = api.model_info("{REPO}", revision="{first}", files_metadata=True)
        tree = [(type(e).__name__, e.path) for e in api.list_repo_tree("{REPO}", recursive=True)]
        top = [e.path for e in api.list_repo_tree("{REPO}")]
        sub = [e.path for e in api.list_repo_tree("{REPO}", path_in_repo="samples")]
        lfs = {{s.rfilename: s.lfs.sha256 for s in old.siblings if s.lfs}}
        paths = [e.path for e in api.get_paths_info("{REPO}", ["config.json", "samples", "nope"])]
        print(json.dumps(dict(head=head.sha, head_files=[s.rfilename for s in head.siblings], tags=head.tags,
                              old=old.sha, old_files=[s.rfilename for s in old.siblings], lfs=lfs, tree=tree, top=top,
                              sub=sub, paths=paths, exists=api.file_exists("{REPO}", "samples/grid.png", revision="{first}"))))
    """)
    assert got["head"] == second and "samples/grid.png" in got["head_files"]
    assert "fauve" in got["tags"] and "style-transfer" in got["tags"]
    assert got["old"] == first and "samples/grid.png" not in got["old_files"]
    assert got["lfs"] == {"model.safetensors": sha256(v1 / "model.safetensors")}
    assert ["RepoFolder", "samples"] in got["tree"] and ["RepoFile", "samples/grid.png"] in got["tree"]
    assert "samples" in got["top"] and "samples/grid.png" not in got["top"]
    assert got["sub"] == ["samples/grid.png"]
    assert got["paths"] == ["config.json", "samples"] and got["exists"] is False

    got = hub_calls(env, f"""
        out["info"] = attempt(hub.repo_summary, "{REPO}", revision="{first}")
        out["old"] = attempt(hub.pull, "{REPO}", revision="{first}", progress=False)
        out["new"] = attempt(hub.pull, "{REPO}", progress=False)
    """)
    info = got["info"]
    assert info["sha"] == first and {"path": "model.safetensors", "size": (v1 / "model.safetensors").stat().st_size,
                                     "sha256": sha256(v1 / "model.safetensors")} in info["files"]
    assert got["old"]["commit"] == first and sha256(Path(got["old"]["folder"]) / "model.safetensors") == sha256(v1 / "model.safetensors")
    assert got["new"]["commit"] == second and sha256(Path(got["new"]["folder"]) / "model.safetensors") == sha256(v2 / "model.safetensors")
    # The CLI shows the same.
    assert fauve_json(env, "hub", "info", REPO)["sha"] == second


def test_clear_errors_unknown_repo_revision_folder_and_network(hub_server, tmp_path):
    env = hub_env(hub_server, tmp_path / "hf")
    # The CLI: one line of error, a hint, exit code 2, no traceback.
    err = fauve(env, "hub", "pull", "fauve/no-such-model", ok=False).stderr
    assert "fauve/no-such-model" in err and "no such repo" in err
    model = tiny_model(tmp_path / "model")
    hub_server.seed(REPO, model)
    (tmp_path / "empty").mkdir()
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("hello")
    hub_server.seed("fauve/not-a-model", tmp_path / "other")
    got = hub_calls(env, f"""
        out["revision"] = attempt(hub.pull, "{REPO}", revision="v9", progress=False)
        out["bad_id"] = attempt(hub.pull, "not-a-repo")
        out["empty"] = attempt(hub.publish, r"{tmp_path / 'empty'}", "{REPO}")
        out["not_model"] = attempt(hub.pull, "fauve/not-a-model", progress=False)
        out["no_entry"] = attempt(hub.repo_summary, "fauve/nope")
    """)
    assert "revision 'v9' does not exist" in got["revision"]["error"] and got["revision"]["code"] == "hub_not_found"
    assert "is not a Hub repo id" in got["bad_id"]["error"]
    assert "no config.json" in got["empty"]["error"] and got["empty"]["hint"]
    assert "not a usable fauve model" in got["not_model"]["error"]
    assert got["no_entry"]["code"] == "hub_not_found"
    hub_server.stop()
    got = hub_calls(env, f"""
        out["publish"] = attempt(hub.publish, r"{model}", "{REPO}")
        out["pull"] = attempt(hub.pull, "fauve/never-pulled", progress=False)
    """)
    for what in ("publish", "pull"):
        assert "unreachable" in got[what]["error"] and got[what]["code"] == "hub_network" and got[what]["hint"]


def test_tokens_private_repos_and_auth_errors(hub_server_factory, tmp_path):
    server = hub_server_factory(tokens={"hf_writer": "fauve", "hf_stranger": "someone"})
    folder = tiny_model(tmp_path / "model")
    env = hub_env(server, tmp_path / "hf")
    got = hub_calls(env, f"""
        folder = r"{folder}"
        out["anonymous"] = attempt(hub.publish, folder, "{REPO}", private=True)
        out["stranger"] = attempt(hub.publish, folder, "{REPO}", token="hf_stranger")
        out["writer"] = attempt(hub.publish, folder, "{REPO}", private=True, token="hf_writer")
        out["pull_anonymous"] = attempt(hub.pull, "{REPO}", progress=False)
        out["pull_writer"] = attempt(hub.pull, "{REPO}", token="hf_writer", progress=False)
        out["pull_forced"] = attempt(hub.pull, "{REPO}", token="hf_writer", force=True, progress=False)
    """)
    assert "refused access (401)" in got["anonymous"]["error"] and "--token" in got["anonymous"]["hint"]
    assert "refused access (403)" in got["stranger"]["error"] and got["stranger"]["code"] == "hub_auth"
    assert server.store.meta(REPO)["private"] is True and got["writer"]["commit"] == server.head(REPO)
    assert "or it is private" in got["pull_anonymous"]["error"] and "--token" in got["pull_anonymous"]["hint"]
    assert sha256(Path(got["pull_writer"]["folder"]) / "model.safetensors") == sha256(folder / "model.safetensors")
    assert "model.safetensors" in got["pull_forced"]["downloaded"]


def write_catalog(root: Path, models: list[dict]) -> Path:
    path = root / "catalog.json"
    path.write_text(json.dumps({"schema": 1, "models": models}))
    return path


def test_catalog_lists_and_resolves_bundled_hub_cached_with_fallbacks(hub_server, tmp_path):
    root = tmp_path / "hub_models"
    single = tiny_model(root / "tiny-single", seed=1)
    multi = tiny_model(root / "tiny-multi", "dumoulin", seed=2, num_styles=3, style_names=["a", "b", "c"])
    corrupt_bundled = tiny_model(root / "tiny-corrupt", seed=3)
    on_hub = {name: tiny_model(tmp_path / "hub" / name, seed=seed) for name, seed in
              (("tiny-single", 11), ("tiny-hubonly", 12), ("tiny-corrupt", 13))}
    tiny_model(root / "tiny-mismatch", seed=4)
    # On the Hub: a wider model's config.json beside the narrow model's weights (valid files, wrong shapes).
    mismatch = tiny_model(tmp_path / "hub" / "tiny-mismatch", seed=14)
    (mismatch / "config.json").write_text(tiny_model(tmp_path / "wide", width=0.25).joinpath("config.json").read_text())
    on_hub["tiny-mismatch"] = mismatch
    for name, folder in on_hub.items():
        hub_server.seed(f"fauve/{name}", folder)
    blob = hub_server.file_path("fauve/tiny-corrupt", "model.safetensors")
    data = bytearray(blob.read_bytes())
    data[-5] ^= 0xFF
    blob.write_bytes(bytes(data))

    def entry(name, method, folder=True, published=True, styles=None):
        return {"name": name, "repo_id": f"fauve/{name}", "folder": name if folder else None, "method": method,
                "license": "research-only", "published": published, "styles": styles or []}

    catalog = write_catalog(root, [
        entry("tiny-single", "ulyanov", styles=[{"name": "style0", "title": "Tiny"}]),
        entry("tiny-multi", "dumoulin", published=False),
        entry("tiny-hubonly", "ulyanov", folder=False),
        entry("tiny-corrupt", "ulyanov"),
        entry("tiny-missing", "johnson", folder=False, published=False),
        entry("tiny-mismatch", "ulyanov"),
    ])
    home = tmp_path / "hf"

    # Offline listing: bundled copies, multi-style styles from config.json, the rest unavailable.
    listed = {e["id"]: e for e in json.loads(fauve(hub_env(hub_server, home, offline=True, catalog=catalog), "styles", "--json").stdout)}
    assert listed["tiny-single"]["source"] == "bundled" and listed["tiny-single"]["title"] == "Tiny"
    assert [listed[f"tiny-multi/{s}"]["index"] for s in "abc"] == [0, 1, 2]
    assert listed["tiny-multi/b"]["multi_style"] and listed["tiny-multi/b"]["source"] == "bundled"
    assert listed["tiny-hubonly"]["source"] == "unavailable" and listed["tiny-missing"]["source"] == "unavailable"
    assert all(e["license"] == "research-only" and e["method"] for e in listed.values())

    locate = """
        import hashlib, json, sys
        from pathlib import Path
        from fauve.catalog import locate_style
        from fauve.errors import FauveError
        out = {"torch": None}
        for ref in sys.argv[1:]:
            try:
                r = locate_style(ref)
                out[ref] = dict(source=r.source, id=r.id, style=r.style, index=r.index, notes=r.notes,
                                sha=hashlib.sha256((r.folder / "model.safetensors").read_bytes()).hexdigest())
            except FauveError as err:
                out[ref] = dict(error=err.message, hint=err.hint)
        out["torch"] = "torch" in sys.modules
        print(json.dumps(out))
    """

    def run(env, *refs):
        proc = subprocess.run([sys.executable, "-c", textwrap.dedent(locate), *refs], capture_output=True, text=True,
                              env=env, timeout=300)
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        assert out.pop("torch") is False  # locating a style needs no torch
        return out

    online_env = hub_env(hub_server, home, catalog=catalog)
    online = run(online_env, "tiny-single", "tiny-multi/b", "b", "tiny-hubonly", "tiny-corrupt", "tiny-missing",
                 "fauve/tiny-hubonly", f"{multi}#c", "tiny-multi/zz", "nonsense")
    assert online["tiny-single"]["source"] == "hub" and online["tiny-single"]["sha"] == sha256(on_hub["tiny-single"] / "model.safetensors")
    b = online["tiny-multi/b"]
    assert (b["source"], b["id"], b["style"], b["index"]) == ("bundled", "tiny-multi/b", "b", 1)
    assert "no such repo" in b["notes"][0] and "bundled copy" in b["notes"][0]
    assert online["b"]["id"] == "tiny-multi/b"
    assert online["tiny-hubonly"]["source"] == "hub"
    assert online["fauve/tiny-hubonly"]["sha"] == sha256(on_hub["tiny-hubonly"] / "model.safetensors")
    bad = online["tiny-corrupt"]
    assert bad["source"] == "bundled" and bad["sha"] == sha256(corrupt_bundled / "model.safetensors")
    assert "checksum" in bad["notes"][0]
    assert "tiny-missing" in online["tiny-missing"]["error"] and online["tiny-missing"]["hint"]
    assert (online[f"{multi}#c"]["source"], online[f"{multi}#c"]["index"]) == ("folder", 2)
    assert "no style 'zz'" in online["tiny-multi/zz"]["error"] and "a, b, c" in online["tiny-multi/zz"]["hint"]
    assert "not a catalog style" in online["nonsense"]["error"]

    # Loading: the chosen style of a multi-style model, and a Hub copy whose weights do not fit its
    # config.json (checksums fine, shapes wrong) falls back to the bundled copy.
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent("""
        import json
        from fauve.catalog import resolve_style
        multi, pick = resolve_style("tiny-multi/b")
        bad = resolve_style("tiny-mismatch")
        print(json.dumps(dict(names=multi.style_names, pick=pick, source=bad.source, notes=bad.notes,
                              width=bad.model.width)))
    """)], capture_output=True, text=True, env=online_env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    assert loaded["names"] == ["a", "b", "c"] and loaded["pick"] == "b"
    assert loaded["source"] == "bundled" and loaded["width"] == 0.125 and "does not match" in loaded["notes"][-1]

    # The Hub goes away. Not offline: network errors fall back (cache for what was pulled, else bundled).
    hub_server.stop()
    down = run(online_env, "tiny-multi/a", "tiny-hubonly")
    assert down["tiny-multi/a"]["source"] == "bundled" and "unreachable" in down["tiny-multi/a"]["notes"][0]
    assert down["tiny-hubonly"]["sha"] == sha256(on_hub["tiny-hubonly"] / "model.safetensors")
    # HF_HUB_OFFLINE=1: the bundled copy first, then the cache; nothing else.
    off = run(hub_env(hub_server, home, offline=True, catalog=catalog), "tiny-single", "tiny-hubonly", "tiny-missing")
    assert off["tiny-single"]["source"] == "bundled" and off["tiny-single"]["sha"] == sha256(single / "model.safetensors")
    assert off["tiny-hubonly"]["source"] == "cached"
    assert "HF_HUB_OFFLINE" in off["tiny-missing"]["error"]


def test_model_card_is_kept_by_save_pretrained_and_has_metadata(tmp_path):
    from fauve.modelcard import ensure_model_card, write_model_card
    from PIL import Image

    folder = tiny_model(tmp_path / "m", "dumoulin", num_styles=2, style_names=["red", "blue"])
    saved = (folder / "README.md").read_text()  # save_pretrained writes our card, not huggingface_hub's generic one
    assert "PytorchModelHubMixin" not in saved and "library_name: fauve" in saved
    (folder / "README.md").unlink()
    assert ensure_model_card(folder) == "written" and "arXiv:1610.07629" in (folder / "README.md").read_text()
    paintings = []
    for name, colour in (("red", (200, 30, 30)), ("blue", (30, 30, 200))):
        Image.new("RGB", (300, 200), colour).save(tmp_path / f"{name}.png")
        paintings.append(tmp_path / f"{name}.png")
    Image.new("RGB", (64, 32), (9, 9, 9)).save(tmp_path / "grid.png")
    card = write_model_card(folder, metrics={"content": 1.5, "style": 0.25}, style_images=paintings,
                            sample_grid=tmp_path / "grid.png", repo_id="fauve/dumoulin-2")
    text = card.read_text()
    meta = yaml.safe_load(text.split("---")[1])
    assert meta["library_name"] == "fauve" and meta["pipeline_tag"] == "image-to-image" and "dumoulin" in meta["tags"]
    assert meta["license"] == "other" and meta["license_name"] == "research-only"
    assert "![red](thumbnails/red.jpg)" in text and "![sample outputs](samples/grid.png)" in text
    assert "| style | 0.25 |" in text and "arXiv:1610.07629" in text
    with Image.open(folder / "thumbnails" / "red.jpg") as im:
        assert max(im.size) == 256 and im.getpixel((10, 10))[0] > 150
    # Saving the model again (e.g. the trainer's final export) keeps the richer card.
    from fauve.models import load_model

    load_model(folder).save_pretrained(folder)
    assert (folder / "README.md").read_text() == text
    assert ensure_model_card(folder) == "kept"


def test_an_adain_card_says_its_layer_when_it_is_not_the_papers(tmp_path):
    from fauve.modelcard import write_model_card

    card31 = write_model_card(tiny_model(tmp_path / "a31", "adain", num_styles=1, style_names=["x"], layer="relu3_1")).read_text()
    card41 = write_model_card(tiny_model(tmp_path / "a41", "adain", num_styles=1, style_names=["x"])).read_text()
    assert "| layer | relu3_1 |" in card31 and "Not the paper's layer" in card31 and "An **adain**" in card31
    assert "| layer | relu4_1 |" in card41 and "Not the paper's layer" not in card41


def test_a_card_of_one_style_taken_from_a_multi_style_model_says_so_and_shows_no_training_losses(tmp_path):
    from fauve.modelcard import render_model_card

    config = {"method": "ulyanov", "style_names": ["great_wave"], "training": {
        "init_from": "dumoulin-16", "init_style": "great_wave", "lr": 0.0, "iters": 1, "final_losses": {"style": 0.4}}}
    text = render_model_card(config)
    assert "## Where the weights come from" in text and "`dumoulin-16`'s style `great_wave`, unchanged" in text
    assert "## Losses reached" not in text and "| init_style | great_wave |" in text
    config["training"]["lr"] = 3e-4  # a fine-tune from that style trained the weights: its losses are shown
    text = render_model_card(config)
    assert "## Where the weights come from" not in text and "## Losses reached" in text
