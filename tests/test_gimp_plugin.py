"""The GIMP plug-in in real headless GIMPs (3.0.x from Debian trixie, 3.2.x from sid) against a real
`fauve serve` with a tiny model. The GIMP roots are built on first use and cached (tests/gimp_fixtures.py).

Every case runs the plug-in through the PDB exactly as a script would; the pixels GIMP ends up with are
compared with what the same server returns for the same crop when asked directly.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from gimp_fixtures import fauve_server, free_port, gimp_suite, run_gimp_cases  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.gimp, pytest.mark.slow]

CONTEXT = 8  # the plug-in's "context" argument used in every case


def cases(server) -> list[dict]:
    common = {"server-url": server.url, "style": server.style, "context": CONTEXT}
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there: a stopped server
    return [
        {"name": "feathered", "ellipse": [14, 6, 68, 52], "feather": 10,
         "args": dict(common, output="in-place")},
        {"name": "new-layer", "layer_size": [80, 52], "layer_offset": [9, 6], "ellipse": [24, 14, 40, 30],
         "feather": 6, "args": dict(common, output="new-layer")},
        {"name": "server-stopped", "ellipse": [20, 12, 56, 40], "args": dict(common, **{"server-url": closed})},
        {"name": "unknown-style", "ellipse": [20, 12, 56, 40], "args": dict(common, style="no-such-style")},
        {"name": "indexed", "args": common, "indexed": True},
        {"name": "selection-off-layer", "layer_size": [40, 30], "rect": [60, 40, 20, 15], "args": common},
    ]


@pytest.fixture(scope="session")
def results(gimp_suite, fauve_server, run_gimp_cases):  # noqa: F811
    """All cases in one GIMP run per suite (pytest keeps one instance per gimp_suite parameter)."""
    return run_gimp_cases(gimp_suite, cases(fauve_server))


@pytest.fixture(scope="session")
def gui_results(gimp_suite, fauve_server, run_gimp_cases):  # noqa: F811
    """Cases for the full GIMP (on Xvfb): Ctrl+Z pressed once in the image window after the filter;
    the filter run interactively, its dialog answered with Return (OK)."""
    common = {"server-url": fauve_server.url, "style": fauve_server.style, "context": CONTEXT}
    return run_gimp_cases(gimp_suite, [
        {"name": "undo-in-place", "ellipse": [14, 6, 68, 52], "feather": 10, "undo": True,
         "args": dict(common, output="in-place")},
        {"name": "undo-new-layer", "layer_offset": [9, 6], "layer_size": [80, 52], "ellipse": [24, 14, 40, 30],
         "feather": 6, "undo": True, "args": dict(common, output="new-layer")},
        {"name": "dialog", "rect": [10, 10, 40, 30], "interactive": True, "args": {},
         "last_values": {"style": fauve_server.style, "strength": 1.0, "preserve-color": "none",
                         "style-scale": 1.0, "output": "new-layer", "context": CONTEXT,
                         "server-url": fauve_server.url, "style-index": 0}},
    ], gui=True)


def stylize_directly(server, rgba: np.ndarray) -> np.ndarray:
    """The server's answer for this RGBA crop, asked over the bridge API without GIMP."""
    h, w = rgba.shape[:2]
    query = urllib.parse.urlencode({"format": "rgba8", "width": w, "height": h, "style": server.style})
    req = urllib.request.Request(f"{server.url}/bridge/v1/jobs?{query}", data=rgba.tobytes(), method="POST")
    job = json.load(urllib.request.urlopen(req, timeout=60))["job_id"]
    deadline = time.monotonic() + 120
    while json.load(urllib.request.urlopen(f"{server.url}/bridge/v1/jobs/{job}", timeout=10))["status"] != "done":
        assert time.monotonic() < deadline, "direct job did not finish"
        time.sleep(0.1)
    raw = urllib.request.urlopen(f"{server.url}/bridge/v1/jobs/{job}/result", timeout=60).read()
    return np.frombuffer(raw, np.uint8).reshape(h, w, 4)


def expected_styled(server, before: np.ndarray, mask: np.ndarray):
    """(x, y, w, h) of the selection bounds and the styled pixels the plug-in should write there."""
    ys, xs = np.nonzero(mask)
    x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
    H, W = mask.shape
    cx0, cy0, cx1, cy1 = max(0, x0 - CONTEXT), max(0, y0 - CONTEXT), min(W, x1 + CONTEXT), min(H, y1 + CONTEXT)
    styled = stylize_directly(server, np.ascontiguousarray(before[cy0:cy1, cx0:cx1])).copy()
    styled[..., 3] = before[cy0:cy1, cx0:cx1, 3]  # the plug-in keeps the layer's alpha
    inner = styled[y0 - cy0:y1 - cy0, x0 - cx0:x1 - cx0]
    return (int(x0), int(y0), int(x1 - x0), int(y1 - y0)), inner


