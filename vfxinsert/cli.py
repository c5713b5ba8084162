"""The `vfxinsert` command. The only place that prints for users or sets exit codes.

Exit codes: 0 ok, 1 the shot (or a frame of it) failed, 2 usage error.
Heavy modules are imported inside the subcommands so `vfxinsert --help` starts at once.
"""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from . import __version__
from .errors import VfxInsertError, VfxInsertWarning

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _say(text: str = "") -> None:
    print(text, flush=True)


def _fail(text: str) -> None:
    print(f"vfxinsert: error: {text}", file=sys.stderr, flush=True)


def _show_warnings() -> None:
    """Print each distinct VfxInsertWarning once as ``vfxinsert: warning: <line>``; others as Python does."""
    shown = warnings.showwarning
    seen: set[str] = set()

    def show(message, category, filename, lineno, file=None, line=None):
        if not issubclass(category, VfxInsertWarning):
            return shown(message, category, filename, lineno, file, line)
        if str(message) not in seen:
            seen.add(str(message))
            print(f"vfxinsert: warning: {message}", file=sys.stderr, flush=True)

    warnings.showwarning = show
    warnings.simplefilter("always", VfxInsertWarning)


def cmd_check(args) -> int:
    from .check import check_shot

    _, findings = check_shot(args.shot, run_llvm=not args.no_llvm)
    ok = True
    for f in findings:
        if not f.ok:
            ok = False
            _fail(f"{f.topic}: {f.detail}")
        else:
            _say(f"{'warn' if f.warning else 'ok  '} {f.topic}: {f.detail}")
    if ok:
        _say(f"check passed: {args.shot}")
    return EXIT_OK if ok else EXIT_FAILED


def _checked(path):
    """The shot at ``path`` when `check` (without the LLVM probe) finds no problem; else None, each
    problem printed as one line. What `run` and `regrade` do first."""
    from .check import check_shot

    shot, findings = check_shot(path, run_llvm=False)
    problems = [f for f in findings if not f.ok]
    for f in problems:
        _fail(f"{f.topic}: {f.detail}")
    return None if problems else shot


def cmd_run(args) -> int:
    from .run import run_shot
    from .sequences import format_frames

    shot = _checked(args.shot)
    if shot is None:
        return EXIT_FAILED

    stages, frames = tuple(args.stage or STAGE_NAMES), _frames(args)
    task = "run" + (f" {','.join(args.stage)}" if args.stage else "") + (f" {format_frames(frames)}" if frames else "")
    reports = run_shot(shot, on_frame=_progress, on_progress=_say, on_iteration=_iterations(), frames=frames,
                       force=args.force, stages=stages, task=task)
    status = max((_summarise(r) for r in reports), default=EXIT_OK)
    if "render" in stages and not any(r.stage == "render" for r in reports):
        return EXIT_FAILED  # no plate frame could be read: nothing to render
    _say(f"outputs: {shot.output.dir}")
    return status


def _frames(args):
    """``--frames`` as frame numbers (None: every frame)."""
    from .sequences import parse_frames

    return parse_frames(args.frames) if args.frames else None


def cmd_regrade(args) -> int:
    from .regrade import regrade_shot

    shot = _checked(args.shot)
    if shot is None:
        return EXIT_FAILED
    reports = regrade_shot(shot, on_frame=_progress, on_progress=_say, on_iteration=_iterations())
    if len(reports) == 1:
        return EXIT_FAILED
    _say(f"outputs: {shot.output.dir}")
    return max(_summarise(r) for r in reports)


def _progress(stage: str):
    """A progress callback: a tqdm bar on a terminal, one plain line per frame on the farm (log parsers)."""
    from .shotlog import frame_line

    bar = None
    tty = sys.stderr.isatty()

    def on_frame(result, total: int) -> None:
        nonlocal bar
        message = f"vfxinsert: {frame_line(stage, result)}"
        if tty:
            from tqdm import tqdm

            if bar is None:
                bar = tqdm(total=total, desc=stage, unit="frame", file=sys.stderr)
            if result.error or result.held_from is not None or result.nonfinite:
                bar.write(message, file=sys.stderr)
            bar.update(1)
            if bar.n >= total:
                bar.close()
        else:
            print(message, file=sys.stderr, flush=True)

    return on_frame


