"""The catalog of pretrained styles (``hub_models/catalog.json``) and resolving a style to a model.

Style ids
---------
- A single-style model is one style, named after its model: ``ulyanov-starry-night``.
- Each style of a multi-style model (dumoulin, msgnet, adain with named styles) is
  ``<model>/<style>``: ``dumoulin-16/starry_night``. The style names are the model's
  ``config.json`` ``style_names`` when a copy is local, else the catalog's list.
- A model that takes any style image (msgnet, adain) is also listed on its own: ``adain``.
- ``resolve_style`` also takes a model folder (``path/to/folder`` or ``path/to/folder#style``),
  a Hub repo id (``owner/name``) and a Hub repo id with a style (``owner/name/style``). A catalog id
  wins over a Hub repo id of the same spelling. ``<model>:<style>`` is accepted for ``<model>/<style>``,
  and a bare style name (``starry_night``) when exactly one catalog style has it.

Sources
-------
``list_styles()`` says where each style's weights are now, without touching the network:
``bundled`` (a copy in ``hub_models/<folder>``; a wheel installs that folder as ``fauve_hub_models``), ``cached`` (in the Hugging Face cache), ``hub``
(neither, but the catalog marks the repo ``published`` and we are online: it will be downloaded) or
``unavailable`` (none of these; e.g. a planned repo before its weights land). ``resolve_style`` loads a catalog style like this:

- offline (``HF_HUB_OFFLINE=1`` or ``offline=True``): the bundled copy, else the cached copy;
- online: the Hub repo through the HF cache (``fauve.hub.pull``: downloads what changed, checks
  checksums); when that fails (repo missing, network down, corrupt file) the bundled copy serves and
  ``ResolvedStyle.notes`` says why. Without a bundled copy the error is raised (a FauveError with a hint).
  A repo that failed is not asked again for ``RETRY_AFTER_S`` in this process.

``locate_style`` does all of this without torch (checksums, config.json, safetensors header) and
returns the folder; ``resolve_style`` also loads the model, and when a downloaded copy still does not
load (e.g. weights that do not match their config) it falls back to the bundled copy.

``FAUVE_CATALOG=/path/catalog.json`` selects another catalog (its folders are relative to it).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fauve.errors import FauveError, ModelFileError, UnknownStyleError

log = logging.getLogger("fauve.catalog")

CATALOG_ENV = "FAUVE_CATALOG"


def _default_catalog() -> Path:
    """The checkout's ``hub_models/catalog.json`` (source tree, editable install), else the copy a wheel
    installs as the ``fauve_hub_models`` package (pyproject maps ``hub_models/`` to it)."""
    checkout = Path(__file__).resolve().parent.parent / "hub_models" / "catalog.json"
    if checkout.is_file():
        return checkout
    spec = importlib.util.find_spec("fauve_hub_models")
    for location in (spec.submodule_search_locations or []) if spec else []:
        if (Path(location) / "catalog.json").is_file():
            return Path(location) / "catalog.json"
    return checkout  # neither: an empty catalog, and messages name where it was looked for


DEFAULT_CATALOG = _default_catalog()
ARBITRARY_STYLE_METHODS = ("msgnet", "adain")
MULTI_STYLE_METHODS = ("dumoulin", "msgnet", "adain")
RETRY_AFTER_S = 600.0


@dataclass(frozen=True)
class StyleEntry:
    """One selectable style (the fields the bridge API's ``/styles`` lists)."""

    id: str  # ulyanov-starry-night | dumoulin-16/starry_night | adain
    name: str  # the style's name in its model (None-like "" for an arbitrary-style entry)
    title: str  # for people: "The Starry Night"
    method: str
    model: str  # the catalog model name
    repo_id: str
    source: str  # bundled | cached | hub | unavailable
    license: str | None
    index: int | None  # position in the model's style_names; None: the model takes a style image
    accepts_style_image: bool
    multi_style: bool
    path: str | None  # the local model folder (bundled or cached) when there is one, else None
    thumbnail: str | None  # an image file, when one is local
    artist: str | None = None

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "title": self.title, "method": self.method, "model": self.model,
                "repo_id": self.repo_id, "source": self.source, "license": self.license, "index": self.index,
                "accepts_style_image": self.accepts_style_image, "multi_style": self.multi_style,
                "artist": self.artist, "thumbnail": self.thumbnail}


