"""The bridge API v1 (docs/bridge-api.md): a small FastAPI app mounted at ``/bridge/v1``.

Every error, including unknown paths, wrong methods and unexpected exceptions, is answered as JSON
``{code, message, hint}`` with a 4xx/5xx status; no request can stop the server. Sizes are checked
from the query and ``Content-Length`` before the body is read, and the body is read with a hard cap.
"""

from __future__ import annotations

import base64
import logging
import math

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from fauve import __version__
from fauve.errors import FauveError, UnknownStyleError
from fauve_bridge.engine import PRESERVE_CHOICES, Engine, StyleRequest, parse_mix
from fauve_bridge.imagecodec import RequestError, array_to_png, check_pixels, png_to_array, rgba8_to_array
from fauve_bridge.jobs import CANCELLED, DONE, ERROR, JobQueue, QueueFull
from fauve_bridge.security import BridgeGuard

log = logging.getLogger("fauve.serve")

API_VERSION = 1
PREFIX = "/bridge/v1"
JOB_PARAMS = {"format", "width", "height", "style", "model", "mix", "strength", "preserve_color", "style_scale", "tile"}
TILE_RANGE = (64, 8192)
STYLE_SCALE_RANGE = (0.25, 4.0)


def _error(status: int, code: str, message: str, hint: str | None = None, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"code": code, "message": message, "hint": hint or ""}, status_code=status, headers=headers)


def _number(query, name: str, default: float, lo: float, hi: float) -> float:
    raw = query.get(name)
    if raw in (None, ""):
        return default
    try:
        value = float(raw)
    except ValueError:
        raise RequestError(400, "bad_parameter", f"{name}={raw!r} is not a number.", f"Give {name} as a number from {lo} to {hi}.") from None
    if not math.isfinite(value) or not lo <= value <= hi:
        raise RequestError(400, "bad_parameter", f"{name}={raw} is out of range.", f"Give {name} from {lo} to {hi}.")
    return value


def _int(query, name: str, lo: int, hi: int) -> int | None:
    raw = query.get(name)
    if raw in (None, ""):
        return None
    try:
        value = int(raw)
    except ValueError:
        raise RequestError(400, "bad_parameter", f"{name}={raw!r} is not a whole number.", f"Give {name} as an integer from {lo} to {hi}.") from None
    if not lo <= value <= hi:
        raise RequestError(400, "bad_parameter", f"{name}={value} is out of range.", f"Give {name} from {lo} to {hi}.")
    return value


def style_request_from_query(query) -> StyleRequest:
    """The stylization parameters of ``POST /jobs`` (validated; the style itself is checked by the engine)."""
    unknown = sorted(set(query.keys()) - JOB_PARAMS)
    if unknown:
        raise RequestError(400, "unknown_parameter", f"Unknown parameter(s): {', '.join(unknown)}.",
                           f"Known parameters: {', '.join(sorted(JOB_PARAMS))} (see docs/bridge-api.md).")
    preserve = query.get("preserve_color") or "none"
    if preserve not in PRESERVE_CHOICES:
        raise RequestError(400, "bad_parameter", f"preserve_color={preserve!r} is not one of {', '.join(PRESERVE_CHOICES)}.",
                           f"Use preserve_color={'|'.join(PRESERVE_CHOICES)}.")
    style, model, mix = query.get("style") or None, query.get("model") or None, query.get("mix") or None
    if mix is not None and model is None and style is not None:
        model, style = style, None  # style=<model-id>&mix=... reads naturally too
    if style is None and model is None:
        raise RequestError(400, "missing_style", "No style given.", "Pass style=<id> (GET /bridge/v1/styles lists them), or model=<model-id>&mix=name:w,name:w.")
    try:
        mix_weights = parse_mix(mix) if mix is not None else None
    except FauveError as err:
        raise RequestError(400, "bad_parameter", err.message, err.hint) from None
    return StyleRequest(
        style=style, model=model, mix=mix_weights,
        strength=_number(query, "strength", 1.0, 0.0, 1.0),
        preserve_color=preserve,
        style_scale=_number(query, "style_scale", 1.0, *STYLE_SCALE_RANGE),
        tile=_int(query, "tile", *TILE_RANGE),
    )


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing (413) as soon as it grows past ``limit`` bytes."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestError(413, "body_too_large", f"The request body is larger than {limit:,} bytes.",
                               "Send a smaller image, or start the server with a larger --max-pixels.")
        chunks.append(chunk)
    return b"".join(chunks)


