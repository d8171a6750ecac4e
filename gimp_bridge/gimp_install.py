"""``fauve gimp install`` / ``fauve gimp uninstall``: put the GIMP 3 plug-in where GIMP finds it.

GIMP 3 loads a plug-in from ``<profile>/plug-ins/<name>/<name>.py`` (folder and file share the
name, the file must be executable). The profile folder is per OS and per GIMP minor version
(3.0, 3.2, ...); we install into every GIMP 3 profile that exists, or into 3.0 when GIMP 3 has not
run yet. The server address (and how to start the server) is written to ``fauve-gimp.json`` next
to the plug-in, where the plug-in reads it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import stat
import sys
import urllib.parse
from importlib import resources
from pathlib import Path

from fauve.errors import FauveError

PLUGIN_NAME = "fauve-style-transfer"
CONFIG_NAME = "fauve-gimp.json"  # the plug-in's fauve_gimp_client.CONFIG_NAME
DEFAULT_URL = "http://127.0.0.1:7860"


def plugin_source() -> Path:
    """The plug-in folder shipped as package data of ``fauve_plugin``."""
    src = Path(str(resources.files("fauve_plugin") / PLUGIN_NAME))
    if not (src / f"{PLUGIN_NAME}.py").is_file():
        raise FauveError(f"The GIMP plug-in is missing from the installed package ({src}).",
                         hint="Reinstall fauve: pip install --force-reinstall fauve")
    return src


def gimp_config_roots(platform: str | None = None, env: dict | None = None,
                      home: Path | None = None) -> list[Path]:
    """Folders that hold GIMP's per-version profiles (``<root>/3.0``, ``<root>/3.2``) on this OS."""
    platform = platform or sys.platform
    env = os.environ if env is None else env
    home = home or Path.home()
    if platform.startswith("win"):
        appdata = env.get("APPDATA")
        return [Path(appdata) / "GIMP"] if appdata else [home / "AppData" / "Roaming" / "GIMP"]
    if platform == "darwin":
        return [home / "Library" / "Application Support" / "GIMP"]
    xdg = Path(env.get("XDG_CONFIG_HOME") or home / ".config")
    return [xdg / "GIMP", home / ".var" / "app" / "org.gimp.GIMP" / "config" / "GIMP",
            home / "snap" / "gimp" / "current" / ".config" / "GIMP"]


def plugin_dirs(platform: str | None = None, env: dict | None = None,
                home: Path | None = None) -> list[Path]:
    """The GIMP 3 ``plug-ins`` folders to install into: every existing 3.x profile, else 3.0."""
    env = os.environ if env is None else env
    if env.get("GIMP3_DIRECTORY"):  # GIMP's own override of the profile folder
        return [Path(env["GIMP3_DIRECTORY"]) / "plug-ins"]
    roots = gimp_config_roots(platform, env, home)
    found = sorted(p / "plug-ins" for root in roots if root.is_dir()
                   for p in root.glob("3.*") if p.is_dir())
    return found or [roots[0] / "3.0" / "plug-ins"]


def server_command(url: str, models: str | None, token: str | None) -> list[str]:
    """How the plug-in starts this very fauve when nothing answers at ``url``."""
    parsed = urllib.parse.urlparse(url)
    cmd = [sys.executable, "-m", "fauve.cli", "serve", "--port", str(parsed.port or 80)]
    if parsed.hostname not in ("127.0.0.1", "localhost", "::1"):
        cmd += ["--host", parsed.hostname]
    if models:
        cmd += ["--models", str(Path(models).resolve())]
    if token:
        cmd += ["--token", token]
    return cmd


def check_url(url: str) -> str:
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise FauveError(f"--server {url!r} is not an http:// address.",
                         hint=f"Use something like --server {DEFAULT_URL}")
    return url.rstrip("/")