@dataclass
class ResolvedStyle:
    """A loaded model and the style to run it with (``model, style = resolve_style(...)`` works too)."""

    model: Any  # fauve.models.StyleModel
    style: str | None  # style name inside the model; None: the model needs a style image
    index: int | None
    source: str  # folder | bundled | cached | hub
    path: str  # the folder the weights were loaded from
    id: str  # what was asked for, normalised (catalog id, repo id or folder)
    notes: list[str] = field(default_factory=list)  # why a fallback was used, for the user

    def __iter__(self):  # model, style = resolve_style(...)
        return iter((self.model, self.style))


@dataclass(frozen=True)
class CatalogModel:
    name: str
    repo_id: str
    folder: Path | None
    method: str
    license: str | None
    styles: tuple[dict[str, Any], ...]  # [{name, title, artist, thumbnail}], may be empty for multi-style
    description: str | None = None
    published: bool = False  # the Hub repo has been published (else it is only planned)


# -- the catalog file ------------------------------------------------------------------------------
def catalog_path() -> Path:
    return Path(os.environ.get(CATALOG_ENV) or DEFAULT_CATALOG)


def load_catalog(path: str | Path | None = None) -> list[CatalogModel]:
    """Read catalog.json; folders are resolved relative to it. A missing file is an empty catalog."""
    path = Path(path) if path is not None else catalog_path()
    if not path.is_file():
        return []
    try:
        data = json.loads(path.read_text())
        models = []
        for m in data["models"]:
            folder = path.parent / m["folder"] if m.get("folder") else None
            models.append(CatalogModel(name=m["name"], repo_id=m["repo_id"], folder=folder, method=m["method"],
                                       license=m.get("license"), styles=tuple(m.get("styles") or ()),
                                       description=m.get("description"), published=bool(m.get("published", False))))
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise FauveError(f"The style catalog {path} is malformed: {err!r}",
                         "Fix the file (see hub_models/catalog.json for the format) or unset FAUVE_CATALOG.",
                         code="bad_catalog") from err
    return models


def _has_weights(folder: Path | None) -> bool:
    return folder is not None and (folder / "config.json").is_file() and (folder / "model.safetensors").is_file()