def _iterations(every: int = 50):
    """Optimisation progress: a bar with loss and ETA on a terminal, a line every ``every`` iterations elsewhere."""
    import time

    state = {"bar": None, "start": None}

    def on_iteration(i: int, total: int, loss: float) -> None:
        if state["start"] is None:
            state["start"] = time.perf_counter() - 1e-9
        if sys.stderr.isatty():
            from tqdm import tqdm

            if state["bar"] is None:
                state["bar"] = tqdm(total=total, initial=i - 1, desc="lighting", unit="it", file=sys.stderr)
            state["bar"].set_postfix(loss=f"{loss:.4g}", refresh=False)
            state["bar"].update(1)
            if i >= total:
                state["bar"].close()
        elif i % every == 0 or i == total:
            rate = (time.perf_counter() - state["start"]) / max(i, 1)
            print(f"vfxinsert: lighting: iteration {i}/{total} loss {loss:.5g} (eta {rate * (total - i):.0f} s)",
                  file=sys.stderr, flush=True)

    return on_iteration


def _summarise(report) -> int:
    """The stage's one summary line (each failure's reason was printed once, as it happened)."""
    from .sequences import format_frames

    done = [r for r in report.results if not r.error]
    written = [r for r in done if not r.skipped]
    folder = done[0].path.parent if done else None
    failed = f" ({format_frames(r.frame for r in report.failed)})" if report.failed else ""
    _say(f"{report.stage}: {len(written)} frame(s) written, {len(done) - len(written)} up to date, "
         f"{len(report.failed)} failed{failed}" + (f"; outputs in {folder}" if folder else ""))
    return EXIT_FAILED if report.failed else EXIT_OK


def cmd_bench(args) -> int:
    from .bench import CASES, run, run_prior_validation, shared_data

    cases = args.cases.split(",") if args.cases else None
    unknown = sorted(set(cases or []) - set(CASES))
    if unknown:
        _fail(f"unknown bench case(s) {', '.join(unknown)}; valid: {', '.join(CASES)}")
        return EXIT_USAGE
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    if args.suite in ("fixed", "all"):
        from .lighting.prior.estimate import load_prior

        _, table = run(cases, iterations=args.iterations, on_progress=log, prior=load_prior(args.prior))
        _say(table)
    if args.suite in ("prior", "all"):
        folders = args.hdris or [shared_data() / "hdri-train", shared_data() / "hdri"]
        _, table = run_prior_validation(args.prior, folders, on_progress=log)
        _say("")
        _say(table)
    return EXIT_OK


def cmd_train_prior(args) -> int:
    from dataclasses import replace

    from .lighting.prior.data import split_panoramas
    from .lighting.prior.train import TrainSettings, train_prior

    if args.out.suffix != ".safetensors":
        _fail(f"--out {args.out}: the prior is written as safetensors; name it FILE.safetensors")
        return EXIT_USAGE
    train, val = split_panoramas(args.hdris, args.val)
    _say(f"train-prior: {len(train)} training panorama(s), {len(val)} for validation: "
         + ", ".join(p.stem for p in val))
    settings = replace(TrainSettings(), seed=args.seed,
                       **{k: v for k, v in (("epochs", args.epochs), ("crops_per_panorama", args.crops)) if v})
    device = args.device
    if device == "auto":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    sidecar = train_prior(train, val, args.out, settings, device=device, on_progress=_steps("train-prior"))
    v = sidecar["validation_figures"] or {}
    _say(f"train-prior: wrote {args.out} and {args.out.with_suffix('.json')} in {sidecar['seconds']:.0f} s")
    if v:
        _say(f"train-prior: validation ({v['cases']} plates): key light direction error median "
             f"{v['direction_error_deg_median']:.1f} deg, azimuth (keys below 60 deg) median "
             f"{v['azimuth_error_deg_median_below_60']:.1f} deg")
    return EXIT_OK


def _steps(stage: str):
    """Progress of a long loop: a tqdm bar (rate, ETA) on a terminal, a line per 5 % elsewhere."""
    import time

    state = {"bar": None, "what": None, "start": time.perf_counter(), "shown": -1}

    def on_progress(done: int, total: int, message: str) -> None:
        what = message.split(" ", 1)[0]
        if sys.stderr.isatty():
            from tqdm import tqdm

            if state["bar"] is None or state["what"] != what:
                if state["bar"] is not None:
                    state["bar"].close()
                state["bar"] = tqdm(total=total, initial=done - 1, desc=f"{stage}: {what}", file=sys.stderr)
                state["what"] = what
            state["bar"].set_postfix_str(message, refresh=False)
            state["bar"].update(1)
            return
        if state["what"] != what:
            state.update(what=what, start=time.perf_counter(), shown=-1)
        pct = int(100 * done / max(total, 1)) // 5 * 5
        if pct != state["shown"]:
            state["shown"] = pct
            rate = (time.perf_counter() - state["start"]) / max(done, 1)
            print(f"vfxinsert: {stage}: {done}/{total} {message} (eta {rate * (total - done):.0f} s)",
                  file=sys.stderr, flush=True)

    return on_progress


