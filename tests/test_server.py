"""`fauve serve` end to end: a real server subprocess, the bridge API over HTTP, the Gradio API.

Results are compared pixel for pixel with the one pipeline (``fauve.pipeline.Stylizer``) run here
on the same model files with the same parameters.
"""

from __future__ import annotations

import base64
import http.client
import io
import json
import os
import subprocess
import sys
import threading
import time
import urllib.parse
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fauve.pipeline import Stylizer
from server_fixtures import MAX_PIXELS, TOKEN, photo, server, tiny_models, token_server  # noqa: F401 (fixtures)

os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


@pytest.fixture(scope="module")
def stylizers(tiny_models):  # noqa: F811
    return {name: Stylizer(str(path), device="cpu") for name, path in tiny_models.items()}


def rgba(image: np.ndarray) -> np.ndarray:
    return image if image.shape[2] == 4 else np.dstack([image, np.full(image.shape[:2], 255, np.uint8)])


def png_bytes(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")


def bomb_png(width: int, height: int) -> bytes:
    """A valid greyscale PNG of zeros: a few kB that inflate to width*height bytes."""
    comp = zlib.compressobj(9)
    row = b"\x00" * (width + 1)
    idat = b"".join(comp.compress(row) for _ in range(height)) + comp.flush()
    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 0, 0, 0, 0])
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def assert_error(status: int, body: bytes, want_status: int, want_code: str | None = None) -> dict:
    data = json.loads(body)
    assert status == want_status, (status, data)
    assert set(data) == {"code", "message", "hint"}, data
    assert data["message"] and isinstance(data["hint"], str)
    if want_code:
        assert data["code"] == want_code, data
    return data


def assert_alive(srv) -> None:
    assert srv.proc.poll() is None, srv.log()
    status, data = srv.json("GET", "/health")
    assert status == 200 and data["name"] == "fauve", data


# -- health and styles ---------------------------------------------------------------------------
def test_health_reports_version_device_and_queue(server):  # noqa: F811
    status, data = server.json("GET", "/health")
    assert status == 200
    from fauve import __version__

    assert data["version"] == __version__ and data["api"] == 1 and data["device"] == "cpu"
    assert data["queue"]["concurrency"] == 1 and data["max_pixels"] == MAX_PIXELS
    assert isinstance(data["models_loaded"], list)


def test_styles_list_every_model_style_with_a_thumbnail(server):  # noqa: F811
    status, data = server.json("GET", "/styles")
    assert status == 200
    by_id = {s["id"]: s for s in data["styles"]}
    assert set(by_id) == {"tiny-wave", "tiny-mix/candy", "tiny-mix/mosaic", "tiny-mix/udnie", "tiny-msg/ink", "tiny-msg/oil"}
    assert by_id["tiny-wave"]["method"] == "ulyanov" and by_id["tiny-mix/mosaic"]["model"] == "tiny-mix"
    assert by_id["tiny-mix/mosaic"]["label"] == "mosaic · dumoulin (tiny-mix)"  # what the app and the GIMP dialog show
    assert by_id["tiny-msg/ink"]["accepts_style_image"] and not by_id["tiny-wave"]["accepts_style_image"]
    for style in data["styles"]:
        thumb = Image.open(io.BytesIO(base64.b64decode(style["thumbnail_png_b64"])))
        assert thumb.format == "PNG" and max(thumb.size) == 128


# -- jobs: results equal the pipeline's ---------------------------------------------------------
def test_rgba8_job_equals_pipeline_and_keeps_alpha(server, stylizers):  # noqa: F811
    image = photo(40, 52, channels=4)
    out = server.stylize(image, style="tiny-wave")
    expected = stylizers["tiny-wave"].run(image, style="wave")
    assert out.shape == image.shape
    assert np.array_equal(out, expected)
    assert np.array_equal(out[..., 3], image[..., 3])
    assert np.abs(out[..., :3].astype(int) - image[..., :3]).mean() > 5  # it really was stylized


def test_options_reach_the_pipeline(server, stylizers):  # noqa: F811
    image = photo(48, 64, channels=4, seed=3)
    params = dict(strength=0.6, preserve_color="luminance", style_scale=1.5)
    out = server.stylize(image, style="tiny-mix/mosaic", **params)
    assert np.array_equal(out, stylizers["tiny-mix"].run(image, style="mosaic", **params))
    plain = server.stylize(image, style="tiny-mix:mosaic")  # <model>:<style> is accepted for <model>/<style>
    assert not np.array_equal(out, plain)


