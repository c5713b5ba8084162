"""The render farm: many shots on a Ray cluster, each shot's frames fanned out in chunks.

Per shot, one *prepare* task runs the plate stage and the lighting stage (one GPU when the cluster has
GPUs, else a CPU budget) and works out which renders are already up to date (``vfxinsert.status``);
then one *render* task per chunk of the remaining frames builds the scene once and renders its frames;
once they are all back, one *handoff* task writes the shot's ``.nk``, ``preview.mp4`` and QC report,
so a submitted shot's folder holds what ``vfxinsert run`` leaves. A :class:`ShotRequest` may name
frames (``--frames``, an edit's clip): only those are rendered, the handoff covers every rendered frame.
The driver gathers a :class:`ShotResult` per shot: frames written / up to date / failed (with reasons),
the handoff's files and timings. Every task appends what it did to the shot log (``shotlog.py``), and
the driver adds why a task failed, so a dead worker's story stays with the shot.

Faults and resume:
- Every task runs in a fresh worker process (``max_calls=1``): a shot's memory (Mitsuba scene, JIT
  kernels, torch) goes away with its task, and one shot cannot leak into the next.
- A worker that dies (killed, out of memory, node lost) is retried by Ray up to ``max_retries`` times.
  EXR writes are atomic (``fsutil``), so a killed worker leaves no half-written frame under a final name,
  and the retry skips the frames that were finished (the stages compare inputs hashes) and redoes the rest.
- Errors are per shot: a shot file that does not load, a stage that fails or a task that keeps dying
  is reported in that shot's result; the other shots go on. Re-submitting a finished shot launches no
  render task and reports "0 frame(s) written, N up to date".
- Tasks exchange small values (shot configs, frame lists, reports); plates and renders go through the
  shared file system, never through Ray's object store.
- On a cluster without GPUs, a task reserves ``cpus_per_task`` CPUs and is pinned to that many free
  cores of its node (:func:`_claim_cores`), so the renderer's threads stay within the reservation.

This is the only module that imports Ray, and only inside functions. Library code: nothing here prints;
progress goes to the ``on_event`` callback and the CLI prints :func:`format_result`.
"""
from __future__ import annotations

import contextlib
import math
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, Sequence

from .config import ShotConfig
from .errors import SetupError, VfxInsertError
from .farmresult import ShotRequest, ShotResult, ShotTimings, format_result, stage_summary
from .outputs import FrameResult, StageReport, insert_path
from .sequences import format_frames
from .shotlog import ShotLog

__all__ = ["ShotRequest", "ShotResult", "ShotTimings", "format_result", "local_ray", "submit"]

if TYPE_CHECKING:
    from .pipeline import Stage

DEFAULT_CHUNK = 10
"""Frames per render task: enough to amortise a worker's start-up and scene build (OpenJD and OpenCue
samples use 10), few enough to spread a shot over many workers."""
DEFAULT_MAX_RETRIES = 2
"""Ray retries of a task whose worker died (application errors are reported, not retried)."""
RAY_PIN = "ray==2.60.0"
"""The Ray this module is tested with (requirements.lock)."""
KILL_MARKER_ENV = "VFXINSERT_TEST_KILL_MARKER"
"""Test-only fault injection (tests/test_farm.py): when this variable names a file that exists in a
render worker's environment, the first worker to write a frame deletes the file and SIGKILLs itself,
as a crashing node would. Unset in production, where the hook does nothing."""

EventCallback = Callable[[str], None]


# --------------------------------------------------------------------------------------------------
# Driver


