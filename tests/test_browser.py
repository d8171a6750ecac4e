"""The browser demo in a real headless Chromium (Debian's /usr/bin/chromium via Python Playwright).

Upload a photo, pick a style in the gallery, click Stylize: the result image appears, is lossless
PNG, has the photo's size and differs from it; the page loads nothing from other hosts.
Set FAUVE_SCREENSHOT=path.png to keep a screenshot of the finished page.
"""

from __future__ import annotations

import io
import os
import shutil
import time
import urllib.parse

import numpy as np
import pytest
from PIL import Image

from server_fixtures import photo, server, tiny_models  # noqa: F401 (fixtures)

CHROMIUM = os.environ.get("FAUVE_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def page(server):  # noqa: F811
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (the test command does)")
    if not shutil.which(CHROMIUM) and not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (scripts/test-all does)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        pg = browser.new_page(viewport={"width": 1280, "height": 1000})
        pg.foreign_requests = []
        pg.console_errors = []
        host = urllib.parse.urlparse(server.url).netloc
        pg.on("request", lambda r: pg.foreign_requests.append(r.url) if urllib.parse.urlparse(r.url).netloc not in (host, "") and not r.url.startswith("data:") else None)
        pg.on("console", lambda m: pg.console_errors.append(m.text) if m.type == "error" else None)
        pg.goto(server.url + "/", wait_until="domcontentloaded")
        yield pg
        browser.close()


def test_upload_pick_style_stylize(page, tmp_path):
    from playwright.sync_api import expect

    image = photo(96, 128, seed=40)
    Image.fromarray(image).save(tmp_path / "photo.png")
    expect(page.locator("#run")).to_be_visible(timeout=60_000)

    page.locator("#content input[type=file]").set_input_files(str(tmp_path / "photo.png"))
    expect(page.locator("#content img")).to_be_visible(timeout=30_000)

    items = page.locator("#style-gallery button.thumbnail-item")
    expect(items).to_have_count(6, timeout=30_000)
    captions = [items.nth(i).inner_text() for i in range(6)]
    # whole captions, wrapped, not cut with an ellipsis: models of the same painting are told apart
    shown, cut = page.eval_on_selector_all(
        "#style-gallery .caption-label",
        "els => [els.length, els.filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.textContent)]")
    assert shown == 6 and not cut, (shown, cut)
    items.nth(next(i for i, c in enumerate(captions) if "tiny-wave" in c)).click()
    expect(page.locator("#style input[role=combobox]")).to_have_value("wave · ulyanov (tiny-wave)", timeout=10_000)

    page.locator("#run").click()
    after = page.locator("#result img").nth(1)
    expect(after).to_be_visible(timeout=120_000)
    expect(page.locator("#info")).to_contain_text("cpu", timeout=30_000)

    src = after.get_attribute("src")
    assert src and src.lower().split("?")[0].endswith(".png")
    out = np.asarray(Image.open(io.BytesIO(page.request.get(src).body())).convert("RGB"))
    assert out.shape == image.shape
    assert np.abs(out.astype(int) - image).mean() > 5  # styled, not the photo

    if os.environ.get("FAUVE_SCREENSHOT"):
        page.wait_for_timeout(500)
        page.screenshot(path=os.environ["FAUVE_SCREENSHOT"], full_page=True)
    assert page.foreign_requests == []  # works offline: no CDN, fonts or analytics


def test_cancel_button_stops_the_running_job(page, server, tmp_path):  # noqa: F811
    """Cancel in the browser cancels the queued job on the server (the slot is freed)."""
    from playwright.sync_api import expect

    Image.fromarray(photo(1400, 1400, seed=41)).save(tmp_path / "big.png")  # many 256-px tiles on this server
    before = server.json("GET", "/health")[1]["queue"]
    page.locator("#content input[type=file]").set_input_files(str(tmp_path / "big.png"))
    expect(page.locator("#content img")).to_be_visible(timeout=30_000)
    page.locator("#run").click()
    deadline = time.monotonic() + 60
    while server.json("GET", "/health")[1]["queue"]["running"] == 0:
        assert time.monotonic() < deadline, "the app's job never started"
        time.sleep(0.05)
    page.locator("#cancel").click()
    deadline = time.monotonic() + 30
    while True:
        queue = server.json("GET", "/health")[1]["queue"]
        if queue["cancelled"] == before["cancelled"] + 1 and queue["running"] == 0:
            break
        assert time.monotonic() < deadline, queue
        time.sleep(0.05)
    assert queue["done"] == before["done"]  # it did not finish


def test_stylize_clicked_right_after_a_gallery_pick_uses_that_style(page, tmp_path):
    """Picking a style in the gallery and clicking Stylize at once styles with the picked style,
    not the one the dropdown showed before (the pick must reach the page before the click's inputs are read)."""
    from playwright.sync_api import expect

    Image.fromarray(photo(64, 80, seed=42)).save(tmp_path / "photo.png")
    expect(page.locator("#run")).to_be_visible(timeout=60_000)
    page.locator("#content input[type=file]").set_input_files(str(tmp_path / "photo.png"))
    expect(page.locator("#content img")).to_be_visible(timeout=30_000)
    items = page.locator("#style-gallery button.thumbnail-item")
    expect(items).to_have_count(6, timeout=30_000)
    current = page.locator("#style input[role=combobox]").input_value()
    captions = [items.nth(i).inner_text().strip() for i in range(6)]
    for attempt, i in enumerate(i for i, c in enumerate(captions) if c and c not in current):
        if attempt == 3:
            break
        before = page.locator("#info").inner_text().strip()
        items.nth(i).click()
        page.locator("#run").click()
        info = _next_summary(page, before)
        assert captions[i] in info, (captions[i], info)

    # a pick from the dropdown after a gallery pick wins
    items.nth(0).click()
    expect(page.locator("#style input[role=combobox]")).to_have_value(captions[0], timeout=10_000)
    page.locator("#style input[role=combobox]").click()
    page.get_by_role("option", name=captions[1], exact=True).click()
    expect(page.locator("#style input[role=combobox]")).to_have_value(captions[1], timeout=10_000)
    before = page.locator("#info").inner_text().strip()
    page.locator("#run").click()
    info = _next_summary(page, before)
    assert captions[1] in info, (captions[1], info)


def _next_summary(page, before: str, timeout: float = 120) -> str:
    """The job summary that replaces ``before`` (while a job runs the panel shows a timer above the old one)."""
    deadline = time.monotonic() + timeout
    while (info := page.locator("#info").inner_text().strip()) == before or " px on " not in info or "\n" in info:
        assert time.monotonic() < deadline, f"no new summary: {info!r}"
        time.sleep(0.05)
    return info