def test_mix_of_dumoulin_styles_equals_pipeline(server, stylizers):  # noqa: F811
    image = photo(48, 48, channels=4, seed=1)
    out = server.stylize(image, model="tiny-mix", mix="candy:0.7,udnie:0.3")
    assert np.array_equal(out, stylizers["tiny-mix"].run(image, mix={"candy": 0.7, "udnie": 0.3}))
    assert not np.array_equal(out, server.stylize(image, style="tiny-mix/candy"))


def test_png_job_returns_png_of_same_size(server, stylizers):  # noqa: F811
    image = photo(36, 44, seed=2)  # RGB PNG in -> RGB PNG out
    query = urllib.parse.urlencode({"format": "png", "style": "tiny-wave"})
    status, data = server.json("POST", f"/jobs?{query}", png_bytes(image))
    assert status == 202
    assert server.wait(data["job_id"])["status"] == "done"
    status, headers, raw = server.request("GET", f"/jobs/{data['job_id']}/result")
    assert status == 200 and headers["content-type"] == "image/png"
    out = np.asarray(Image.open(io.BytesIO(raw)))
    assert out.shape == image.shape
    assert np.array_equal(out, stylizers["tiny-wave"].run(rgba(image), style="wave")[..., :3])


def test_png_job_with_a_colour_profile_is_stylized_in_srgb_and_answered_in_its_space(server, stylizers):  # noqa: F811
    from icc_profiles import rgb_profile
    from PIL import ImageCms

    wide_icc = rgb_profile("Wide test RGB")
    wide, srgb = ImageCms.ImageCmsProfile(io.BytesIO(wide_icc)), ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
    seen = photo(36, 44, seed=3)
    stored = ImageCms.profileToProfile(Image.fromarray(seen), srgb, wide, renderingIntent=1)
    body = io.BytesIO()
    stored.save(body, format="PNG", icc_profile=wide_icc)
    as_srgb = np.asarray(ImageCms.profileToProfile(stored, wide, srgb, renderingIntent=1))
    query = urllib.parse.urlencode({"format": "png", "style": "tiny-wave"})
    status, data = server.json("POST", f"/jobs?{query}", body.getvalue())
    assert status == 202 and server.wait(data["job_id"])["status"] == "done"
    _, _, raw = server.request("GET", f"/jobs/{data['job_id']}/result")
    with Image.open(io.BytesIO(raw)) as result:
        assert result.info.get("icc_profile") == wide_icc
        shown = np.asarray(ImageCms.profileToProfile(result, wide, srgb, renderingIntent=1)).astype(int)
    expected = stylizers["tiny-wave"].run(rgba(as_srgb), style="wave")[..., :3]
    assert np.abs(shown - expected).mean() < 1.5


def test_large_image_is_tiled_on_the_server_with_progress_then_cancel_frees_the_slot(server, stylizers):  # noqa: F811
    big = photo(1300, 1400, seed=4)  # 1.8 MP, under the test server's 2 MP limit; 128 px tiles: hundreds
    job = server.submit(big, style="tiny-wave", tile=128)
    seen = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        state = server.json("GET", f"/jobs/{job}")[1]
        seen.append(state["progress"])
        if state["status"] == "running" and 0 < state["progress"] < 0.5:
            break
        assert state["status"] in ("queued", "running"), state
        time.sleep(0.02)
    assert 0 < seen[-1] < 1, seen
    status, _, body = server.request("GET", f"/jobs/{job}/result")
    assert_error(status, body, 409, "not_ready")

    small = photo(32, 32, seed=5)
    waiting = server.submit(small, style="tiny-wave")  # queued behind the big one (one job at a time)
    status, data = server.json("DELETE", f"/jobs/{job}")
    assert status == 200 and data == {"job_id": job, "status": "cancelled"}
    cancelled_at = time.monotonic()
    state = server.wait(waiting, timeout=60)
    assert state["status"] == "done"
    assert time.monotonic() - cancelled_at < 20  # the slot was freed, not held until the big job's end
    assert server.json("GET", f"/jobs/{job}")[1]["status"] == "cancelled"
    status, _, body = server.request("GET", f"/jobs/{job}/result")
    assert_error(status, body, 409, "cancelled")
    assert np.array_equal(server.result_rgba(waiting), stylizers["tiny-wave"].run(rgba(small)))


