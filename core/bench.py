"""``fauve bench``: how fast each method runs, on which path, with how much memory.

Three modes, each writing a markdown table and a JSON file (``-o DIR``):

- inference (default): per method × width × variant × size, the network alone on a (1, 3, S, S)
  input: time of the first call (including building the variant: ``torch.compile``, ONNX export
  and session), median latency of several warm runs, throughput, peak memory. Every run includes a
  baseline row, the Johnson-width generator (``ulyanov``, width 1.0) in eager fp32, and every row
  gives its latency as a ratio to the baseline at the same size, so rows from one run compare even
  on a noisy machine.
- ``--train``: training iterations per second at 128² and 256², batch 4, for each method, timing
  exactly what ``fauve.train.loop`` does per step: ``method.loss`` + ``backward`` + ``optimizer.step``.
- ``--large``: the whole pipeline (``fauve.pipeline.Stylizer`` with tiling) on 2048², 4096², 8192²
  images, each size in a fresh process so its peak RSS is the process's own: seconds, seconds per
  megapixel (linear in pixels when constant) and peak RSS.

A variant is a ``+``-joined set of flags: ``eager`` (no_grad, fp32), ``inference_mode``,
``channels_last``, ``bf16`` / ``fp16`` (autocast), ``compile`` (``torch.compile``), ``cudagraphs``
(CUDA only: capture once, replay; with ``compile``: mode ``reduce-overhead``), ``onnxruntime``
(``fauve.onnx_backend``). E.g. ``bf16+channels_last+compile`` on a GPU.

Peak memory: on CUDA ``torch.cuda.max_memory_allocated``; on the CPU the resident-set high-water
mark (``VmHWM`` in /proc/self/status, reset through /proc/self/clear_refs after ``malloc_trim``)
minus the resident set at the reset, i.e. what building the variant, its first call and the warm
runs add (onnxruntime keeps its activations in an arena allocated on the first call).
"""

from __future__ import annotations

import argparse
import copy
import gc
import itertools
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from fauve.errors import FauveError
from fauve.models import METHODS, build_model
from fauve.models.base import StyleModel

BASELINE = ("ulyanov", 1.0, "eager")
FLAGS = ("eager", "inference_mode", "channels_last", "bf16", "fp16", "compile", "cudagraphs", "onnxruntime")
UPSAMPLES = ("nearest", "bilinear")
CPU_VARIANTS = "eager,inference_mode,channels_last,bf16,compile,onnxruntime"
CUDA_VARIANTS = "eager,channels_last,bf16+channels_last,bf16+channels_last+compile,bf16+channels_last+cudagraphs,compile+bf16+channels_last+cudagraphs"
ALL_METHODS = ("johnson", "ulyanov", "dumoulin", "msgnet", "adain")