def submit(shots: Sequence[str | os.PathLike | ShotRequest], address: str | None = None, *,
           chunk: int = DEFAULT_CHUNK, max_retries: int = DEFAULT_MAX_RETRIES, cpus_per_task: float = 1.0,
           force: Stage | None = None, on_event: EventCallback | None = None) -> list[ShotResult]:
    """Run every stage of every shot on Ray and return one :class:`ShotResult` per shot, in order.

    ``shots``: shot files, or :class:`ShotRequest` for only some frames of a shot. ``force``: redo that
    stage and the later ones even where they are up to date (``pipeline.forced``).

    ``address``: a running cluster (``auto`` on one of its nodes, ``host:6379``, or ``ray://host:10001``
    with Ray Client); None: ``$RAY_ADDRESS`` when set (as in a ``ray job submit`` entrypoint), else a
    local Ray started on this machine for the call (:func:`local_ray`). A process already connected to
    Ray uses that connection. ``chunk``: frames per render task. ``max_retries``: retries of a task whose worker
    died. ``cpus_per_task``: the CPU budget of each task on a cluster without GPUs (with GPUs, each
    task takes one GPU). ``on_event``: called with one line per step as shots progress (farm logs).
    A shot's failure is in its result; VfxInsertError only for bad arguments or no Ray.
    """
    if chunk < 1:
        raise VfxInsertError(f"chunk = {chunk} frames per render task", where="farm submit",
                             fix="use a chunk of 1 frame or more (default 10)")
    if max_retries < 0:
        raise VfxInsertError(f"max_retries = {max_retries}", where="farm submit",
                             fix="use 0 (no retry) or more (default 2)")
    if not cpus_per_task > 0:
        raise VfxInsertError(f"cpus_per_task = {cpus_per_task}", where="farm submit", fix="use a positive number")
    with _connected(address) as ray:
        driver = _Driver(ray, chunk, max_retries, cpus_per_task, force, on_event or (lambda line: None))
        return driver.run([s if isinstance(s, ShotRequest) else ShotRequest(Path(s)) for s in shots])


@contextlib.contextmanager
def local_ray(num_cpus: int | None = None) -> Iterator[str]:
    """Start a Ray on this machine only, for the duration of the ``with`` block; yield its address.

    Its servers listen on the loopback interface (nothing outside the machine can reach them), the
    dashboard is off, and it gets ``num_cpus`` CPUs (default: the CPUs this process may use).
    """
    from .env import cpu_count

    ray = _import_ray()
    if ray.is_initialized():
        raise SetupError("this process is already connected to Ray", where="farm local_ray",
                         fix="use that connection (submit uses it when no address is given), or ray.shutdown() first")
    # Ray binds its servers to the node's address, found from the default route: reachable from the
    # network. Its single-machine switch (RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0, read once at import)
    # makes that address 127.0.0.1, so set the value it was read into for the start-up.
    from ray._private import ray_constants

    saved = ray_constants.ENABLE_RAY_CLUSTER
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        # address="local": always a new Ray of our own, never one that `ray start` left running here.
        context = ray.init(address="local", num_cpus=num_cpus or cpu_count(), include_dashboard=False,
                           log_to_driver=False, logging_level="warning")
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = saved
    try:
        address = context.address_info["gcs_address"]
        if not address.startswith("127.0.0.1:"):
            raise SetupError(f"the local Ray listens on {address}, not on the loopback interface",
                             where="farm local_ray", fix=f"install the tested Ray: pip install {RAY_PIN}")
        yield address
    finally:
        ray.shutdown()


def _import_ray():
    try:
        import ray
    except ImportError as exc:
        raise SetupError("Ray is not installed", where="vfxinsert farm",
                         fix=f"pip install {RAY_PIN} (see requirements.lock)") from exc
    return ray


@contextlib.contextmanager
def _connected(address: str | None):
    """Ray, connected: the process's existing connection, the cluster at ``address``, or a local one."""
    ray = _import_ray()
    address = address or os.environ.get("RAY_ADDRESS") or None
    if ray.is_initialized():
        yield ray
    elif address is None:
        with local_ray():
            yield ray
    else:
        try:
            ray.init(address=address, log_to_driver=False, logging_level="warning")
        except (ConnectionError, ValueError, RuntimeError) as exc:
            raise SetupError(f"cannot connect to the Ray cluster: {exc}", where=address,
                             fix="check the address (ray status on the head node prints it) and that the "
                                 "cluster runs the same Ray and Python versions") from exc
        try:
            yield ray
        finally:
            ray.shutdown()