def test_tiled_job_equals_tiled_pipeline(server, stylizers):  # noqa: F811
    image = photo(200, 230, seed=6)
    out = server.stylize(image, style="tiny-wave", tile=96)
    assert np.array_equal(out, stylizers["tiny-wave"].run(rgba(image), tile=96))


def test_cancelling_a_queued_job(server):  # noqa: F811
    first = server.submit(photo(600, 600, seed=7), style="tiny-wave", tile=64)
    second = server.submit(photo(32, 32), style="tiny-wave")
    assert server.json("DELETE", f"/jobs/{second}")[1]["status"] == "cancelled"
    server.json("DELETE", f"/jobs/{first}")
    assert server.wait(second)["status"] == "cancelled"
    assert server.wait(first)["status"] == "cancelled"
    assert_alive(server)


def test_eight_concurrent_clients_are_all_served(server, stylizers):  # noqa: F811
    images = [photo(32 + 4 * i, 40, seed=10 + i) for i in range(8)]
    results: dict[int, np.ndarray] = {}
    errors: list[BaseException] = []

    def client(i: int) -> None:
        try:
            results[i] = server.stylize(images[i], style="tiny-mix/udnie")
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=180)
    assert not errors, errors
    assert sorted(results) == list(range(8))
    for i, image in enumerate(images):
        assert np.array_equal(results[i], stylizers["tiny-mix"].run(rgba(image), style="udnie"))


# -- bad input: 4xx JSON, and the server keeps serving -------------------------------------------
def raw_post(srv, path: str, headers: dict, body: bytes = b"") -> tuple[int, bytes]:
    """POST with hand-made headers (e.g. a Content-Length that does not match the body)."""
    conn = http.client.HTTPConnection(urllib.parse.urlparse(srv.url).netloc, timeout=30)
    try:
        conn.putrequest("POST", "/bridge/v1" + path)
        for key, value in headers.items():
            conn.putheader(key, value)
        conn.endheaders()
        if body:
            conn.send(body)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


@pytest.mark.parametrize("query, body, status, code", [
    ("format=png&style=tiny-wave", b"this is not an image at all" * 10, 400, "bad_image"),
    ("format=png&style=tiny-wave", png_bytes(photo(40, 40))[:200], 400, "bad_image"),  # truncated
    ("format=png&style=tiny-wave", b"\x89PNG\r\n\x1a\n" + os.urandom(500), 400, "bad_image"),
    ("format=rgba8&style=tiny-wave&width=40&height=40", b"\x00" * (40 * 40 * 4 - 1), 400, "wrong_size"),
    ("format=rgba8&style=tiny-wave&width=40", b"\x00" * 6400, 400, "missing_size"),
    ("format=rgba8&style=tiny-wave&width=-3&height=40", b"\x00" * 16, 400, "bad_parameter"),
    ("format=rgba8&style=tiny-wave&width=8&height=8", b"\x00" * 256, 400, "too_small"),
    ("format=rgba8&style=tiny-wave&width=100000&height=100000", b"\x00" * 64, 413, "too_many_pixels"),
    ("format=png&style=tiny-wave", bomb_png(3000, 3000), 413, "too_many_pixels"),  # 9 MP from ~9 kB
    ("format=rgba8&style=no-such-style&width=16&height=16", b"\x00" * 1024, 400, "unknown_style"),
    ("format=rgba8&model=tiny-mix&mix=candy:0.5,nope:0.5&width=16&height=16", b"\x00" * 1024, 400, "unknown_style"),
    ("format=rgba8&model=tiny-mix&mix=candy:abc&width=16&height=16", b"\x00" * 1024, 400, "bad_parameter"),
    ("format=rgba8&style=tiny-wave&strength=2&width=16&height=16", b"\x00" * 1024, 400, "bad_parameter"),
    ("format=rgba8&style=tiny-wave&strength=nan&width=16&height=16", b"\x00" * 1024, 400, "bad_parameter"),
    ("format=rgba8&style=tiny-wave&preserve_color=sepia&width=16&height=16", b"\x00" * 1024, 400, "bad_parameter"),
    ("format=rgba8&style=tiny-wave&tile=3&width=16&height=16", b"\x00" * 1024, 400, "bad_parameter"),
    ("format=rgba8&style=tiny-wave&colour=red&width=16&height=16", b"\x00" * 1024, 400, "unknown_parameter"),
    ("format=jpeg&style=tiny-wave", b"\xff\xd8\xff", 400, "bad_parameter"),
    ("format=rgba8&width=16&height=16", b"\x00" * 1024, 400, "missing_style"),
])
def test_bad_jobs_get_4xx_json_and_the_server_keeps_serving(server, query, body, status, code):  # noqa: F811
    got, _, raw = server.request("POST", f"/jobs?{query}", body)
    assert_error(got, raw, status, code)
    assert_alive(server)


