"""Worker processes: optimisations that do not share the page's interpreter.

A search run in a thread of the dashboard's server shares one interpreter
lock with everything the page does (building figures, serving the browser):
torch releases the lock inside each op, but must win it back after every one
of the hundreds of ops in a step, and a busy page makes it wait. A worker
process has its own interpreter, so watching a run costs it only the CPU the
page really uses.

Starting a process means importing torch (seconds), so a :class:`WorkerPool`
keeps processes warm: :meth:`WorkerPool.prewarm` starts one in the background
(and hands it a model) before anyone clicks, :meth:`WorkerPool.acquire` gives
a job an idle worker, and :meth:`WorkerPool.release` takes it back for the
next job. Each worker runs one search at a time; two jobs get two workers.
A pool starts at most ``max_workers`` processes: a class of thirty clicking
Generate on one server would otherwise start thirty copies of torch and the
model, and every run would crawl. Jobs beyond the cap wait their turn, first
come first served (:meth:`WorkerPool.acquire` reports their place in line).

Messages are plain pickles (tensors travel by value) over a pipe:

* parent -> worker: ``("model", key, classifier)``, ``("forget", key)``,
  ``("run", job_id, key, config, labels, threads)``,
  ``("pause" | "resume" | "stop", job_id)``;
* worker -> parent: ``("ready",)``, ``("step", job_id, StepReport)``,
  ``("done", job_id, Result)``, ``("failed", job_id, message)``.

Every job message carries its job's id, so a late "stop" meant for a finished
job can never end the next one. A worker goes back to the pool only after its
job's "done" or "failed" (:meth:`WorkerPool.release` with ``clean=True``);
one whose job ended any other way is closed, never reused. Each worker keeps
at most :data:`MODELS_PER_WORKER` models, dropping the least recently used.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import pickle
import signal
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING

from .devices import share_of_cores
from .env import env_count
from .errors import UmaskError, run_failure

# No torch here at import: the dashboard starts its first worker before it
# imports torch itself, so the two imports (seconds each) overlap.
if TYPE_CHECKING:
    import torch

    from .config import Config
    from .models import Classifier

log = logging.getLogger(__name__)

#: Seconds a new worker may take to import torch and say it is ready.
START_TIMEOUT_S = 120.0
#: Models one worker holds at a time (each is a full copy in its memory).
MODELS_PER_WORKER = 2


def default_max_workers(threads: int) -> int:
    """Worker processes one server runs at once: as many as the cores hold at
    ``threads`` each (at least 2, so two users never wait for each other);
    ``UMASK_MAX_RUNS`` overrides.

    Raises:
        UmaskError: ``UMASK_MAX_RUNS`` is not a whole number >= 1.
    """
    return env_count("UMASK_MAX_RUNS", max(2, (os.cpu_count() or 2) // max(1, threads)))


class WorkerGone(UmaskError):
    """A worker process ended (or never started) while it was needed."""


class Worker:
    """One warm Python process that runs searches; owned by a :class:`WorkerPool`."""

    def __init__(self, context) -> None:
        here, there = context.Pipe(duplex=True)
        self._conn: Connection = here
        self._send_lock = threading.Lock()  # the page and the job's thread both send
        # key -> model, least recently used first. Strong refs: an id() is
        # never reused while we hold its object, so a key never means two models.
        self._models: dict[int, Classifier] = {}
        self.process = context.Process(target=serve, args=(there,), name="umask-worker", daemon=True)
        self.process.start()
        there.close()  # only the child holds that end: its exit closes our end's peer

    def wait_ready(self, timeout: float = START_TIMEOUT_S) -> None:
        try:
            message = self.recv(timeout)
        except WorkerGone:
            self.close()
            raise
        if message != ("ready",):
            self.close()
            raise WorkerGone(f"A worker process did not start within {timeout:.0f} s.")

    def send(self, *message) -> None:
        data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        try:
            with self._send_lock:
                self._conn.send_bytes(data)
        except OSError as err:
            raise WorkerGone(f"The worker process has ended ({self._exit_text()}).") from err

    def recv(self, timeout: float | None) -> tuple | None:
        """The next message, or None when none came within ``timeout`` seconds."""
        try:
            if not self._conn.poll(timeout):
                return None
            return pickle.loads(self._conn.recv_bytes())
        except (EOFError, OSError) as err:
            raise WorkerGone(f"The worker process has ended ({self._exit_text()}).") from err

    def load(self, model: Classifier) -> int:
        """Make sure the worker holds ``model``; returns its key there."""
        key = id(model)
        if key in self._models:
            self._models[key] = self._models.pop(key)  # now the most recently used
            return key
        while len(self._models) >= MODELS_PER_WORKER:
            old = next(iter(self._models))
            self.send("forget", old)
            del self._models[old]
        self.send("model", key, model)
        self._models[key] = model
        return key

    def has(self, model: Classifier) -> bool:
        return id(model) in self._models

    @property
    def alive(self) -> bool:
        return self.process.is_alive()

    def close(self) -> None:
        with self._send_lock:  # not while another thread is writing to it
            self._conn.close()
        self._models.clear()
        self.process.join(2.0)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(2.0)
        if self.process.is_alive():  # stuck, or stopped: SIGTERM waits for it
            self.process.kill()
            self.process.join(2.0)

    def _exit_text(self) -> str:
        self.process.join(0.5)
        code = self.process.exitcode
        return "still running" if code is None else f"exit code {code}"


class WorkerPool:
    """Warm worker processes, handed to one job at a time.

    Args:
        max_idle: workers kept warm between jobs (more are closed on release).
        threads: torch intra-op threads of each worker (None:
            :func:`~umask.devices.share_of_cores`).
        max_workers: processes alive at once, busy or idle (None:
            :func:`default_max_workers`); further jobs wait in line.
    """

    def __init__(self, *, max_idle: int = 2, threads: int | None = None, max_workers: int | None = None) -> None:
        # "spawn": a fresh interpreter. Forking a server that already runs
        # torch and web threads can deadlock the child in inherited locks.
        self._context = multiprocessing.get_context("spawn")
        self.max_idle = max_idle
        self.threads = threads if threads is not None else share_of_cores()
        self.max_workers = max_workers if max_workers is not None else default_max_workers(self.threads)
        if self.max_workers < 1:
            raise UmaskError(f"A worker pool needs max_workers >= 1, not {self.max_workers}.")
        self._cond = threading.Condition()
        self._idle: list[Worker] = []
        self._live: list[Worker] = []  # every process started and not yet ended, busy or idle
        self._starting = 0  # processes being started (not yet in _live)
        self._line: list[object] = []  # acquire calls waiting, first come first served
        # A prewarm is starting or loading a worker that will land in _idle:
        # acquire waits for it rather than start a second process.
        self._prewarming = False
        self._prewarm_model: Classifier | None = None  # the model the worker being prewarmed is to hold
        self._closed = False
        self.started = 0  # processes started so far

    # ----------------------------------------------------------- lifetime ---

    def acquire(
        self,
        model: Classifier | None = None,
        *,
        give_up: Callable[[], bool] | None = None,
        on_wait: Callable[[int | None], None] | None = None,
    ) -> Worker | None:
        """An idle worker holding ``model``: one already idle, else the one a
        prewarm is readying, else a new process, else (``max_workers`` busy)
        the first one released to this caller's place in line.

        Blocks while a process starts, a model is sent or others are ahead:
        call it from a job's own thread.

        Args:
            model: sent to the worker unless it holds it already.
            give_up: asked about twice a second while waiting; True ends the
                wait (the caller was stopped) and acquire returns None.
            on_wait: told, while the cap keeps this caller waiting, how many
                callers are ahead of it (0: next), and None once it is served.

        Raises:
            UmaskError: the pool is closed; WorkerGone: a new process did not start.
        """
        ticket = object()
        queued = False
        with self._cond:
            self._line.append(ticket)
        try:
            while True:
                with self._cond:
                    self._prune_locked()
                    if self._closed:
                        raise UmaskError("The worker pool is closed.")
                    ahead = self._line.index(ticket)
                    if ahead == 0 and self._idle:
                        # Prefer a worker that already holds the model.
                        worker = next((w for w in self._idle if model is not None and w.has(model)), self._idle[0])
                        self._idle.remove(worker)
                        break
                    full = self._full_locked()
                    if ahead == 0 and not self._prewarming and not full:
                        worker = None
                        self._starting += 1  # claimed under the lock: no one else takes this slot
                        break
                    # Behind others, or every process busy: in line. (Waiting
                    # for a prewarm to finish is not the line.)
                    waiting_in_line = ahead > 0 or (full and not self._prewarming)
                    if not (waiting_in_line and not queued and on_wait is not None):
                        self._cond.wait(0.5)  # (a caller new to the line is told first, below)
                if on_wait is not None and (waiting_in_line or queued):
                    queued = waiting_in_line
                    on_wait(ahead if waiting_in_line else None)
                if give_up is not None and give_up():
                    return None
        finally:
            with self._cond:
                self._line.remove(ticket)
                self._cond.notify_all()
            if queued and on_wait is not None:
                on_wait(None)  # out of the line: served, gave up, or the pool closed
        if worker is None:
            worker = self._start_worker()
        try:
            if model is not None:
                worker.load(model)
        except BaseException:
            self._close(worker)  # it may hold half a message: never reuse it
            raise
        return worker

    def release(self, worker: Worker, clean: bool = True) -> None:
        """Give a worker back after its job ended.

        ``clean=False`` (the job ended without its "done" or "failed", so the
        worker may still be running it) closes the worker, as do a dead one
        and one beyond ``max_idle``.
        """
        with self._cond:
            keep = clean and worker.alive and not self._closed and len(self._idle) < self.max_idle
            if keep:
                self._idle.append(worker)
                self._cond.notify_all()
        if not keep:
            self._close(worker)

    def prewarm(self, model: Classifier | None = None) -> None:
        """Have an idle worker (holding ``model``) ready soon; returns at once.

        Cheap to call on every page run: it does nothing when a worker is
        idle and already holds the model; while an earlier call still works,
        its worker is sent ``model`` too once it is ready.
        """
        with self._cond:
            if self._prewarming and model is not None and not self._line:
                self._prewarm_model = model  # the worker being readied takes it (a later call's wins)
                return
            # Not while jobs wait in line: they take idle workers as they come.
            if self._closed or self._prewarming or self._line:
                return
            self._prune_locked()
            if any(model is None or w.has(model) for w in self._idle):
                return
            if not self._idle and self._full_locked():
                return  # every process is busy: no room for another
            # Send the model to an idle worker if there is one, else start one.
            taken = self._idle.pop(0) if self._idle else None
            if taken is None:
                self._starting += 1
            self._prewarming = True
            self._prewarm_model = model
        threading.Thread(target=self._prewarm, args=(taken,), name="umask-prewarm", daemon=True).start()

    def close(self) -> None:
        """Stop the idle workers (busy ones are closed when released)."""
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            self._cond.notify_all()
        for worker in idle:
            self._close(worker)

    @property
    def idle_count(self) -> int:
        with self._cond:
            return sum(w.alive for w in self._idle)

    @property
    def live_count(self) -> int:
        """Worker processes alive now, busy or idle."""
        with self._cond:
            self._prune_locked()
            return len(self._live)

    # ------------------------------------------------------------ helpers ---

    def _prune_locked(self) -> None:
        """Forget workers whose process has ended (closed, killed, crashed)."""
        self._idle = [w for w in self._idle if w.alive]
        self._live = [w for w in self._live if w.alive]

    def _full_locked(self) -> bool:
        """Every process the cap allows is alive or starting."""
        return len(self._live) + self._starting >= self.max_workers

    def _close(self, worker: Worker) -> None:
        """End a worker's process and let the next caller in line have its place."""
        worker.close()
        with self._cond:
            self._prune_locked()
            self._cond.notify_all()

    def _prewarm(self, worker: Worker | None) -> None:
        loaded = None
        while True:
            try:
                if worker is None:
                    worker = self._start_worker()
                with self._cond:
                    # Asked for by the first call, or by one made while the worker
                    # started; none when a job waits for this worker: it loads its own.
                    model = None if self._line else self._prewarm_model
                if model is not None and model is not loaded:
                    worker.load(model)
                    loaded = model
            except Exception as err:  # a background nicety: log it, the job will say what is wrong
                log.warning("could not prewarm a worker: %s", err)
                if worker is not None:
                    self._close(worker)
                worker = None
            with self._cond:
                wanted = self._prewarm_model
                if (worker is not None and wanted is not None and wanted is not loaded and not self._closed
                        and not self._line):  # a job waiting takes the worker as it is: it loads its own model
                    continue  # a call made while that model loaded asked for another: load it too
                self._prewarming, self._prewarm_model = False, None
                keep = worker is not None and worker.alive and not self._closed
                if keep:
                    self._idle.append(worker)
                self._cond.notify_all()
            break
        if worker is not None and not keep:
            self._close(worker)

    def _start_worker(self) -> Worker:
        """A new process; its slot was claimed (``_starting``) by the caller."""
        try:
            worker = Worker(self._context)
            with self._cond:
                self.started += 1
                self._live.append(worker)
        finally:
            with self._cond:
                self._starting -= 1
                self._cond.notify_all()
        worker.wait_ready()  # closes the worker if it fails; _live forgets it
        return worker