@dataclass
class _ShotRun:
    """The driver's running tally of one shot (internal; becomes a frozen ShotResult)."""

    path: Path
    frames: tuple[int, ...] | None = None
    config: ShotConfig | None = None
    error: str | None = None
    plate: StageReport | None = None
    lighting: tuple[str, ...] = ()
    renders: list[FrameResult] = field(default_factory=list)
    render_tasks: int = 0
    handoff: tuple[Path, ...] = ()
    prepare_s: float = 0.0
    handoff_s: float = 0.0
    stage_s: dict = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)
    render_started: float | None = None
    render_finished: float | None = None
    finished: float | None = None

    @property
    def label(self) -> str:
        return self.config.name if self.config else str(self.path)

    def render_report(self) -> StageReport:
        return StageReport("render", tuple(sorted(self.renders, key=lambda r: r.frame)))

    def log(self, message: str) -> None:
        """The driver's line in the shot log (once the shot file has loaded: the log lives in output.dir)."""
        if self.config is not None:
            with contextlib.suppress(VfxInsertError):  # the result says it too; a log must not stop the farm
                ShotLog(self.config, "driver")(message)

    def result(self) -> ShotResult:
        end = self.finished or time.perf_counter()
        render = self.render_report() if self.plate is not None and self.error is None else None
        render_end = self.render_finished or end
        timings = ShotTimings(self.prepare_s, render_end - self.render_started if self.render_started else 0.0,
                              self.handoff_s, end - self.started)
        return ShotResult(self.path, self.config.name if self.config else None, self.plate, self.lighting,
                          render, self.render_tasks, self.handoff, self.error, timings)