def test_feathered_selection_styles_inside_keeps_outside_blends_edge(results, fauve_server):  # noqa: F811
    r = results["feathered"]
    assert r.report["status"] == "success", r.report
    before, after, mask = r.rgba("before.rgba"), r.rgba("after.rgba"), r.gray("mask.y8")
    (x, y, w, h), styled = expected_styled(fauve_server, before, mask)
    full = before.astype(int).copy()
    full[y:y + h, x:x + w] = styled
    b, a, s = before.astype(int), after.astype(int), full

    outside = mask == 0
    assert outside.sum() > 1000 and np.array_equal(a[outside], b[outside])  # far outside: untouched
    inside = mask == 255
    assert inside.sum() > 500
    assert np.abs(s[inside] - b[inside])[:, :3].mean() > 10, "the tiny model should change the pixels"
    assert np.abs(a[inside] - s[inside]).max() <= 2  # inside: exactly what the server made
    assert np.array_equal(a[..., 3], b[..., 3])  # alpha kept

    edge = (mask > 0) & (mask < 255)
    assert edge.sum() > 300
    lo, hi = np.minimum(b, s)[edge][:, :3], np.maximum(b, s)[edge][:, :3]
    assert ((a[edge][:, :3] >= lo - 2) & (a[edge][:, :3] <= hi + 2)).all()  # between original and styled
    d = (s - b)[..., :3]
    strong = edge[..., None] & (np.abs(d) > 40)
    t = (a - b)[..., :3][strong] / d[strong]  # 0 = original, 1 = styled
    m = np.broadcast_to(mask[..., None], d.shape)[strong] / 255.0
    assert 0.05 < t.mean() < 0.95 and np.corrcoef(t, m)[0, 1] > 0.7  # soft blend that follows the feather
    assert r.report["dirty"] and len(r.report["layers"]) == 1


def test_new_layer_at_the_right_offsets_masked_by_selection(results, fauve_server):  # noqa: F811
    r = results["new-layer"]
    assert r.report["status"] == "success", r.report
    before, after, mask = r.rgba("before.rgba"), r.rgba("after.rgba"), r.gray("mask.y8")
    assert np.array_equal(before, after)  # the original layer is untouched
    (x, y, w, h), styled = expected_styled(fauve_server, before, mask)
    top, original = r.report["layers"]
    assert original["name"] == "photo" and original["offsets"] == [9, 6]
    assert fauve_server.style in top["name"] and top["has_mask"] and top["opacity"] == 100.0
    assert top["offsets"] == [9 + x, 6 + y] and top["size"] == [w, h]
    pixels = r.rgba("layer0.rgba", (w, h)).astype(int)
    assert np.abs(pixels - styled).max() <= 2
    layer_mask = r.gray("layer0-mask.y8", (w, h)).astype(int)
    assert np.abs(layer_mask - mask[y:y + h, x:x + w]).max() <= 1


@pytest.mark.parametrize("name, status, words", [
    ("server-stopped", "execution-error", ["No answer from the fauve server", "fauve serve --port", "not changed"]),
    ("unknown-style", "execution-error", ["no-such-style", "not changed"]),
    ("indexed", "calling-error", ["Indexed", "Image ▸ Mode ▸ RGB"]),
    ("selection-off-layer", "calling-error", ["does not cover any pixel", "Select ▸ None"]),
])
def test_failures_leave_the_image_untouched_and_say_what_to_do(results, name, status, words):
    r = results[name]
    assert r.report["status"] == status, r.report
    for word in words:
        assert word in r.report["error"], r.report["error"]
        assert word in r.report["log"]  # Gimp.message reaches the user (the console when headless)
    assert np.array_equal(r.rgba("before.rgba"), r.rgba("after.rgba"))
    assert not r.report["dirty"] and len(r.report["layers"]) == 1


@pytest.mark.parametrize("name", ["undo-in-place", "undo-new-layer"])
def test_one_ctrl_z_restores_the_original(gui_results, name):
    r = gui_results[name]
    assert r.report["status"] == "success", r.report
    before, after = r.rgba("before.rgba"), r.rgba("after.rgba")
    if name == "undo-in-place":
        assert not np.array_equal(before, after)  # the filter did change the layer ...
    else:
        assert len(r.report["layers"]) == 2  # ... or added a layer
    assert r.report["layers_after_undo"] == 1  # ... and one undo step removes all of it
    assert np.array_equal(r.rgba("undone.rgba"), before)


