"""The GIMP plug-in's side of the bridge API (docs/bridge-api.md): settings, server start, one job.

Standard library only: GIMP's own Python has no extra packages (and cannot import torch), so this
module must import nothing outside the stdlib. It knows nothing about GIMP either, which keeps it
usable from any Python for debugging:

    python3 fauve_gimp_client.py http://127.0.0.1:7860      # prints the server's health and styles
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

DEFAULT_URL = "http://127.0.0.1:7860"
CONFIG_NAME = "fauve-gimp.json"  # written next to the plug-in by `fauve gimp install`
API = "/bridge/v1"


class BridgeError(Exception):
    """Something went wrong talking to the server; ``str()`` says what, ``hint`` what to do."""

    def __init__(self, message: str, hint: str = "", code: str = "bridge_error"):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.code = code

    def user_text(self) -> str:
        return f"{self.message}\n\n{self.hint}" if self.hint else self.message


class JobCancelled(BridgeError):
    pass


# --------------------------------------------------------------------------- settings
def load_settings(plugin_dir: str) -> dict:
    """Settings from ``fauve-gimp.json`` next to the plug-in, overridden by the environment.

    Keys: ``server_url``, ``token``, ``server_cmd`` (argv list or shell string; empty = never start
    a server), ``start_timeout`` (s), ``job_timeout`` (s). Environment: FAUVE_SERVER_URL,
    FAUVE_TOKEN, FAUVE_SERVER_CMD, FAUVE_JOB_TIMEOUT.
    """
    settings = {"server_url": DEFAULT_URL, "token": "", "server_cmd": [], "start_timeout": 90.0,
                "job_timeout": 900.0}
    path = os.path.join(plugin_dir, CONFIG_NAME)
    if os.path.exists(path):
        try:
            with open(path, encoding="utf-8") as fh:
                data = json.load(fh)
        except (OSError, ValueError) as err:
            raise BridgeError(f"Cannot read the plug-in settings {path}: {err}",
                              "Fix or delete that file, or run `fauve gimp install` again.") from err
        if isinstance(data, dict):
            settings.update({k: v for k, v in data.items() if k in settings and v is not None})
    env = os.environ
    if env.get("FAUVE_SERVER_URL"):
        settings["server_url"] = env["FAUVE_SERVER_URL"]
    if env.get("FAUVE_TOKEN"):
        settings["token"] = env["FAUVE_TOKEN"]
    if env.get("FAUVE_SERVER_CMD"):
        settings["server_cmd"] = env["FAUVE_SERVER_CMD"]
    if env.get("FAUVE_JOB_TIMEOUT"):
        settings["job_timeout"] = float(env["FAUVE_JOB_TIMEOUT"])
    if isinstance(settings["server_cmd"], str):
        settings["server_cmd"] = shlex.split(settings["server_cmd"], posix=os.name != "nt")
    return settings


def clean_child_env() -> dict:
    """Environment for a server started from inside GIMP: GIMP's Python settings removed.

    GIMP may set PYTHONPATH/PYTHONHOME (bundled Python on Windows and macOS) and GI/GEGL/BABL
    variables that would break a venv's torch; the server gets only the user's basics.
    """
    drop_prefixes = ("PYTHON", "GI_", "GIMP", "GEGL", "BABL", "GDK", "GTK", "LD_PRELOAD")
    return {k: v for k, v in os.environ.items() if not k.upper().startswith(drop_prefixes)}


# --------------------------------------------------------------------------- client
class BridgeClient:
    def __init__(self, base_url: str, token: str = "", timeout: float = 30.0):
        url = (base_url or DEFAULT_URL).strip().rstrip("/")
        parsed = urllib.parse.urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise BridgeError(f"The server address {base_url!r} is not an http:// URL.",
                              f"Use something like {DEFAULT_URL} (see `fauve gimp install --server`).")
        self.base_url = url
        self.token = token
        self.timeout = timeout

    # low level
    def _request(self, method: str, path: str, body: bytes | None = None, timeout: float | None = None,
                 headers: dict | None = None):
        req = urllib.request.Request(self.base_url + API + path, data=body, method=method)
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        for key, value in (headers or {}).items():
            req.add_header(key, value)
        try:
            resp = urllib.request.urlopen(req, timeout=timeout or self.timeout)
            return resp.status, dict(resp.headers.items()), resp.read()
        except urllib.error.HTTPError as err:
            raise self._http_error(err) from err
        except (urllib.error.URLError, OSError) as err:
            reason = getattr(err, "reason", err)
            raise BridgeError(f"No answer from the fauve server at {self.base_url} ({reason}).",
                              self.start_hint(), code="unreachable") from err

    def _http_error(self, err: urllib.error.HTTPError) -> BridgeError:
        try:
            data = json.loads(err.read().decode("utf-8"))
            message, hint, code = data.get("message"), data.get("hint", ""), data.get("code", "")
        except Exception:  # not our JSON: still say what the server answered
            message, hint, code = None, "", ""
        if err.code == 401 and not hint:
            hint = "The server wants a token: run `fauve gimp install --token T` or set FAUVE_TOKEN."
        return BridgeError(f"The fauve server refused the request (HTTP {err.code}): "
                           f"{message or err.reason}", hint, code=code or f"http_{err.code}")

    def _json(self, method: str, path: str, timeout: float | None = None) -> dict:
        _, _, raw = self._request(method, path, timeout=timeout)
        try:
            return json.loads(raw.decode("utf-8"))
        except ValueError as err:
            raise BridgeError(f"The server at {self.base_url} did not answer with JSON; is it a "
                              "fauve server?", "Check the server address in the plug-in dialog.") from err

    def start_hint(self) -> str:
        port = urllib.parse.urlparse(self.base_url).port or 80
        return (f"Start the server in a terminal with `fauve serve --port {port}` and run the filter "
                "again, or let the plug-in start it: `fauve gimp install` records the command.")

    # endpoints
    def health(self, timeout: float = 2.0) -> dict:
        return self._json("GET", "/health", timeout=timeout)

    def styles(self) -> list[dict]:
        return list(self._json("GET", "/styles").get("styles", []))

    def submit(self, rgba: bytes, width: int, height: int, params: dict) -> str:
        if len(rgba) != width * height * 4:
            raise BridgeError(f"internal: {len(rgba)} bytes is not {width}x{height} RGBA.")
        query = {"format": "rgba8", "width": width, "height": height}
        query.update({k: v for k, v in params.items() if v not in (None, "")})
        _, _, raw = self._request("POST", "/jobs?" + urllib.parse.urlencode(query), body=rgba,
                                  headers={"Content-Type": "application/octet-stream"},
                                  timeout=max(self.timeout, 60.0))
        job_id = json.loads(raw.decode("utf-8")).get("job_id")
        if not job_id:
            raise BridgeError("The server accepted the job but sent no job id.",
                              "Update fauve (`pip install -U fauve`) so server and plug-in match.")
        return job_id

    def status(self, job_id: str) -> dict:
        return self._json("GET", f"/jobs/{urllib.parse.quote(job_id)}")

    def cancel(self, job_id: str) -> None:
        self._request("DELETE", f"/jobs/{urllib.parse.quote(job_id)}", timeout=5.0)

    def result(self, job_id: str, width: int, height: int) -> bytes:
        _, headers, raw = self._request("GET", f"/jobs/{urllib.parse.quote(job_id)}/result",
                                        timeout=max(self.timeout, 60.0))
        size = {k.lower(): v for k, v in headers.items()}
        got = (int(size.get("x-width", width)), int(size.get("x-height", height)))
        if got != (width, height) or len(raw) != width * height * 4:
            raise BridgeError(f"The server sent {got[0]}x{got[1]} pixels ({len(raw)} bytes) for a "
                              f"{width}x{height} request.", "Update fauve so server and plug-in match.")
        return raw

    def run_job(self, rgba: bytes, width: int, height: int, params: dict, *, timeout: float,
                on_progress=None, on_submit=None, poll: float = 0.15) -> bytes:
        """Submit (``on_submit(job_id)``), wait (``on_progress(fraction, text)`` after each poll;
        return False to cancel), fetch the result. The job is cancelled on the server if anything
        goes wrong here, or if this process is killed (GIMP's Cancel kills the plug-in)."""
        job_id = self.submit(rgba, width, height, params)
        if on_submit is not None:
            on_submit(job_id)
        finished = False
        watcher = CancelWatcher(self, job_id)
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    st = self.status(job_id)
                except BridgeError as err:
                    if err.code == "unreachable":
                        raise BridgeError("The fauve server stopped answering while it worked on the "
                                          f"image ({err.message}).",
                                          "Look at the server's terminal or log for the reason, start "
                                          "it again and re-run the filter.", code="server_died") from err
                    raise
                state = st.get("status")
                if state == "done":
                    break
                if state == "error":
                    finished = True
                    e = st.get("error") or {}
                    raise BridgeError("The fauve server could not style the image: "
                                      f"{e.get('message') or st.get('message') or 'unknown error'}",
                                      e.get("hint", ""), code=e.get("code", "job_error"))
                if state == "cancelled":
                    finished = True
                    raise JobCancelled("The job was cancelled on the server.", "", code="cancelled")
                if on_progress is not None:
                    text = st.get("message") or ("Waiting in the server's queue…" if state == "queued"
                                                 else "Styling…")
                    if on_progress(float(st.get("progress") or 0.0), text) is False:
                        raise JobCancelled("Cancelled.", "", code="cancelled")
                if time.monotonic() > deadline:
                    raise BridgeError(f"The server did not finish within {timeout:.0f} s.",
                                      "Select a smaller area, lower the style scale, or raise "
                                      "job_timeout in the plug-in settings (FAUVE_JOB_TIMEOUT).",
                                      code="timeout")
                time.sleep(poll)
            data = self.result(job_id, width, height)
            finished = True
            return data
        finally:
            if not finished:
                try:
                    self.cancel(job_id)
                except BridgeError:
                    pass
            watcher.close()

    # server start
    def ensure_running(self, server_cmd: list, start_timeout: float, on_wait=None) -> dict:
        """Return /health; start ``server_cmd`` first when nothing answers and a command is set."""
        try:
            return self.health()
        except BridgeError as err:
            if err.code != "unreachable" or not server_cmd:
                raise
        log_path = os.path.join(tempfile.gettempdir(), "fauve-gimp-server.log")
        try:
            log = open(log_path, "ab")
            kwargs = {"stdin": subprocess.DEVNULL, "stdout": log, "stderr": subprocess.STDOUT,
                      "env": clean_child_env(), "cwd": os.path.expanduser("~")}
            if os.name == "nt":
                kwargs["creationflags"] = (subprocess.CREATE_NO_WINDOW
                                           | subprocess.CREATE_NEW_PROCESS_GROUP)
            else:
                kwargs["start_new_session"] = True  # outlives the plug-in: later runs reuse it
            proc = subprocess.Popen([str(a) for a in server_cmd], **kwargs)
        except OSError as err:
            raise BridgeError(f"Could not start the fauve server with {' '.join(map(str, server_cmd))}:"
                              f" {err}", "Check server_cmd in the plug-in settings or FAUVE_SERVER_CMD, "
                              "or start `fauve serve` yourself.", code="start_failed") from err
        deadline = time.monotonic() + start_timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise BridgeError(f"The fauve server exited right after starting (exit {proc.returncode}).",
                                  f"Its output is in {log_path}.", code="start_failed")
            try:
                return self.health(timeout=1.0)
            except BridgeError:
                if on_wait is not None:
                    on_wait()
                time.sleep(0.5)
        raise BridgeError(f"The fauve server did not answer within {start_timeout:.0f} s of starting.",
                          f"Its output is in {log_path}.", code="start_failed")


# --------------------------------------------------------------------------- cancel watcher
class CancelWatcher:
    """Cancels the server job if this process dies before the job is settled.

    Cancelling a plug-in's progress in GIMP ends the plug-in process, so no ``finally`` runs; a
    small detached helper holds a pipe to us and sends DELETE when it reads EOF without "done".
    """

    def __init__(self, client: BridgeClient, job_id: str):
        self.proc = None
        if not sys.executable:
            return
        try:
            self.proc = subprocess.Popen(
                [sys.executable, os.path.abspath(__file__), "--cancel-on-eof", client.base_url, job_id],
                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                env=dict(clean_child_env(), FAUVE_TOKEN=client.token),
                **({"start_new_session": True} if os.name != "nt" else {}))
        except OSError:
            self.proc = None

    def close(self) -> None:
        if self.proc is not None and self.proc.stdin is not None:
            try:
                self.proc.stdin.write(b"done\n")
                self.proc.stdin.close()
            except OSError:
                pass


def _cancel_on_eof(base_url: str, job_id: str) -> int:
    said = sys.stdin.buffer.read()
    if b"done" in said:
        return 0
    try:
        BridgeClient(base_url, os.environ.get("FAUVE_TOKEN", "")).cancel(job_id)
    except BridgeError:
        return 1
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--cancel-on-eof":
        sys.exit(_cancel_on_eof(sys.argv[2], sys.argv[3]))
    c = BridgeClient(sys.argv[1] if len(sys.argv) > 1 else DEFAULT_URL, os.environ.get("FAUVE_TOKEN", ""))
    print(json.dumps({"health": c.health(), "styles": [s.get("id") for s in c.styles()]}, indent=2))