# ----------------------------------------------------------- the worker ---


def serve(conn: Connection) -> None:
    """The worker process's main loop: hold models, run searches, report each step."""
    # Ctrl-C in the server's terminal reaches the whole process group; the
    # server shuts its workers down itself, without a traceback from each.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from .optimise import import_optimisers

    # The engine and torch's compiler, before "ready": in a run's first step
    # they put the page's first frame 1.5 s after the click.
    import_optimisers()

    def send(*message) -> None:
        conn.send_bytes(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))

    send("ready")
    models: dict[int, Classifier] = {}
    while True:
        try:
            data = conn.recv_bytes()
        except (EOFError, OSError):
            return  # the parent has gone
        message = pickle.loads(data)
        kind = message[0]
        if kind == "model":
            models[message[1]] = message[2]
        elif kind == "forget":
            models.pop(message[1], None)
        elif kind == "run":
            _, job_id, key, config, labels, threads = message
            if key not in models:
                send("failed", job_id, "The worker process was not sent the model for this run.")
                continue
            if not _run(conn, send, job_id, models[key], config, labels, threads):
                return
        # Anything else is a control message for a job that has already ended.


def _run(conn: Connection, send, job_id: int, model: Classifier, config: Config, labels: torch.Tensor,
         threads: int) -> bool:
    """One search, reported step by step; False when the parent has gone."""
    import torch

    from .optimise import UniversalSearch

    torch.set_num_threads(threads)
    paused = stopped = False
    try:
        search = UniversalSearch(model, config, labels=labels)
        for report in search:
            try:
                send("step", job_id, report)
                # Between two steps: read control messages; block while paused.
                while (paused and not report.last) or conn.poll():
                    command, target = pickle.loads(conn.recv_bytes())[:2]
                    if target != job_id:
                        continue
                    paused = command == "pause"
                    stopped = stopped or command == "stop"
                    if stopped:
                        break
            except (EOFError, OSError):
                return False  # nothing to report to
            if stopped:
                break
        result = search.result()
    except UmaskError as err:
        return _reply(send, "failed", job_id, str(err))
    except Exception as err:  # the parent shows it as one sentence
        log.exception("worker job %s failed", job_id)
        return _reply(send, "failed", job_id, run_failure(err))
    return _reply(send, "done", job_id, result)


def _reply(send, kind: str, job_id: int, payload) -> bool:
    try:
        send(kind, job_id, payload)
        return True
    except (EOFError, OSError):
        return False