def cmd_submit(args) -> int:
    from .farm import ShotRequest, format_result, submit

    def on_event(line: str) -> None:  # progress, one plain line per step (farm logs parse these)
        print(f"vfxinsert: {line}", file=sys.stderr, flush=True)

    if args.otio and (args.shots or args.frames):
        _fail("--otio takes the shots and their frames from the timeline: give no SHOT and no --frames with it")
        return EXIT_USAGE
    if not args.otio and not args.shots:
        _fail("give at least one SHOT.toml, or --otio EDIT.otio")
        return EXIT_USAGE
    if args.otio:
        from .edit import shots_from_timeline

        requests = shots_from_timeline(args.otio)
        for request in requests:
            _say(f"submit: {request.path}: frames {request.frames_text}")
    else:
        frames = _frames(args)
        requests = [ShotRequest(Path(p), frames) for p in args.shots]
    results = submit(requests, args.address, chunk=args.chunk, max_retries=args.max_retries, force=args.force,
                     on_event=on_event)
    for result in results:
        for line in format_result(result):
            _say(line)
    failed = [r for r in results if not r.ok]
    _say(f"submit: {len(results) - len(failed)} of {len(results)} shot(s) finished")
    return EXIT_FAILED if failed else EXIT_OK


def cmd_status(args) -> int:
    import json

    from .config import load_shot
    from .status import format_status, shot_status, status_json

    status = shot_status(load_shot(args.shot), frames=_frames(args))
    if args.json:
        _say(json.dumps(status_json(status), indent=2))
        return EXIT_OK
    for line in format_status(status):
        _say(line)
    return EXIT_OK


