"""A small server that speaks the Hugging Face Hub's HTTP API, for tests of the real ``huggingface_hub`` client.

It serves what ``huggingface_hub`` 2.x uses to create a model repo, upload a folder in one commit and
download it again (see ../shared/research/hub.md for the protocol notes):

==========  ==========================================================  =====================================
method      path                                                        what
==========  ==========================================================  =====================================
POST        /api/repos/create                                           create a repo (409 when it exists)
POST        /api/validate-yaml                                          README front matter check
POST        /api/models/{ns}/{name}/preupload/{rev}                     upload mode per file (lfs / regular)
POST        /{ns}/{name}.git/info/lfs/objects/batch                     LFS batch API, ``basic`` transfer
PUT         /lfs-upload/{oid}?ticket=...                                the LFS object's bytes (sha256 checked)
POST        /{ns}/{name}.git/info/lfs/objects/verify                    LFS verify action
POST        /api/models/{ns}/{name}/commit/{rev}                        NDJSON commit (header/file/lfsFile/deleted*)
GET         /api/models/{ns}/{name}[/revision/{rev}]                    model info (``?blobs=true``: sizes, lfs)
GET         /api/models/{ns}/{name}/tree/{rev}[/{path}]                 tree listing (``?recursive=true``)
POST        /api/models/{ns}/{name}/paths-info/{rev}                    info about given paths
GET         /api/models/{ns}/{name}/refs                                branches
GET         /api/whoami-v2                                              the token's user
HEAD, GET   /{ns}/{name}/resolve/{rev}/{path}                           file bytes + X-Repo-Commit, ETag, Range
==========  ==========================================================  =====================================

Storage on disk under ``data_dir``: ``lfs/<sha256>`` (LFS objects, like the Hub's bucket) and
``repos/<ns>/<name>/`` with ``repo.json``, ``refs/<branch>`` (a commit id), ``commits/<id>.json``
(the full file table of each commit) and ``objects/<git blob sha1>`` (regular files). ETags are the
ones recorded at commit time (sha256 for LFS files, git blob sha1 otherwise), as on the Hub, so a
file damaged on the server after the commit is served with its original ETag and the client's
checksum verification catches it. ``HubServer.requests`` logs every request (method, path).

Run standalone: ``python tests/hub_server.py --port 0 --data DIR`` prints ``LISTENING <port>``.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import re
import secrets
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

LFS_EXTENSIONS = {".safetensors", ".bin", ".pt", ".pth", ".onnx", ".png", ".jpg", ".jpeg", ".webp", ".gif", ".h5",
                  ".npz", ".npy", ".zip", ".tar", ".gz", ".msgpack", ".ckpt"}
LFS_THRESHOLD = 10 * 1024 * 1024  # the Hub stores files above 10 MB in LFS whatever their type
GITATTRIBUTES = "".join(f"*{ext} filter=lfs diff=lfs merge=lfs -text\n" for ext in sorted(LFS_EXTENSIONS))
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")


def git_blob_sha1(data: bytes) -> str:
    """git's object id of a blob: sha1(b"blob <size>\\0" + data)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


