"""A guided run of the demo shot on the CPU: shots/demo/shot_prior.toml (lighting from the plate through
the shipped prior) with diffusion guidance by the tiny real Stable Diffusion of the tests
(tests/guidance/tiny_sd.py: the real diffusers classes at a few thousand parameters), every [optimize] and
[guidance] key at its default. Target: the whole `vfxinsert run` under 10 minutes; lighting.json records
every method knob used.

Run:  python benchmarks/guided_demo.py [--keep DIR]   (prints the stage times and a Markdown row)
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "guidance"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--keep", type=Path, help="build the shot in this (new) folder and keep it")
    args = ap.parse_args()
    from tiny_sd import build_tiny_sd

    from vfxinsert.config import GuidanceConfig, OptimizeConfig
    from vfxinsert.tomltypes import shot_keys

    folder = args.keep or Path(tempfile.mkdtemp(prefix="vfxinsert-guided-demo-"))
    demo = ROOT / "shots" / "demo"
    shutil.copytree(demo, folder / "demo", ignore=shutil.ignore_patterns("out", "out_*"))
    model = build_tiny_sd(folder / "models" / "tiny")
    shot = folder / "demo" / "shot_prior.toml"
    text = shot.read_text().replace('dir = "out_prior"', 'dir = "out_guided"')
    assert "\noptimize = false" in text
    text = text.replace("\noptimize = false", "\noptimize = true")   # the demo renders its initial lighting as it is
    shot.write_text(text + f'\n[guidance]\nmodel = "{model}"\n')
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "vfxinsert", "run", str(shot)], capture_output=True, text=True,
                         env={**os.environ, "HF_HUB_OFFLINE": "1"})
    seconds = time.perf_counter() - t0
    print(out.stdout[-3000:], out.stderr[-3000:], sep="\n")
    if out.returncode:
        sys.exit(f"vfxinsert run failed ({out.returncode})")
    doc = json.loads((folder / "demo" / "out_guided" / "lighting.json").read_text())
    missing = [k for k in shot_keys(OptimizeConfig()) if k not in doc["optimize"]]
    missing += [f"guidance.{k}" for k in GuidanceConfig().record() if k not in doc.get("guidance", {})]
    print(json.dumps({k: v for k, v in doc.get("guidance", {}).items() if "second" in k or "lora" in k.lower()}))
    print("| run s | optimisation s | objective | iterations | knobs missing from lighting.json | machine |")
    print("|---|---|---|---|---|---|")
    print(f"| {seconds:.0f} | {doc.get('optimise_seconds')} | {doc.get('objective')} | {doc.get('iterations')} | "
          f"{', '.join(missing) or 'none'} | {platform.machine()}, {os.cpu_count()} cores, "
          f"load {os.getloadavg()[0]:.1f} after |")
    if not args.keep:
        shutil.rmtree(folder)


if __name__ == "__main__":
    main()