def _count(minimum: int):
    """An argparse type: a whole number >= minimum (argparse turns the error into exit code 2)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value
    return parse


STAGE_NAMES = ("plate", "lighting", "render", "handoff")
"""``pipeline.STAGES``, spelled out here so that --help imports nothing heavy (tests/test_run.py checks both)."""


def _frame_options(p: argparse.ArgumentParser, force: bool) -> None:
    p.add_argument("--frames", metavar="RANGE",
                   help="only these frames (fileseq ranges: 1001-1050, 1001-1100x2, 1010,1020); the lighting is "
                        "still solved once per shot from its keyframes")
    if force:
        p.add_argument("--force", nargs="?", const="plate", choices=STAGE_NAMES, metavar="STAGE",
                       help="redo STAGE and every later one even where up to date (default: every stage; "
                            "write it after the shot file or as --force=STAGE)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vfxinsert",
        description="Insert CG objects into plates with lighting and tone recovered by diffusion-guided "
                    "inverse rendering. Outputs linear multi-layer EXRs for Nuke.",
        epilog="exit codes: 0 ok, 1 shot failed, 2 usage error",
    )
    parser.add_argument("--version", action="version", version=f"vfxinsert {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("check", help="validate a shot cheaply before it goes to the farm",
                       description="Validate config, files, plate frames, colorspaces, camera, meshes, HDRI, "
                                   "model folder and the renderer's LLVM. Prints one line per finding.")
    p.add_argument("shot", type=Path, help="path to shot.toml")
    p.add_argument("--no-llvm", action="store_true", help="skip the test kernel that proves Mitsuba's LLVM works")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("run", help="run a shot: check, then plate -> lighting -> render -> handoff",
                       description="Check the shot, then run its stages: plate (every frame into the working "
                                   "space: <output.dir>/plate/), lighting (initial lighting, optimised when "
                                   "[lighting] optimize is on and a model or reference is set: lighting.exr, "
                                   "lighting.json, tone.json), render (every frame's object, shadow and composite "
                                   "layers: <output.dir>/<name>.####.exr), handoff (<name>.nk, preview.mp4, "
                                   "report/). Work that is up to date is skipped.")
    p.add_argument("shot", type=Path, help="path to shot.toml")
    _frame_options(p, force=True)
    p.add_argument("--stage", action="append", choices=STAGE_NAMES, metavar="STAGE",
                   help="run only this stage (repeatable: --stage plate --stage lighting); the others' outputs are "
                        "read from output.dir: a farm manager's steps (farm/deadline). Stages: "
                        + ", ".join(STAGE_NAMES))
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("regrade", help="after a plate grade: refit the tone curves alone (lighting kept), render",
                       description="DiPIR's tone-only refinement: ingest the graded plate, keep the lighting the last "
                                   "run solved, fit the per-keyframe tone curves again with the shot's objective, "
                                   "then render and hand off as run does.")
    p.add_argument("shot", type=Path, help="path to shot.toml")
    p.set_defaults(func=cmd_regrade)

    p = sub.add_parser("bench", help="lighting recovery on real panoramas with known ground truth",
                       description="The Poly Haven protocol: plates cut from real HDR panoramas, the panorama is the "
                                   "true lighting. Compares the true HDRI (noise floor), the plate initialisation, "
                                   "the lighting prior, the constant guess 'overhead' and the reference-loss "
                                   "optimisation. Prints Markdown tables. Offline, CPU.")
    p.add_argument("--cases", help="comma-separated cases (default: all)")
    p.add_argument("--iterations", type=_count(0), default=300,
                   help="optimisation iterations per case (default 300; 0 skips the `reference` loop)")
    p.add_argument("--suite", choices=("fixed", "prior", "all"), default="all",
                   help="fixed: the four cases with the loop; prior: the lighting prior on its validation "
                        "panoramas at four camera headings each; all (default): both")
    p.add_argument("--prior", type=Path, metavar="FILE.safetensors", help="the prior to measure (default: the shipped one)")
    p.add_argument("--hdris", type=Path, nargs="+", metavar="DIR",
                   help="where the prior's validation panoramas are (default: ../shared/data/hdri-train and hdri)")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("train-prior", help="train the lighting prior on a folder of HDR panoramas",
                       description="Synthesise plates from real HDR panoramas (perspective views, exposure, white "
                                   "balance, camera response, noise, blur, compression), train the lighting "
                                   "prior on them and validate on held-out panoramas. Seeded and reproducible, "
                                   "resumable after a kill (a checkpoint per epoch beside --out). Writes FILE "
                                   "(safetensors) and FILE.json (training-set hashes, split, validation figures).")
    p.add_argument("--hdris", type=Path, nargs="+", required=True, metavar="DIR",
                   help="folder(s) of lat-long HDR panoramas (.hdr/.exr)")
    p.add_argument("--val", type=Path, nargs="+", metavar="DIR",
                   help="folder(s) of validation panoramas; default: the shipped split's names, else a quarter")
    p.add_argument("--out", type=Path, required=True, metavar="FILE.safetensors", help="the weights to write")
    p.add_argument("--epochs", type=_count(1), help="passes over the synthesised plates per ensemble member (default 10)")
    p.add_argument("--crops", type=_count(1), help="plates per training panorama (default 400)")
    p.add_argument("--seed", type=int, default=0, help="seed of everything random (default 0)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="default auto: CUDA when present, else the CPU")
    p.set_defaults(func=cmd_train_prior)

    p = sub.add_parser("submit", help="run shots on a Ray cluster (or a private local Ray), resumably",
                       description="Run every stage of each shot on Ray: the plate and lighting stages as one "
                                   "task per shot (one GPU when the cluster has GPUs), then the renders in "
                                   "chunks of frames, then the handoff (<name>.nk, preview.mp4, report/), each "
                                   "task in a fresh worker process: a shot's output.dir ends as a run leaves it. "
                                   "Finished stages and frames are skipped; a shot that fails is reported and the "
                                   "others go on. Every task appends to output.dir/logs/<name>.log.",
                       epilog="exit codes: 0 every shot finished, 1 a shot or frame failed, 2 usage error")
    p.add_argument("shots", type=Path, nargs="*", metavar="SHOT", help="path(s) to shot.toml")
    p.add_argument("--otio", type=Path, metavar="EDIT.otio",
                   help="take the shots from an OpenTimelineIO timeline: each clip names its shot file (metadata "
                        "vfxinsert.shot, or a media reference to a .toml), its source range the frames")
    p.add_argument("--address", help="Ray cluster: auto (on a cluster node), HOST:6379 or ray://HOST:10001; "
                                     "default: $RAY_ADDRESS, else a Ray started on this machine for the run "
                                     "(bound to 127.0.0.1, no dashboard)")
    p.add_argument("--chunk", type=_count(1), default=10, help="frames per render task (default 10)")
    p.add_argument("--max-retries", type=_count(0), default=2,
                   help="retries of a task whose worker died: killed, out of memory, node lost (default 2)")
    _frame_options(p, force=True)
    p.set_defaults(func=cmd_submit)

    p = sub.add_parser("status", help="show which frames of a shot are done, stale or missing",
                       description="Compare each stage's outputs with the inputs hash the stage would write "
                                   "now: done frames are skipped by a re-run, stale and missing ones are redone.")
    p.add_argument("shot", type=Path, help="path to shot.toml")
    _frame_options(p, force=False)
    p.add_argument("--json", action="store_true", help="print the status as JSON (for a farm monitor)")
    p.set_defaults(func=cmd_status)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # exits 2 on usage errors, as argparse does
    _show_warnings()
    try:
        return args.func(args)
    except VfxInsertError as exc:
        _fail(exc.line())
        return EXIT_FAILED
    except KeyboardInterrupt:
        _fail("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