def install(target: Path, url: str = DEFAULT_URL, autostart: bool = True, models: str | None = None,
            token: str | None = None) -> Path:
    """Copy the plug-in folder into the ``plug-ins`` folder ``target``; return the entry file."""
    url = check_url(url)
    src = plugin_source()
    dest = target / PLUGIN_NAME
    try:
        target.mkdir(parents=True, exist_ok=True)
        if dest.exists():
            shutil.rmtree(dest)
        shutil.copytree(src, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", CONFIG_NAME))
        entry = dest / f"{PLUGIN_NAME}.py"
        entry.chmod(entry.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        config = {"server_url": url, "token": token or "",
                  "server_cmd": server_command(url, models, token) if autostart else [],
                  "installed_by": f"fauve {_version()}"}
        config_path = dest / CONFIG_NAME
        config_path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        if token:
            config_path.chmod(0o600)  # the token is a password
    except OSError as err:
        raise FauveError(f"Could not install the GIMP plug-in into {target}: {err}",
                         hint="Pick a folder you can write to with --dir (GIMP: Edit ▸ Preferences ▸ "
                              "Folders ▸ Plug-ins lists the ones GIMP reads).") from err
    return entry


def uninstall(target: Path) -> bool:
    """Remove our plug-in folder from ``target``; False when it was not there."""
    dest = target / PLUGIN_NAME
    if not (dest / f"{PLUGIN_NAME}.py").is_file():
        return False
    try:
        shutil.rmtree(dest)
    except OSError as err:
        raise FauveError(f"Could not remove {dest}: {err}", hint="Delete that folder by hand.") from err
    return True


def _version() -> str:
    from fauve import __version__

    return __version__


def _targets(args) -> list[Path]:
    return [Path(args.dir).expanduser()] if args.dir else plugin_dirs()


def _cmd_install(args) -> int:
    for target in _targets(args):
        entry = install(target, args.server, autostart=not args.no_autostart, models=args.models,
                        token=args.token)
        print(f"installed {entry}")
    how = "starts `fauve serve` by itself when needed" if not args.no_autostart else \
        "expects `fauve serve` to be running"
    print(f"server: {check_url(args.server)} (the plug-in {how})")
    print("Restart GIMP, then use Filters ▸ Artistic ▸ Fauve Style Transfer…")
    return 0


def _cmd_uninstall(args) -> int:
    removed = [t for t in _targets(args) if uninstall(t)]
    for target in removed:
        print(f"removed {target / PLUGIN_NAME}")
    if not removed:
        print("the fauve GIMP plug-in was not installed in: "
              + ", ".join(str(t) for t in _targets(args)))
    return 0


def register(subparsers) -> None:
    gimp = subparsers.add_parser("gimp", help="install or remove the GIMP 3 plug-in",
                                 description="Install or remove the GIMP 3 plug-in "
                                             "(Filters ▸ Artistic ▸ Fauve Style Transfer…).")
    sub = gimp.add_subparsers(dest="gimp_command", metavar="ACTION", required=True)
    p = sub.add_parser("install", help="copy the plug-in into GIMP's plug-ins folder")
    p.add_argument("--dir", help="GIMP plug-ins folder to use (default: every GIMP 3 profile found)")
    p.add_argument("--server", default=DEFAULT_URL, help=f"bridge server address (default {DEFAULT_URL})")
    p.add_argument("--models", help="models folder the auto-started server should serve")
    p.add_argument("--token", help="bearer token, when the server runs with --token")
    p.add_argument("--no-autostart", action="store_true",
                   help="never start `fauve serve` from GIMP; the user starts it")
    p.set_defaults(func=_cmd_install)
    u = sub.add_parser("uninstall", help="remove the plug-in from GIMP's plug-ins folder")
    u.add_argument("--dir", help="GIMP plug-ins folder to use (default: every GIMP 3 profile found)")
    u.set_defaults(func=_cmd_uninstall)
    gimp.set_defaults(func=lambda args: (gimp.print_help(), 2)[1])


def main(argv: list[str] | None = None) -> int:  # python -m fauve_bridge.gimp_install
    parser = argparse.ArgumentParser(prog="fauve")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except FauveError as err:
        print(f"fauve gimp: error: {err}", file=sys.stderr)
        return err.exit_code


if __name__ == "__main__":
    sys.exit(main())