def _read_config(folder: Path) -> dict[str, Any] | None:
    try:
        return json.loads((folder / "config.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _title(name: str) -> str:
    return name.replace("_", " ").replace("-", " ").strip().title()


def _local_copy(model: CatalogModel) -> tuple[str, Path | None]:
    """(source, folder) as the weights are now: bundled, cached, hub (published, online; no local
    folder) or unavailable (not local, and offline or not published yet)."""
    if _has_weights(model.folder):
        return "bundled", model.folder
    from fauve.hub import cached_folder, is_offline

    cached = cached_folder(model.repo_id)
    if cached is not None:
        return "cached", cached
    return ("hub" if model.published and not is_offline() else "unavailable"), None


def _entries_for(model: CatalogModel) -> list[StyleEntry]:
    source, folder = _local_copy(model)
    config = _read_config(folder) if folder else None
    listed = {s["name"]: s for s in model.styles if "name" in s}
    if config and config.get("style_names"):
        names = list(config["style_names"])
    else:
        names = [s["name"] for s in model.styles if "name" in s]
    license = (config or {}).get("license") or model.license
    arbitrary = model.method in ARBITRARY_STYLE_METHODS
    multi = model.method in MULTI_STYLE_METHODS and (len(names) > 1 or arbitrary)

    def thumb(style: dict[str, Any], name: str) -> str | None:
        if folder is None:
            return None
        for rel in (style.get("thumbnail"), f"thumbnails/{name}.jpg", f"thumbnails/{name}.png"):
            if rel and (folder / rel).is_file():
                return str(folder / rel)
        return None

    entries = []
    common = dict(method=model.method, model=model.name, repo_id=model.repo_id, source=source, license=license,
                  accepts_style_image=arbitrary, multi_style=multi, path=str(folder) if folder else None)
    if arbitrary:
        entries.append(StyleEntry(id=model.name, name="", title=f"Any style image ({model.method})", index=None,
                                  thumbnail=None, **common))
    for i, name in enumerate(names):
        style = listed.get(name, {})
        style_id = f"{model.name}/{name}" if multi else model.name
        entries.append(StyleEntry(id=style_id, name=name, title=style.get("title") or _title(name), index=i,
                                  thumbnail=thumb(style, name), artist=style.get("artist"), **common))
    if not names and not arbitrary:  # a multi-style model whose style names are not known until downloaded
        entries.append(StyleEntry(id=model.name, name="", title=f"{model.name} (styles listed once downloaded)",
                                  index=None, thumbnail=None, **common))
    return entries


def list_styles(catalog: str | Path | None = None, *, available_only: bool = False) -> list[StyleEntry]:
    """Every catalog style with its method, source (bundled / cached / hub / unavailable) and license.
    No network. ``available_only``: leave out the unavailable ones (what a gallery should offer)."""
    entries: list[StyleEntry] = []
    for model in load_catalog(catalog):
        entries += _entries_for(model)
    return [e for e in entries if e.source != "unavailable"] if available_only else entries


# -- resolving ------------------------------------------------------------------------------------------
_hub_memo: dict[str, tuple[float, Path | None, FauveError | None]] = {}  # repo@rev -> (time, folder, error)
_memo_lock = threading.Lock()


def _pull_memoized(repo_id: str, token: str | None, revision: str | None) -> Path:
    """fauve.hub.pull (download + checksum verification) once per process per RETRY_AFTER_S,
    successes and failures alike, so a missing repo or a dead network costs one try, not one per image."""
    from fauve.hub import pull

    key = f"{repo_id}@{revision or 'main'}"
    with _memo_lock:
        hit = _hub_memo.get(key)
    if hit and time.monotonic() - hit[0] < RETRY_AFTER_S:
        if hit[1] is not None and _has_weights(hit[1]):
            return hit[1]
        if hit[2] is not None:
            raise hit[2]
    try:
        folder = pull(repo_id, revision=revision, token=token, progress=False).folder
    except FauveError as err:
        with _memo_lock:
            _hub_memo[key] = (time.monotonic(), None, err)
        raise
    with _memo_lock:
        _hub_memo[key] = (time.monotonic(), folder, None)
    return folder


def forget_hub_failures() -> None:
    """Let the next resolve ask the Hub again (e.g. after the network came back)."""
    with _memo_lock:
        _hub_memo.clear()


def _offline(offline: bool | None) -> bool:
    if offline is not None:
        return offline
    from fauve.hub import is_offline

    return is_offline()


def _pick_style(names: list[str], style: str | int | None, what: str) -> tuple[str | None, int | None]:
    """(name, index) of ``style`` among ``names``; None picks the first (or none for a style-image-only model)."""
    if style is None or style == "":
        return (names[0], 0) if names else (None, None)
    if isinstance(style, int) or (isinstance(style, str) and style.isdigit() and style not in names):
        i = int(style)
        if 0 <= i < len(names):
            return names[i], i
        raise UnknownStyleError(f"{what} has {len(names)} styles; there is no style {i}.",
                                f"Use 0..{len(names) - 1} or a name: {', '.join(names)}." if names else "Pass a style image.")
    if style in names:
        return style, names.index(style)
    import difflib

    close = difflib.get_close_matches(str(style), names, n=5, cutoff=0.5)
    raise UnknownStyleError(f"{what} has no style {style!r}.",
                            (f"Did you mean {', '.join(close)}? " if close else "")
                            + f"Its styles: {', '.join(names) or '(none: pass a style image)'}.")


def _find_catalog(ref: str, models: list[CatalogModel]) -> tuple[CatalogModel, str | None] | None:
    by_name = {m.name: m for m in models}
    if ref in by_name:
        return by_name[ref], None
    for sep in ("/", ":"):
        head, _, tail = ref.partition(sep)
        if tail and head in by_name:
            return by_name[head], tail
    return None


def _bare_style(ref: str, catalog: str | Path | None) -> StyleEntry | None:
    hits = [e for e in list_styles(catalog) if e.name == ref]
    if len(hits) > 1:
        raise UnknownStyleError(f"Several catalog styles are called {ref!r}: {', '.join(e.id for e in hits)}.",
                                "Pass one of these ids.")
    return hits[0] if hits else None


@dataclass
class LocatedStyle:
    """Where a style's weights are (checked: checksums for Hub/cache copies, a valid config and
    safetensors header everywhere) and which style in them; no torch involved."""

    folder: Path
    source: str  # folder | bundled | cached | hub
    id: str
    style: str | None
    index: int | None
    method: str
    notes: list[str] = field(default_factory=list)
    fallbacks: list[tuple[Path, str]] = field(default_factory=list)  # more copies to try if loading fails


def _checked(folder: Path) -> dict[str, Any]:
    from fauve.hub import validate_model_folder

    return validate_model_folder(folder)


def locate_style(name_or_path: str | os.PathLike, *, style: str | int | None = None, offline: bool | None = None,
                 catalog: str | Path | None = None, token: str | None = None,
                 revision: str | None = None) -> LocatedStyle:
    """Find the model folder for a catalog style id, a model folder or a Hub repo id (see the module
    docstring), downloading from the Hub when online. ``style`` (a name or an index) overrides the
    style named in the reference. Every failure is a FauveError with a hint."""
    from fauve.hub import REPO_ID_RE

    ref = os.fspath(name_or_path).strip()
    if not ref:
        raise UnknownStyleError("No style given.", "Pass a style id from `fauve styles`, a model folder or owner/name.")

    # 1. a model folder, optionally with #style
    path, _, frag = (ref, "", "") if Path(ref).exists() else ref.partition("#")
    if Path(path).is_dir():
        folder = Path(path)
        config = _checked(folder)
        name, index = _pick_style(list(config.get("style_names") or []), style if style is not None else (frag or None), str(folder))
        return LocatedStyle(folder, "folder", str(folder), name, index, config["method"])

    # 2. the catalog
    models = load_catalog(catalog)
    found = _find_catalog(ref, models)
    if found is None and "/" not in ref and ":" not in ref:
        entry = _bare_style(ref, catalog)
        if entry is not None:
            found = (next(m for m in models if m.name == entry.model), entry.name if entry.multi_style else None)
    if found is not None:
        cat_model, sub = found
        copies, notes = _catalog_copies(cat_model, offline=_offline(offline), token=token)
        (folder, source, config), rest = copies[0], copies[1:]
        names = list(config.get("style_names") or [])
        name, index = _pick_style(names, style if style is not None else sub, cat_model.name)
        multi = cat_model.method in MULTI_STYLE_METHODS and (len(names) > 1 or cat_model.method in ARBITRARY_STYLE_METHODS)
        sid = f"{cat_model.name}/{name}" if (multi and name is not None) else cat_model.name
        for note in notes:  # returned to the caller, who shows them (the CLI prints, the server logs)
            log.debug(note)
        return LocatedStyle(folder, source, sid, name, index, config["method"], notes, [(f, s) for f, s, _ in rest])

    # 3. a Hub repo id, optionally with /style
    parts = ref.split("/")
    repo_id, sub = ("/".join(parts[:2]), parts[2]) if len(parts) == 3 else (ref, None)
    if REPO_ID_RE.match(repo_id):
        folder, source = _repo_copy(repo_id, offline=_offline(offline), token=token, revision=revision)
        config = _checked(folder)
        name, index = _pick_style(list(config.get("style_names") or []), style if style is not None else sub, repo_id)
        return LocatedStyle(folder, source, repo_id, name, index, config["method"])

    import difflib

    ids = [e.id for e in list_styles(catalog)]
    close = difflib.get_close_matches(ref, ids, n=5, cutoff=0.5)
    raise UnknownStyleError(
        f"{ref!r} is not a catalog style, a model folder or a Hub repo id (owner/name).",
        (f"Did you mean {', '.join(close)}? " if close else "") + "`fauve styles` lists the catalog.")


def resolve_style(name_or_path: str | os.PathLike, *, style: str | int | None = None, offline: bool | None = None,
                  device: Any = "cpu", catalog: str | Path | None = None, token: str | None = None,
                  revision: str | None = None) -> ResolvedStyle:
    """``locate_style`` and load the model. A downloaded copy that does not load falls back to the
    bundled one (with a note); every failure is a FauveError with a hint."""
    from fauve.models import load_model

    loc = locate_style(name_or_path, style=style, offline=offline, catalog=catalog, token=token, revision=revision)
    candidates = [(loc.folder, loc.source), *loc.fallbacks]
    notes = list(loc.notes)
    for i, (folder, source) in enumerate(candidates):
        try:
            model = load_model(folder, device=device)
        except ModelFileError as err:
            if i == len(candidates) - 1:
                raise
            notes.append(f"{loc.id} ({source} copy): {err.message} Using the {candidates[i + 1][1]} copy in {candidates[i + 1][0]}.")
            log.debug(notes[-1])
            continue
        return ResolvedStyle(model, loc.style, loc.index, source, str(folder), loc.id, notes)
    raise AssertionError("unreachable")


def _repo_copy(repo_id: str, *, offline: bool, token: str | None, revision: str | None) -> tuple[Path, str]:
    from fauve.hub import HubOffline, cached_folder, verify_cached_files

    if offline:
        folder = cached_folder(repo_id, revision)
        if folder is None:
            raise HubOffline(f"{repo_id} is not in the Hugging Face cache and HF_HUB_OFFLINE is set.",
                             f"Run `fauve hub pull {repo_id}` while online, or pass a model folder.")
        bad = verify_cached_files(folder)
        if bad:
            raise ModelFileError(f"The cached copy of {repo_id} is corrupt ({', '.join(bad)}).",
                                 f"Run `fauve hub pull {repo_id} --force` while online.")
        return folder, "cached"
    return _pull_memoized(repo_id, token, revision), "hub"


def _catalog_copies(model: CatalogModel, *, offline: bool, token: str | None):
    """([(folder, source, config), ...] usable copies in preference order, notes) for a catalog model:
    offline the bundled copy then the cache; online the Hub (through the cache) then the bundled copy."""
    def bundled() -> tuple[Path, str]:
        if not _has_weights(model.folder):
            raise FauveError(f"there is no bundled copy in {model.folder}", code="no_bundled_copy")
        return model.folder, "bundled"

    def cache() -> tuple[Path, str]:
        return _repo_copy(model.repo_id, offline=True, token=token, revision=None)

    def hub() -> tuple[Path, str]:
        return _repo_copy(model.repo_id, offline=False, token=token, revision=None)

    label = {bundled: "bundled copy", cache: "HF cache", hub: "Hub"}
    copies: list[tuple[Path, str, dict[str, Any]]] = []
    notes: list[str] = []
    failures: list[FauveError] = []
    for attempt in ([bundled, cache] if offline else [hub, bundled]):
        try:
            folder, source = attempt()
            config = _checked(folder)
        except FauveError as err:
            failures.append(err)
            if err.code != "no_bundled_copy":
                notes.append(f"{model.name} ({label[attempt]}): {err.message.splitlines()[0]}")
            continue
        if notes and not copies:
            notes[-1] += f" Using the {source} copy in {folder}."
        copies.append((folder, source, config))
    if copies:
        return copies, notes
    last = next((e for e in reversed(failures) if e.code != "no_bundled_copy"), failures[-1])
    raise FauveError(f"Style model {model.name!r} is not available: " + " | ".join(notes or [last.message]),
                     last.hint or f"Check `fauve styles` and `fauve hub pull {model.repo_id}`.", code=last.code) from last
