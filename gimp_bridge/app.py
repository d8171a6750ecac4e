"""The browser demo (Gradio 6): a photo in, a styled lossless PNG out, on the server's one job queue.

Styles come from three places: the catalog gallery (every style, its thumbnail and method), any
uploaded style image (adain / msgnet models), or a weighted mix of one multi-style model's styles.
The click handler submits to the same :class:`~fauve_bridge.jobs.JobQueue` as the bridge API, so
browser users and GIMP share the GPU's concurrency limit; it reports the job's progress to Gradio's
progress bar and cancels the job when the user presses Cancel or leaves.

Offline by construction: analytics off (set before gradio is imported, see fauve_bridge.serve), no
share link, no SSR, the default theme's bundled fonts; the page loads nothing from other hosts.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import tempfile
import time
from pathlib import Path

import gradio as gr
import numpy as np
from PIL import Image

from fauve.errors import FauveError
from fauve.imageio import from_float01, read_image, write_png
from fauve_bridge.engine import PRESERVE_CHOICES, Engine, StyleRequest, parse_mix, sample_paths
from fauve_bridge.jobs import CANCELLED, DONE, JobQueue

SOURCES = ("catalog", "style image", "mix")
CSS = """
#style-gallery .thumbnail-item { aspect-ratio: 1; }
#style-gallery .caption-label { white-space: normal; max-width: 100%; font-size: 11px; line-height: 1.2; }
#info { min-height: 2em; }
"""


_REMEMBER_GALLERY_PICK = """() => {
  const ids = %s;
  document.addEventListener("click", (e) => {
    const item = e.target.closest("#style-gallery button.thumbnail-item");
    if (!item) return;
    const items = [...document.querySelectorAll("#style-gallery button.thumbnail-item")];
    window.fauveGalleryPick = ids[items.indexOf(item)] ?? null;
  }, true);
}"""
_FORGET_GALLERY_PICK = "() => { window.fauveGalleryPick = null; }"
# Stylize's inputs in order: content, source, style, ...
_SEND_GALLERY_PICK = """(...args) => {
  const pick = window.fauveGalleryPick;
  if (pick) { args[1] = "catalog"; args[2] = pick; }
  return args;
}"""


def _gr_error(err: FauveError) -> gr.Error:
    return gr.Error(f"{err.message} {err.hint or ''}".strip(), title="fauve")


def build_demo(engine: Engine, queue: JobQueue, *, max_pixels: int, workdir: Path | None = None) -> gr.Blocks:
    """Build (not launch) the Blocks; ``workdir`` holds thumbnails and download files."""
    workdir = Path(workdir or tempfile.mkdtemp(prefix="fauve-app-"))
    thumbs_dir = workdir / "thumbs"
    out_dir = workdir / "out"
    thumbs_dir.mkdir(parents=True, exist_ok=True)
    out_dir.mkdir(parents=True, exist_ok=True)

    styles = engine.list_styles()
    style_ids = [s.id for s in styles]
    gallery_items = []
    for s in styles:
        png = engine.thumbnail_png(s.id)
        if png:
            path = thumbs_dir / f"{len(gallery_items):03d}.png"
            path.write_bytes(png)
            gallery_items.append((str(path), s.label))
        else:
            gallery_items.append((str(_blank(thumbs_dir)), s.label))
    image_models = [m.id for m in engine.list_models() if m.accepts_style_image]
    mix_models = [m.id for m in engine.list_models() if m.multi_style]

    def mix_default(model_id: str | None) -> tuple[str, str]:
        if not model_id:
            return "", ""
        names = engine.model(model_id).style_names
        weights = ", ".join(f"{n}:{1 / min(2, len(names)):.2g}" for n in names[:2])
        return weights, "Styles of this model: " + ", ".join(f"`{n}`" for n in names)

    async def stylize(content, source, style, style_image, image_model, mix_model, mix, strength, preserve_color,
                      style_scale, progress=gr.Progress()):
        """Stylize a photo: with a catalog style, an uploaded style image (adain/msgnet), or a mix of one
        model's styles (mix = "name:weight, name:weight"). Returns (before, after), the PNG file and a summary."""
        if content is None:
            raise gr.Error("Upload a photo first (or pick one of the examples).")
        try:
            photo = read_image(content)  # the file as uploaded: EXIF orientation, ICC profile, 16-bit, alpha
            image = from_float01(photo.rgb, np.uint8)
            height, width = image.shape[:2]
            if width * height > max_pixels:
                raise gr.Error(f"The photo is {width}x{height}; this server takes at most {max_pixels:,} pixels.")
            engine.check_size(width, height)
            if source == "style image":
                if style_image is None:
                    raise FauveError("No style image uploaded.", hint="Upload any picture as the style, or pick a catalog style.")
                req = StyleRequest(model=image_model, style_image=from_float01(read_image(style_image).rgb, np.uint8))
            elif source == "mix":
                req = StyleRequest(model=mix_model, mix=parse_mix(mix or ""))
            else:
                req = StyleRequest(style=style or (style_ids[0] if style_ids else None))
            req.strength, req.preserve_color, req.style_scale = float(strength), preserve_color or "none", float(style_scale)
            engine.check_request(req)
        except FauveError as err:
            raise _gr_error(err) from None

        job = queue.submit(lambda j: engine.stylize(image, req, progress=j.report, cancel=j.cancel_event),
                           width=width, height=height, meta={"from": "app"})
        try:
            progress(0.0, desc="Waiting in the queue")
            while not job.done_event.is_set():
                progress(job.progress, desc=job.message if job.status != "queued" else "Waiting in the queue")
                await asyncio.sleep(0.1)
        except asyncio.CancelledError:
            queue.cancel(job.id)
            raise
        if job.status != DONE:
            err = job.error or {"message": "Cancelled." if job.status == CANCELLED else job.message, "hint": ""}
            raise gr.Error(f"{err.get('message')} {err.get('hint') or ''}".strip())
        out = job.result
        _forget_old_files(out_dir, max_age=600.0)  # Gradio has copied earlier results into its own cache
        # named for the user: <photo>-fauve-<style>.png, one folder per job so names never collide
        style_part = {"style image": f"{req.model}-style-image", "mix": f"{req.model}-mix"}.get(source, req.style or "")
        path = out_dir / f"fauve-job-{job.id}" / f"{_safe_name(Path(content).stem)}-fauve-{_safe_name(style_part)}.png"
        # the download: the photo's alpha kept, back in its colour space with its ICC profile (the slider shows sRGB)
        write_png(path, out, photo.alpha, profile=photo.profile)
        what = {"catalog": lambda: engine.style(req.style).label, "style image": lambda: f"your style image · {req.model}",
                "mix": lambda: f"mix {mix} · {req.model}"}[source if source in SOURCES else "catalog"]()
        summary = (f"**{what}** — {width}×{height} px on **{engine.device}** in **{job.seconds:.2f} s** "
                   f"(strength {req.strength:g}, preserve colour {req.preserve_color}, style scale {req.style_scale:g})")
        return (image, out), str(path), summary

    def list_styles() -> list[str]:
        """The ids of every style this server offers (catalog styles and --models folders)."""
        return list(style_ids)

    with gr.Blocks(title="fauve — real-time neural style transfer", analytics_enabled=False, delete_cache=(3600, 3600)) as demo:
        gr.Markdown(f"# fauve\nReal-time neural style transfer · device **{engine.device}** · "
                    f"{len(styles)} styles · GIMP bridge at `/bridge/v1`")
        with gr.Row():
            with gr.Column(scale=1):
                content = gr.Image(label="Photo", type="filepath", image_mode=None, sources=["upload", "clipboard"], height=320,
                                   elem_id="content")
                photos = sample_paths("photo")
                if photos:
                    gr.Examples(examples=[[str(p)] for p in photos], inputs=[content], label="Sample photos")
                source = gr.Radio(list(SOURCES), value="catalog", label="Style from", elem_id="source")
                with gr.Group(visible=True) as catalog_group:
                    gallery = gr.Gallery(value=gallery_items, label="Styles (click one)", columns=4, height=340,
                                         allow_preview=False, interactive=False, format="png", elem_id="style-gallery")
                    style = gr.Dropdown([(engine.style(i).label, i) for i in style_ids], value=style_ids[0] if style_ids else None,
                                        label="Style", elem_id="style")
                with gr.Group(visible=False) as image_group:
                    style_image = gr.Image(label="Style image (any picture)", type="filepath", image_mode=None, elem_id="style-image")
                    paintings = sample_paths("painting")
                    if paintings:
                        gr.Examples(examples=[[str(p)] for p in paintings], inputs=[style_image], label="Sample paintings")
                    image_model = gr.Dropdown(image_models, value=image_models[0] if image_models else None,
                                              label="Arbitrary-style model (adain / msgnet)", elem_id="image-model")
                with gr.Group(visible=False) as mix_group:
                    mix_model = gr.Dropdown(mix_models, value=mix_models[0] if mix_models else None,
                                            label="Multi-style model", elem_id="mix-model")
                    first_mix, first_names = mix_default(mix_models[0] if mix_models else None)
                    mix = gr.Textbox(value=first_mix, label="Mix (name:weight, …)", placeholder="wave:0.7, candy:0.3", elem_id="mix")
                    mix_names = gr.Markdown(first_names)
                with gr.Accordion("Options", open=True):
                    strength = gr.Slider(0.0, 1.0, value=1.0, step=0.05, label="Strength", elem_id="strength")
                    preserve = gr.Radio(list(PRESERVE_CHOICES), value="none", label="Preserve colour", elem_id="preserve")
                    style_scale = gr.Slider(0.25, 4.0, value=1.0, step=0.05, label="Style scale (stroke size)", elem_id="style-scale")
                with gr.Row():
                    run = gr.Button("Stylize", variant="primary", elem_id="run")
                    stop = gr.Button("Cancel", variant="stop", elem_id="cancel")
            with gr.Column(scale=1):
                result = gr.ImageSlider(label="Before / after", type="numpy", format="png", interactive=False,
                                        buttons=["download", "fullscreen"], elem_id="result", max_height=640)
                download = gr.File(label="Download (lossless PNG)", interactive=False, elem_id="download")
                info = gr.Markdown(label="Summary", elem_id="info")

        def on_gallery(evt: gr.SelectData):
            return gr.update(value=style_ids[evt.index]), gr.update(value="catalog")

        def on_source(src: str):
            return (gr.update(visible=src == "catalog"), gr.update(visible=src == "style image"), gr.update(visible=src == "mix"))

        def on_mix_model(model_id: str | None):
            text, names = mix_default(model_id)
            return text, names

        gallery.select(on_gallery, None, [style, source], api_visibility="private", queue=False)
        source.change(on_source, source, [catalog_group, image_group, mix_group], api_visibility="private")
        mix_model.change(on_mix_model, mix_model, [mix, mix_names], api_visibility="private")
        # The gallery's pick reaches the dropdown only after a round trip to the server (1-2 s for the
        # first event of a page under load); a Stylize click in between would send the old style.
        # So the page remembers the last thumbnail clicked and Stylize sends that, until the user
        # picks from the dropdown or switches the source.
        demo.load(None, None, None, js=_REMEMBER_GALLERY_PICK % json.dumps(style_ids))
        style.input(None, None, None, js=_FORGET_GALLERY_PICK)
        source.input(None, None, None, js=_FORGET_GALLERY_PICK)
        event = run.click(stylize, [content, source, style, style_image, image_model, mix_model, mix, strength, preserve, style_scale],
                          [result, download, info], api_name="stylize", concurrency_limit=queue.concurrency,
                          concurrency_id="stylize", js=_SEND_GALLERY_PICK)
        stop.click(None, None, None, cancels=[event], api_visibility="private")
        gr.api(list_styles, api_name="list_styles")
    return demo


def _forget_old_files(folder: Path, max_age: float) -> None:
    cutoff = time.time() - max_age
    for job_dir in folder.glob("fauve-job-*"):
        try:
            if job_dir.stat().st_mtime < cutoff:
                shutil.rmtree(job_dir)
        except OSError:
            pass


def _safe_name(text: str, limit: int = 60) -> str:
    """A file-name-safe version of a photo name or style id (``dumoulin-16/starry_night`` → ``dumoulin-16_starry_night``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._")[:limit] or "image"


def _blank(folder: Path) -> Path:
    path = folder / "blank.png"
    if not path.exists():
        Image.new("RGB", (64, 64), (200, 200, 200)).save(path)
    return path
