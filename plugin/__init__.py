"""The GIMP 3 plug-in folder, shipped as package data (the plug-in itself uses only the stdlib and gi)."""

from pathlib import Path

PLUGIN_NAME = "fauve-style-transfer"
PLUGIN_DIR = Path(__file__).resolve().parent / PLUGIN_NAME
