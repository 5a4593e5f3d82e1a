"""The background job runner: results, pause/resume/stop, heartbeat, parallel jobs.

Every behaviour is checked twice: the search in a thread of this process, and
in a worker process of a :class:`~umask.workers.WorkerPool` (the dashboard's way).
"""

from __future__ import annotations

import os
import re
import signal
import time

import pytest
import torch

from tests.conftest import failing_classifier, small, thread_counting_classifier, tiny_classifier
from umask.config import Config
from umask.errors import UmaskError
from umask.evaluate import classify_masked
from umask.images import quantise
from umask import jobs
from umask.jobs import STATES, Job
from umask.optimise import UniversalSearch
from umask.workers import WorkerPool



def endless(**kw) -> Config:
    """A run that would go on for a long time: the test ends it."""
    return small(steps=1_000_000, stop_at_success=False, **kw)


@pytest.fixture(scope="module")
def pool():
    pool = WorkerPool(max_idle=2)
    pool.prewarm()  # a warm worker, as the dashboard has one: timeouts below are for steps, not torch imports
    wait_for(lambda: pool.idle_count == 1, timeout=120)
    yield pool
    pool.close()


@pytest.fixture(params=["thread", "process"])
def where(request) -> dict:
    """Job keyword arguments: run in a thread here, or in a worker process."""
    return {} if request.param == "thread" else {"pool": request.getfixturevalue("pool")}