# -- the machine ----------------------------------------------------------------------------------
def hardware() -> dict[str, Any]:
    """What the numbers were measured on."""
    cpu = platform.processor() or platform.machine()
    flags: set[str] = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):  # after the first CPU's model name
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    # Ratios move with the instruction set: bf16 is 30x slower than fp32 without native bf16 and
    # faster than it with AMX (docs/perf/cpu-xeon-amx.md), so every table says which it had.
    isa = torch.backends.cpu.get_cpu_capability()
    extras = [name for flag, name in (("avx512_vnni", "VNNI"), ("avx512_bf16", "bf16"), ("amx_bf16", "AMX")) if flag in flags]
    info: dict[str, Any] = {
        "cpu": cpu, "cpu_isa": " + ".join([isa, *extras]), "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(), "torch": torch.__version__, "platform": platform.platform(),
        "mkldnn": torch.backends.mkldnn.is_available(),
    }
    try:
        import onnxruntime

        info["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        info["onnxruntime"] = None
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
        info["cuda"] = torch.version.cuda
    return info


def loadavg() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


class MemoryProbe:
    """Peak memory of a stretch of code: CUDA allocator peak, or the CPU resident-set high-water mark."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.start_mb = 0.0
        self.exact = True

    @staticmethod
    def _status(key: str) -> float | None:
        try:
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024.0
        except OSError:
            return None
        return None

    def reset(self) -> None:
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.start_mb = torch.cuda.memory_allocated() / 2**20
            return
        _malloc_trim()  # hand freed heap back to the OS, so reused cached memory does not hide a peak
        try:
            Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS (Linux ≥ 4.0)
        except OSError:
            self.exact = False  # the high-water mark then covers the whole process's life
        self.start_mb = self._status("VmRSS") or 0.0

    def peak_mb(self) -> float | None:
        """Peak memory added since :meth:`reset`, in MiB."""
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            return torch.cuda.max_memory_allocated() / 2**20 - self.start_mb
        hwm = self._status("VmHWM")
        if hwm is None:
            import resource

            hwm = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
            self.exact = False
        return max(0.0, hwm - self.start_mb)

    def peak_rss_mb(self) -> float | None:
        """The process's resident-set high-water mark (since the last reset), in MiB."""
        return self._status("VmHWM")


def _malloc_trim() -> None:
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


# -- models and their conditioning ----------------------------------------------------------------
def check_upsample(upsample: str) -> str:
    if upsample not in UPSAMPLES:
        raise FauveError(f"Unknown upsampling {upsample!r}.", f"Use some of {', '.join(UPSAMPLES)}.", code="bad_option")
    return upsample


def bench_model(method: str, width: float, device: torch.device, num_styles: int = 4, upsample: str = "nearest") -> StyleModel:
    """An untrained model of the shipped shape (timing does not depend on the weights). Multi-style
    models get ``num_styles`` styles; msgnet's and adain's stored style statistics are filled from
    random images, so every method runs a real conditioning path. ``upsample`` is the decoder's
    resize (nearest or bilinear; msgnet has its own upsampling residual block)."""
    if method not in METHODS:
        raise FauveError(f"Unknown method {method!r}.", f"Use some of {', '.join(ALL_METHODS)}.", code="bad_option")
    check_upsample(upsample)
    torch.manual_seed(0)
    kw: dict[str, Any] = {"width": width}
    if upsample != "nearest":
        if method == "msgnet":
            raise FauveError("msgnet has no --upsample choice (it upsamples in its own residual block).",
                             "Bench msgnet with --upsample nearest.", code="bad_option")
        kw["upsample"] = upsample
    if method in ("dumoulin", "msgnet", "adain"):
        kw["num_styles"] = num_styles
    model = build_model(method, **kw).eval()
    with torch.no_grad():
        styles = [torch.rand(1, 3, 256, 256) for _ in range(num_styles)]
        if method == "msgnet":
            model.set_style_grams(styles)
        elif method == "adain":
            model.set_named_styles(styles)
    return model.to(device)


def model_kwargs(model: StyleModel) -> dict[str, Any]:
    """Keyword arguments of ``model(x, **kw)`` for its first named style (what the pipeline passes)."""
    device = next(model.parameters()).device
    if model.method == "dumoulin":
        w = torch.zeros(1, model.num_styles, device=device)
        w[0, 0] = 1.0
        return {"style_weights": w}
    if model.method == "msgnet":
        return {"target_gram": model.style_grams[:1]}
    if model.method == "adain":
        return {"style_stats": (model.style_means[:1], model.style_stds[:1])}
    return {}


def parse_variant(variant: str) -> frozenset[str]:
    flags = frozenset(f.strip() for f in variant.split("+") if f.strip())
    unknown = flags - set(FLAGS)
    if unknown or not flags:
        raise FauveError(f"Unknown variant flag(s) {', '.join(sorted(unknown)) or variant!r}.",
                         f"Join flags from {', '.join(FLAGS)} with '+', e.g. bf16+channels_last+compile.", code="bad_option")
    if "onnxruntime" in flags and len(flags) > 1:
        raise FauveError("onnxruntime is a variant of its own.", "Give it alone: --variants eager,onnxruntime.", code="bad_option")
    return flags


def make_runner(model: StyleModel, variant: str, device: torch.device, size: int,
                threads: int | None = None) -> Callable[[torch.Tensor], torch.Tensor]:
    """A callable ``x → y`` running ``model`` the way ``variant`` says. Building is lazy where the
    library is (compile, cudagraph capture and ONNX sessions happen on the first call)."""
    flags = parse_variant(variant)
    if "onnxruntime" in flags:
        from fauve.onnx_backend import OnnxRunner
        from fauve.pipeline import Stylizer

        runner = OnnxRunner(model, device, threads=threads, pads_itself=False)  # the network alone, as the other variants
        cond = Stylizer(model, device=device, channels_last=False).condition()
        return lambda x: runner(x, cond)
    if device.type == "cpu" and "cudagraphs" in flags:
        raise FauveError("cudagraphs needs a CUDA device.", "Drop it on the CPU.", code="bad_option")
    memory_format = torch.channels_last if "channels_last" in flags else torch.contiguous_format
    net = copy.deepcopy(model).to(memory_format=memory_format) if "channels_last" in flags else model
    kwargs = model_kwargs(net)
    dtype = torch.bfloat16 if "bf16" in flags else torch.float16 if "fp16" in flags else None

    def call(x: torch.Tensor) -> torch.Tensor:
        with ExitStack() as stack:
            stack.enter_context(torch.inference_mode() if "inference_mode" in flags else torch.no_grad())
            if dtype is not None:
                stack.enter_context(torch.autocast(device.type, dtype=dtype))
            return net(x.contiguous(memory_format=memory_format), **kwargs)

    fn: Callable[[torch.Tensor], torch.Tensor] = call
    if "compile" in flags:
        mode = "reduce-overhead" if "cudagraphs" in flags else None
        fn = torch.compile(call, mode=mode, dynamic=False)
    elif "cudagraphs" in flags:
        fn = _cuda_graph(call, device, size)
    return fn


def _cuda_graph(call: Callable[[torch.Tensor], torch.Tensor], device: torch.device, size: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """Capture ``call`` on a static (1, 3, size, size) input on first use; replay afterwards."""
    state: dict[str, Any] = {}

    def run(x: torch.Tensor) -> torch.Tensor:
        if "graph" not in state:
            static_x = x.clone()
            stream = torch.cuda.Stream(device)
            stream.wait_stream(torch.cuda.current_stream(device))
            with torch.cuda.stream(stream):
                for _ in range(3):  # warm up (cuDNN autotuning, allocator) off the capture
                    call(static_x)
            torch.cuda.current_stream(device).wait_stream(stream)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                static_y = call(static_x)
            state.update(graph=graph, x=static_x, y=static_y)
        state["x"].copy_(x)
        state["graph"].replay()
        return state["y"]

    return run


# -- inference measurements ------------------------------------------------------------------------
@dataclass
class Row:
    mode: str
    method: str
    width: float
    variant: str
    size: int
    device: str
    upsample: str = "nearest"
    first_call_s: float | None = None
    latency_ms: float | None = None
    latency_min_ms: float | None = None
    runs: int = 0
    fps: float | None = None
    mpix_per_s: float | None = None
    peak_mb: float | None = None
    ratio: float | None = None
    load_before: float | None = None
    load_after: float | None = None
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def time_runner(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, device: torch.device,
                repeat: int, min_runs: int, budget_s: float, probe: MemoryProbe | None = None) -> tuple[float, list[float], float | None]:
    """(first-call seconds, warm run seconds, peak MiB added since ``probe`` was reset, or since
    the first call when no probe is given)."""
    if probe is None:
        probe = MemoryProbe(device)
        probe.reset()
    t0 = time.perf_counter()
    fn(x)
    _sync(device)
    first = time.perf_counter() - t0
    fn(x)  # one more warm-up: some paths (compile guards, ORT arenas, allocator) settle on the 2nd call
    _sync(device)
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < repeat and (len(times) < min_runs or time.perf_counter() - start < budget_s):
        t = time.perf_counter()
        fn(x)
        _sync(device)
        times.append(time.perf_counter() - t)
    return first, times, probe.peak_mb()


def bench_inference(methods: list[str], widths: list[float], variants: list[str], sizes: list[int],
                    device: torch.device, *, repeat: int = 7, min_runs: int = 3, budget_s: float = 20.0,
                    threads: int | None = None, baseline: bool = True, upsamples: Sequence[str] = ("nearest",),
                    log: Callable[[str], None] = print) -> list[Row]:
    base_case = (*BASELINE[:2], "nearest", BASELINE[2])
    cases = [(m, w, u, v) for m in methods for w in widths for u in upsamples for v in variants
             if not (m == "msgnet" and u != "nearest")]  # msgnet has one upsampling of its own
    if baseline and base_case in cases:
        cases.remove(base_case)
    if baseline:
        cases.insert(0, base_case)
    rows: list[Row] = []
    base: dict[int, float] = {}
    for method, width, upsample, variant in cases:
        model = None
        for size in sizes:
            row = Row("inference", method, width, variant, size, str(device), upsample, load_before=loadavg())
            try:
                if model is None:
                    model = bench_model(method, width, device, upsample=upsample)
                multiple = model.size_multiple
                side = size // multiple * multiple
                x = torch.rand(1, 3, side, side, device=device, generator=torch.Generator(device=device).manual_seed(0))
                probe = MemoryProbe(device)
                probe.reset()  # the peak covers building the variant, its first call and the warm runs
                setup = time.perf_counter()
                fn = make_runner(model, variant, device, side, threads)
                setup = time.perf_counter() - setup
                first, times, peak = time_runner(fn, x, device, repeat, min_runs, budget_s, probe)
                median = statistics.median(times)
                row.first_call_s = round(setup + first, 3)
                row.latency_ms, row.latency_min_ms, row.runs = round(median * 1e3, 2), round(min(times) * 1e3, 2), len(times)
                row.fps, row.mpix_per_s = round(1.0 / median, 3), round(side * side / median / 1e6, 3)
                row.peak_mb = None if peak is None else round(peak, 1)
                if (method, width, upsample, variant) == base_case:
                    base[size] = median
                if size in base:
                    row.ratio = round(median / base[size], 3)
                del fn
            except Exception as err:  # one failing variant (e.g. compile without a compiler) must not stop the run
                row.error = f"{type(err).__name__}: {str(err).splitlines()[0][:200]}"
            row.load_after = loadavg()
            rows.append(row)
            log(format_row(row))
            if variant.find("compile") >= 0:
                torch._dynamo.reset()
            gc.collect()
    return rows


def _name(row: Row) -> str:
    """The method, with its upsampling when it is not the default nearest."""
    return row.method if row.upsample == "nearest" else f"{row.method} · {row.upsample}"


def format_row(row: Row) -> str:
    if row.error:
        return f"{_name(row):8s} w{row.width:<5g} {row.variant:34s} {row.size:5d}²  FAILED {row.error}"
    ratio = f"{row.ratio:.3f}×" if row.ratio is not None else "-"
    return (f"{_name(row):8s} w{row.width:<5g} {row.variant:34s} {row.size:5d}²  first {row.first_call_s:8.2f} s  "
            f"median {row.latency_ms:9.1f} ms ({row.runs} runs)  {row.fps:7.2f} fps  {row.peak_mb or 0:7.0f} MiB  "
            f"{ratio}  load {row.load_before}")


# -- training speed --------------------------------------------------------------------------------
def bench_train(methods: list[str], sizes: list[int], device: torch.device, *, batch: int = 4, width: float = 1.0,
                steps: int = 4, precision: str = "fp32", log: Callable[[str], None] = print) -> list[Row]:
    """Iterations per second of the training step of ``fauve.train`` (loss + backward + Adam step)."""
    from fauve.train.loop import TrainConfig, _autocast
    from fauve.train.methods import method_class

    rows: list[Row] = []
    for method in methods:
        for size in sizes:
            row = Row("train", method, width, f"batch {batch} {precision}", size, str(device), load_before=loadavg())
            try:
                cfg = TrainConfig(method=method, content="", styles=[], out="", size=size, style_size=256,
                                  batch_size=batch, width=width, device=str(device), precision=precision).fill_defaults()
                gen = torch.Generator().manual_seed(0)
                n_styles = 1 if method in ("johnson", "ulyanov") else 4
                styles = [torch.rand(1, 3, 256, 256, generator=gen) for _ in range(n_styles)]
                setup = time.perf_counter()
                trainer = method_class(method)(cfg, styles, [f"s{i}" for i in range(n_styles)], device)
                model = trainer.build().to(device)
                model.train()
                optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=cfg.lr)
                autocast = _autocast(device, precision)
                content = torch.rand(batch, 3, size, size, generator=gen).to(device)

                def step(i: int) -> None:  # the body of fauve.train.loop.train's loop
                    with autocast:
                        result = trainer.loss(model, content, i)
                    optimizer.zero_grad(set_to_none=True)
                    result.loss.backward()
                    optimizer.step()

                setup = time.perf_counter() - setup
                counter = itertools.count()
                first, times, peak = time_runner(lambda _x: step(next(counter)), content, device, steps, min(3, steps), 60.0)
                median = statistics.median(times)
                row.first_call_s = round(setup + first, 3)
                row.latency_ms, row.latency_min_ms, row.runs = round(median * 1e3, 1), round(min(times) * 1e3, 1), len(times)
                row.fps = round(1.0 / median, 3)  # iterations per second
                row.peak_mb = None if peak is None else round(peak, 1)
                del trainer, model, optimizer
            except Exception as err:
                row.error = f"{type(err).__name__}: {str(err).splitlines()[0][:200]}"
            row.load_after = loadavg()
            rows.append(row)
            log(format_row(row).replace(" fps", " it/s"))
            gc.collect()
    return rows


# -- large images through the pipeline -------------------------------------------------------------
def large_child(method: str, width: float, size: int, tile: int, backend: str, device: str) -> dict[str, Any]:
    """Run in a fresh process: stylize one size×size 8-bit image with tiling; report time and peak RSS."""
    import numpy as np

    from fauve.pipeline import Stylizer

    model = bench_model(method, width, torch.device("cpu"))
    stylizer = Stylizer(model, device=device, backend=backend)
    side = 2 * tile + 128  # more than the pipeline's untiled limit (4 tiles): builds the tile path too
    warm = np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8)
    stylizer.run(warm, tile=tile)  # one-time initialisation (thread pools, ONNX graphs) off the clock
    rows = np.linspace(0, 255, size, dtype=np.float32)
    image = np.empty((size, size, 3), np.uint8)  # a smooth colour field, built row-block by row-block
    for y0 in range(0, size, 1024):
        block = rows[y0:y0 + 1024, None]
        image[y0:y0 + 1024, :, 0] = block
        image[y0:y0 + 1024, :, 1] = rows[None, :]
        image[y0:y0 + 1024, :, 2] = (block + rows[None, :]) / 2
    probe = MemoryProbe(torch.device("cpu"))
    probe.reset()
    rss_before = probe.start_mb
    load = loadavg()
    t0 = time.perf_counter()
    out = stylizer.run(image, tile=tile)
    seconds = time.perf_counter() - t0
    assert out.shape == image.shape
    return {"seconds": seconds, "peak_rss_mb": probe.peak_rss_mb(), "rss_before_mb": rss_before,
            "peak_added_mb": probe.peak_mb(), "exact": probe.exact, "load_before": load, "load_after": loadavg()}