def test_body_size_is_refused_before_it_is_read(server):  # noqa: F811
    status, raw = raw_post(server, "/jobs?format=png&style=tiny-wave", {"Content-Length": str(10**12)})
    assert_error(status, raw, 413, "body_too_large")
    status, raw = raw_post(server, "/jobs?format=rgba8&style=tiny-wave&width=20&height=20", {"Content-Length": "99"}, b"x" * 99)
    assert_error(status, raw, 400, "wrong_size")
    assert_alive(server)


def test_chunked_body_over_the_limit_is_cut_off(server):  # noqa: F811
    limit = json.loads(server.request("GET", "/health")[2])["max_body_bytes"]
    conn = http.client.HTTPConnection(urllib.parse.urlparse(server.url).netloc, timeout=60)
    try:
        conn.putrequest("POST", "/bridge/v1/jobs?format=png&style=tiny-wave")
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        chunk = b"\x89PNG\r\n\x1a\n" + b"\x00" * (1 << 20)
        sent = 0
        try:
            while sent <= limit + (2 << 20):
                conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
            conn.send(b"0\r\n\r\n")
        except OSError:
            pass  # the server answered and closed the connection while we were still sending
        resp = conn.getresponse()
        assert_error(resp.status, resp.read(), 413, "body_too_large")
    finally:
        conn.close()
    assert_alive(server)


def test_unknown_jobs_paths_and_methods_get_json_errors(server):  # noqa: F811
    for method, path, status, code in [("GET", "/jobs/nope", 404, "unknown_job"), ("DELETE", "/jobs/nope", 404, "unknown_job"),
                                       ("GET", "/jobs/nope/result", 404, "unknown_job"), ("GET", "/nothing-here", 404, "not_found"),
                                       ("PUT", "/health", 405, None)]:
        got, _, raw = server.request(method, path)
        assert_error(got, raw, status, code)
    assert_alive(server)


def test_requests_from_other_web_sites_are_refused(server):  # noqa: F811
    got, _, raw = server.request("POST", "/jobs?format=rgba8&style=tiny-wave&width=16&height=16", b"\x00" * 1024,
                                 headers={"Origin": "http://evil.example"})
    assert_error(got, raw, 403, "cross_origin")


def test_token_is_required_on_every_bridge_request(token_server):  # noqa: F811
    srv = token_server
    for headers in ({"Authorization": "Bearer wrong"}, {"Authorization": "Basic " + base64.b64encode(b"a:b").decode()},
                    {"Authorization": "Bearer " + TOKEN[:-1]}, {"Authorization": ""}):
        for method, path in [("GET", "/health"), ("GET", "/styles"), ("GET", "/jobs/x"), ("POST", "/jobs?style=tiny-wave")]:
            req = urllib.request.Request(srv.bridge + path, method=method, headers=headers, data=b"" if method == "POST" else None)
            try:
                urllib.request.urlopen(req, timeout=10)
                raise AssertionError(f"{method} {path} with {headers} was accepted")
            except urllib.error.HTTPError as err:
                assert_error(err.code, err.read(), 401, "unauthorized")
    image = photo(32, 32)
    assert srv.stylize(image, style="tiny-wave").shape == (32, 32, 4)  # with the right token it works
    # The browser app is behind a login with the same token.
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(srv.url + "/config", timeout=10)
    assert info.value.code == 401
    assert_alive(srv)


