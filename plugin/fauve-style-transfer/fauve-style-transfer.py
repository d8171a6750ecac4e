#!/usr/bin/env python3
"""Fauve Style Transfer: a GIMP 3 filter that styles the active layer (or its selection).

GIMP's Python cannot import torch, so this plug-in is thin: it reads the pixels under the selection
(plus some context around it), sends them to a local `fauve serve` through the bridge API
(docs/bridge-api.md), and writes the result back through the shadow buffer, so a feathered
selection blends softly, or into a new layer masked by the selection. One undo step either way.
Nothing is written unless the server returned a complete result.

Menu: Filters ▸ Artistic ▸ Fauve Style Transfer…   PDB name: python-fu-fauve-style-transfer
Settings: fauve-gimp.json next to this file (written by `fauve gimp install`), or the environment
(FAUVE_SERVER_URL, FAUVE_TOKEN, FAUVE_SERVER_CMD, FAUVE_JOB_TIMEOUT).
"""

import os
import sys

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp, GLib, GObject  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fauve_gimp_client import BridgeClient, BridgeError, JobCancelled, load_settings  # noqa: E402

PROC_NAME = "python-fu-fauve-style-transfer"
PIXELS = "R'G'B'A u8"
PLUGIN_DIR = os.path.dirname(os.path.abspath(__file__))

PRESERVE_COLOR = [("none", "Keep the style's colours"), ("luminance", "Keep the image's colours (luminance)"),
                  ("histogram", "Keep the image's colours (histogram match)")]
OUTPUT = [("in-place", "Change the layer in place"), ("new-layer", "New layer above, masked by the selection")]


class FailedRun(Exception):
    """Stop the run and tell the user; ``status`` is the PDB status to return."""

    def __init__(self, text, status=Gimp.PDBStatusType.EXECUTION_ERROR):
        super().__init__(text)
        self.text = text
        self.status = status


def _choice(entries):
    choice = Gimp.Choice.new()
    for i, (nick, label) in enumerate(entries):
        choice.add(nick, i, label, "")
    return choice


