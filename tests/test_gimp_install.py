"""`fauve gimp install` / `uninstall` into temporary folders, and the plug-in reading what it wrote."""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import stat
import sys
from pathlib import Path

import pytest

from fauve.errors import FauveError
from fauve_bridge import gimp_install

ENTRY = f"{gimp_install.PLUGIN_NAME}/{gimp_install.PLUGIN_NAME}.py"


def cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="fauve")
    gimp_install.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(list(argv))
    return args.func(args)


def load_plugin_client(folder: Path):
    """Import the installed plug-in's stdlib client the way GIMP's Python would."""
    spec = importlib.util.spec_from_file_location("installed_client", folder / "fauve_gimp_client.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_install_copies_plugin_sets_run_bit_and_records_server(tmp_path, monkeypatch, capsys):
    for var in ("FAUVE_SERVER_URL", "FAUVE_TOKEN", "FAUVE_SERVER_CMD", "FAUVE_JOB_TIMEOUT"):
        monkeypatch.delenv(var, raising=False)
    target = tmp_path / "plug-ins"
    assert cli("gimp", "install", "--dir", str(target), "--server", "http://127.0.0.1:9123/",
               "--models", str(tmp_path / "models")) == 0
    entry = target / ENTRY
    assert entry.read_bytes().startswith(b"#!/usr/bin/env python3\n")
    assert entry.stat().st_mode & stat.S_IXUSR
    assert (target / gimp_install.PLUGIN_NAME / "fauve_gimp_client.py").is_file()
    assert not list(target.rglob("__pycache__"))
    assert str(entry) in capsys.readouterr().out

    config = json.loads((entry.parent / gimp_install.CONFIG_NAME).read_text())
    assert config["server_url"] == "http://127.0.0.1:9123"
    assert config["server_cmd"][:4] == [sys.executable, "-m", "fauve.cli", "serve"]
    assert config["server_cmd"][4:] == ["--port", "9123", "--models", str((tmp_path / "models").resolve())]

    settings = load_plugin_client(entry.parent).load_settings(str(entry.parent))
    assert settings["server_url"] == "http://127.0.0.1:9123"
    assert settings["server_cmd"] == config["server_cmd"]

    assert cli("gimp", "install", "--dir", str(target), "--no-autostart", "--token", "s3cret") == 0  # again: replaces
    config = json.loads((entry.parent / gimp_install.CONFIG_NAME).read_text())
    assert config["server_cmd"] == [] and config["token"] == "s3cret"
    assert stat.S_IMODE((entry.parent / gimp_install.CONFIG_NAME).stat().st_mode) == 0o600

    assert cli("gimp", "uninstall", "--dir", str(target)) == 0
    assert not (target / gimp_install.PLUGIN_NAME).exists() and target.is_dir()
    assert cli("gimp", "uninstall", "--dir", str(target)) == 0
    assert "was not installed" in capsys.readouterr().out


def test_uninstall_leaves_foreign_folders_alone(tmp_path):
    foreign = tmp_path / gimp_install.PLUGIN_NAME
    foreign.mkdir()
    (foreign / "something-else.py").write_text("x")
    assert gimp_install.uninstall(tmp_path) is False
    assert (foreign / "something-else.py").exists()


def test_environment_overrides_installed_settings(tmp_path, monkeypatch):
    gimp_install.install(tmp_path, "http://127.0.0.1:9123")
    folder = tmp_path / gimp_install.PLUGIN_NAME
    monkeypatch.setenv("FAUVE_SERVER_URL", "http://127.0.0.1:7000")
    monkeypatch.setenv("FAUVE_SERVER_CMD", "fauve serve --port 7000")
    settings = load_plugin_client(folder).load_settings(str(folder))
    assert settings["server_url"] == "http://127.0.0.1:7000"
    assert settings["server_cmd"] == ["fauve", "serve", "--port", "7000"]


def test_bad_server_address_is_a_clear_error(tmp_path):
    with pytest.raises(FauveError, match="not an http:// address") as err:
        gimp_install.install(tmp_path, "ftp://example.org")
    assert "--server http://" in err.value.hint
    assert not (tmp_path / gimp_install.PLUGIN_NAME).exists()


@pytest.mark.parametrize("platform, expected", [
    ("linux", ".config/GIMP"),
    ("darwin", "Library/Application Support/GIMP"),
    ("win32", "AppData/Roaming/GIMP"),
])
def test_plugin_folder_per_os_when_gimp_never_ran(tmp_path, platform, expected):
    env = {"APPDATA": str(tmp_path / "AppData" / "Roaming")} if platform == "win32" else {}
    dirs = gimp_install.plugin_dirs(platform, env, tmp_path)
    assert dirs == [tmp_path / expected / "3.0" / "plug-ins"]


def test_every_existing_gimp3_profile_gets_the_plugin(tmp_path):
    for version in ("2.10", "3.0", "3.2"):
        (tmp_path / ".config" / "GIMP" / version).mkdir(parents=True)
    flatpak = tmp_path / ".var/app/org.gimp.GIMP/config/GIMP/3.0"
    flatpak.mkdir(parents=True)
    dirs = gimp_install.plugin_dirs("linux", {}, tmp_path)
    assert dirs == sorted([tmp_path / ".config/GIMP/3.0/plug-ins", tmp_path / ".config/GIMP/3.2/plug-ins",
                           flatpak / "plug-ins"])
    assert gimp_install.plugin_dirs("linux", {"XDG_CONFIG_HOME": str(tmp_path / "xdg")}, tmp_path) == [
        flatpak / "plug-ins"]
    assert gimp_install.plugin_dirs("linux", {"GIMP3_DIRECTORY": str(tmp_path / "p")}, tmp_path) == [
        tmp_path / "p" / "plug-ins"]
