"""The wheel a user installs (``pip install fauve-*.whl``, not the checkout): it must bring the bundled styles,
the GIMP plug-in and the samples, and work offline from any folder."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """Build the wheel from the checkout and install it (no dependencies: those of this venv serve) into a
    folder that is not the checkout; return that folder."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"  # a copy of what the package is built from: no stale build/ of the checkout's
    for name in ("core", "gimp_bridge", "plugin", "hub_models"):
        shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(REPO / name, source / name)
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(work / "dist"), str(source)], capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr[-3000:]
    (wheel,) = (work / "dist").glob("fauve-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "fauve_plugin/fauve-style-transfer/fauve-style-transfer.py" in names
    assert "fauve_hub_models/catalog.json" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    target = work / "site"
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target),
                              str(wheel)], capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stderr[-3000:]
    return target


def _run(site: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(site), "HF_HUB_OFFLINE": "1"}
    env.pop("FAUVE_CATALOG", None)
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_the_wheel_runs_from_its_install_folder_not_the_checkout(installed, tmp_path):
    where = _run(installed, tmp_path, "-c", "import fauve, fauve_bridge, fauve_plugin, fauve.catalog as c; "
                 "print(fauve.__file__); print(c.catalog_path())")
    assert where.returncode == 0, where.stderr
    module, catalog = where.stdout.split()
    assert Path(module).is_relative_to(installed) and Path(catalog).is_relative_to(installed)
    assert Path(catalog) == installed / "fauve_hub_models" / "catalog.json"


def test_the_wheel_brings_every_bundled_style_and_stylizes_offline(installed, tmp_path):
    listed = _run(installed, tmp_path, "-m", "fauve.cli", "styles", "--json")
    assert listed.returncode == 0, listed.stderr
    styles = json.loads(listed.stdout)
    bundled = {s["id"] for s in styles if s["source"] == "bundled"}
    catalog = json.loads((REPO / "hub_models" / "catalog.json").read_text())
    shipped = [m["name"] for m in catalog["models"] if (REPO / "hub_models" / m["folder"] / "model.safetensors").is_file()]
    assert shipped and all(any(i == name or i.startswith(name + "/") for i in bundled) for name in shipped)
    assert all(Path(s["thumbnail"]).is_file() for s in styles if s["source"] == "bundled" and s["thumbnail"])

    photo = (np.random.default_rng(0).random((48, 64, 3)) * 255).astype(np.uint8)
    Image.fromarray(photo).save(tmp_path / "photo.png")
    run = _run(installed, tmp_path, "-m", "fauve.cli", "stylize", "photo.png", "--style", "ulyanov-the-scream",
               "--device", "cpu", "-o", "out.png")
    assert run.returncode == 0, run.stderr
    out = np.asarray(Image.open(tmp_path / "out.png").convert("RGB"))
    assert out.shape == photo.shape
    assert np.abs(out.astype(int) - photo).mean() > 10  # painted, not passed through