def wait_for(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


def steady_step(job: Job, quiet_s: float = 1.0, timeout: float = 20.0) -> int:
    """The job's step count once it has not moved for ``quiet_s`` seconds."""
    deadline = time.monotonic() + timeout
    step, since = job.snapshot().step, time.monotonic()
    while time.monotonic() - since < quiet_s:
        assert time.monotonic() < deadline, "the job kept stepping"
        time.sleep(0.02)
        now = job.snapshot().step
        if now != step:
            step, since = now, time.monotonic()
    return step


def test_the_first_step_can_be_waited_for(tiny, where):
    """What the page that starts a run waits for, so its first frame shows a step."""
    job = Job(tiny, small().replace(steps=10_000, stop_at_success=False), **where)
    assert not job.wait_for_first_step(0.05)  # not started: nothing to show
    job.start()
    try:
        assert job.wait_for_first_step(60)
        snap = job.snapshot()
        assert snap.step >= 1 and snap.image is not None and snap.live
    finally:
        job.stop()
        job.wait(30)
    # A run that ends without a step (stopped before its first) does not keep a page waiting.
    early = Job(tiny, small(), **where)
    early.stop()
    early.start()
    assert early.wait_for_first_step(60) and early.wait(30)


def test_job_gives_the_same_result_as_a_plain_search(tiny, where):
    job = Job(tiny, small(), **where).start()
    assert job.wait(30)
    snap = job.snapshot()
    assert snap.state == "finished" and not snap.live and snap.succeeded
    plain = UniversalSearch(tiny_classifier(), small()).run()
    result = snap.result
    assert result.success_rate == 1.0 and result.targets == plain.targets
    assert torch.equal(result.image, plain.image) and result.steps == plain.steps
    # The history has one entry per step, and the final frame is the saved image.
    assert snap.steps == tuple(range(1, result.steps + 1))
    assert len(snap.losses) == len(snap.success_rates) == result.steps
    assert snap.success_rates[-1] == 1.0 and snap.best_success_rate == 1.0
    assert torch.equal(snap.image, result.image)
    assert snap.fraction == 1.0 and snap.eta_s == 0.0
    # The speed is the optimisation's, as the result counts its seconds (a worker's start-up is no step).
    # Exactly the result's seconds: the page's progress line and its verdict show the same figure.
    assert snap.optimisation_s == result.seconds and snap.optimisation_s <= snap.elapsed_s
    assert snap.steps_per_s == pytest.approx(result.steps / snap.optimisation_s)
    assert len(snap.target_probs) == len(snap.predictions) == 4


def test_pause_holds_the_worker_and_resume_continues(tiny, where):
    job = Job(tiny, endless(), **where).start()
    wait_for(lambda: job.snapshot().step >= 5)
    job.pause()
    assert job.snapshot().state == "paused" and job.snapshot().live
    settled = steady_step(job)  # the step in flight (and, for a process, the one in the pipe) lands
    time.sleep(0.3)
    assert job.snapshot().step == settled  # nothing moves while paused
    job.resume()
    wait_for(lambda: job.snapshot().step > settled + 5)
    assert job.snapshot().state == "running"
    job.stop()
    assert job.wait(10)


def test_stop_keeps_the_best_image_so_far(tiny, where):
    # Large signed steps: the success rate climbs and falls back again and again.
    job = Job(tiny, endless(k=6, optimizer="sign", lr=0.2), **where).start()
    wait_for(lambda: job.snapshot().step >= 30, timeout=60)
    job.stop()
    assert job.wait(10)
    snap = job.snapshot()
    # Stopped before the worker ran a step: nothing; after: that step's image (a worker always finishes the step it began).
    assert snap.state == "stopped" and (snap.result is None) == (snap.step == 0)
    result = snap.result
    assert result.steps == snap.step < 1_000_000
    # The result's numbers are the engine's, measured on its own 8-bit image:
    # the best step's rate, not the last step's (which mostly sits lower).
    check = classify_masked(tiny, result.image, job.search.masks, targets=result.targets)
    assert check.predictions == result.predictions and check.success_rate == result.success_rate
    assert result.success_rate == snap.best_success_rate == max(snap.success_rates)
    assert snap.fraction == snap.step / snap.total < 1.0  # a bar stays where the run was stopped


def test_pause_on_the_last_step_still_finishes(tiny, where):
    # One step in all: whenever Pause lands, no step is left to hold.
    job = Job(tiny, small(steps=1, stop_at_success=False), **where).start()
    job.pause()
    assert job.wait(10)
    snap = job.snapshot()
    assert snap.state == "finished" and snap.result is not None and snap.result.steps == 1


def test_stop_while_paused_ends_the_job(tiny, where):
    job = Job(tiny, endless(), **where).start()
    wait_for(lambda: job.snapshot().step >= 3)
    job.pause()
    job.stop()
    assert job.wait(5)
    assert job.snapshot().state == "stopped" and job.snapshot().result is not None


def test_an_unwatched_job_stops_by_itself(tiny, where):
    # A closed browser tab stops polling: the worker must end within a bounded time.
    job = Job(tiny, endless(), idle_timeout=1.0, **where).start()
    wait_for(lambda: job.snapshot().step >= 1, timeout=60)  # watched until it steps (each look is a heartbeat)
    assert job.wait(10), "the worker kept running with nobody polling"
    snap = job.snapshot(touch=False)
    assert snap.state == "abandoned" and snap.result is not None and snap.step > 0


def test_an_unwatched_paused_job_stops_too(tiny, where):
    job = Job(tiny, endless(), idle_timeout=0.3, **where).start()
    job.pause()
    assert job.wait(5)
    assert job.snapshot(touch=False).state == "abandoned"


def test_a_job_paused_past_its_limit_stops_with_its_best_image(tiny, where):
    # A paused run holds a worker that a capped pool's waiting runs need.
    job = Job(tiny, endless(), pause_limit=0.5, **where).start()
    wait_for(lambda: job.snapshot().step >= 2, timeout=60)
    job.pause()
    assert job.wait(10), "a paused job outlived its pause limit"
    snap = job.snapshot()
    assert snap.state == "paused_too_long" and snap.result is not None and snap.result.steps >= 2
    # Every state has its words (the Generate page's status line); the limit as the job has it.
    assert all(job.describe(state) for state in STATES) and "created" in STATES
    assert Job(tiny, endless(), pause_limit=600).describe(snap.state) == "Stopped after 10 minutes paused (best image kept)"
    resumed = Job(tiny, endless(), pause_limit=0.5, **where).start()
    wait_for(lambda: resumed.snapshot().step >= 1, timeout=60)
    resumed.pause()
    resumed.resume()  # a pause shorter than the limit: the run goes on
    time.sleep(1.0)
    assert resumed.snapshot().state == "running"
    resumed.stop()
    assert resumed.wait(10)


def test_a_polled_job_keeps_running(tiny, where):
    job = Job(tiny, endless(), idle_timeout=1.0, **where).start()
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        assert job.snapshot().state == "running"  # snapshot() is the heartbeat
        time.sleep(0.05)
    job.stop()
    assert job.wait(5) and job.snapshot().state == "stopped"


def test_two_jobs_share_one_model_without_disturbing_each_other(tiny, where):
    # Two sessions, one frozen model: each job must give exactly what it
    # gives alone (no shared gradients, no shared state).
    configs = [small(seed=1, k=4, steps=300, stop_at_success=False),
               small(seed=2, k=6, mask_family="grid", targets=tuple(range(10, 16)), steps=300, stop_at_success=False)]
    if where:  # two warm workers, as two sessions on a warm server have
        pool = where["pool"]
        for worker in [pool.acquire(tiny), pool.acquire(tiny)]:
            pool.release(worker)
    # They really run at the same time: each is held (Pause) once it steps,
    # until the other steps too, then both go on together. A pause changes
    # nothing in a run, and on a busy machine the first could end otherwise
    # before the second's worker has started.
    jobs = []
    for cfg in configs:
        jobs.append(Job(tiny, cfg, **where).start())
        wait_for(lambda: jobs[-1].snapshot().step > 0, timeout=60)
        jobs[-1].pause()
    assert all(0 < job.snapshot().step < 300 and job.snapshot().live for job in jobs)
    for job in jobs:
        job.resume()
    assert all(job.snapshot().state == "running" for job in jobs)
    assert all(job.wait(60) for job in jobs)
    for job, cfg in zip(jobs, configs):
        alone = UniversalSearch(tiny_classifier(), cfg).run()
        result = job.snapshot().result
        assert job.snapshot().state == "finished"
        assert result.targets == alone.targets and torch.equal(result.image, alone.image)
        assert result.success_rate == 1.0
    assert jobs[0].snapshot().result.targets != jobs[1].snapshot().result.targets
    assert all(not p.requires_grad and p.grad is None for p in tiny.parameters())


def test_a_bad_config_fails_before_any_thread(tiny):
    with pytest.raises(UmaskError, match="more parts"):
        Job(tiny, small(k=40))  # 40 stripes do not fit 16 rows
    with pytest.raises(UmaskError, match="too small"):
        Job(tiny, small(size=2, k=2))


@pytest.mark.parametrize("error,message", [
    # A crash: named as it is (a RuntimeError that merely says "out of memory" is no allocation failure).
    (RuntimeError("out of memory"), "The optimisation failed: RuntimeError: out of memory"),
    (torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
     "The optimisation ran out of memory; use a smaller image or fewer masks (or another device)."),
])
def test_a_crash_in_the_worker_is_reported_in_one_sentence_not_raised(where, error, message):
    job = Job(failing_classifier(error), small(model="failing"), **where).start()
    assert job.wait(10)
    snap = job.snapshot()
    assert snap.state == "failed" and snap.result is None
    assert snap.error == message


def test_a_worker_runs_with_the_pools_thread_count():
    """Each run gets its share of the cores, not torch's default of all of them."""
    threads = (os.cpu_count() or 1) + 1  # never torch's default, on any machine
    pool = WorkerPool(max_idle=1, threads=threads)
    try:
        job = Job(thread_counting_classifier(), small(model="threads"), pool=pool).start()
        assert job.wait(120)
        assert job.snapshot().error == f"The optimisation failed: RuntimeError: torch threads: {threads}"
    finally:
        pool.close()


def test_snapshot_before_start_and_progress_numbers(tiny, where):
    job = Job(tiny, small(steps=50, stop_at_success=False), **where)
    snap = job.snapshot()
    assert snap.state == "created" and snap.step == 0 and snap.fraction == 0.0
    assert torch.equal(snap.image, quantise(job.search.pixels().detach()))  # the first frame: the start
    job.start()
    assert job.wait(30)
    snap = job.snapshot()
    assert snap.step == 50 and snap.result.steps == 50 and snap.fraction == 1.0


def test_a_worker_process_that_dies_fails_the_job_with_one_sentence(tiny, pool):
    job = Job(tiny, endless(), pool=pool).start()
    wait_for(lambda: job.snapshot().step >= 7)  # a snapshot (every 5 steps) has arrived
    job._worker.process.kill()  # as the kernel's out-of-memory killer would
    assert job.wait(10)
    snap = job.snapshot()
    assert snap.state == "failed" and snap.fraction < 1.0
    # The latest snapshot that reached this process is kept, measured here on its 8-bit form.
    made = max(step for step in snap.steps if step % 5 == 0)  # small() snapshots every 5 steps
    assert snap.error == f"The worker process has ended (exit code -9); the image of step {made} is kept."
    assert snap.result.steps == made and torch.equal(snap.image, snap.result.image)
    measured = classify_masked(tiny, snap.result.image, job.search.masks, targets=snap.result.targets)
    assert snap.result.predictions == measured.predictions
    assert snap.step >= 7  # the history so far stays on the page


def test_a_run_that_fails_mid_way_in_a_thread_keeps_its_best_image(tiny, monkeypatch):
    job = Job(tiny, endless())
    steps = iter(job.search)  # the real steps; the 12th fails, as a step that runs out of memory

    def failing_after_eleven():
        for report in steps:
            yield report
            if report.step == 11:
                raise RuntimeError("out of memory")

    monkeypatch.setattr(UniversalSearch, "__iter__", lambda self: failing_after_eleven())
    job.start()
    assert job.wait(10)
    snap = job.snapshot()
    assert snap.state == "failed" and snap.result is not None and snap.result.steps == 11
    assert snap.error == "The optimisation failed: RuntimeError: out of memory; the image of step 11 is kept."
    assert torch.equal(snap.result.image, job.search.best_image())


def test_prewarm_readies_a_worker_that_holds_the_model(tiny):
    pool = WorkerPool(max_idle=1)
    try:
        pool.prewarm(tiny)
        pool.prewarm(tiny)  # a second call while the first works does nothing
        wait_for(lambda: pool.idle_count == 1, timeout=60)
        worker = pool.acquire(tiny)
        assert worker.has(tiny) and worker.alive
        pool.release(worker)
        assert pool.idle_count == 1
    finally:
        pool.close()
    assert not worker.alive


def test_a_model_asked_for_while_prewarm_loads_another_is_loaded_too(tiny, monkeypatch):
    import threading

    from umask.workers import Worker

    other, loading, go = tiny_classifier(seed=1), threading.Event(), threading.Event()
    real_load = Worker.load

    def slow_load(worker, model):
        if model is tiny:  # hold the first load until the page has asked for another model
            loading.set()
            assert go.wait(60)
        return real_load(worker, model)

    monkeypatch.setattr(Worker, "load", slow_load)
    pool = WorkerPool(max_idle=1)
    try:
        pool.prewarm(tiny)
        assert loading.wait(60)
        pool.prewarm(other)  # the user picked another model while the first loaded
        go.set()
        wait_for(lambda: pool.idle_count == 1, timeout=60)
        (ready,) = pool._idle  # before a click: acquire would load the model itself
        assert ready.has(other) and ready.has(tiny)
    finally:
        pool.close()


def test_a_job_waiting_for_the_prewarmed_worker_is_not_kept_waiting_for_another_model(tiny, monkeypatch):
    import threading

    from umask.workers import Worker

    other, loading, go = tiny_classifier(seed=1), threading.Event(), threading.Event()
    real_load, asked = Worker.load, []

    def slow_load(worker, model):
        asked.append(model)
        if model is tiny and not go.is_set():
            loading.set()
            assert go.wait(60)
        return real_load(worker, model)

    monkeypatch.setattr(Worker, "load", slow_load)
    pool = WorkerPool(max_idle=1)
    got = []
    try:
        pool.prewarm(tiny)
        assert loading.wait(60)
        clicked = threading.Thread(target=lambda: got.append(pool.acquire(tiny)))
        clicked.start()  # a click: it waits for the worker being readied
        wait_for(lambda: len(pool._line) == 1, timeout=10)
        pool.prewarm(other)  # another tab's page run, meanwhile: the waiting job comes first
        go.set()
        clicked.join(60)
        assert got and got[0].has(tiny) and not any(m is other for m in asked)
        pool.release(got[0])
    finally:
        pool.close()


def test_a_worker_prewarmed_while_a_job_waits_loads_only_the_jobs_model(tiny, monkeypatch):
    import threading

    from umask.workers import Worker

    other, starting, go = tiny_classifier(seed=1), threading.Event(), threading.Event()
    real_load, real_ready, asked = Worker.load, Worker.wait_ready, []

    def slow_ready(worker):  # the process is importing torch until the job is in line
        starting.set()
        assert go.wait(60)
        return real_ready(worker)

    monkeypatch.setattr(Worker, "wait_ready", slow_ready)
    monkeypatch.setattr(Worker, "load", lambda worker, model: (asked.append(model), real_load(worker, model))[1])
    pool = WorkerPool(max_idle=1)
    got = []
    try:
        pool.prewarm(tiny)  # the page, for the model it shows
        assert starting.wait(60)
        clicked = threading.Thread(target=lambda: got.append(pool.acquire(other)))
        clicked.start()  # a click for another model, while the process starts
        wait_for(lambda: len(pool._line) == 1, timeout=10)
        go.set()
        clicked.join(60)
        assert got and got[0].has(other) and not any(m is tiny for m in asked)  # no load the job waited for in vain
        pool.release(got[0])
    finally:
        pool.close()


def test_a_job_stopped_before_it_starts_runs_no_step(tiny, where):
    job = Job(tiny, endless(), **where)
    job.stop()
    job.start()
    assert job.wait(30)
    snap = job.snapshot()
    assert snap.state == "stopped" and snap.step == 0 and snap.result is None


def test_stop_before_the_worker_is_attached_ends_the_job(tiny, pool):
    job = Job(tiny, endless(), pool=pool).start()
    job.stop()  # at once: the job's thread may not have a worker yet
    assert job.wait(30)
    snap = job.snapshot()
    # Stopped before the worker ran a step: nothing; after: that step's image (a worker always finishes the step it began).
    assert snap.state == "stopped" and (snap.result is None) == (snap.step == 0)


def test_a_worker_reused_after_a_stop_gives_the_next_job_exactly_its_result(tiny, pool):
    first = Job(tiny, endless(), pool=pool).start()
    wait_for(lambda: first.snapshot().step >= 5)
    first.stop()
    assert first.wait(10)
    started = pool.started
    second = Job(tiny, small(), pool=pool).start()
    assert second.wait(30)
    plain = UniversalSearch(tiny, small()).run()
    got = second.snapshot()
    assert got.state == "finished" and got.result.steps == plain.steps
    assert got.steps == tuple(range(1, plain.steps + 1))  # no step of the first job slipped in
    assert torch.equal(got.result.image, plain.image)
    assert pool.started == started  # the warm worker was reused, not a new process


def test_a_click_during_prewarm_waits_for_that_worker_instead_of_starting_another(tiny):
    pool = WorkerPool(max_idle=1)
    try:
        pool.prewarm(tiny)
        worker = pool.acquire(tiny)  # the prewarm's process is still importing torch
        assert worker.has(tiny) and pool.started == 1
        pool.release(worker)
    finally:
        pool.close()


def test_a_worker_keeps_at_most_two_models_and_reloads_a_dropped_one(pool):
    models = [tiny_classifier() for _ in range(3)]
    worker = pool.acquire(models[0])
    try:
        for m in models[1:]:
            worker.load(m)
        assert [worker.has(m) for m in models] == [False, True, True]
    finally:
        pool.release(worker)
    job = Job(models[0], small(), pool=pool).start()  # the dropped model is sent again
    assert job.wait(30) and job.snapshot().state == "finished"


def test_a_worker_that_ignores_stop_is_ended(tiny, pool, monkeypatch):
    monkeypatch.setattr(jobs, "STOP_GRACE_S", 1.0)
    job = Job(tiny, endless(), pool=pool).start()
    wait_for(lambda: job.snapshot().step >= 7)
    process = job._worker.process
    os.kill(process.pid, signal.SIGSTOP)  # hung, as in a wedged native call
    job.stop()
    assert job.wait(15)
    snap = job.snapshot()
    made = max(step for step in snap.steps if step % 5 == 0)
    assert snap.state == "failed" and snap.result.steps == made
    # The grace is 1 s or three steps, whichever is longer (a loaded machine's steps took over 0.5 s),
    # so only the sentence is checked here, not the number in it.
    grace = re.fullmatch(rf"The worker process did not stop within (\d+) s and was ended; the image of step {made} is kept\.",
                         snap.error)
    assert grace is not None and int(grace.group(1)) >= 1, snap.error
    assert not process.is_alive()


def test_a_finished_run_has_given_its_worker_back(tiny):
    # The page reruns when it sees "finished" and prewarms a worker: it must
    # find this one idle, not start a second process.
    pool = WorkerPool(max_idle=1)
    release = pool.release

    def slow_release(worker, clean=True):  # widens the window a late release would leave open
        time.sleep(0.3)
        release(worker, clean=clean)

    pool.release = slow_release
    try:
        job = Job(tiny, small(steps=3), pool=pool).start()
        deadline = time.monotonic() + 60
        while job.snapshot().state not in ("finished", "stopped", "failed"):
            assert time.monotonic() < deadline
            time.sleep(0.001)
        assert pool.idle_count == 1 and pool.started == 1
    finally:
        pool.close()


# ------------------------------------------------ at most max_workers runs ---


@pytest.fixture
def busy_pool(tiny):
    """A pool capped at one process, that process busy with an endless job: (pool, that job)."""
    pool = WorkerPool(max_idle=1, max_workers=1)
    try:
        first = Job(tiny, endless(), pool=pool).start()
        wait_for(lambda: first.snapshot().step >= 3, timeout=120)
        yield pool, first
        first.stop()
        assert first.wait(30)
    finally:
        pool.close()


def test_a_job_beyond_the_cap_waits_its_turn_then_runs_on_the_freed_worker(tiny, busy_pool):
    pool, first = busy_pool
    second = Job(tiny, small(), pool=pool).start()
    # Its place in line is news the page shows at once: the click that started it stops waiting for a first step.
    assert second.wait_for_first_step(30) and second.snapshot().step == 0
    third = Job(tiny, small(), pool=pool).start()
    wait_for(lambda: third.snapshot().waiting_behind == 1)
    snap = second.snapshot()
    assert snap.waiting_behind == 0 and snap.step == 0 and snap.state == "running"
    pool.prewarm(tiny)  # no room at the cap: starts nothing
    assert pool.live_count == 1
    time.sleep(1.0)  # a wait in line long enough to tell apart from a run
    freed_at = time.perf_counter()
    first.stop()
    assert first.wait(30) and second.wait(60) and third.wait(60)
    for job in (second, third):
        snap = job.snapshot()
        assert snap.state == "finished" and snap.waiting_behind is None
        assert snap.result.image.equal(UniversalSearch(tiny, small()).run().image)
        # The clock counts the run, not the wait in line: neither could start before the worker came free.
        assert snap.elapsed_s <= time.perf_counter() - freed_at
    assert pool.started == 1  # one process served all three, one after the other


def test_a_job_stopped_while_it_waits_ends_without_a_worker(tiny, busy_pool):
    pool, first = busy_pool
    waiting = Job(tiny, small(), pool=pool).start()
    wait_for(lambda: waiting.snapshot().waiting_behind == 0)
    waiting.stop()
    assert waiting.wait(5)
    snap = waiting.snapshot()
    # No step, no result: the starting image is not one (handed on, it would replace the one Explore shows).
    assert snap.state == "stopped" and snap.step == 0 and snap.result is None
    assert snap.waiting_behind is None  # the page no longer says it waits
    assert first.snapshot().state == "running"


def test_an_unwatched_job_leaves_the_line(tiny, busy_pool):
    pool, first = busy_pool
    orphan = Job(tiny, small(), pool=pool, idle_timeout=0.5).start()  # its tab was closed
    assert orphan.wait(10) and orphan.snapshot(touch=False).state == "abandoned"
    assert first.snapshot().state == "running"


def test_the_cap_follows_the_cores_and_umask_max_runs(monkeypatch):
    from umask import workers

    monkeypatch.delenv("UMASK_MAX_RUNS", raising=False)
    monkeypatch.setattr(workers.os, "cpu_count", lambda: 16)
    assert workers.default_max_workers(threads=4) == 4
    assert workers.default_max_workers(threads=16) == 2  # two users never wait for each other
    monkeypatch.setenv("UMASK_MAX_RUNS", "3")
    assert WorkerPool(threads=1).max_workers == 3
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv("UMASK_MAX_RUNS", bad)
        with pytest.raises(UmaskError) as err:
            WorkerPool(threads=1)
        assert str(err.value) == f"UMASK_MAX_RUNS is '{bad}'; it must be a whole number, 1 or more."


def test_seconds_from_the_environment_are_checked(monkeypatch):
    from umask.env import env_seconds

    monkeypatch.delenv("UMASK_POLL_S", raising=False)
    assert env_seconds("UMASK_POLL_S", 2.0) == 2.0
    monkeypatch.setenv("UMASK_POLL_S", " 0.5 ")
    assert env_seconds("UMASK_POLL_S", 2.0) == 0.5
    for bad in ("0", "fast", "-1", "nan", "inf"):
        monkeypatch.setenv("UMASK_POLL_S", bad)
        with pytest.raises(UmaskError) as err:
            env_seconds("UMASK_POLL_S", 2.0)
        assert str(err.value) == f"UMASK_POLL_S is '{bad}'; it must be a number of seconds above 0, such as 2."


def test_a_switch_from_the_environment_is_0_or_1(monkeypatch):
    from umask.env import env_switch

    monkeypatch.delenv("UMASK_WORKERS", raising=False)
    assert env_switch("UMASK_WORKERS", True) is True
    monkeypatch.setenv("UMASK_WORKERS", "0")
    assert env_switch("UMASK_WORKERS", True) is False
    monkeypatch.setenv("UMASK_WORKERS", "maybe")
    with pytest.raises(UmaskError, match=r"^UMASK_WORKERS is 'maybe'; it must be 1 \(on\) or 0 \(off\).$"):
        env_switch("UMASK_WORKERS", True)
