"""Publish model folders to the Hugging Face Hub and pull them into the standard HF cache.

Built on ``huggingface_hub`` (``HfApi.create_repo`` + ``upload_folder`` in one commit,
``snapshot_download``, ``verify_repo_checksums``); every failure reaches the user as a
``HubError`` (a ``FauveError``) with a hint, never a traceback.

Environment (read by huggingface_hub at import time): ``HF_ENDPOINT`` (another Hub, e.g. the test
server), ``HF_HOME`` / ``HF_HUB_CACHE`` (the cache), ``HF_TOKEN``, ``HF_HUB_OFFLINE=1`` (cache only).
A Hub without Xet storage (a self-hosted or test Hub) needs ``HF_HUB_DISABLE_XET=1`` for uploads.

This module imports no torch, so ``fauve hub ...`` starts fast.
"""

from __future__ import annotations

import json
import os
import re
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fauve.errors import FauveError, ModelFileError

REPO_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
KNOWN_METHODS = ("johnson", "ulyanov", "dumoulin", "msgnet", "adain")
# What a model folder may hold that does not belong on the Hub: training checkpoints (pickles), logs of
# temporary files, caches. Only safetensors weights are published.
PUBLISH_IGNORE = ["*.pt", "*.pth", "*.ckpt", "*.pkl", "*.tmp", "checkpoint*", "checkpoints/**", ".cache/**",
                  "__pycache__/**", "*.pyc", ".git/**", ".DS_Store"]


class HubError(FauveError):
    """A Hub operation failed; ``code`` says how (not found, auth, network, corrupt, offline)."""

    code = "hub_error"


class HubNotFound(HubError):
    code = "hub_not_found"


class HubAuthError(HubError):
    code = "hub_auth"


class HubNetworkError(HubError):
    code = "hub_network"


class HubCorruptFile(HubError):
    code = "hub_corrupt"


class HubOffline(HubError):
    code = "hub_offline"


@dataclass
class PublishResult:
    repo_id: str
    url: str
    commit_oid: str
    commit_url: str
    commit_message: str
    card: str  # "written" | "updated" | "kept"
    files: list[str] = field(default_factory=list)
    changed: bool = True  # False: the repo already held these exact files, no commit was made
    notes: list[str] = field(default_factory=list)


@dataclass
class PullResult:
    repo_id: str
    folder: Path
    commit: str
    config: dict[str, Any]
    downloaded: list[str]  # blobs fetched by this call (empty: served from the cache)


# -- helpers -------------------------------------------------------------------------------------
def endpoint() -> str:
    from huggingface_hub import constants

    return constants.ENDPOINT


def is_offline() -> bool:
    """``HF_HUB_OFFLINE`` as huggingface_hub read it at import, or as the environment says now."""
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE) or os.environ.get("HF_HUB_OFFLINE", "").upper() in ("1", "ON", "YES", "TRUE")


def check_repo_id(repo_id: str) -> str:
    if not isinstance(repo_id, str) or not REPO_ID_RE.match(repo_id):
        raise HubError(f"{repo_id!r} is not a Hub repo id.", "Use owner/name, e.g. fauve/ulyanov-starry-night.",
                       code="hub_bad_repo_id")
    return repo_id