class _Driver:
    """Submits the tasks of every shot and gathers their results as they come (``ray.wait``)."""

    def __init__(self, ray, chunk: int, max_retries: int, cpus_per_task: float, force: Stage | None,
                 on_event: EventCallback):
        from .pipeline import forced

        self.ray = ray
        self.chunk = chunk
        self.max_retries = max_retries
        self.force = force
        self.force_render = forced(force, "render")
        self.say = on_event
        gpus = ray.cluster_resources().get("GPU", 0) >= 1
        resources = {"num_gpus": 1} if gpus else {"num_cpus": cpus_per_task}
        self.cores = None if gpus else math.ceil(cpus_per_task)  # what a CPU task may use (_claim_cores)
        # max_calls=1: a fresh worker process per task. It can only be set in ray.remote, not .options.
        self.prepare = ray.remote(max_calls=1)(_prepare_task).options(max_retries=max_retries, **resources)
        self.render = ray.remote(max_calls=1)(_render_task).options(max_retries=max_retries, **resources)
        # The handoff reads EXRs and encodes a preview: CPU work, no GPU.
        self.handoff = ray.remote(max_calls=1)(_handoff_task).options(max_retries=max_retries, num_cpus=1)
        self.pending: dict = {}  # ObjectRef -> (_ShotRun, "prepare" | "render" | "handoff", frames of a render task)

    def run(self, requests: list[ShotRequest]) -> list[ShotResult]:
        runs = [self._start(r) for r in requests]
        self._refuse_shared_outputs(runs)
        for run in runs:
            if run.config is not None and run.error is None:
                run.log(f"submitted: frames {ShotRequest(run.path, run.frames).frames_text}"
                        + (f"; force {self.force}" if self.force else ""))
                ref = self.prepare.remote(run.config, run.frames, self.force, self.cores)
                self.pending[ref] = (run, "prepare", None)
            else:
                self._finish(run)
        try:
            while self.pending:
                (ref,), _ = self.ray.wait(list(self.pending), num_returns=1)
                run, kind, frames = self.pending.pop(ref)
                try:
                    value = self.ray.get(ref)
                except self.ray.exceptions.RayError as exc:  # the task raised or its worker kept dying
                    value = exc
                if kind == "prepare":
                    self._prepared(run, value)
                elif kind == "render":
                    self._rendered(run, frames, value)
                else:
                    self._handed_off(run, value)
        except BaseException:  # interrupted: do not leave tasks running on a shared cluster
            for ref in self.pending:
                with contextlib.suppress(Exception):  # best effort; the interruption is what matters
                    self.ray.cancel(ref, force=True)
            raise
        return [run.result() for run in runs]

    def _start(self, request: ShotRequest) -> _ShotRun:
        from .config import load_shot

        try:
            return _ShotRun(request.path, request.frames, config=load_shot(request.path))
        except VfxInsertError as exc:
            return _ShotRun(request.path, request.frames, error=exc.line())

    def _refuse_shared_outputs(self, runs: list[_ShotRun]) -> None:
        """Two shots writing the same files would overwrite each other's frames: fail the later one."""
        owners: dict[Path, _ShotRun] = {}
        for run in runs:
            if run.config is None:
                continue
            target = insert_path(run.config, 0)
            first = owners.setdefault(target, run)
            if first is not run:
                run.error = VfxInsertError(f"writes the same outputs as {first.path} ({run.config.output.dir}, "
                                           f"shot name {run.config.name!r})", where=str(run.path),
                                           fix="give each shot its own output.dir or name, or submit it once").line()

    def _prepared(self, run: _ShotRun, value) -> None:
        if not isinstance(value, _Prepared):
            run.error = f"{run.path}: the plate + lighting task failed: {_reason(value, self.max_retries)}"
            run.log(f"FAILED: {run.error}")
            self._finish(run)
            return
        run.plate, run.lighting, run.prepare_s, run.stage_s = value.plate, value.lighting, value.seconds, value.stage_s
        run.error = value.error
        self.say(f"{run.label}: {stage_summary(value.plate)}")
        if value.warning:
            self.say(f"{run.label}: warning: {value.warning}")
        if run.error is not None:
            self._finish(run)
            return
        for line in run.lighting:
            self.say(f"{run.label}: lighting {line}")
        run.renders = [FrameResult(f, insert_path(run.config, f), skipped=True) for f in value.up_to_date]
        chunks = _chunks(value.todo, self.chunk)
        self.say(f"{run.label}: render {len(value.up_to_date)} frame(s) up to date, {len(value.todo)} to render"
                 + (f" in {len(chunks)} task(s)" if chunks else ""))
        if not chunks:
            self._hand_off(run)
            return
        run.render_started = time.perf_counter()
        run.render_tasks = len(chunks)
        for frames in chunks:
            self.pending[self.render.remote(run.config, frames, self.force_render, self.cores)] = (run, "render", frames)

    def _rendered(self, run: _ShotRun, frames: tuple[int, ...], value) -> None:
        if isinstance(value, StageReport):
            results = value.results
        else:
            reason = f"render task for frames {format_frames(frames)} failed: {_reason(value, self.max_retries)}"
            run.log(f"FAILED: {reason}")
            results = tuple(FrameResult(f, error=reason) for f in frames)
        run.renders.extend(results)
        failed = [r.frame for r in results if r.error]
        self.say(f"{run.label}: frame(s) {format_frames(frames)} rendered"
                 + (f"; FAILED: {format_frames(failed)}" if failed else ""))
        if not any(other is run for other, _, _ in self.pending.values()):
            run.render_finished = time.perf_counter()
            self._hand_off(run)

    def _hand_off(self, run: _ShotRun) -> None:
        timings = {**run.stage_s, **({"render": time.perf_counter() - run.render_started} if run.render_started else {})}
        self.pending[self.handoff.remote(run.config, run.plate, run.render_report(), timings)] = (run, "handoff", None)

    def _handed_off(self, run: _ShotRun, value) -> None:
        if isinstance(value, _HandedOff):
            run.handoff, run.handoff_s, run.error = value.paths, value.seconds, value.error
        else:
            run.error = f"{run.path}: the handoff task failed: {_reason(value, self.max_retries)}"
        if run.error:
            run.log(f"FAILED: {run.error}")
        for path in run.handoff:
            self.say(f"{run.label}: handoff: {path}")
        self._finish(run)

    def _finish(self, run: _ShotRun) -> None:
        run.finished = time.perf_counter()
        result = run.result()
        line = f"{'finished' if result.ok else 'FAILED'} after {result.timings.total_s:.1f} s"
        run.log(line)
        self.say(f"{run.label}: {line}")