def test_non_loopback_bind_without_token_is_refused(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "fauve.cli", "serve", "--host", "0.0.0.0", "--port", "0", "--no-catalog"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "--token" in proc.stderr


# -- the Gradio app's API (gradio_client) --------------------------------------------------------
@pytest.fixture(scope="module")
def client(server, tmp_path_factory):  # noqa: F811
    from gradio_client import Client

    c = Client(server.url, verbose=False, analytics_enabled=False, download_files=str(tmp_path_factory.mktemp("gradio-dl")))
    yield c
    c.close()


def call_app(client, content: Path, **kw):
    from gradio_client import handle_file

    args = dict(source="catalog", style="tiny-wave", style_image=None, image_model="tiny-adain", mix_model="tiny-mix",
                mix="candy:1", strength=1.0, preserve_color="none", style_scale=1.0)
    args.update(kw)
    if args["style_image"] is not None:
        args["style_image"] = handle_file(str(args["style_image"]))
    return client.predict(content=handle_file(str(content)), api_name="/stylize", **args)


def test_app_lists_styles(client):
    assert set(client.predict(api_name="/list_styles")) == {"tiny-wave", "tiny-mix/candy", "tiny-mix/mosaic", "tiny-mix/udnie",
                                                             "tiny-msg/ink", "tiny-msg/oil"}


def test_app_stylizes_with_a_catalog_style_losslessly(client, stylizers, tmp_path):
    image = photo(48, 64, seed=20)
    Image.fromarray(image).save(tmp_path / "in.png")
    (before, after), download, summary = call_app(client, tmp_path / "in.png", style="tiny-mix/mosaic", strength=0.8,
                                                  preserve_color="histogram")
    expected = stylizers["tiny-mix"].run(image, style="mosaic", strength=0.8, preserve_color="histogram")
    assert np.array_equal(np.asarray(Image.open(before)), image)
    assert np.array_equal(np.asarray(Image.open(after).convert("RGB")), expected)
    assert np.array_equal(np.asarray(Image.open(download)), expected)
    assert Path(download).name == "in-fauve-tiny-mix_mosaic.png" and "cpu" in summary and " s**" in summary


def test_app_style_image_and_mix(client, stylizers, tmp_path):
    image, style = photo(40, 40, seed=21), photo(64, 48, seed=22)[:, ::-1].copy()
    Image.fromarray(image).save(tmp_path / "in.png")
    Image.fromarray(style).save(tmp_path / "style.png")
    _, out, _ = call_app(client, tmp_path / "in.png", source="style image", style_image=tmp_path / "style.png",
                         image_model="tiny-adain", strength=0.9)
    assert np.array_equal(np.asarray(Image.open(out)), stylizers["tiny-adain"].run(image, style_image=style, strength=0.9))
    _, out, _ = call_app(client, tmp_path / "in.png", source="mix", mix="candy:0.25, udnie:0.75")
    assert np.array_equal(np.asarray(Image.open(out)), stylizers["tiny-mix"].run(image, mix={"candy": 0.25, "udnie": 0.75}))


def test_app_reads_the_file_as_uploaded_colour_profile_alpha_and_orientation(client, stylizers, tmp_path):
    """The app stylizes what the user sees: a wide-gamut photo's colours in sRGB, a phone JPEG turned upright;
    the download keeps the photo's alpha, colour space and ICC profile."""
    import io

    from icc_profiles import rgb_profile
    from PIL import ImageCms

    from fauve.imageio import read_image

    wide_icc = rgb_profile("Wide test RGB")
    wide, srgb = ImageCms.ImageCmsProfile(io.BytesIO(wide_icc)), ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
    seen = photo(40, 56, seed=23)  # the colours as the user sees them, in sRGB
    stored = np.asarray(ImageCms.profileToProfile(Image.fromarray(seen), srgb, wide, renderingIntent=1))
    alpha = np.tile(np.linspace(40, 255, 56).astype(np.uint8), (40, 1))
    Image.fromarray(np.dstack([stored, alpha]), "RGBA").save(tmp_path / "wide.png", icc_profile=wide_icc)
    as_read = np.round(read_image(tmp_path / "wide.png").rgb * 255).astype(np.uint8)
    assert np.abs(as_read.astype(int) - seen).mean() < 1  # the network gets the sRGB colours, not the stored numbers

    (before, after), download, _ = call_app(client, tmp_path / "wide.png", style="tiny-wave")
    assert np.array_equal(np.asarray(Image.open(before).convert("RGB")), as_read)
    styled = np.asarray(Image.open(after).convert("RGB"))
    assert np.array_equal(styled, stylizers["tiny-wave"].run(as_read, style="wave"))
    with Image.open(download) as file:
        assert file.mode == "RGBA" and file.info.get("icc_profile") == wide_icc
        assert np.array_equal(np.asarray(file)[..., 3], alpha)
        shown = np.asarray(ImageCms.profileToProfile(file.convert("RGB"), wide, srgb, renderingIntent=1)).astype(int)
    assert np.abs(shown - styled).mean() < 1.5  # in a colour-managed viewer the download looks like the slider

    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to view": phones store portraits like this
    Image.fromarray(photo(40, 64, seed=24)).save(tmp_path / "phone.jpg", quality=95, exif=exif)
    (before, after), _, _ = call_app(client, tmp_path / "phone.jpg", style="tiny-wave")
    assert Image.open(before).size == (40, 64) and Image.open(after).size == (40, 64)


def test_app_reports_errors_and_keeps_serving(client, server, tmp_path):  # noqa: F811
    from gradio_client.exceptions import AppError

    Image.fromarray(photo(40, 40)).save(tmp_path / "in.png")
    with pytest.raises(AppError, match="style image"):
        call_app(client, tmp_path / "in.png", source="style image")
    with pytest.raises(AppError, match="mix"):
        call_app(client, tmp_path / "in.png", source="mix", mix="candy:x")
    Image.fromarray(photo(10, 10)).save(tmp_path / "tiny.png")
    with pytest.raises(AppError, match="16"):
        call_app(client, tmp_path / "tiny.png")
    assert_alive(server)
    assert call_app(client, tmp_path / "in.png")[1]


def test_app_and_bridge_share_one_queue(client, server, tmp_path):  # noqa: F811
    """While the app's job runs, a bridge job waits (concurrency 1) and both finish."""
    from gradio_client import handle_file

    big = photo(900, 900, seed=30)
    Image.fromarray(big).save(tmp_path / "big.png")
    job = client.submit(handle_file(str(tmp_path / "big.png")), "catalog", "tiny-wave", None, "tiny-adain", "tiny-mix", "candy:1",
                        1.0, "none", 1.0, api_name="/stylize")
    deadline = time.monotonic() + 60
    while server.json("GET", "/health")[1]["queue"]["running"] == 0:
        assert time.monotonic() < deadline and not job.done()
        time.sleep(0.02)
    bridge_job = server.submit(photo(32, 32), style="tiny-wave")
    assert server.json("GET", f"/jobs/{bridge_job}")[1]["status"] == "queued"
    assert Image.open(job.result(timeout=120)[1]).size == (900, 900)
    assert server.wait(bridge_job)["status"] == "done"


# -- the catalog's styles are served too (in process: the same Engine the server builds) ------------
def test_engine_serves_catalog_styles_with_titles_and_thumbnails(tmp_path, monkeypatch, tiny_models):  # noqa: F811
    import shutil

    from fauve_bridge.engine import Engine, StyleRequest

    shutil.copytree(tiny_models["tiny-mix"], tmp_path / "mix-folder")
    (tmp_path / "mix-folder" / "thumbnails").mkdir()
    Image.fromarray(photo(200, 300, seed=50)).save(tmp_path / "mix-folder" / "thumbnails" / "udnie.png")
    catalog = {"schema": 1, "models": [{"name": "cat-mix", "repo_id": "fauve/cat-mix", "folder": "mix-folder", "method": "dumoulin",
                                        "license": "mit", "styles": [{"name": "candy", "title": "Candy Land"}, {"name": "udnie"}]},
                                       {"name": "not-here", "repo_id": "fauve/not-here", "folder": "missing", "method": "ulyanov",
                                        "styles": [{"name": "x"}]}]}
    (tmp_path / "catalog.json").write_text(json.dumps(catalog))
    monkeypatch.setenv("FAUVE_CATALOG", str(tmp_path / "catalog.json"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    engine = Engine([tiny_models["tiny-wave"]], device="cpu")
    ids = [s.id for s in engine.list_styles()]
    assert ids == ["tiny-wave", "cat-mix/candy", "cat-mix/mosaic", "cat-mix/udnie"]  # --models first; unavailable left out
    candy = engine.style("cat-mix/candy")
    assert (candy.title, candy.source, candy.license, candy.label) == ("Candy Land", "bundled", "mit", "Candy Land · dumoulin (cat-mix)")
    thumb = Image.open(io.BytesIO(engine.thumbnail_png("cat-mix/udnie")))
    assert thumb.size == (128, 85)  # the catalog's picture, scaled
    image = photo(40, 48, channels=4, seed=51)
    out = engine.stylize(image, StyleRequest(style="cat-mix/udnie", strength=0.7))
    assert np.array_equal(out, Stylizer(str(tiny_models["tiny-mix"]), device="cpu").run(image, style="udnie", strength=0.7))
    assert engine.models_loaded() == ["cat-mix"]