def create_bridge_app(engine: Engine, queue: JobQueue, *, max_pixels: int, max_body: int, token: str | None) -> FastAPI:
    app = FastAPI(title="fauve bridge API", version=str(API_VERSION), docs_url=None, redoc_url=None, openapi_url="/openapi.json")
    app.state.engine, app.state.queue = engine, queue

    # -- errors: always {code, message, hint} ----------------------------------------------------
    @app.exception_handler(RequestError)
    async def _request_error(_req, err: RequestError):
        return _error(err.status, err.code, err.message, err.hint)

    @app.exception_handler(QueueFull)
    async def _queue_full(_req, err: QueueFull):
        return _error(503, err.code, err.message, err.hint, headers={"Retry-After": "5"})

    @app.exception_handler(UnknownStyleError)
    async def _unknown_style(_req, err: UnknownStyleError):
        return _error(400, err.code, err.message, err.hint)

    @app.exception_handler(FauveError)
    async def _fauve_error(_req, err: FauveError):
        return _error(400, err.code, err.message, err.hint)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_req, err: StarletteHTTPException):
        if err.status_code == 404:
            return _error(404, "not_found", "No such bridge endpoint.", f"See docs/bridge-api.md; the API lives under {PREFIX}.")
        if err.status_code == 405:
            return _error(405, "method_not_allowed", "This endpoint does not take that HTTP method.", "See docs/bridge-api.md.")
        return _error(err.status_code, "http_error", str(err.detail), "See docs/bridge-api.md.")

    @app.exception_handler(RequestValidationError)
    async def _validation(_req, err: RequestValidationError):
        return _error(400, "bad_request", f"Malformed request: {err.errors()[:3]}", "See docs/bridge-api.md.")

    @app.exception_handler(Exception)
    async def _unexpected(_req, err: Exception):
        log.exception("bridge request failed")
        return _error(500, "internal_error", f"{type(err).__name__}: {err}", "This is a bug in fauve; the server log has the traceback.")

    # -- routes -----------------------------------------------------------------------------------
    @app.get("/health")
    def health():
        return {"name": "fauve", "version": __version__, "api": API_VERSION, "device": engine.device,
                "models_loaded": engine.models_loaded(), "queue": queue.stats(),
                "max_pixels": max_pixels, "max_body_bytes": max_body, "auth": token is not None}

    @app.get("/styles")
    def styles():
        out = []
        for info in engine.list_styles():
            thumb = engine.thumbnail_png(info.id)
            out.append({**info.public(), "thumbnail_png_b64": base64.b64encode(thumb).decode("ascii") if thumb else None})
        return {"styles": out}

    @app.post("/jobs", status_code=202)
    async def create_job(request: Request):
        query = request.query_params
        fmt = query.get("format") or "rgba8"
        if fmt not in ("rgba8", "png"):
            raise RequestError(400, "bad_parameter", f"format={fmt!r} is not rgba8 or png.", "Use format=rgba8 (with width and height) or format=png.")
        style_req = style_request_from_query(query)
        await run_in_threadpool(engine.check_request, style_req)  # unknown style -> 400 before the upload is read

        declared = request.headers.get("content-length")
        try:
            declared_len = int(declared) if declared is not None else None
        except ValueError:
            raise RequestError(400, "bad_request", f"Content-Length {declared!r} is not a number.", "Send a valid Content-Length header.") from None
        if declared_len is not None and declared_len > max_body:
            raise RequestError(413, "body_too_large", f"The request body ({declared_len:,} bytes) is larger than {max_body:,} bytes.",
                               "Send a smaller image, or start the server with a larger --max-pixels.")
        if fmt == "rgba8":
            width, height = _int(query, "width", 1, 1 << 20), _int(query, "height", 1, 1 << 20)
            if width is None or height is None:
                raise RequestError(400, "missing_size", "format=rgba8 needs width and height.", "Add &width=W&height=H (the pixel size of the raw RGBA body).")
            check_pixels(width, height, max_pixels)
            if declared_len is not None and declared_len != width * height * 4:
                raise RequestError(400, "wrong_size", f"Content-Length is {declared_len:,} but {width}x{height} RGBA needs {width * height * 4:,} bytes.",
                                   "Send exactly W*H*4 bytes of row-major RGBA.")
            body = await read_body(request, min(max_body, width * height * 4))
            rgba, has_alpha, profile = rgba8_to_array(body, width, height), True, None
        else:
            if query.get("width") or query.get("height"):
                raise RequestError(400, "bad_parameter", "width and height are read from the PNG itself.", "Drop width and height with format=png.")
            body = await read_body(request, max_body)
            rgba, has_alpha, profile = await run_in_threadpool(png_to_array, body, max_pixels)
            height, width = rgba.shape[:2]
        del body
        engine.check_size(width, height)

        def work(job):
            out = engine.stylize(rgba, style_req, progress=job.report, cancel=job.cancel_event)
            if fmt == "png":
                return array_to_png(out if has_alpha else out[..., :3], profile=profile)
            return out.tobytes()

        job = queue.submit(work, width=width, height=height, meta={"format": fmt})
        return JSONResponse({"job_id": job.id, "status": job.status}, status_code=202)

    def _job(job_id: str):
        job = queue.get(job_id)
        if job is None:
            raise RequestError(404, "unknown_job", f"There is no job {job_id!r}.",
                               "Job ids come from POST /bridge/v1/jobs; finished jobs are forgotten after a while.")
        return job

    @app.get("/jobs/{job_id}")
    def job_status(job_id: str):
        return _job(job_id).to_dict()

    @app.get("/jobs/{job_id}/result")
    def job_result(job_id: str):
        job = _job(job_id)
        if job.status != DONE:
            if job.status == ERROR:
                err = job.error or {}
                raise RequestError(409, err.get("code", "job_failed"), f"The job failed: {err.get('message', '')}", err.get("hint"))
            if job.status == CANCELLED:
                raise RequestError(409, "cancelled", "The job was cancelled; it has no result.", "Start a new job.")
            raise RequestError(409, "not_ready", f"The job is {job.status} ({job.progress:.0%}).",
                               f"Poll GET {PREFIX}/jobs/{job_id} until its status is done.")
        fmt = job.meta.get("format")
        headers = {"X-Width": str(job.width), "X-Height": str(job.height), "X-Seconds": str(job.seconds)}
        media = "image/png" if fmt == "png" else "application/octet-stream"
        return Response(content=job.result, media_type=media, headers=headers)

    @app.delete("/jobs/{job_id}")
    def job_cancel(job_id: str):
        job = _job(job_id)
        if job.status in (DONE, ERROR):
            queue.forget(job_id)  # finished: drop it and its result
            return {"job_id": job.id, "status": job.status}
        queue.cancel(job_id)
        return {"job_id": job.id, "status": CANCELLED}

    return BridgeGuard(app, token)