def _chain(err: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    e: BaseException | None = err
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        yield e
        e = e.__cause__ or e.__context__


_NETWORK_ERROR_NAMES = {"ConnectError", "ConnectTimeout", "ReadTimeout", "WriteTimeout", "PoolTimeout", "TimeoutException",
                        "NetworkError", "ReadError", "WriteError", "RemoteProtocolError", "ProxyError", "ConnectionError",
                        "ConnectionRefusedError", "ConnectionResetError", "gaierror", "timeout", "TimeoutError"}


def _status(err: BaseException) -> int | None:
    response = getattr(err, "response", None)
    return getattr(response, "status_code", None)


def translate_error(err: BaseException, repo_id: str, action: str, revision: str | None = None) -> FauveError:
    """Map a huggingface_hub / network / OS error to a HubError with a hint."""
    from huggingface_hub import errors as hf

    if isinstance(err, FauveError):
        return err
    where = f"{repo_id}" + (f" at revision {revision}" if revision else "")
    chain = list(_chain(err))
    login_hint = "Pass --token (or set HF_TOKEN, or run `hf auth login`) with a token that can access it."
    for e in chain:
        if isinstance(e, hf.RevisionNotFoundError):
            return HubNotFound(f"Cannot {action} {repo_id}: revision {revision!r} does not exist.",
                               "Use a branch name (main) or a commit id from `fauve hub info`.")
        if isinstance(e, hf.GatedRepoError):
            return HubAuthError(f"Cannot {action} {where}: the repo is gated.", login_hint)
        if isinstance(e, hf.RepositoryNotFoundError):
            return HubNotFound(f"Cannot {action} {where}: no such repo on {endpoint()} (or it is private).",
                               f"Check the name (`fauve styles` lists the catalog). If it is private: {login_hint}")
        if isinstance(e, hf.RemoteEntryNotFoundError):
            return HubNotFound(f"Cannot {action} {where}: a file is missing from the repo ({e}).",
                               "The repo is not a complete fauve model (config.json + model.safetensors); re-publish it.")
        if isinstance(e, hf.OfflineModeIsEnabled):
            return HubOffline(f"Cannot {action} {where}: HF_HUB_OFFLINE is set and it is not in the cache.",
                              f"Unset HF_HUB_OFFLINE and run `fauve hub pull {repo_id}` while online.")
        if isinstance(e, hf.HfHubHTTPError) and _status(e) in (401, 403):
            return HubAuthError(f"Cannot {action} {where}: the Hub refused access ({_status(e)}).", login_hint)
        if isinstance(e, hf.HfHubHTTPError) and _status(e) == 412:
            return HubError(f"Cannot {action} {where}: someone else committed meanwhile.", "Run the command again.")
        if isinstance(e, OSError) and "Consistency check failed" in str(e):
            return HubCorruptFile(f"Cannot {action} {where}: a downloaded file has the wrong size.",
                                  f"Run `fauve hub pull {repo_id} --force`; if it fails again the file on the Hub is damaged: re-publish it.")
    for e in chain:
        if type(e).__name__ in _NETWORK_ERROR_NAMES:
            offline_hint = (f"Check your connection to {endpoint()}. Models already pulled still load with HF_HUB_OFFLINE=1.")
            if isinstance(err, hf.LocalEntryNotFoundError):
                return HubNetworkError(f"Cannot {action} {where}: {endpoint()} is unreachable and it is not in the cache.",
                                       offline_hint)
            return HubNetworkError(f"Cannot {action} {where}: {endpoint()} is unreachable ({type(e).__name__}).", offline_hint)
    if isinstance(err, hf.LocalEntryNotFoundError):
        if is_offline():
            return HubOffline(f"Cannot {action} {where}: HF_HUB_OFFLINE is set and it is not in the cache.",
                              f"Unset HF_HUB_OFFLINE and run `fauve hub pull {repo_id}` while online.")
        return HubNetworkError(f"Cannot {action} {where}: the Hub could not be reached and it is not in the cache.",
                               f"Check your connection to {endpoint()}.")
    for e in chain:
        if isinstance(e, hf.HfHubHTTPError):
            return HubError(f"Cannot {action} {where}: the Hub answered {_status(e)}: {str(e).strip().splitlines()[0]}",
                            "Try again later; if it persists, check the repo on the Hub's website.")
    if isinstance(err, OSError):
        return HubError(f"Cannot {action} {where}: {err}", "Check the disk space and permissions of the HF cache (HF_HOME).")
    return HubError(f"Cannot {action} {where}: {type(err).__name__}: {err}", "This is unexpected; please report it.")


@contextmanager
def hub_errors(repo_id: str, action: str, revision: str | None = None) -> Iterator[None]:
    """Turn every exception raised inside into a FauveError (KeyboardInterrupt passes through)."""
    try:
        yield
    except FauveError:
        raise
    except Exception as err:  # noqa: BLE001 - translated, with the original chained
        raise translate_error(err, repo_id, action, revision) from err


# -- model folders ---------------------------------------------------------------------------------
def read_safetensors_header(path: Path) -> dict[str, Any]:
    """The JSON header of a safetensors file, checked against the file size (no torch needed)."""
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            if n > min(size - 8, 100 << 20):
                raise ValueError("header length past the end of the file")
            header = json.loads(f.read(n))
        end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
        if 8 + n + end != size:
            raise ValueError(f"tensor data ends at byte {8 + n + end}, the file has {size}")
        return header
    except (OSError, ValueError, KeyError, TypeError, struct.error) as err:
        raise ModelFileError(f"{path} is not a valid safetensors file: {err}",
                             "The file is corrupt or incomplete; re-export or re-download it.") from err


def validate_model_folder(folder: str | Path) -> dict[str, Any]:
    """Check that ``folder`` is a fauve model (config.json with a known method + a valid model.safetensors)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelFileError(f"{folder} is not a folder.", "Pass a model folder made by `fauve train` (config.json + model.safetensors).")
    cfg_path = folder / "config.json"
    if not cfg_path.is_file():
        raise ModelFileError(f"{folder} has no config.json: it is not a fauve model folder.",
                             "A fauve model folder holds config.json and model.safetensors (made by `fauve train`).")
    try:
        config = json.loads(cfg_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ModelFileError(f"{cfg_path} is not valid JSON: {err}", "Re-export or re-download the model.") from err
    if not isinstance(config, dict) or config.get("method") not in KNOWN_METHODS:
        method = config.get("method") if isinstance(config, dict) else None
        raise ModelFileError(f"{cfg_path}: unknown method {method!r}.", f"Known methods: {', '.join(KNOWN_METHODS)}.")
    weights = folder / "model.safetensors"
    if not weights.is_file():
        raise ModelFileError(f"{folder} has no model.safetensors.", "A fauve model folder holds config.json and model.safetensors.")
    read_safetensors_header(weights)
    return config


def _style_summary(config: dict[str, Any]) -> str:
    names = list(config.get("style_names") or [])
    if not names:
        return "any style image"
    shown = ", ".join(names[:4]) + (f", +{len(names) - 4} more" if len(names) > 4 else "")
    return f"{len(names)} style{'s' if len(names) != 1 else ''}: {shown}"


# -- publish -------------------------------------------------------------------------------------------
def publish(folder: str | Path, repo_id: str, *, private: bool = False, token: str | None = None,
            commit_message: str | None = None) -> PublishResult:
    """Create ``repo_id`` if needed and upload ``folder`` to it in one commit.

    The folder must be a fauve model; its README.md is made a proper model card first
    (``modelcard.ensure_model_card``). Checkpoints, pickles and temporary files are not uploaded.
    """
    from fauve import __version__
    from fauve.modelcard import ensure_model_card

    check_repo_id(repo_id)
    if is_offline():
        raise HubOffline(f"Cannot publish to {repo_id}: HF_HUB_OFFLINE is set.", "Unset HF_HUB_OFFLINE to publish.")
    folder = Path(folder)
    config = validate_model_folder(folder)
    card = ensure_model_card(folder, repo_id=repo_id)
    message = commit_message or f"Upload {config['method']} model ({_style_summary(config)}) with fauve {__version__}"
    with hub_errors(repo_id, "publish to"):
        from huggingface_hub import HfApi

        api = HfApi(token=token)
        url = api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
        before = api.model_info(repo_id)
        notes = []
        if private and not before.private:
            notes.append(f"{repo_id} already existed and is public; --private only applies to a new repo.")
        info = api.upload_folder(
            repo_id=repo_id, repo_type="model", folder_path=str(folder), commit_message=message,
            commit_description=f"Published with `fauve hub publish` (fauve {__version__}).",
            ignore_patterns=PUBLISH_IGNORE,
        )
        files = api.list_repo_files(repo_id, revision=info.oid)
    return PublishResult(repo_id=repo_id, url=str(url), commit_oid=info.oid, commit_url=info.commit_url,
                         commit_message=message, card=card, files=files, changed=info.oid != before.sha, notes=notes)


# -- pull ------------------------------------------------------------------------------------------------
def _storage_folder(repo_id: str, cache_dir: str | Path | None) -> Path:
    from huggingface_hub import constants
    from huggingface_hub.file_download import repo_folder_name

    return Path(cache_dir or constants.HF_HUB_CACHE) / repo_folder_name(repo_id=repo_id, repo_type="model")


def _blobs(repo_id: str, cache_dir: str | Path | None) -> set[str]:
    blobs = _storage_folder(repo_id, cache_dir) / "blobs"
    return {p.name for p in blobs.iterdir() if not p.name.endswith(".incomplete")} if blobs.is_dir() else set()


def _forget_files(folder: Path, paths: list[str]) -> None:
    """Remove cached files (the snapshot link and the blob it points to) so the next pull fetches them again."""
    for rel in paths:
        link = folder / rel
        try:
            target = link.resolve()
            link.unlink(missing_ok=True)
            if target != link and target.is_file():
                target.unlink()
        except OSError:
            pass


def verify_cached_files(folder: str | Path) -> list[str]:
    """Offline check of a cache snapshot: the HF cache names every blob after its ETag (sha256 for
    LFS files, the git blob sha1 otherwise), so each file's content must hash to its blob's name.
    Returns the paths that do not (files that are not cache links are skipped)."""
    from huggingface_hub.utils.sha import git_hash, sha_fileobj

    bad = []
    folder = Path(folder)
    for link in sorted(p for p in folder.rglob("*") if p.is_symlink()):
        blob = link.resolve()
        name = blob.name
        if not blob.is_file():
            bad.append(link.relative_to(folder).as_posix())
            continue
        with blob.open("rb") as f:
            if re.fullmatch(r"[0-9a-f]{64}", name):
                actual = sha_fileobj(f).hex()
            elif re.fullmatch(r"[0-9a-f]{40}", name):
                actual = git_hash(f.read())
            else:
                continue
        if actual != name:
            bad.append(link.relative_to(folder).as_posix())
    return bad


def _corrupt(repo_id: str, folder: Path, bad: list[str], how: str) -> HubCorruptFile:
    _forget_files(folder, bad)
    return HubCorruptFile(
        f"{repo_id}: {', '.join(bad)} {how}; the corrupt copy was removed from the cache.",
        f"Run `fauve hub pull {repo_id} --force` to download it again; if it fails again the file on the Hub is "
        "damaged: re-publish the model.")


def pull(repo_id: str, *, revision: str | None = None, force: bool = False, token: str | None = None,
         cache_dir: str | Path | None = None, progress: bool = True) -> PullResult:
    """Download ``repo_id`` (all files) into the HF cache, verify every file's checksum against the
    Hub's tree listing, and check it is a fauve model. Offline (``HF_HUB_OFFLINE=1``) the cached
    snapshot is used and checked against its blob names."""
    check_repo_id(repo_id)
    from huggingface_hub import HfApi, snapshot_download
    from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

    offline = is_offline()
    if offline and force:
        raise HubOffline(f"Cannot re-download {repo_id}: HF_HUB_OFFLINE is set.", "Unset HF_HUB_OFFLINE to use --force.")
    before = _blobs(repo_id, cache_dir)
    quiet = not progress and not are_progress_bars_disabled()
    if quiet:
        disable_progress_bars()
    try:
        with hub_errors(repo_id, "pull", revision):
            folder = Path(snapshot_download(repo_id, repo_type="model", revision=revision, force_download=force,
                                            token=token, cache_dir=cache_dir, local_files_only=offline))
    finally:
        if quiet:
            enable_progress_bars()
    commit = folder.name
    if offline:
        bad = verify_cached_files(folder)
        if bad:
            raise _corrupt(repo_id, folder, bad, "do not match the checksums they were downloaded with")
    else:
        try:
            with hub_errors(repo_id, "verify", revision):
                api = HfApi(token=token)
                check = getattr(api, "verify_repo_checksums", None)
                if check is not None:
                    result = check(repo_id, repo_type="model", revision=commit, local_dir=folder, token=token)
                    bad = sorted([m["path"] for m in result.mismatches] + list(result.missing_paths))
                else:  # older huggingface_hub: check against the cache's blob names
                    bad = verify_cached_files(folder)
        except HubNetworkError:
            # snapshot_download served the cached copy because the Hub is unreachable: check it offline.
            bad = verify_cached_files(folder)
        if bad:
            raise _corrupt(repo_id, folder, bad, "do not match the sha256/git checksums the Hub lists for them")
    try:
        config = validate_model_folder(folder)
    except ModelFileError as err:
        raise HubError(f"{repo_id} is not a usable fauve model: {err.message}", err.hint, code="hub_not_a_model") from err
    downloaded = sorted(_blobs(repo_id, cache_dir) - before) if not force else sorted(
        p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    return PullResult(repo_id=repo_id, folder=folder, commit=commit, config=config, downloaded=downloaded)


def cached_folder(repo_id: str, revision: str | None = None, cache_dir: str | Path | None = None) -> Path | None:
    """The cached snapshot of ``repo_id`` at ``revision`` (default main) if complete in the cache; no network."""
    from huggingface_hub import try_to_load_from_cache

    try:
        cfg = try_to_load_from_cache(repo_id, "config.json", cache_dir=cache_dir, revision=revision)
    except Exception:  # noqa: BLE001 - a malformed cache is "not cached"
        return None
    if not isinstance(cfg, str):
        return None
    folder = Path(cfg).parent
    return folder if (folder / "model.safetensors").is_file() else None


# -- info ----------------------------------------------------------------------------------------------
def repo_summary(repo_id: str, *, revision: str | None = None, token: str | None = None) -> dict[str, Any]:
    """Model info from the Hub: commit, files (size, LFS sha256), tags, privacy, last change."""
    check_repo_id(repo_id)
    if is_offline():
        raise HubOffline(f"Cannot show {repo_id}: HF_HUB_OFFLINE is set.", "Unset HF_HUB_OFFLINE.")
    with hub_errors(repo_id, "read", revision):
        from huggingface_hub import HfApi

        info = HfApi(token=token).model_info(repo_id, revision=revision, files_metadata=True)
    return {
        "repo_id": info.id, "sha": info.sha, "private": info.private, "library_name": info.library_name,
        "pipeline_tag": info.pipeline_tag, "tags": info.tags or [],
        "last_modified": info.last_modified.isoformat() if info.last_modified else None,
        "files": [{"path": s.rfilename, "size": s.size, "sha256": s.lfs.sha256 if s.lfs else None}
                  for s in info.siblings or []],
    }
