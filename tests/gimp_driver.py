"""Runs INSIDE a headless GIMP 3 (python-fu-eval), driven by tests/test_gimp_plugin.py.

Not a test module and not a plug-in: `scripts/gimp3-root gimp --file tests/gimp_driver.py` exec()s it in
GIMP's batch interpreter. For each case in $FAUVE_GIMP_CASES (a JSON list) it builds a small image, calls
the real plug-in through the PDB exactly as a script would, and writes what happened to
$FAUVE_GIMP_OUT/<case name>/ (report.json + raw pixel files) for the test to check on the host.
"""
import json
import os
import subprocess
import time
import traceback

from gi.repository import Gegl, Gimp  # python-fu-eval has these imported already

PIXELS = "R'G'B'A u8"
MASK = "Y u8"


def pattern(w, h):
    """A deterministic, colourful test picture with varying alpha."""
    data = bytearray()
    for y in range(h):
        for x in range(w):
            data += bytes(((x * 255) // max(1, w - 1), (y * 255) // max(1, h - 1),
                           200 if (x // 6 + y // 6) % 2 else 40, 255 - (x % 3) * 20))
    return bytes(data)


def read(drawable, fmt=PIXELS):
    rect = Gegl.Rectangle.new(0, 0, drawable.get_width(), drawable.get_height())
    return bytes(drawable.get_buffer().get(rect, 1.0, fmt, Gegl.AbyssPolicy.NONE))


def press_ok_in_dialog():
    """In the background: wait for the plug-in's dialog (GUI on Xvfb), then press Return (= OK)."""
    script = ("w=$(xdotool search --sync --onlyvisible --name 'Fauve Style Transfer' | head -1); "
              "sleep 2; xdotool windowfocus --sync $w; xdotool key Return")
    return subprocess.Popen(["sh", "-c", script])


def remember(values):
    """Store the plug-in's "last values" the way GIMP does after an interactive run (GIMP 3 keeps them in
    <profile>/plug-in-settings/GimpProcedureConfigRun-<procedure>.last); an interactive run starts from them."""
    folder = os.path.join(Gimp.directory(), "plug-in-settings")
    os.makedirs(folder, exist_ok=True)
    lines = ["(%s %s)" % (key, json.dumps(value)) for key, value in values.items()]
    with open(os.path.join(folder, "GimpProcedureConfigRun-python-fu-fauve-style-transfer.last"), "w") as fh:
        fh.write("# settings\n\n%s\n\n# end of settings\n" % "\n".join(lines))


def run_plugin(image, drawable, args, interactive=False):
    proc = Gimp.get_pdb().lookup_procedure("python-fu-fauve-style-transfer")
    if proc is None:
        raise RuntimeError("python-fu-fauve-style-transfer is not registered: GIMP did not find the plug-in")
    cfg = proc.create_config()
    cfg.set_property("run-mode", Gimp.RunMode.INTERACTIVE if interactive else Gimp.RunMode.NONINTERACTIVE)
    cfg.set_property("image", image)
    cfg.set_core_object_array("drawables", [drawable])
    for key, value in args.items():
        cfg.set_property(key, value)
    res = proc.run(cfg)
    status = res.index(0)
    # on failure GIMP puts the GLib.Error's message right after the status
    error = res.index(1) if status != Gimp.PDBStatusType.SUCCESS and res.length() > 1 else None
    return status.value_nick, error


def press_undo_once(image, layer, styled, n_layers):
    """Press Ctrl+Z once in GIMP's image window (GUI on Xvfb); wait until the image changes back.

    libgimp has no call that undoes, so this uses the real keyboard shortcut, as a user would.
    Returns the number of layers after the undo (the pixels are read by the caller).
    """
    Gimp.displays_flush()
    found = subprocess.run(["xdotool", "search", "--sync", "--onlyvisible", "--name", r"\[Untitled\]"],
                           capture_output=True, text=True, timeout=60)
    window = found.stdout.split()[0]
    subprocess.run(["xdotool", "windowfocus", "--sync", window], check=True, timeout=30)
    subprocess.run(["xdotool", "key", "--clearmodifiers", "ctrl+z"], check=True, timeout=30)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if read(layer) != styled or len(image.get_layers()) != n_layers:
            break
        time.sleep(0.1)
    time.sleep(0.5)  # let GIMP settle: a second undo step (a bug) would land here too
    return len(image.get_layers())


def run_case(case, folder):
    def save(name, data):
        with open(os.path.join(folder, name), "wb") as fh:
            fh.write(data)

    w, h = case.get("image_size", (96, 64))
    lw, lh = case.get("layer_size", (w, h))
    image = Gimp.Image.new(w, h, Gimp.ImageBaseType.RGB)
    image.undo_disable()  # building the test image is not part of the undo history
    layer = Gimp.Layer.new(image, "photo", lw, lh, Gimp.ImageType.RGBA_IMAGE, 100.0, Gimp.LayerMode.NORMAL)
    image.insert_layer(layer, None, 0)
    layer.set_offsets(*case.get("layer_offset", (0, 0)))
    buf = layer.get_buffer()
    buf.set(Gegl.Rectangle.new(0, 0, lw, lh), PIXELS, pattern(lw, lh))
    buf.flush()
    if case.get("ellipse"):
        image.select_ellipse(Gimp.ChannelOps.REPLACE, *case["ellipse"])
    if case.get("rect"):
        image.select_rectangle(Gimp.ChannelOps.REPLACE, *case["rect"])
    if case.get("feather"):
        Gimp.Selection.feather(image, case["feather"])
    if case.get("indexed"):
        image.convert_indexed(Gimp.ConvertDitherType.NONE, Gimp.ConvertPaletteType.GENERATE, 16,
                              False, False, "")
    ox, oy = layer.get_offsets()[1:]
    sel = image.get_selection().get_buffer().get(Gegl.Rectangle.new(ox, oy, lw, lh), 1.0, MASK,
                                                 Gegl.AbyssPolicy.NONE)
    save("mask.y8", bytes(sel))  # the selection in the layer's coordinates
    save("before.rgba", read(layer))
    display = Gimp.Display.new(image) if case.get("undo") or case.get("interactive") else None  # GUI only
    image.undo_enable()
    image.clean_all()

    if case.get("last_values"):
        remember(case["last_values"])
    presser = press_ok_in_dialog() if case.get("interactive") else None
    status, error = run_plugin(image, layer, case.get("args", {}), interactive=presser is not None)
    if presser is not None:
        try:
            presser.wait(timeout=10)
        except subprocess.TimeoutExpired:  # the dialog never showed up: the report says why
            presser.kill()
    report = {"status": status, "error": error, "dirty": image.is_dirty(), "layers": []}
    save("after.rgba", read(layer))
    for i, item in enumerate(image.get_layers()):
        mask = item.get_mask()
        report["layers"].append({"name": item.get_name(), "offsets": list(item.get_offsets()[1:]),
                                 "size": [item.get_width(), item.get_height()], "has_mask": mask is not None,
                                 "opacity": item.get_opacity()})
        if item != layer:
            save("layer%d.rgba" % i, read(item))
            if mask is not None:
                save("layer%d-mask.y8" % i, read(mask, MASK))
    if case.get("undo"):
        report["layers_after_undo"] = press_undo_once(image, layer, read(layer), len(image.get_layers()))
        report["original_alive"] = layer.is_valid()
        if layer.is_valid():
            save("undone.rgba", read(layer))
    if display is not None:
        image.clean_all()
        display.delete()
    image.delete()
    return report


out_dir = os.environ["FAUVE_GIMP_OUT"]
with open(os.environ["FAUVE_GIMP_CASES"], encoding="utf-8") as fh:
    cases = json.load(fh)
summary = {"gimp": Gimp.version()}
for case in cases:
    folder = os.path.join(out_dir, case["name"])
    os.makedirs(folder, exist_ok=True)
    try:
        report = run_case(case, folder)
    except Exception:  # one broken case must not hide the others
        report = {"status": "driver-crashed", "traceback": traceback.format_exc()}
    with open(os.path.join(folder, "report.json"), "w", encoding="utf-8") as fh:
        json.dump(report, fh, indent=2)
with open(os.path.join(out_dir, "summary.json"), "w", encoding="utf-8") as fh:
    json.dump(summary, fh)