def _chunks(frames: tuple[int, ...], most: int) -> list[tuple[int, ...]]:
    """Contiguous runs of at most ``most`` frames, as even as possible (12 by 10: 6 + 6, not 10 + 2)."""
    if not frames:
        return []
    size = math.ceil(len(frames) / math.ceil(len(frames) / most))
    return [frames[i:i + size] for i in range(0, len(frames), size)]


def _reason(exc: BaseException, max_retries: int) -> str:
    """One line for a failed task: the task's own exception, or why Ray gave up on its worker."""
    cause = getattr(exc, "cause", None)  # RayTaskError: the exception the task raised (not retried)
    if cause is not None:
        return f"{type(cause).__name__}: {_first_line(cause)}"
    return (f"{type(exc).__name__} after {max_retries} retries: {_first_line(exc)}. "
            "Fix: see the worker logs (ray logs, or /tmp/ray/session_latest/logs on the node)")


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else "(no message)"


# --------------------------------------------------------------------------------------------------
# Tasks (run in Ray workers; plain functions, so they also run without Ray)


@dataclass(frozen=True)
class _Prepared:
    """What the prepare task hands to the driver."""

    plate: StageReport
    lighting: tuple[str, ...]
    up_to_date: tuple[int, ...]
    todo: tuple[int, ...]
    seconds: float
    error: str | None = None
    stage_s: dict = field(default_factory=dict)
    """Seconds of the plate and the lighting stage (the QC report's timings)."""
    warning: str | None = None
    """The shot's timing warning (no frame rate known), for the driver to pass on."""


@dataclass(frozen=True)
class _HandedOff:
    """What the handoff task hands to the driver."""

    paths: tuple[Path, ...]
    seconds: float
    error: str | None = None


def _prepare_task(shot: ShotConfig, frames: tuple[int, ...] | None = None, force: Stage | None = None,
                  cores: int | None = None) -> _Prepared:
    """Plate stage (the whole shot), lighting stage, then which of ``frames`` are already rendered (status)."""
    from .pipeline import forced, lighting_stage, plate_stage
    from .sequences import select_frames
    from .shot import ShotContext
    from .status import shot_status

    start = time.perf_counter()
    _claim_cores(cores)
    log = ShotLog(shot, "prepare")
    plate = StageReport("plate", ())
    context = ShotContext(shot)
    stage_s: dict[str, float] = {}
    try:
        wanted = select_frames(context.frames, frames, f"{shot.path} frames")
        if context.timing.warning:
            log(f"warning: {context.timing.warning}")
        plate = plate_stage(shot, context=context, on_frame=log.frames("plate"), force=forced(force, "plate"))
        stage_s["plate"] = time.perf_counter() - start
        good = [r.frame for r in plate.results if not r.error]
        if not good:
            raise VfxInsertError("no plate frame could be read, so nothing can be rendered", where=str(shot.path),
                                 fix="see the plate frames' errors")
        progress: list[str] = []
        lighting_stage(shot, frames=good, on_progress=progress.append, context=context,
                       force=forced(force, "lighting"))
        stage_s["lighting"] = time.perf_counter() - start - stage_s["plate"]
        lighting = tuple(line.removeprefix("lighting: ") for line in progress)
        log("lighting: " + lighting[-1])
        done = set() if forced(force, "render") else set(shot_status(shot).render.done)
    except VfxInsertError as exc:
        log(f"FAILED: {exc.line()}")
        return _Prepared(plate, (), (), (), time.perf_counter() - start, error=exc.line(), stage_s=stage_s)
    renders = [f for f in wanted if f in set(good)]
    return _Prepared(plate, lighting, tuple(f for f in renders if f in done), tuple(f for f in renders if f not in done),
                     time.perf_counter() - start, stage_s=stage_s, warning=context.timing.warning)


