"""One job queue for the whole server: the bridge API and the Gradio app both submit here.

A fixed pool of ``concurrency`` worker threads runs jobs in submission order, so one GPU is never
asked to run more than ``concurrency`` stylizations at once, whoever asked. Each job carries a
progress fraction (reported by the pipeline) and a cancel event (checked by the pipeline between
tiles). Cancelling a queued job drops it from the queue; cancelling a running job sets the event,
the pipeline raises ``fauve.errors.Cancelled`` at its next check and the worker is free again.
Finished jobs are kept for ``keep_seconds`` (so their results can be fetched) and then forgotten.
"""

from __future__ import annotations

import itertools
import logging
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from fauve.errors import Cancelled, FauveError, OutOfMemory

log = logging.getLogger("fauve.serve")

QUEUED, RUNNING, DONE, ERROR, CANCELLED = "queued", "running", "done", "error", "cancelled"
FINAL = (DONE, ERROR, CANCELLED)


class QueueFull(FauveError):
    code = "queue_full"


@dataclass
class Job:
    """One stylization request and everything a client may ask about it."""

    id: str
    width: int
    height: int
    meta: dict[str, Any] = field(default_factory=dict)
    status: str = QUEUED
    progress: float = 0.0
    message: str = "Waiting in the queue"
    error: dict[str, Any] | None = None
    result: Any = None
    created: float = field(default_factory=time.monotonic)
    started: float | None = None
    finished: float | None = None
    cancel_event: threading.Event = field(default_factory=threading.Event)
    done_event: threading.Event = field(default_factory=threading.Event)
    future: Future | None = None

    @property
    def seconds(self) -> float | None:
        """Time spent running (not waiting), or None before it starts."""
        if self.started is None:
            return None
        return round((self.finished or time.monotonic()) - self.started, 4)

    def report(self, fraction: float, message: str | None = None) -> None:
        """Progress callback for the pipeline: fraction in [0, 1]."""
        try:
            fraction = float(fraction)
        except (TypeError, ValueError):
            return
        self.progress = min(1.0, max(self.progress, fraction))
        if message:
            self.message = message

    def to_dict(self) -> dict[str, Any]:
        return {
            "job_id": self.id,
            "status": self.status,
            "progress": round(self.progress, 4),
            "message": self.message,
            "error": self.error,
            "width": self.width,
            "height": self.height,
            "seconds": self.seconds,
        }


class JobQueue:
    """A bounded FIFO of jobs run by ``concurrency`` worker threads."""

    def __init__(self, concurrency: int = 1, max_queued: int = 64, keep_seconds: float = 600.0,
                 max_finished: int = 256) -> None:
        if concurrency < 1:
            raise FauveError(f"--concurrency must be at least 1 (got {concurrency}).", hint="Use --concurrency 1 for one GPU.")
        self.concurrency = concurrency
        self.max_queued = max_queued
        self.keep_seconds = keep_seconds
        self.max_finished = max_finished
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="fauve-job")
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()
        self._counter = itertools.count(1)

    # -- submitting ------------------------------------------------------------------------------
    def submit(self, fn: Callable[[Job], Any], *, width: int = 0, height: int = 0,
               meta: dict[str, Any] | None = None) -> Job:
        """Queue ``fn(job)``; its return value becomes ``job.result``. Raises QueueFull."""
        with self._lock:
            self._forget_old()
            waiting = sum(1 for j in self._jobs.values() if j.status == QUEUED)
            if waiting >= self.max_queued:
                raise QueueFull(
                    f"The server already has {waiting} jobs waiting.",
                    hint="Wait for some to finish and try again, or start the server with a larger --max-queue.",
                )
            job = Job(id=f"{next(self._counter)}-{secrets.token_hex(6)}", width=width, height=height, meta=meta or {})
            self._jobs[job.id] = job
        job.future = self._pool.submit(self._run, job, fn)
        return job

    def _run(self, job: Job, fn: Callable[[Job], Any]) -> None:
        if job.cancel_event.is_set():
            self._finish(job, CANCELLED, "Cancelled")
            return
        job.status, job.started, job.message = RUNNING, time.monotonic(), "Styling"
        try:
            result = fn(job)
        except Cancelled:
            self._finish(job, CANCELLED, "Cancelled")
        except FauveError as err:
            self._finish(job, ERROR, err.message, err.to_dict())
        except MemoryError:
            err = OutOfMemory("The server ran out of memory on this image.",
                              hint="Use a smaller tile size or a smaller image, or lower --concurrency.")
            self._finish(job, ERROR, err.message, err.to_dict())
        except Exception as err:  # a bug or a library error: report it, keep the worker alive
            if type(err).__name__ == "OutOfMemoryError":  # torch.cuda.OutOfMemoryError
                oom = OutOfMemory(f"The GPU ran out of memory: {err}", hint="Use a smaller tile size (tile=256) or --device cpu.")
                self._finish(job, ERROR, oom.message, oom.to_dict())
            else:
                log.exception("job %s failed", job.id)
                self._finish(job, ERROR, f"Internal error: {type(err).__name__}: {err}",
                             {"code": "internal_error", "message": f"{type(err).__name__}: {err}",
                              "hint": "This is a bug in fauve; the server log has the traceback. Please report it."})
        else:
            if job.cancel_event.is_set():
                self._finish(job, CANCELLED, "Cancelled")
            else:
                job.result = result
                job.progress = 1.0
                self._finish(job, DONE, "Done")

    def _finish(self, job: Job, status: str, message: str, error: dict | None = None) -> None:
        if job.status in FINAL:  # cancelled while running: keep "cancelled"
            job.done_event.set()
            return
        job.status, job.message, job.error = status, message, error
        job.finished = time.monotonic()
        if job.started is None:
            job.started = job.finished
        job.done_event.set()

    # -- asking and cancelling --------------------------------------------------------------------
    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def cancel(self, job_id: str) -> Job | None:
        """Cancel a queued or running job (its slot is freed); returns None for unknown ids."""
        job = self.get(job_id)
        if job is None:
            return None
        job.cancel_event.set()
        if job.status == QUEUED and job.future is not None and job.future.cancel():
            self._finish(job, CANCELLED, "Cancelled")
        elif job.status == RUNNING:
            # The worker stays busy until the pipeline's next cancel check; clients see the final state now.
            job.status, job.message, job.finished = CANCELLED, "Cancelled", time.monotonic()
        return job

    def forget(self, job_id: str) -> Job | None:
        """Drop a job and its result (after cancelling it if it is still going)."""
        job = self.cancel(job_id)
        with self._lock:
            self._jobs.pop(job_id, None)
        return job

    def stats(self) -> dict[str, int]:
        with self._lock:
            jobs = list(self._jobs.values())
        counts = {status: sum(j.status == status for j in jobs) for status in (RUNNING, QUEUED, DONE, ERROR, CANCELLED)}
        return {**counts, "concurrency": self.concurrency}

    def _forget_old(self) -> None:
        now = time.monotonic()
        finished = [j for j in self._jobs.values() if j.status in FINAL and j.done_event.is_set()]
        for job in finished:
            if now - (job.finished or now) > self.keep_seconds:
                self._jobs.pop(job.id, None)
        finished = [j for j in finished if j.id in self._jobs]
        for job in finished[: max(0, len(finished) - self.max_finished)]:
            self._jobs.pop(job.id, None)

    def shutdown(self) -> None:
        with self._lock:
            jobs = list(self._jobs.values())
        for job in jobs:
            job.cancel_event.set()
        self._pool.shutdown(wait=False, cancel_futures=True)