class FauveStyleTransfer(Gimp.PlugIn):
    def do_query_procedures(self):
        return [PROC_NAME]

    def do_set_i18n(self, name):
        return False

    def do_create_procedure(self, name):
        proc = Gimp.ImageProcedure.new(self, name, Gimp.PDBProcType.PLUGIN, self.run, None)
        proc.set_image_types("RGB*, GRAY*")
        proc.set_sensitivity_mask(Gimp.ProcedureSensitivityMask.DRAWABLE)
        proc.set_menu_label("Fauve Style Transfer…")
        proc.add_menu_path("<Image>/Filters/Artistic/")
        proc.set_documentation(
            "Paint the layer or selection in a learned artistic style",
            "Sends the selected area (plus a margin of context) to a local `fauve serve` and writes "
            "the styled pixels back: in place, blended through the selection's feathering, or as a "
            "new layer masked by the selection. One undo step.", name)
        proc.set_attribution("fauve contributors", "MIT", "2026")
        rw = GObject.ParamFlags.READWRITE
        proc.add_string_argument("style", "Style", "Style id from the server's catalog ('' = the first "
                                 "style)", "", rw)
        proc.add_double_argument("strength", "Strength", "0 = original, 1 = fully styled", 0.0, 1.0, 1.0, rw)
        proc.add_choice_argument("preserve-color", "Preserve colour", "Keep the image's own colours",
                                 _choice(PRESERVE_COLOR), "none", rw)
        proc.add_double_argument("style-scale", "Style scale", "Size of the brush strokes (0.25–4)",
                                 0.25, 4.0, 1.0, rw)
        proc.add_choice_argument("output", "Output", "Where the result goes", _choice(OUTPUT), "in-place", rw)
        proc.add_int_argument("context", "Context margin (px)", "Pixels around the selection sent along "
                              "so the style continues smoothly at the edge", 0, 512, 32, rw)
        proc.add_string_argument("server-url", "Server", "fauve server address ('' = from the plug-in "
                                 "settings)", "", rw)
        # dialog-only: index into the catalog fetched when the dialog opens
        proc.add_int_aux_argument("style-index", "Style", "Style", 0, 10000, 0, rw)
        return proc

    # ------------------------------------------------------------------ run
    def run(self, procedure, run_mode, image, drawables, config, run_data):
        try:
            try:
                self._run(procedure, run_mode, image, drawables, config)
            except (FailedRun, KeyboardInterrupt):
                raise
            except Exception as err:  # a bug of ours: still a message, never a half-written layer
                import traceback

                traceback.print_exc()
                raise FailedRun("Internal error: %s: %s. Please report it with GIMP's "
                                "console output (start GIMP from a terminal to see it)." % (type(err).__name__, err)) from err
        except FailedRun as failure:
            Gimp.progress_end()
            if failure.status == Gimp.PDBStatusType.CANCEL:
                return procedure.new_return_values(failure.status, None)
            text = failure.text + "\n\nThe image was not changed."
            Gimp.message("Fauve Style Transfer: " + text)
            return procedure.new_return_values(
                failure.status, GLib.Error.new_literal(GLib.quark_from_string("fauve"), text, 0))
        Gimp.progress_end()
        return procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, None)

    def _run(self, procedure, run_mode, image, drawables, config):
        Gegl.init(None)
        if len(drawables) != 1:
            raise FailedRun("Select exactly one layer in the Layers dialog (%d are selected)." % len(drawables),
                            Gimp.PDBStatusType.CALLING_ERROR)
        drawable = drawables[0]
        if image.get_base_type() == Gimp.ImageBaseType.INDEXED or drawable.is_indexed():
            raise FailedRun("Indexed images cannot be styled. Convert the image with Image ▸ Mode ▸ RGB, "
                            "run the filter, then convert back if you need to.",
                            Gimp.PDBStatusType.CALLING_ERROR)

        settings = self._settings()
        url = config.get_property("server-url") or settings["server_url"]
        try:
            client = BridgeClient(url, settings["token"])
        except BridgeError as err:
            raise FailedRun(err.user_text(), Gimp.PDBStatusType.CALLING_ERROR) from err

        Gimp.progress_init("Fauve: connecting to %s" % client.base_url)
        try:
            client.ensure_running(settings["server_cmd"], float(settings["start_timeout"]),
                                  on_wait=Gimp.progress_pulse)
        except BridgeError as err:
            raise FailedRun(err.user_text()) from err

        if run_mode == Gimp.RunMode.INTERACTIVE:
            if not self._dialog(procedure, config, client):
                raise FailedRun("cancelled", Gimp.PDBStatusType.CANCEL)

        non_empty, x, y, w, h = drawable.mask_intersect()
        if not non_empty or w <= 0 or h <= 0:
            raise FailedRun("The selection does not cover any pixel of the layer \u201c%s\u201d. Select an area "
                            "on it, or Select ▸ None to style the whole layer." % drawable.get_name(),
                            Gimp.PDBStatusType.CALLING_ERROR)
        output = config.get_property("output")
        if output == "new-layer" and not isinstance(drawable, Gimp.Layer):
            raise FailedRun("A new layer can only be made from a layer; pick a layer, or choose "
                            "Output: in place.", Gimp.PDBStatusType.CALLING_ERROR)

        # the area sent: selection bounds + context margin, inside the drawable
        margin = int(config.get_property("context"))
        ox, oy = max(0, x - margin), max(0, y - margin)
        ow = min(drawable.get_width(), x + w + margin) - ox
        oh = min(drawable.get_height(), y + h + margin) - oy
        src = bytes(drawable.get_buffer().get(Gegl.Rectangle.new(ox, oy, ow, oh), 1.0, PIXELS,
                                              Gegl.AbyssPolicy.CLAMP))

        params = {"style": config.get_property("style"),
                  "strength": "%.4g" % config.get_property("strength"),
                  "preserve_color": config.get_property("preserve-color"),
                  "style_scale": "%.4g" % config.get_property("style-scale")}
        if not params["style"]:
            try:
                styles = client.styles()
            except BridgeError as err:
                raise FailedRun(err.user_text()) from err
            if not styles:
                raise FailedRun("The fauve server has no styles. Start it with a models folder: "
                                "`fauve serve --models DIR`.")
            params["style"] = styles[0]["id"]

        Gimp.progress_set_text("Fauve: %s on %d×%d px" % (params["style"], w, h))

        def progress(fraction, text):
            Gimp.progress_update(min(max(fraction, 0.0), 1.0))
            return True

        try:
            out = client.run_job(src, ow, oh, params, timeout=float(settings["job_timeout"]),
                                 on_progress=progress)
        except JobCancelled as err:
            raise FailedRun(err.user_text(), Gimp.PDBStatusType.CANCEL) from err
        except BridgeError as err:
            raise FailedRun(err.user_text()) from err

        out = bytearray(out)
        out[3::4] = src[3::4]  # alpha is the layer's own, whatever the server did
        inner = _crop(bytes(out), ow, x - ox, y - oy, w, h)
        self._write(image, drawable, output, inner, x, y, w, h, params["style"])

    # ------------------------------------------------------------------ pieces
    @staticmethod
    def _settings():
        try:
            return load_settings(PLUGIN_DIR)
        except BridgeError as err:
            raise FailedRun(err.user_text(), Gimp.PDBStatusType.CALLING_ERROR) from err

    @staticmethod
    def _write(image, drawable, output, pixels, x, y, w, h, style):
        rect = Gegl.Rectangle.new(x, y, w, h)
        image.undo_group_start()
        try:
            if output == "new-layer":
                gray = image.get_base_type() == Gimp.ImageBaseType.GRAY
                layer = Gimp.Layer.new(image, "%s (fauve: %s)" % (drawable.get_name(), style), w, h,
                                       Gimp.ImageType.GRAYA_IMAGE if gray else Gimp.ImageType.RGBA_IMAGE,
                                       100.0, Gimp.LayerMode.NORMAL)
                dx, dy = drawable.get_offsets()[1:]
                image.insert_layer(layer, drawable.get_parent(), image.get_item_position(drawable))
                layer.set_offsets(dx + x, dy + y)
                buf = layer.get_buffer()
                buf.set(Gegl.Rectangle.new(0, 0, w, h), PIXELS, pixels)
                buf.flush()
                if not Gimp.Selection.is_empty(image):
                    layer.add_mask(layer.create_mask(Gimp.AddMaskType.SELECTION))
                layer.update(0, 0, w, h)
            else:
                shadow = drawable.get_shadow_buffer()
                shadow.set(rect, PIXELS, pixels)
                shadow.flush()
                drawable.merge_shadow(True)
                drawable.update(x, y, w, h)
        finally:
            image.undo_group_end()
        Gimp.displays_flush()

    @staticmethod
    def _dialog(procedure, config, client):
        gi.require_version("GimpUi", "3.0")
        from gi.repository import GimpUi

        try:
            styles = client.styles()
        except BridgeError as err:
            raise FailedRun(err.user_text()) from err
        if not styles:
            raise FailedRun("The fauve server has no styles. Start it with a models folder: "
                            "`fauve serve --models DIR`.")
        GimpUi.init(PROC_NAME)
        ids = [s["id"] for s in styles]
        current = config.get_property("style")
        if current in ids:
            config.set_property("style-index", ids.index(current))
        elif config.get_property("style-index") >= len(ids):
            config.set_property("style-index", 0)
        # The server's label tells apart styles of the same name (ulyanov-starry-night vs its slim twin).
        labels = [s.get("label") or "%s  (%s)" % (s.get("name") or s["id"], s.get("method", "?")) for s in styles]
        dialog = GimpUi.ProcedureDialog.new(procedure, config, "Fauve Style Transfer")
        store = GimpUi.IntStore()  # a Gtk.ListStore: column 0 = value, column 1 = label
        for i, label in enumerate(labels):
            row = store.append()
            store.set_value(row, 0, i)
            store.set_value(row, 1, label)
        dialog.get_int_combo("style-index", store)
        dialog.fill(["style-index", "strength", "preserve-color", "style-scale", "output", "context",
                     "server-url"])
        ok = dialog.run()
        dialog.destroy()
        if ok:
            config.set_property("style", ids[config.get_property("style-index")])
        return ok


def _crop(rgba, stride_px, x, y, w, h):
    """The w×h block at (x, y) of a row-major RGBA8 image that is ``stride_px`` wide."""
    row = stride_px * 4
    return b"".join(rgba[(y + j) * row + x * 4:(y + j) * row + (x + w) * 4] for j in range(h))


Gimp.main(FauveStyleTransfer.__gtype__, sys.argv)