def test_interactive_run_opens_the_dialog_with_the_last_values(gui_results, fauve_server):  # noqa: F811
    """GIMP fills the dialog with the remembered values (here: output = new layer); OK applies them."""
    r = gui_results["dialog"]
    assert r.report["status"] == "success", r.report
    assert np.array_equal(r.rgba("before.rgba"), r.rgba("after.rgba"))
    top, original = r.report["layers"]
    assert original["name"] == "photo" and fauve_server.style in top["name"]
    assert top["offsets"] == [10, 10] and top["size"] == [40, 30] and top["has_mask"]
    styled = r.rgba("layer0.rgba", (40, 30)).astype(int)
    assert np.abs(styled - r.rgba("before.rgba")[10:40, 10:50]).mean() > 10


# --- the plug-in's server side, without GIMP: cancel and auto-start ---------------------------------
PLUGIN_DIR = Path(__file__).resolve().parent.parent / "plugin" / "fauve-style-transfer"


def plugin_client():
    """The plug-in's stdlib-only bridge client, imported from the plug-in folder."""
    spec = importlib.util.spec_from_file_location("fauve_gimp_client", PLUGIN_DIR / "fauve_gimp_client.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def job_status(server, job_id: str) -> str:
    return json.load(urllib.request.urlopen(f"{server.url}/bridge/v1/jobs/{job_id}", timeout=10))["status"]


def test_killed_plugin_cancels_its_server_job(fauve_server):  # noqa: F811
    """GIMP's Cancel button kills the plug-in process; its job must not keep the server busy."""
    size = 1024  # the blocker keeps the one job slot busy for seconds, so the plug-in's job waits
    query = urllib.parse.urlencode({"format": "rgba8", "width": size, "height": size, "style": fauve_server.style})
    blocker = json.load(urllib.request.urlopen(urllib.request.Request(
        f"{fauve_server.url}/bridge/v1/jobs?{query}", data=bytes(size * size * 4), method="POST"), timeout=60))["job_id"]
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import fauve_gimp_client as c\n"
            "c.BridgeClient(sys.argv[2]).run_job(bytes(512 * 512 * 4), 512, 512, {'style': sys.argv[3]}, timeout=300,"
            " on_submit=lambda j: print(j, flush=True))\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(PLUGIN_DIR), fauve_server.url, fauve_server.style],
                            stdout=subprocess.PIPE, text=True)
    try:
        job_id = proc.stdout.readline().strip()
        assert job_id and job_status(fauve_server, job_id) in ("queued", "running")
        proc.send_signal(signal.SIGKILL)  # no finally, no atexit: what GIMP does
        proc.wait(timeout=10)
        deadline = time.monotonic() + 15
        while job_status(fauve_server, job_id) != "cancelled":
            assert time.monotonic() < deadline, f"job still {job_status(fauve_server, job_id)} after the kill"
            time.sleep(0.2)
    finally:
        proc.kill()
        urllib.request.urlopen(urllib.request.Request(f"{fauve_server.url}/bridge/v1/jobs/{blocker}",
                                                      method="DELETE"), timeout=10)


def test_plugin_starts_the_configured_server_and_waits_for_it(fauve_server, tmp_path):  # noqa: F811
    client_mod = plugin_client()
    port = free_port()
    pidfile = tmp_path / "server.pid"
    # what `fauve gimp install` records, wrapped to learn the pid (the plug-in detaches the server)
    cmd = ["sh", "-c", 'echo $$ > "$0"; exec "$@"', str(pidfile), sys.executable, "-m", "fauve.cli", "serve",
           "--port", str(port), "--no-catalog", "--models", str(fauve_server.models)]
    client = client_mod.BridgeClient(f"http://127.0.0.1:{port}")
    with pytest.raises(client_mod.BridgeError, match="No answer") as err:
        client.ensure_running([], 5)  # not configured: says how to start it
    assert f"fauve serve --port {port}" in err.value.hint
    try:
        health = client.ensure_running(cmd, start_timeout=240)
        assert health["name"] == "fauve"
        assert [s["id"] for s in client.styles()] == [fauve_server.style]
    finally:
        if pidfile.exists():
            try:
                os.kill(int(pidfile.read_text()), signal.SIGTERM)
            except ProcessLookupError:
                pass


def test_server_gets_an_environment_without_gimps_python_settings(monkeypatch):
    client_mod = plugin_client()
    for name, value in {"PYTHONPATH": "/gimp/lib/python", "PYTHONHOME": "/gimp", "GI_TYPELIB_PATH": "/gimp/gir",
                        "GIMP3_DIRECTORY": "/p", "BABL_PATH": "/b", "FAUVE_TOKEN": "t", "HOME": "/home/u"}.items():
        monkeypatch.setenv(name, value)
    env = client_mod.clean_child_env()
    assert not {"PYTHONPATH", "PYTHONHOME", "GI_TYPELIB_PATH", "GIMP3_DIRECTORY", "BABL_PATH"} & set(env)
    assert env["FAUVE_TOKEN"] == "t" and env["HOME"] == "/home/u" and "PATH" in env
