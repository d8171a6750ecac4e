"""Fixtures for the tests that run the plug-in in real headless GIMPs (imported by test_gimp_plugin.py).

- ``gimp_suite``: each Debian suite whose GIMP the plug-in must work in (trixie: GIMP 3.0.x,
  sid: GIMP 3.2.x). The root is built by ``scripts/gimp3-root setup`` on first use (a few minutes,
  needs root and a Debian mirror) and cached under /var/cache/fauve-gimp3 (FAUVE_GIMP3_CACHE).
- ``fauve_server``: a real ``fauve serve`` on a free loopback port, serving one tiny model.
- ``run_gimp_cases``: runs tests/gimp_driver.py inside GIMP for a list of cases; returns their results.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
GIMP3_ROOT = REPO / "scripts" / "gimp3-root"
DRIVER = REPO / "tests" / "gimp_driver.py"
SUITES = {"trixie": "3.0", "sid": "3.2"}  # Debian suite -> the GIMP minor version it ships


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session", params=list(SUITES), ids=[f"gimp{v}" for v in SUITES.values()])
def gimp_suite(request) -> str:
    """Build (once) or reuse the cached GIMP root of this suite; returns the suite name."""
    if os.geteuid() != 0:
        pytest.fail("the GIMP tests need root (scripts/gimp3-root uses debootstrap, chroot and mount)")
    suite = request.param
    setup = subprocess.run([str(GIMP3_ROOT), "--suite", suite, "setup"], capture_output=True, text=True,
                           timeout=1800)
    if setup.returncode != 0:
        pytest.fail(f"scripts/gimp3-root --suite {suite} setup failed:\n{setup.stderr[-3000:]}")
    return suite


@dataclass
class ServerInfo:
    url: str
    style: str
    models: Path


@pytest.fixture(scope="session")
def fauve_server(tmp_path_factory):
    """`fauve serve` on a free loopback port with one tiny untrained model; stopped at the end."""
    from fauve.models import build_model

    models = tmp_path_factory.mktemp("gimp-models")
    build_model("ulyanov", width=0.25).save_pretrained(models / "tiny-ulyanov")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(tmp_path_factory.mktemp("gimp-server") / "serve.log", "w+")
    env = {k: v for k, v in os.environ.items() if k != "FAUVE_TOKEN"}
    proc = subprocess.Popen([sys.executable, "-m", "fauve.cli", "serve", "--port", str(port), "--no-catalog",
                             "--models", str(models)], stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 240
        while True:
            try:
                with urllib.request.urlopen(url + "/bridge/v1/styles", timeout=2) as resp:
                    styles = json.load(resp)["styles"]
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    pytest.fail(f"`fauve serve` did not come up on {url}:\n{log.read()[-3000:]}")
                time.sleep(0.5)
        assert styles, "the server lists no styles for the tiny model"
        yield ServerInfo(url, styles[0]["id"], models)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@dataclass
class CaseResult:
    """What the driver saw for one case; pixel arrays are in the original layer's coordinates."""

    report: dict
    folder: Path
    size: tuple[int, int]  # the original layer's (width, height)

    def rgba(self, name: str, size: tuple[int, int] | None = None) -> np.ndarray:
        w, h = size or self.size
        return np.fromfile(self.folder / name, np.uint8).reshape(h, w, 4)

    def gray(self, name: str, size: tuple[int, int] | None = None) -> np.ndarray:
        w, h = size or self.size
        return np.fromfile(self.folder / name, np.uint8).reshape(h, w)


@pytest.fixture(scope="session")
def run_gimp_cases():
    """run(suite, cases, gui=False) -> {case name: CaseResult}, all cases in one headless GIMP.

    gui=True runs the full GIMP on a virtual X display instead of gimp-console (for undo by Ctrl+Z)."""
    folders = []

    def run(suite: str, cases: list[dict], gui: bool = False) -> dict[str, CaseResult]:
        out = Path(tempfile.mkdtemp(prefix=f"fauve-gimp-{suite}-", dir="/tmp"))  # /tmp is visible in the root
        folders.append(out)
        (out / "cases.json").write_text(json.dumps(cases))
        env = dict(os.environ, FAUVE_GIMP_CASES=str(out / "cases.json"), FAUVE_GIMP_OUT=str(out))
        proc = subprocess.run([str(GIMP3_ROOT), "--suite", suite, "gimp", *(["--gui"] if gui else []),
                               "--env", "FAUVE_GIMP_CASES",
                               "--env", "FAUVE_GIMP_OUT", "--file", str(DRIVER)],
                              env=env, capture_output=True, text=True, timeout=900)
        log = proc.stdout[-4000:] + proc.stderr[-4000:]
        assert proc.returncode == 0, f"GIMP ({suite}) failed, exit {proc.returncode}:\n{log}"
        summary = json.loads((out / "summary.json").read_text())
        assert summary["gimp"].startswith(SUITES[suite] + "."), summary
        results = {}
        for case in cases:
            folder = out / case["name"]
            report = json.loads((folder / "report.json").read_text())
            assert report["status"] != "driver-crashed", report.get("traceback")
            report["gimp"], report["log"] = summary["gimp"], log
            results[case["name"]] = CaseResult(report, folder, tuple(case.get("layer_size",
                                                                              case.get("image_size", (96, 64)))))
        return results

    yield run
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)