def _render_task(shot: ShotConfig, frames: tuple[int, ...], force: bool = False, cores: int | None = None) -> StageReport:
    """Render one chunk of frames: the scene is built once for the chunk (render_frames does)."""
    from .lighting.environment import load_environment
    from .pipeline import render_stage

    _claim_cores(cores)
    log = ShotLog(shot, f"render {format_frames(frames)}")
    try:
        env = load_environment(shot)
    except VfxInsertError as exc:
        log(f"FAILED: {exc.line()}")
        return StageReport("render", tuple(FrameResult(f, error=exc.line()) for f in frames))
    hook = _kill_once if os.environ.get(KILL_MARKER_ENV) else None
    return render_stage(shot, frames=list(frames), env=env, on_frame=log.frames("render", hook), force=force)


def _handoff_task(shot: ShotConfig, plate: StageReport, render: StageReport, timings: dict[str, float]) -> _HandedOff:
    """The shot's ``.nk``, ``preview.mp4`` and QC report, over every frame whose render is up to date."""
    from .lighting.environment import load_environment
    from .pipeline import handoff_stage
    from .status import whole_shot_reports

    start = time.perf_counter()
    log = ShotLog(shot, "handoff")
    try:
        paths = handoff_stage(shot, whole_shot_reports(shot, [plate, render]), load_environment(shot), timings)
    except VfxInsertError as exc:
        log(f"FAILED: {exc.line()}")
        return _HandedOff((), time.perf_counter() - start, error=exc.line())
    for path in paths:
        log(f"handoff: {path}")
    return _HandedOff(tuple(paths), time.perf_counter() - start)


_claimed_cores: list = []
"""This worker's open core-slot files: the kernel drops their locks when the process exits, even killed."""


def _claim_cores(count: int | None, wait_s: float = 5.0) -> None:
    """Keep a CPU task's threads within its budget of ``count`` cores (None: leave the process as it is).

    The renderer sizes its thread pools from the CPUs the process may use (``env.cpu_count``: the
    affinity mask), and Ray reserves CPUs without assigning cores, so every task on a node would start
    a thread per core (16 tasks on a 64-core node: 1024 render threads). So claim ``count`` free cores
    of this node through lock files (one per core, ``flock``, released by the kernel when the worker
    exits) and restrict the process to them. A core can stay locked for a moment by a worker that has
    returned its result but not yet exited, so wait up to ``wait_s`` for free ones; on a node that
    stays over-committed, or without CPU affinity (not Linux), the process keeps every core.
    """
    if count is None or not hasattr(os, "sched_setaffinity"):
        return
    import fcntl
    import tempfile

    cores = sorted(os.sched_getaffinity(0))
    if count >= len(cores):
        return
    folder = Path(tempfile.gettempdir()) / "vfxinsert-core-slots"
    folder.mkdir(exist_ok=True)
    mine: dict[int, object] = {}
    deadline = time.monotonic() + wait_s
    while True:
        for core in cores:
            if core in mine:
                continue
            slot = open(folder / f"cpu{core}.lock", "a")  # noqa: SIM115 - held open until the worker exits
            try:
                fcntl.flock(slot, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                slot.close()
                continue
            mine[core] = slot
            if len(mine) == count:
                _claimed_cores.extend(mine.values())
                os.sched_setaffinity(0, set(mine))
                return
        if time.monotonic() > deadline:  # over-committed: share every core rather than wait longer
            for slot in mine.values():
                slot.close()
            return
        time.sleep(0.05)


def _kill_once(result: FrameResult, total: int) -> None:
    """The test hook of ``KILL_MARKER_ENV``: after a frame is written, claim the marker file and die."""
    if result.path is None or result.skipped:
        return
    try:
        os.unlink(os.environ[KILL_MARKER_ENV])  # the claim: exactly one worker wins it
    except (KeyError, FileNotFoundError):
        return
    os.kill(os.getpid(), signal.SIGKILL)