def bench_large(method: str, width: float, sizes: list[int], *, tile: int = 512, backend: str = "torch",
                device: str = "cpu", threads: int | None = None, log: Callable[[str], None] = print) -> list[Row]:
    rows: list[Row] = []
    env = dict(os.environ)
    if threads:
        env["FAUVE_BENCH_THREADS"] = str(threads)
    for size in sizes:
        row = Row("large", method, width, f"pipeline tile {tile} {backend}", size, device)
        spec = json.dumps({"method": method, "width": width, "size": size, "tile": tile, "backend": backend, "device": device})
        proc = subprocess.run([sys.executable, "-m", "fauve.bench", "--large-child", spec], capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            row.error = (proc.stderr.strip().splitlines() or ["no output"])[-1][:300]
        else:
            result = json.loads(proc.stdout.strip().splitlines()[-1])
            row.latency_ms = round(result["seconds"] * 1e3, 1)
            row.runs = 1
            row.mpix_per_s = round(size * size / result["seconds"] / 1e6, 3)
            row.peak_mb = round(result["peak_rss_mb"], 1)
            row.load_before, row.load_after = result["load_before"], result["load_after"]
            row.extra = {"s_per_mpix": round(result["seconds"] / (size * size / 1e6), 4),
                         "rss_before_mb": round(result["rss_before_mb"], 1), "peak_added_mb": round(result["peak_added_mb"], 1),
                         "exact": result["exact"]}
        rows.append(row)
        if row.error:
            log(f"{size}²: FAILED {row.error}")
        else:
            log(f"{method} w{width:g} {size}² tile {tile} {backend}: {result['seconds']:.1f} s, "
                f"{row.extra['s_per_mpix']:.3f} s/MP, peak RSS {row.peak_mb:.0f} MiB, load {row.load_before}")
    return rows


# -- reports ---------------------------------------------------------------------------------------
def markdown(rows: list[Row], info: dict[str, Any], title: str) -> str:
    isa = f", {info['cpu_isa']}" if info.get("cpu_isa") else ""
    hw = f"{info['cpu']} ({info['cpu_count']} cores{isa}, {info['torch_threads']} torch threads)"
    if info.get("gpu"):
        hw += f"; GPU {info['gpu']} (CUDA {info['cuda']})"
    lines = [f"### {title}", "", f"{hw}; torch {info['torch']}, onnxruntime {info['onnxruntime']}; "
             f"load average {info.get('load_start')} → {info.get('load_end')}.", ""]
    mode = rows[0].mode if rows else "inference"
    if mode == "inference":
        lines += ["| method | width | variant | size | first call (s) | median (ms) | fps | MP/s | × baseline | peak mem added (MiB) |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for r in rows:
            if r.error:
                lines.append(f"| {_name(r)} | {r.width:g} | {r.variant} | {r.size}² | failed: {r.error} | | | | | |")
                continue
            ratio = f"{r.ratio:.3f}" if r.ratio is not None else ""
            lines.append(f"| {_name(r)} | {r.width:g} | {r.variant} | {r.size}² | {r.first_call_s:.2f} | {r.latency_ms:.1f} | "
                         f"{r.fps:.2f} | {r.mpix_per_s:.2f} | {ratio} | {r.peak_mb:.0f} |")
    elif mode == "train":
        lines += ["| method | width | batch | size | it/s | median step (ms) | peak mem (MiB) |", "| --- | --- | --- | --- | --- | --- | --- |"]
        for r in rows:
            if r.error:
                lines.append(f"| {r.method} | {r.width:g} | {r.variant} | {r.size}² | failed: {r.error} | | |")
            else:
                lines.append(f"| {r.method} | {r.width:g} | {r.variant} | {r.size}² | {r.fps:.2f} | {r.latency_ms:.0f} | {r.peak_mb:.0f} |")
    else:
        lines += ["| method | width | path | size | seconds | s per MP | peak RSS (MiB) |", "| --- | --- | --- | --- | --- | --- | --- |"]
        for r in rows:
            if r.error:
                lines.append(f"| {r.method} | {r.width:g} | {r.variant} | {r.size}² | failed: {r.error} | | |")
            else:
                lines.append(f"| {r.method} | {r.width:g} | {r.variant} | {r.size}² | {r.latency_ms / 1e3:.1f} | "
                             f"{r.extra['s_per_mpix']:.3f} | {r.peak_mb:.0f} |")
    return "\n".join(lines) + "\n"


def _floats(text: str) -> list[float]:
    return [float(t) for t in text.split(",") if t.strip()]


def _ints(text: str) -> list[int]:
    return [int(t) for t in text.split(",") if t.strip()]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="measure speed and memory of every method and path",
                       description=__doc__.split("\n\n")[0] + " See `fauve bench --help` for the modes; results are "
                       "written as markdown + JSON with -o.", formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--methods", default=",".join(ALL_METHODS), help="comma-separated methods (default: all five)")
    p.add_argument("--sizes", type=_ints, default=None, help="square sizes in pixels (default 256,512,1024; --train 128,256; --large 2048,4096,8192)")
    p.add_argument("--width", type=_floats, default=[1.0, 0.5], help="width multipliers (default 1.0,0.5; shipped models are 0.5)")
    p.add_argument("--upsample", default="nearest", help="comma-separated decoder upsamplings (nearest, bilinear; "
                   "the Starry Night ulyanov nets ship with bilinear)")
    p.add_argument("--variants", default=None, help=f"comma-separated variants, flags joined by '+' (default CPU: {CPU_VARIANTS}; CUDA: {CUDA_VARIANTS})")
    p.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    p.add_argument("--threads", type=int, default=None, help="torch (and onnxruntime) intra-op threads")
    p.add_argument("--repeat", type=int, default=7, help="at most this many warm runs per cell (median reported)")
    p.add_argument("--min-runs", type=int, default=3, help="at least this many warm runs per cell")
    p.add_argument("--budget", type=float, default=20.0, help="seconds of warm runs per cell after --min-runs")
    p.add_argument("--no-baseline", action="store_true", help="skip the ulyanov width-1.0 eager fp32 baseline row")
    p.add_argument("--train", action="store_true", help="training it/s (batch 4) instead of inference")
    p.add_argument("--batch", type=int, default=4, help="--train batch size")
    p.add_argument("--precision", default="fp32", help="--train autocast precision on CUDA (fp32, bf16, fp16)")
    p.add_argument("--large", action="store_true", help="the tiled pipeline on large images, one fresh process per size")
    p.add_argument("--tile", type=int, default=512, help="--large tile size")
    p.add_argument("--backend", default="torch", help="--large pipeline backend (torch or onnxruntime)")
    p.add_argument("--json", action="store_true", help="print the JSON to stdout instead of the markdown table")
    p.add_argument("-o", "--out", default=None, help="write bench-<mode>.md and bench-<mode>.json into this folder")
    p.set_defaults(func=_main)


def _main(args: argparse.Namespace) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    from fauve.pipeline import resolve_device

    device = resolve_device(args.device)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    for m in methods:
        if m not in ALL_METHODS:
            raise FauveError(f"Unknown method {m!r}.", f"Use some of {', '.join(ALL_METHODS)}.", code="bad_option")
    quiet = args.json
    log = (lambda line: print(line, file=sys.stderr, flush=True)) if quiet else (lambda line: print(line, flush=True))
    info = hardware()
    info["load_start"] = loadavg()
    info["nice"] = os.nice(0)
    if args.train:
        mode, title = "train", f"Training speed ({device})"
        rows = bench_train(methods, args.sizes or [128, 256], device, batch=args.batch, width=args.width[0], steps=args.repeat,
                           precision=args.precision, log=log)
    elif args.large:
        mode, title = "large", f"Large images through the tiled pipeline ({device})"
        rows = []
        for m in methods:
            rows += bench_large(m, args.width[0], args.sizes or [2048, 4096, 8192], tile=args.tile, backend=args.backend,
                                device=args.device, threads=args.threads, log=log)
    else:
        mode, title = "inference", f"Inference ({device})"
        variants = [v.strip() for v in (args.variants or (CUDA_VARIANTS if device.type == "cuda" else CPU_VARIANTS)).split(",") if v.strip()]
        for v in variants:
            parse_variant(v)
        upsamples = [check_upsample(u.strip()) for u in args.upsample.split(",") if u.strip()]
        rows = bench_inference(methods, args.width, variants, args.sizes or [256, 512, 1024], device, repeat=args.repeat,
                               min_runs=args.min_runs, budget_s=args.budget, threads=args.threads, baseline=not args.no_baseline,
                               upsamples=upsamples, log=log)
    info["load_end"] = loadavg()
    report = {"mode": mode, "hardware": info, "baseline": dict(zip(("method", "width", "variant"), BASELINE)),
              "rows": [asdict(r) for r in rows]}
    table = markdown(rows, info, title)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / f"bench-{mode}.json").write_text(json.dumps(report, indent=2))
        (out / f"bench-{mode}.md").write_text(table)
        log(f"wrote {out / f'bench-{mode}.md'} and {out / f'bench-{mode}.json'}")
    print(json.dumps(report, indent=2) if args.json else "\n" + table)
    return 0 if not any(r.error for r in rows) else 1


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--large-child":
        spec = json.loads(sys.argv[2])
        if os.environ.get("FAUVE_BENCH_THREADS"):
            torch.set_num_threads(int(os.environ["FAUVE_BENCH_THREADS"]))
        print(json.dumps(large_child(spec["method"], spec["width"], spec["size"], spec["tile"], spec["backend"], spec["device"])))
        sys.exit(0)
    from fauve.cli import main

    sys.exit(main(["bench", *sys.argv[1:]]))
