"""Background optimisation jobs: a search that runs while someone watches.

A :class:`Job` runs one :class:`~umask.optimise.UniversalSearch` away from the
caller: in a thread of this process, or, given a
:class:`~umask.workers.WorkerPool`, in a warm worker process (the dashboard's
way: a process does not share the page's interpreter lock, so watching costs
the run little; there the Job's own ``search`` only checks the config and gives
the first frame). Either way a thread of this process collects the step reports;
the dashboard keeps the Job (a plain object) in its session state and polls
:meth:`Job.snapshot` from a timer. Nothing here renders anything or imports
streamlit, so a widget click that reruns the page script cannot kill or
restart the run.

    job = Job(model, Config(k=10)).start()          # or Job(..., pool=WorkerPool())
    snap = job.snapshot()          # thread-safe copy: losses, success, image, ETA
    job.pause(); job.resume(); job.stop()
    job.wait(); job.snapshot().result   # the best image so far, as a Result

Each job differentiates only its own image, so several jobs may share one
frozen model (two browser tabs, one process) without disturbing each other.
A job nobody polls for ``idle_timeout`` seconds stops by itself (a closed tab
leaves no orphan burning the CPU): :meth:`snapshot` and :meth:`touch` are the
heartbeat.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

import torch

from .config import Config
from .errors import UmaskError, run_failure
from .images import quantise
from .models import Classifier
from .optimise import SECONDS_DECIMALS, UniversalSearch
from .results import Result
from .workers import Worker, WorkerPool

log = logging.getLogger(__name__)

#: Seconds a worker process may take, after "stop", to send its result
#: (at least; three of its steps when they are slower).
STOP_GRACE_S = 30.0

#: Job states, as a page says them ({minutes}: the job's pause limit).
#: "created" until :meth:`Job.start`; "running" and "paused" are live; the others are final.
STATE_WORDS = {
    "created": "Not started",
    "running": "Running",
    "paused": "Paused",
    "stopped": "Stopped (best image kept)",
    "finished": "Finished",
    "abandoned": "Stopped (nobody was watching)",
    "paused_too_long": "Stopped after {minutes:.0f} minutes paused (best image kept)",
    "failed": "Failed",
}
STATES = tuple(STATE_WORDS)
LIVE = ("running", "paused")


@dataclass(frozen=True)
class JobSnapshot:
    """A consistent copy of a job's progress, safe to read from any thread.

    Attributes:
        state: one of :data:`STATES` ("created" before :meth:`Job.start`).
        step: steps done so far; ``total``: the step budget.
        steps, losses, success_rates: the history, one entry per step.
        best_success_rate: best fraction of masks on target so far.
        target_probs: latest K probabilities of each mask's target class.
        predictions: latest K predicted classes.
        image: latest ``(3, H, W)`` snapshot in [0, 1] (8-bit grid): the
            starting image until the first snapshot, the result's (best)
            image once the job has ended.
        steps_per_s: steps per second of optimisation (the search's own
            clock, as the CLI's bar and the result's ``seconds`` count it:
            loading the model and starting a worker are not steps).
        eta_s: seconds left if the whole budget is used (None when unknown).
        elapsed_s: wall time spent running (pauses excluded), loading included.
        optimisation_s: the search's own seconds so far (``Result.seconds`` at the end).
        succeeded: every mask hit its target (on the 8-bit image).
        result: the final :class:`Result` once the job has ended, else None
            (also after an end before the first step: a starting image is
            no result, and handed on it would replace the one Explore shows).
        error: the one-sentence reason when ``state == "failed"``.
        waiting_behind: while the pool's every worker is busy and this job
            waits its turn, how many jobs are ahead of it (0: next); else None.
    """

    state: str
    step: int
    total: int
    steps: tuple[int, ...]
    losses: tuple[float, ...]
    success_rates: tuple[float, ...]
    best_success_rate: float
    target_probs: tuple[float, ...]
    predictions: tuple[int, ...]
    image: torch.Tensor | None
    steps_per_s: float
    eta_s: float | None
    elapsed_s: float
    optimisation_s: float
    succeeded: bool
    result: Result | None
    error: str | None
    waiting_behind: int | None = None

    @property
    def live(self) -> bool:
        return self.state in LIVE

    @property
    def fraction(self) -> float:
        """Progress through the step budget, in [0, 1]: full once the run has
        finished (success before the budget, or the budget spent); a run
        stopped or failed part-way stays where it ended."""
        if self.state == "finished":
            return 1.0
        return min(1.0, self.step / max(1, self.total))


@dataclass
class _History:
    steps: list[int] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    success_rates: list[float] = field(default_factory=list)


class Job:
    """One universal-image optimisation running in the background.

    Args:
        model: a frozen :class:`Classifier`; may be shared with other jobs.
        config: the optimisation's :class:`Config`.
        idle_timeout: stop when neither :meth:`snapshot` nor :meth:`touch`
            was called for this many seconds (None: never).
        pause_limit: stop a job paused this many seconds in one go (None:
            never): a paused run keeps its worker, which a capped pool's
            waiting runs need (state "paused_too_long", best image kept).
        pool: run the search in one of this pool's worker processes instead
            of a thread of this process (same results, same controls).

    Raises:
        UmaskError: the config cannot make a search (bad K for the layout,
            image too small, bad targets), raised here, before any thread.
    """

    def __init__(
        self,
        model: Classifier,
        config: Config,
        *,
        idle_timeout: float | None = 60.0,
        pause_limit: float | None = None,
        pool: WorkerPool | None = None,
    ) -> None:
        # Built here even for a pool: a bad config fails now, in the caller,
        # and the starting image is the first frame.
        self.search = UniversalSearch(model, config)
        self.pool = pool
        self._worker: Worker | None = None  # the process running it (pool only)
        self.config = config
        self.model = model
        self.idle_timeout = idle_timeout
        self.pause_limit = pause_limit
        self._paused_at: float | None = None  # monotonic time of the current pause
        self._lock = threading.Lock()
        self._resume = threading.Event()
        self._resume.set()
        self._stop = threading.Event()
        self._shown = threading.Event()  # something to show: see wait_for_first_step
        self._stop_asked: float | None = None  # monotonic time of the first stop()
        self._thread: threading.Thread | None = None
        self._state = "created"
        self._history = _History()
        self._latest = None  # the latest StepReport
        # The starting image is the first frame: a viewer sees it at once,
        # not one snapshot period later.
        self._image: torch.Tensor | None = quantise(self.search.pixels().detach()).cpu()
        self._image_made: tuple[int, float] | None = None  # (step, seconds) of the latest step snapshot
        self._result: Result | None = None
        self._error: str | None = None
        self._started_at: float | None = None  # start of the current running stretch
        self._stopped_as: str | None = None  # the final state of a job that stopped itself: abandoned / paused_too_long
        self._run_s = 0.0  # wall time spent running, pauses excluded
        self._heartbeat = time.monotonic()
        self._succeeded = False
        self._waiting_behind: int | None = None

    # ------------------------------------------------------------ control ---

    def describe(self, state: str) -> str:
        """A state of this job in words ("Stopped after 10 minutes paused (best image kept)")."""
        return STATE_WORDS[state].format(minutes=(self.pause_limit or 0) / 60)

    @property
    def targets(self) -> tuple[int, ...]:
        return self.search.targets

    @property
    def labels(self) -> torch.Tensor:
        return self.search.labels

    def start(self) -> "Job":
        """Start the worker thread (once); returns self."""
        with self._lock:
            if self._thread is not None:
                return self
            self._state = "running"
            self._started_at = time.perf_counter()
            self._heartbeat = time.monotonic()
            self._thread = threading.Thread(target=self._work, name=f"umask-job-{id(self):x}", daemon=True)
        self._thread.start()
        return self

    def pause(self) -> None:
        """Hold the worker between two steps; the image and history are kept."""
        with self._lock:
            if self._state != "running":
                return
            self._state = "paused"
            self._paused_at = time.monotonic()
            self._resume.clear()
            self._close_clock_locked()
            self._tell_locked("pause")

    def resume(self) -> None:
        """Continue a paused job."""
        with self._lock:
            if self._state != "paused":
                return
            self._state = "running"
            self._started_at = time.perf_counter()
            self._heartbeat = time.monotonic()
            self._resume.set()
            self._tell_locked("resume")

    def stop(self) -> None:
        """End the job after the current step; the result keeps the best image so far."""
        with self._lock:
            self._stop_locked()

    def _stop_locked(self) -> None:
        if self._stop_asked is None:
            self._stop_asked = time.monotonic()
        self._stop.set()
        self._resume.set()
        self._tell_locked("stop")

    def _tell_locked(self, command: str) -> None:
        """Forward a control command to the worker process (pool jobs, once it runs).

        Sent under the job's lock, so commands reach the worker in the order
        they were given, and none falls between "run" and the worker's attachment.
        """
        worker = self._worker
        if worker is not None:
            try:
                worker.send(command, id(self))
            except UmaskError:
                pass  # the process is gone; the collecting thread reports it

    def touch(self) -> None:
        """Heartbeat: someone is still watching."""
        self._heartbeat = time.monotonic()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the worker ends (or ``timeout`` s pass); True when it has ended."""
        if self._thread is None:
            return False
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def wait_for_first_step(self, timeout: float) -> bool:
        """Block until the run has a step to show, a place in the pool's line,
        or has ended, at most ``timeout`` s; True when it has. The page that
        starts a run waits here once, so its first frame is the run's first
        step (or its place in line), not a "starting" line that the next
        poll replaces seconds later."""
        return self._shown.wait(timeout)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def snapshot(self, *, touch: bool = True) -> JobSnapshot:
        """A consistent copy of the progress (and, by default, a heartbeat)."""
        if touch:
            self.touch()
        with self._lock:
            hist = self._history
            latest = self._latest
            step = len(hist.steps)
            elapsed = self._elapsed_locked()
            # Rounded as Result.seconds is, so the progress line and the verdict
            # never differ in the last digit shown (0.0499 s: "0.0" against "0.1").
            optimising = round(latest.seconds, SECONDS_DECIMALS) if latest else 0.0
            rate = step / optimising if optimising > 0 and step else 0.0
            left = self.config.steps - step
            if self._state not in LIVE:
                eta = 0.0
            else:
                eta = left / rate if rate > 0 else None
            return JobSnapshot(
                state=self._state,
                step=step,
                total=self.config.steps,
                steps=tuple(hist.steps),
                losses=tuple(hist.losses),
                success_rates=tuple(hist.success_rates),
                best_success_rate=latest.best_success_rate if latest else 0.0,
                target_probs=latest.target_probs if latest else (),
                predictions=latest.predictions if latest else (),
                image=self._image,
                steps_per_s=rate,
                eta_s=eta,
                elapsed_s=elapsed,
                optimisation_s=optimising,
                succeeded=self._succeeded,
                result=self._result,
                error=self._error,
                waiting_behind=self._waiting_behind,
            )

    # ------------------------------------------------------------- worker ---

    def _elapsed_locked(self) -> float:
        # _started_at is None while paused, ended, or not yet started.
        if self._started_at is None:
            return self._run_s
        return self._run_s + (time.perf_counter() - self._started_at)

    def _idle(self) -> bool:
        return self.idle_timeout is not None and time.monotonic() - self._heartbeat > self.idle_timeout

    def _wait_while_paused(self) -> None:
        """Block while paused; wakes for stop, resume, or an expired heartbeat
        (whose stop sets ``_resume`` too)."""
        while not self._resume.wait(timeout=0.2):
            self._stop_if_unattended()

    def _work(self) -> None:
        try:
            if self.pool is None:
                self._run_here()
            else:
                self._run_in_process()
        except UmaskError as err:
            self._fail(str(err))
        except Exception as err:  # a worker must never die silently: report it to the page
            log.exception("job %x failed", id(self))
            self._fail(run_failure(err))

    def _run_here(self) -> None:
        if self._stop.is_set():  # stopped before it began: not one step (as in a process)
            self._finish(None)
            return
        for report in self.search:
            self._record(report)
            if not self._resume.is_set() and not report.last:  # Pause on the last step: nothing left to hold
                self._wait_while_paused()
            self._stop_if_unattended()
            if self._stop.is_set():
                break
        self._finish(self.search.result())

    def _run_in_process(self) -> None:
        if self._stop.is_set():  # stopped before it began: no process needed
            self._finish(None)
            return
        worker = self.pool.acquire(self.model, give_up=self._give_up_waiting, on_wait=self._set_waiting)
        if worker is None:  # stopped (or abandoned) while it waited its turn
            self._finish(None)
            return
        with self._lock:
            # The clock counts the run, not the wait for a worker.
            self._run_s = 0.0
            if self._started_at is not None:
                self._started_at = time.perf_counter()
        clean = False  # the worker ended our run ("done" or "failed")
        try:
            with self._lock:
                worker.send("run", id(self), worker.load(self.model), self.config, self.search.labels.cpu(),
                            self.pool.threads)
                # From here on pause/resume/stop go to the worker; catch up on
                # any given while it was being acquired.
                self._worker = worker
                if self._state == "paused":
                    self._tell_locked("pause")
                if self._stop.is_set():
                    self._tell_locked("stop")
            # The step's own time (the search's clock), not the gap between
            # messages: a pause must not stretch the stop grace below.
            step_s, last = 0.0, 0.0
            while True:
                message = worker.recv(timeout=0.2)
                if message is None:  # no step this long: paused, or a slow step
                    self._stop_if_unattended()
                    self._check_stopping(worker, step_s)
                    continue
                kind, job_id, payload = message
                if job_id != id(self):
                    continue  # cannot happen with a clean worker; never let it count as ours
                if kind == "step":
                    step_s, last = payload.seconds - last, payload.seconds
                    self._record(payload)
                    self._stop_if_unattended()
                else:  # "done" or "failed": the worker is free again
                    clean = True
                    break
        finally:
            with self._lock:
                self._worker = None
            self.pool.release(worker, clean=clean)
        # Only now, with the worker back in the pool: the page's rerun on
        # "finished" must find it idle, not start another process.
        if kind == "done":
            self._finish(payload)
        else:
            self._fail(payload)

    def _give_up_waiting(self) -> bool:
        self._stop_if_unattended()  # a closed tab's job leaves the line too
        return self._stop.is_set()

    def _set_waiting(self, ahead: int | None) -> None:
        with self._lock:
            self._waiting_behind = ahead
        if ahead is not None:
            self._shown.set()  # a place in line is news to show too

    def _check_stopping(self, worker: Worker, step_s: float) -> None:
        """A worker that does not answer "stop" in time is ended, so no run outlives its job."""
        asked = self._stop_asked
        if asked is None:
            return
        grace = max(STOP_GRACE_S, 3 * step_s)
        if time.monotonic() - asked > grace:
            worker.close()
            raise UmaskError(f"The worker process did not stop within {grace:.0f} s and was ended.")

    def _record(self, report) -> None:
        with self._lock:
            self._history.steps.append(report.step)
            self._history.losses.append(report.loss)
            self._history.success_rates.append(report.success_rate)
            self._latest = report
            self._succeeded = self._succeeded or report.done
            if report.image is not None:
                self._image = report.image
                self._image_made = (report.step, report.seconds)
        self._shown.set()

    def _stop_if_unattended(self) -> None:
        """Stop a job nobody watches, or one paused longer than its limit (called while it waits too)."""
        # Decided and done under the lock: a stop() or resume() cannot slip in
        # between and have its own ending named "abandoned" or "paused too long".
        with self._lock:
            if self._stop.is_set():
                return
            if self._idle():
                log.info("job %x: nobody polled for %.0f s, stopping", id(self), self.idle_timeout)
                self._stopped_as = "abandoned"
                self._stop_locked()
            elif (self.pause_limit is not None and self._state == "paused"
                  and time.monotonic() - self._paused_at > self.pause_limit):
                log.info("job %x: paused for %.0f s, stopping", id(self), self.pause_limit)
                self._stopped_as = "paused_too_long"
                self._stop_locked()

    def _finish(self, result: Result | None) -> None:
        """End the job; ``result`` None: it ended before its first step, with nothing to keep."""
        with self._lock:
            self._result = result
            if result is not None:
                self._image = result.image  # the best image so far, as saved
            self._state = self._stopped_as or ("stopped" if self._stop.is_set() else "finished")
            self._close_clock_locked()
        self._shown.set()

    def _close_clock_locked(self) -> None:
        if self._started_at is not None:
            self._run_s += time.perf_counter() - self._started_at
            self._started_at = None

    def _fail(self, message: str) -> None:
        kept = self._salvage()
        with self._lock:
            self._error = message
            if kept is not None:  # Stop's promise holds even when the run ends badly
                self._result, self._image = kept, kept.image
                self._error = f"{message.rstrip('.')}; the image of step {kept.steps} is kept."
            self._state = "failed"
            self._close_clock_locked()
        self._shown.set()

    def _salvage(self) -> Result | None:
        """The best a failed run leaves: in a thread, the search's best image;
        from a worker process that is gone, its latest snapshot (None: no step yet)."""
        try:
            if self.pool is None:
                return self.search.result() if self.search.steps_done else None
            with self._lock:
                image, made = self._image, self._image_made
            if made is None:
                return None
            return self.search.result_of(image, steps=made[0], seconds=made[1])
        except Exception:  # the model itself may be what failed: nothing to keep then
            log.exception("job %x: nothing could be kept", id(self))
            return None
