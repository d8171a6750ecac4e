"""Shared fixtures for the server tests: tiny models and REAL ``fauve serve`` subprocesses.

Import the fixtures you use into a test module (``from server_fixtures import server``) so that no
conftest.py is needed. The servers run on free loopback ports with ``--no-catalog`` and only the
tiny untrained models made here, and are stopped at the end of the session.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

MAX_PIXELS = 2_000_000  # small, so the limit tests stay cheap
TOKEN = "s3cret-test-token"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def build_tiny_models(folder: Path) -> dict[str, Path]:
    """One model per kind the app distinguishes: single style, multi-style (mix), style image."""
    import torch

    from fauve.models import build_model

    torch.manual_seed(0)
    specs = {
        "tiny-wave": ("ulyanov", dict(width=0.125, style_names=["wave"])),
        "tiny-mix": ("dumoulin", dict(width=0.125, num_styles=3, style_names=["candy", "mosaic", "udnie"])),
        "tiny-msg": ("msgnet", dict(width=0.0625, num_blocks=1, num_styles=2, style_names=["ink", "oil"])),
        "tiny-adain": ("adain", dict(width=0.125)),
    }
    paths = {}
    for name, (method, config) in specs.items():
        model = build_model(method, **config)
        if method == "dumoulin":  # give each style its own affine rows, so mixes differ visibly
            with torch.no_grad():
                for p in model.parameters():
                    if p.dim() == 2:
                        p.add_(torch.randn_like(p) * 0.5)
        model.save_pretrained(folder / name)
        paths[name] = folder / name
    return paths


def photo(height: int = 48, width: int = 64, channels: int = 3, seed: int = 0) -> np.ndarray:
    """A smooth, deterministic test picture (gradients + a disc), uint8."""
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    rgb = np.stack([x, y, 1 - 0.5 * (x + y)], -1)
    disc = ((x - 0.5) ** 2 + (y - 0.4) ** 2 < 0.04)[..., None]
    rgb = np.where(disc, [0.9, 0.3, 0.2], rgb) + np.random.default_rng(seed).normal(0, 0.02, rgb.shape)
    img = (np.clip(rgb, 0, 1) * 255).astype(np.uint8)
    if channels == 4:
        alpha = (np.arange(width)[None, :].repeat(height, 0) * 255 // max(width - 1, 1)).astype(np.uint8)
        img = np.dstack([img, alpha])
    return img


@dataclass
class Server:
    url: str
    proc: subprocess.Popen
    log_path: Path
    models: dict[str, Path] = field(default_factory=dict)
    token: str | None = None

    @property
    def bridge(self) -> str:
        return self.url + "/bridge/v1"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
                timeout: float = 60) -> tuple[int, dict, bytes]:
        """(status, headers with lower-case names, body) of a bridge request; HTTP errors are returned, not raised."""
        req = urllib.request.Request(self.bridge + path, data=body, method=method, headers=dict(headers or {}))
        if self.token and "Authorization" not in req.headers:
            req.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
        except urllib.error.HTTPError as err:
            return err.code, {k.lower(): v for k, v in err.headers.items()}, err.read()

    def json(self, method: str, path: str, body: bytes | None = None, **kw) -> tuple[int, dict]:
        status, _, raw = self.request(method, path, body, **kw)
        return status, json.loads(raw)

    def submit(self, image: np.ndarray, **params) -> str:
        h, w = image.shape[:2]
        rgba = image if image.shape[2] == 4 else np.dstack([image, np.full((h, w), 255, np.uint8)])
        query = urllib.parse.urlencode({"format": "rgba8", "width": w, "height": h, **params})
        status, data = self.json("POST", f"/jobs?{query}", np.ascontiguousarray(rgba).tobytes())
        assert status == 202, (status, data)
        return data["job_id"]

    def wait(self, job_id: str, timeout: float = 120) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status, data = self.json("GET", f"/jobs/{job_id}")
            assert status == 200, data
            if data["status"] in ("done", "error", "cancelled"):
                return data
            time.sleep(0.05)
        raise AssertionError(f"job {job_id} not finished after {timeout} s: {data}")

    def result_rgba(self, job_id: str) -> np.ndarray:
        status, headers, raw = self.request("GET", f"/jobs/{job_id}/result")
        assert status == 200, raw[:300]
        w, h = int(headers["x-width"]), int(headers["x-height"])
        return np.frombuffer(raw, np.uint8).reshape(h, w, 4)

    def stylize(self, image: np.ndarray, **params) -> np.ndarray:
        job = self.submit(image, **params)
        state = self.wait(job)
        assert state["status"] == "done", state
        return self.result_rgba(job)


def start_server(tmp: Path, models: dict[str, Path], *extra: str, token: str | None = None,
                 timeout: float = 300) -> Server:
    port = free_port()
    log_path = tmp / f"serve-{port}.log"
    env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False", HF_HUB_OFFLINE="1", HF_HUB_DISABLE_TELEMETRY="1",
               FAUVE_OFFLINE="1", GRADIO_TEMP_DIR=str(tmp / "gradio-tmp"), PYTHONUNBUFFERED="1")
    env.pop("FAUVE_TOKEN", None)
    cmd = [sys.executable, "-m", "fauve.cli", "serve", "--port", str(port), "--no-catalog",
           "--models", str(next(iter(models.values())).parent), "--max-pixels", str(MAX_PIXELS), "--tile", "256", *extra]
    if token:
        cmd += ["--token", token]
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    server = Server(f"http://127.0.0.1:{port}", proc, log_path, models, token)
    deadline = time.monotonic() + timeout
    while True:
        try:
            status, _, _ = server.request("GET", "/health", timeout=2)
            if status == 200:
                return server
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_server(server)
            pytest.fail(f"`fauve serve` did not come up on {server.url}:\n{server.log()}")
        time.sleep(0.3)


def stop_server(server: Server) -> None:
    server.proc.terminate()
    try:
        server.proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.proc.kill()
        server.proc.wait()


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    return build_tiny_models(tmp_path_factory.mktemp("server-models"))


@pytest.fixture(scope="session")
def server(tmp_path_factory, tiny_models) -> Server:
    """The shared server: loopback, no token, one job at a time."""
    srv = start_server(tmp_path_factory.mktemp("server"), tiny_models, "--concurrency", "1")
    yield srv
    stop_server(srv)
    assert srv.proc.returncode is not None


@pytest.fixture(scope="session")
def token_server(tmp_path_factory, tiny_models) -> Server:
    """A second server that requires a bearer token (as any non-loopback bind must)."""
    srv = start_server(tmp_path_factory.mktemp("token-server"), tiny_models, token=TOKEN)
    yield srv
    stop_server(srv)