class HubError(Exception):
    """An HTTP error with the Hub's ``X-Error-Code`` / ``X-Error-Message`` headers."""

    def __init__(self, status: int, message: str, code: str | None = None, extra: dict | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.extra = status, message, code, extra or {}


class HubStore:
    """Repos, commits and LFS objects on disk. All mutations hold ``lock``."""

    def __init__(self, data_dir: Path) -> None:
        self.root = Path(data_dir)
        (self.root / "lfs").mkdir(parents=True, exist_ok=True)
        (self.root / "repos").mkdir(parents=True, exist_ok=True)
        self.lock = threading.RLock()

    # -- repos ---------------------------------------------------------------------------------
    def repo_dir(self, repo_id: str) -> Path:
        return self.root / "repos" / repo_id

    def exists(self, repo_id: str) -> bool:
        return (self.repo_dir(repo_id) / "repo.json").is_file()

    def meta(self, repo_id: str) -> dict:
        return json.loads((self.repo_dir(repo_id) / "repo.json").read_text())

    def create(self, repo_id: str, *, private: bool = False, owner: str | None = None) -> None:
        with self.lock:
            if self.exists(repo_id):
                raise HubError(409, "You already created this model repo", "RepoExists")
            d = self.repo_dir(repo_id)
            for sub in ("refs", "commits", "objects"):
                (d / sub).mkdir(parents=True, exist_ok=True)
            (d / "repo.json").write_text(json.dumps({"id": repo_id, "private": private, "createdAt": _now(), "owner": owner}))
            # Like the Hub, a new repo starts with one commit holding .gitattributes.
            self.commit(repo_id, "main", "initial commit", "", [("file", ".gitattributes", GITATTRIBUTES.encode())])

    # -- refs and commits ------------------------------------------------------------------------
    def branches(self, repo_id: str) -> dict[str, str]:
        refs = self.repo_dir(repo_id) / "refs"
        return {p.name: p.read_text().strip() for p in refs.iterdir()} if refs.is_dir() else {}

    def resolve_revision(self, repo_id: str, revision: str) -> str:
        branches = self.branches(repo_id)
        if revision in branches:
            return branches[revision]
        if re.fullmatch(r"[0-9a-f]{40}", revision) and (self.repo_dir(repo_id) / "commits" / f"{revision}.json").is_file():
            return revision
        raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")

    def load_commit(self, repo_id: str, commit_id: str) -> dict:
        return json.loads((self.repo_dir(repo_id) / "commits" / f"{commit_id}.json").read_text())

    def commit(self, repo_id: str, branch: str, summary: str, description: str, ops: list[tuple],
               parent_commit: str | None = None) -> str:
        """Apply ``ops`` (``("file", path, bytes)``, ``("lfs", path, sha256, size)``, ``("delete", path)``,
        ``("delete_folder", path)``) on top of ``branch`` and move the branch to the new commit."""
        with self.lock:
            d = self.repo_dir(repo_id)
            branches = self.branches(repo_id)
            parent = branches.get(branch)
            if parent is None and branches:
                raise HubError(404, f"Invalid rev id: {branch}", "RevisionNotFound")
            if parent_commit is not None and parent_commit != parent:
                raise HubError(412, f"A commit has happened since {parent_commit}; the head is {parent}.")
            files = dict(self.load_commit(repo_id, parent)["files"]) if parent else {}
            for op in ops:
                kind, path = op[0], op[1].strip("/")
                if not path or ".." in path.split("/"):
                    raise HubError(400, f"Invalid path {op[1]!r}")
                if kind == "file":
                    data = op[2]
                    oid = git_blob_sha1(data)
                    (d / "objects" / oid).write_bytes(data)
                    files[path] = {"size": len(data), "gitOid": oid, "sha256": hashlib.sha256(data).hexdigest(), "lfs": False}
                elif kind == "lfs":
                    sha256, size = op[2], op[3]
                    obj = self.root / "lfs" / sha256
                    if not obj.is_file() or (size is not None and obj.stat().st_size != size):
                        raise HubError(400, f"LFS object {sha256} for {path} was not uploaded", "LfsObjectNotFound")
                    size = obj.stat().st_size
                    files[path] = {"size": size, "gitOid": git_blob_sha1(lfs_pointer(sha256, size)), "sha256": sha256,
                                   "lfs": True}
                elif kind == "delete":
                    if path not in files:
                        raise HubError(404, f"A file with this name doesn't exist: {path}", "EntryNotFound")
                    del files[path]
                elif kind == "delete_folder":
                    for p in [p for p in files if p.startswith(path + "/")]:
                        del files[p]
            date = _now()
            body = json.dumps({"parent": parent, "files": files, "summary": summary, "time": time.time_ns()}, sort_keys=True)
            commit_id = hashlib.sha1(body.encode()).hexdigest()
            record = {"id": commit_id, "parents": [parent] if parent else [], "title": summary,
                      "message": description, "date": date, "files": files}
            (d / "commits" / f"{commit_id}.json").write_text(json.dumps(record, indent=1))
            (d / "refs" / branch).write_text(commit_id)
            return commit_id

    # -- file contents -----------------------------------------------------------------------------
    def blob_path(self, repo_id: str, entry: dict) -> Path:
        return self.root / "lfs" / entry["sha256"] if entry["lfs"] else self.repo_dir(repo_id) / "objects" / entry["gitOid"]

    def file_path(self, repo_id: str, path: str, revision: str = "main") -> Path:
        """Where the bytes of ``path`` at ``revision`` are stored (tests damage it to simulate corruption)."""
        commit = self.load_commit(repo_id, self.resolve_revision(repo_id, revision))
        return self.blob_path(repo_id, commit["files"][path])

    def put_lfs(self, sha256: str, size: int, stream, length: int | None) -> None:
        tmp = self.root / "lfs" / f".{sha256}.{secrets.token_hex(4)}.tmp"
        digest, n = hashlib.sha256(), 0
        with tmp.open("wb") as f:
            for chunk in stream:
                digest.update(chunk)
                n += len(chunk)
                f.write(chunk)
        if digest.hexdigest() != sha256 or n != size:
            tmp.unlink()
            raise HubError(400, f"Uploaded object does not match its oid/size (got sha256 {digest.hexdigest()}, {n} bytes)")
        tmp.replace(self.root / "lfs" / sha256)

    def lfs_object_ok(self, sha256: str, size: int) -> bool:
        obj = self.root / "lfs" / sha256
        if not obj.is_file() or obj.stat().st_size != size:
            return False
        h = hashlib.sha256()
        with obj.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        return h.hexdigest() == sha256


class HubHandler(BaseHTTPRequestHandler):
    server_version = "fauve-test-hub/1"
    protocol_version = "HTTP/1.1"
    hub: "HubServer"  # set on the subclass made per server

    def log_message(self, fmt: str, *args) -> None:  # keep pytest output quiet
        pass

    # -- plumbing ---------------------------------------------------------------------------------
    def _send(self, status: int, body: bytes = b"", headers: dict | None = None, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def _json(self, obj, status: int = 200, headers: dict | None = None) -> None:
        self._send(status, json.dumps(obj).encode(), headers)

    def _error(self, err: HubError) -> None:
        # The request body may be unread: close the connection rather than parse it as the next request.
        self.close_connection = True
        headers = {"X-Error-Message": err.message, "Connection": "close"}
        if err.code:
            headers["X-Error-Code"] = err.code
        self._json({"error": err.message, **err.extra}, err.status, headers)

    def _iter_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return
                yield self.rfile.read(size)
                self.rfile.readline()
        else:
            remaining = int(self.headers.get("Content-Length") or 0)
            while remaining > 0:
                chunk = self.rfile.read(min(remaining, 1 << 20))
                if not chunk:
                    return
                remaining -= len(chunk)
                yield chunk

    def _body(self) -> bytes:
        return b"".join(self._iter_body())

    def _token(self) -> str | None:
        auth = self.headers.get("Authorization", "")
        return auth[7:].strip() if auth.lower().startswith("bearer ") else None

    def _user(self) -> str | None:
        """The user of a valid token; None without one; 401 for an unknown token."""
        token = self._token()
        if token is None or not self.hub.tokens:
            return None  # an open server ignores tokens
        if token not in self.hub.tokens:
            raise HubError(401, "Invalid credentials in Authorization header")
        return self.hub.tokens[token]

    def _require_write(self, namespace: str) -> None:
        user = self._user()
        if not self.hub.tokens:
            return  # an open server: anyone may write
        if user is None:
            raise HubError(401, "You must be authenticated to access this resource")
        if namespace != user and namespace not in self.hub.orgs.get(user, ()):
            raise HubError(403, f"You don't have the rights to create a model under the namespace {namespace}")

    def _readable_repo(self, repo_id: str) -> dict:
        if not self.hub.store.exists(repo_id):
            raise HubError(404, "Repository not found", "RepoNotFound")
        meta = self.hub.store.meta(repo_id)
        if meta["private"]:
            user = self._user()
            ns = repo_id.split("/")[0]
            if user is None or (ns != user and ns not in self.hub.orgs.get(user, ())):
                raise HubError(401, "Repository not found", "RepoNotFound")
        return meta

    # -- dispatch ---------------------------------------------------------------------------------
    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        segs = [unquote(s) for s in url.path.split("/")[1:]]
        self.hub.log(self.command, url.path)
        try:
            self._route(segs, query)
        except HubError as err:
            self._error(err)
        except (ValueError, KeyError, json.JSONDecodeError) as err:
            self._error(HubError(400, f"Bad request: {err}"))
        except Exception as err:  # noqa: BLE001 - a server bug must show up as a 500, not a dropped connection
            self._error(HubError(500, f"Internal error: {type(err).__name__}: {err}"))

    do_GET = do_HEAD = do_POST = do_PUT = _dispatch

    def _route(self, segs: list[str], query: dict) -> None:
        cmd = self.command
        if segs[:1] == ["api"]:
            rest = segs[1:]
            if cmd == "POST" and rest == ["repos", "create"]:
                return self.create_repo()
            if cmd == "POST" and rest == ["validate-yaml"]:
                self._body()
                return self._json({"errors": [], "warnings": []})
            if cmd == "GET" and rest == ["whoami-v2"]:
                return self.whoami()
            if len(rest) >= 3 and rest[0] == "models":
                repo_id = f"{rest[1]}/{rest[2]}"
                tail = rest[3:]
                if cmd == "GET" and not tail:
                    return self.model_info(repo_id, "main", query)
                if cmd == "GET" and len(tail) == 2 and tail[0] == "revision":
                    return self.model_info(repo_id, tail[1], query)
                if cmd == "GET" and len(tail) >= 2 and tail[0] == "tree":
                    return self.tree(repo_id, tail[1], "/".join(tail[2:]), query)
                if cmd == "GET" and tail == ["refs"]:
                    return self.refs(repo_id)
                if cmd == "POST" and len(tail) == 2 and tail[0] == "preupload":
                    return self.preupload(repo_id, tail[1])
                if cmd == "POST" and len(tail) == 2 and tail[0] == "commit":
                    return self.commit(repo_id, tail[1], query)
                if cmd == "POST" and len(tail) == 2 and tail[0] == "paths-info":
                    return self.paths_info(repo_id, tail[1])
            raise HubError(404, f"No route for {cmd} /{'/'.join(segs)}")
        if cmd == "PUT" and len(segs) == 2 and segs[0] == "lfs-upload":
            return self.lfs_put(segs[1], query)
        if len(segs) >= 5 and segs[2] == "resolve" and cmd in ("GET", "HEAD"):
            return self.resolve(f"{segs[0]}/{segs[1]}", segs[3], "/".join(segs[4:]))
        if cmd == "POST" and len(segs) == 6 and segs[1].endswith(".git") and segs[2:5] == ["info", "lfs", "objects"]:
            repo_id = f"{segs[0]}/{segs[1][:-4]}"
            if segs[5] == "batch":
                return self.lfs_batch(repo_id)
            if segs[5] == "verify":
                return self.lfs_verify(repo_id)
        raise HubError(404, f"No route for {cmd} /{'/'.join(segs)}")

    # -- endpoints --------------------------------------------------------------------------------
    def whoami(self) -> None:
        user = self._user()
        if user is None:
            raise HubError(401, "Invalid credentials in Authorization header")
        self._json({"type": "user", "name": user, "orgs": [{"name": o} for o in self.hub.orgs.get(user, ())],
                    "auth": {"type": "access_token", "accessToken": {"role": "write"}}})

    def create_repo(self) -> None:
        body = json.loads(self._body() or b"{}")
        if body.get("type", "model") != "model":
            raise HubError(400, "This test Hub serves model repos only")
        user = self._user()
        namespace = body.get("organization") or user
        name = body.get("name") or ""
        if not namespace:
            raise HubError(401, "You must be authenticated to create a repo without a namespace")
        if not (NAME_RE.match(namespace) and NAME_RE.match(name)):
            raise HubError(400, f"Invalid repo name {namespace}/{name}")
        self._require_write(namespace)
        private = body.get("visibility") == "private" or bool(body.get("private"))
        repo_id = f"{namespace}/{name}"
        try:
            self.hub.store.create(repo_id, private=private, owner=user)
        except HubError as err:
            err.extra["url"] = f"{self.hub.url}/{repo_id}"  # the client reads the url from a 409 too
            raise
        self._json({"url": f"{self.hub.url}/{repo_id}", "name": repo_id, "id": repo_id})

    def _commit_of(self, repo_id: str, revision: str) -> tuple[str, dict]:
        commit_id = self.hub.store.resolve_revision(repo_id, revision)
        return commit_id, self.hub.store.load_commit(repo_id, commit_id)

    def preupload(self, repo_id: str, revision: str) -> None:
        self._readable_repo(repo_id)
        self._require_write(repo_id.split("/")[0])
        body = json.loads(self._body())
        _, commit = self._commit_of(repo_id, revision)
        out = []
        for f in body["files"]:
            sample = base64.b64decode(f.get("sample", ""))
            path = f["path"]
            ext = Path(path).suffix.lower()
            lfs = ext in LFS_EXTENSIONS or f["size"] >= LFS_THRESHOLD or b"\0" in sample
            remote = commit["files"].get(path)
            oid = (remote["sha256"] if remote["lfs"] else remote["gitOid"]) if remote else None
            out.append({"path": path, "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False, "oid": oid})
        self._json({"files": out, "commitOid": commit.get("id")})

    def lfs_batch(self, repo_id: str) -> None:
        self._readable_repo(repo_id)
        self._require_write(repo_id.split("/")[0])
        body = json.loads(self._body())
        if body.get("operation") != "upload":
            raise HubError(400, "Only the upload operation is served")
        objects = []
        for obj in body["objects"]:
            oid, size = obj["oid"], int(obj["size"])
            entry = {"oid": oid, "size": size, "authenticated": True}
            if not self.hub.store.lfs_object_ok(oid, size):
                ticket = secrets.token_urlsafe(16)
                self.hub.tickets[ticket] = (oid, size)
                entry["actions"] = {
                    "upload": {"href": f"{self.hub.url}/lfs-upload/{oid}?ticket={ticket}", "expires_in": 3600},
                    "verify": {"href": f"{self.hub.url}/{repo_id}.git/info/lfs/objects/verify",
                               "header": {"Authorization": f"Bearer {self._token()}"} if self._token() else {}},
                }
            objects.append(entry)
        self._send(200, json.dumps({"transfer": "basic", "objects": objects, "hash_algo": "sha256"}).encode(),
                   content_type="application/vnd.git-lfs+json")

    def lfs_put(self, oid: str, query: dict) -> None:
        ticket = self.hub.tickets.pop(query.get("ticket", ""), None)
        if ticket is None or ticket[0] != oid:
            raise HubError(403, "Invalid or expired upload ticket")
        self.hub.store.put_lfs(oid, ticket[1], self._iter_body(), None)
        self._send(200, b"", content_type="text/plain")

    def lfs_verify(self, repo_id: str) -> None:
        body = json.loads(self._body())
        if not self.hub.store.lfs_object_ok(body["oid"], int(body["size"])):
            raise HubError(404, f"LFS object {body['oid']} not found")
        self._json({"ok": True})

    def commit(self, repo_id: str, revision: str, query: dict) -> None:
        self._readable_repo(repo_id)
        self._require_write(repo_id.split("/")[0])
        if query.get("create_pr") in ("1", "true", "True"):
            raise HubError(400, "Pull requests are not served by this test Hub")
        ops: list[tuple] = []
        header: dict = {}
        for line in self._body().decode().splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            key, value = item["key"], item["value"]
            if key == "header":
                header = value
            elif key == "file":
                content = value["content"]
                data = base64.b64decode(content) if value.get("encoding") == "base64" else content.encode()
                ops.append(("file", value["path"], data))
            elif key == "lfsFile":
                ops.append(("lfs", value["path"], value["oid"], value.get("size")))
            elif key == "deletedFile":
                ops.append(("delete", value["path"]))
            elif key == "deletedFolder":
                ops.append(("delete_folder", value["path"]))
            else:
                raise HubError(400, f"Unknown commit operation {key!r}")
        if not header.get("summary"):
            raise HubError(400, "A commit needs a summary")
        commit_id = self.hub.store.commit(repo_id, revision, header["summary"], header.get("description", ""), ops,
                                          header.get("parentCommit"))
        self._json({"success": True, "commitOid": commit_id, "commitUrl": f"{self.hub.url}/{repo_id}/commit/{commit_id}",
                    "pullRequestUrl": None, "commitMessage": header["summary"]})

    def _card_data(self, repo_id: str, commit: dict) -> dict | None:
        entry = commit["files"].get("README.md")
        if entry is None:
            return None
        text = self.hub.store.blob_path(repo_id, entry).read_text(errors="replace")
        match = re.match(r"^---\s*\n(.*?)\n---\s*\n", text, re.S)
        if not match:
            return None
        try:
            import yaml

            data = yaml.safe_load(match.group(1))
        except Exception:  # a broken card must not break model info
            return None
        return data if isinstance(data, dict) else None

    def model_info(self, repo_id: str, revision: str, query: dict) -> None:
        meta = self._readable_repo(repo_id)
        commit_id, commit = self._commit_of(repo_id, revision)
        card = self._card_data(repo_id, commit) or {}
        blobs = query.get("blobs") in ("1", "true", "True")
        siblings = []
        for path, e in sorted(commit["files"].items()):
            s: dict = {"rfilename": path}
            if blobs:
                s.update(size=e["size"], blobId=e["gitOid"])
                if e["lfs"]:
                    s["lfs"] = {"sha256": e["sha256"], "size": e["size"], "pointerSize": len(lfs_pointer(e["sha256"], e["size"]))}
            siblings.append(s)
        tags = list(card.get("tags") or [])
        if card.get("library_name"):
            tags.append(card["library_name"])
        if card.get("license"):
            tags.append(f"license:{card['license']}")
        tags = list(dict.fromkeys(tags))
        self._json({
            "_id": hashlib.md5(repo_id.encode()).hexdigest()[:24], "id": repo_id, "modelId": repo_id,
            "author": repo_id.split("/")[0], "sha": commit_id, "lastModified": commit["date"],
            "createdAt": meta["createdAt"], "private": meta["private"], "gated": False, "disabled": False,
            "downloads": 0, "likes": 0, "tags": tags, "library_name": card.get("library_name"),
            "pipeline_tag": card.get("pipeline_tag"), "cardData": card or None, "siblings": siblings,
            "usedStorage": sum(e["size"] for e in commit["files"].values()),
        })

    @staticmethod
    def _entries(commit: dict) -> tuple[dict[str, dict], set[str]]:
        files = commit["files"]
        dirs = {"/".join(p.split("/")[:i]) for p in files for i in range(1, p.count("/") + 1)}
        return files, dirs

    @staticmethod
    def _file_entry(path: str, e: dict) -> dict:
        out = {"type": "file", "oid": e["gitOid"], "size": e["size"], "path": path}
        if e["lfs"]:
            out["lfs"] = {"oid": e["sha256"], "size": e["size"], "pointerSize": len(lfs_pointer(e["sha256"], e["size"]))}
        return out

    @staticmethod
    def _dir_entry(path: str, files: dict) -> dict:
        inside = sorted((p, e["gitOid"]) for p, e in files.items() if p.startswith(path + "/"))
        return {"type": "directory", "oid": hashlib.sha1(json.dumps(inside).encode()).hexdigest(), "size": 0, "path": path}

    def tree(self, repo_id: str, revision: str, path: str, query: dict) -> None:
        self._readable_repo(repo_id)
        _, commit = self._commit_of(repo_id, revision)
        files, dirs = self._entries(commit)
        path = path.strip("/")
        if path and path not in dirs:
            raise HubError(404, f"{path} does not exist on {revision}", "EntryNotFound")
        recursive = query.get("recursive") in ("1", "true", "True")
        prefix = path + "/" if path else ""

        def wanted(p: str) -> bool:
            return p.startswith(prefix) and (recursive or "/" not in p[len(prefix):])

        out = [self._dir_entry(d, files) for d in sorted(dirs) if wanted(d)]
        out += [self._file_entry(p, e) for p, e in sorted(files.items()) if wanted(p)]
        self._json(out)

    def paths_info(self, repo_id: str, revision: str) -> None:
        self._readable_repo(repo_id)
        raw = self._body()
        if self.headers.get("Content-Type", "").startswith("application/json"):
            paths = json.loads(raw)["paths"]
        else:
            paths = parse_qs(raw.decode()).get("paths", [])
        _, commit = self._commit_of(repo_id, revision)
        files, dirs = self._entries(commit)
        out = []
        for p in paths:
            p = p.strip("/")
            if p in files:
                out.append(self._file_entry(p, files[p]))
            elif p in dirs:
                out.append(self._dir_entry(p, files))
        self._json(out)

    def refs(self, repo_id: str) -> None:
        self._readable_repo(repo_id)
        branches = [{"name": b, "ref": f"refs/heads/{b}", "targetCommit": c} for b, c in sorted(self.hub.store.branches(repo_id).items())]
        self._json({"branches": branches, "tags": [], "converts": []})

    def resolve(self, repo_id: str, revision: str, path: str) -> None:
        self._readable_repo(repo_id)
        commit_id, commit = self._commit_of(repo_id, revision)
        entry = commit["files"].get(path)
        if entry is None:
            raise HubError(404, f"Entry not found: {path}", "EntryNotFound")
        blob = self.hub.store.blob_path(repo_id, entry)
        etag = entry["sha256"] if entry["lfs"] else entry["gitOid"]
        size = blob.stat().st_size
        headers = {"X-Repo-Commit": commit_id, "ETag": f'"{etag}"', "Accept-Ranges": "bytes"}
        if entry["lfs"]:  # as the Hub does for LFS files: the object's recorded etag and size
            headers.update({"X-Linked-Etag": f'"{etag}"', "X-Linked-Size": str(entry["size"])})
        start, end, status = 0, size - 1, 200
        rng = self.headers.get("Range")
        if rng:
            m = re.fullmatch(r"bytes=(\d*)-(\d*)", rng.strip())
            if not m or (not m.group(1) and not m.group(2)):
                raise HubError(416, f"Bad range {rng}")
            if m.group(1):
                start = int(m.group(1))
                end = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
            else:  # suffix range: the last N bytes
                start = max(size - int(m.group(2)), 0)
            if start >= size or start > end:
                self._send(416, b"", {"Content-Range": f"bytes */{size}", **headers}, "text/plain")
                return
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        length = end - start + 1
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(length))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        if self.command == "GET":
            with blob.open("rb") as f:
                f.seek(start)
                remaining = length
                while remaining > 0:
                    chunk = f.read(min(remaining, 1 << 20))
                    if not chunk:
                        break
                    self.wfile.write(chunk)
                    remaining -= len(chunk)


class HubServer:
    """The test Hub on 127.0.0.1. ``start()`` picks a free port when ``port=0``; ``stop()`` closes it.

    ``tokens`` maps access tokens to user names; when given, writes need a token whose user owns the
    namespace (or is in ``orgs[user]``), and private repos are readable only with such a token.
    """

    def __init__(self, data_dir: str | Path, *, port: int = 0, tokens: dict[str, str] | None = None,
                 orgs: dict[str, list[str]] | None = None) -> None:
        self.store = HubStore(Path(data_dir))
        self.tokens = dict(tokens or {})
        self.orgs = {k: list(v) for k, v in (orgs or {}).items()}
        self.tickets: dict[str, tuple[str, int]] = {}
        self.requests: list[tuple[str, str]] = []
        self._port = port
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def log(self, method: str, path: str) -> None:
        self.requests.append((method, path))

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    def start(self) -> "HubServer":
        handler = type("BoundHubHandler", (HubHandler,), {"hub": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", self._port), handler)
        self._httpd.daemon_threads = True
        self._port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="test-hub", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    @property
    def running(self) -> bool:
        return self._httpd is not None

    # -- helpers for tests (server-side, no HTTP) -------------------------------------------------------
    def seed(self, repo_id: str, folder: str | Path, *, message: str = "seed", private: bool = False) -> str:
        """Commit every file of ``folder`` to ``repo_id`` (created if needed); returns the commit id."""
        if not self.store.exists(repo_id):
            self.store.create(repo_id, private=private)
        ops: list[tuple] = []
        for f in sorted(Path(folder).rglob("*")):
            if not f.is_file():
                continue
            rel = f.relative_to(folder).as_posix()
            data = f.read_bytes()
            if f.suffix.lower() in LFS_EXTENSIONS or len(data) >= LFS_THRESHOLD:
                sha = hashlib.sha256(data).hexdigest()
                self.store.put_lfs(sha, len(data), [data], len(data))
                ops.append(("lfs", rel, sha, len(data)))
            else:
                ops.append(("file", rel, data))
        return self.store.commit(repo_id, "main", message, "", ops)

    def file_path(self, repo_id: str, path: str, revision: str = "main") -> Path:
        return self.store.file_path(repo_id, path, revision)

    def head(self, repo_id: str, branch: str = "main") -> str:
        return self.store.branches(repo_id)[branch]

    def commit_record(self, repo_id: str, revision: str = "main") -> dict:
        return self.store.load_commit(repo_id, self.store.resolve_revision(repo_id, revision))

    def requests_since(self, n: int) -> list[tuple[str, str]]:
        return list(self.requests[n:])


def main() -> None:
    parser = argparse.ArgumentParser(description="A local Hugging Face Hub for tests.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--data", required=True)
    parser.add_argument("--token", action="append", default=[], help="TOKEN=USER; writes then need a token")
    args = parser.parse_args()
    tokens = dict(t.split("=", 1) for t in args.token)
    server = HubServer(args.data, port=args.port, tokens=tokens).start()
    print(f"LISTENING {server.port}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
