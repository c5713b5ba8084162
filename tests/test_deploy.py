"""The deployment files under farm/, checked against their own tools' schemas: the Open Job Description
template with ``openjd-model`` (and its steps run for real on a tiny shot), the Ray cluster config with
the JSON schema inside the installed ``ray`` package (and Ray's own on-prem preparation of it), and the
``ray job submit`` wrapper's argument checks."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from test_cli import make_shot

from vfxinsert.sequences import parse_frames

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = REPO / "farm" / "deadline" / "vfxinsert" / "template.yaml"
CLUSTER = REPO / "farm" / "ray" / "cluster.yaml"


def _job(values: dict[str, str]):
    import openjd.model as m

    template = m.decode_job_template(template=yaml.safe_load(TEMPLATE.read_text()),
                                     supported_extensions=["TASK_CHUNKING"])
    params = m.preprocess_job_parameters(job_template=template, job_parameter_values=values,
                                         job_template_dir=TEMPLATE.parent, current_working_dir=REPO)
    return m.create_job(job_template=template, job_parameter_values=params)


def _chunks(step) -> list[str]:
    import openjd.model as m

    return [task["Frames"].value for task in m.StepParameterSpaceIterator(space=step.parameterSpace)]


def test_the_deadline_template_validates_and_chunks_the_frames():
    long_shot = "/show/" + "very_long_sequence_folder/" * 8 + "sh010/shot.toml"   # > 200 characters
    job = _job({"ShotFile": long_shot, "Frames": "1001-1024", "ChunkSize": "10", "VfxinsertVenv": "/show/venv"})
    assert job.name == "vfxinsert" and len(job.name) <= 128   # the shot path no longer goes into the name
    assert [s.name for s in job.steps] == ["Lighting", "Render", "Handoff"]
    assert [d.dependsOn for s in job.steps[1:] for d in s.dependencies] == ["Lighting", "Render"]
    assert _chunks(job.steps[1]) == ["1001-1008", "1009-1016", "1017-1024"]   # 24 frames in chunks of <= 10
    stepped = _job({"ShotFile": long_shot, "Frames": "1-19:2", "ChunkSize": "5", "VfxinsertVenv": "/v"})
    chunks = _chunks(stepped.steps[1])
    assert chunks == ["1-9:2", "11-19:2"]   # OJD writes a step with ':'; the Render script turns it into fileseq's x
    assert [parse_frames(c.replace(":", "x")) for c in chunks] == [(1, 3, 5, 7, 9), (11, 13, 15, 17, 19)]
    import openjd.model as m

    with pytest.raises((m.DecodeValidationError, ValueError), match="128"):
        _job({"ShotFile": long_shot, "Frames": "1", "VfxinsertVenv": "/v", "JobName": "x" * 129})


def _resolve(text: str, values: dict[str, str]) -> str:
    """The template's format strings ``{{Param.X}}``, ``{{Task.Param.X}}``, ``{{Task.File.X}}`` filled in."""
    return re.sub(r"\{\{\s*([\w.]+)\s*\}\}", lambda m: values[m.group(1)], text)


def test_the_deadline_steps_run_a_shot_to_its_deliverables(tmp_path, shared_data):
    """Each step's command, as a Deadline worker would run it, on a real 3-frame shot in chunks of 2."""
    shot = make_shot(tmp_path, shared_data, frames=(1, 3))
    job = _job({"ShotFile": str(shot), "Frames": "1-3", "ChunkSize": "2", "VfxinsertVenv": sys.prefix})
    template = yaml.safe_load(TEMPLATE.read_text())
    values = {"Param.ShotFile": str(shot), "Param.VfxinsertVenv": sys.prefix}
    for step, spec in zip(job.steps, template["steps"]):
        chunks = _chunks(step) if step.parameterSpace else [None]
        for chunk in chunks:
            task = {**values, "Task.Param.Frames": chunk or ""}
            script = spec["script"]
            for embedded in script.get("embeddedFiles", []):
                path = tmp_path / f"{step.name}-{embedded['name']}.sh"
                path.write_text(_resolve(embedded["data"], task))
                task[f"Task.File.{embedded['name']}"] = str(path)
            run = script["actions"]["onRun"]
            command = [_resolve(run["command"], task), *(_resolve(a, task) for a in run.get("args", []))]
            done = subprocess.run(command, capture_output=True, text=True)
            assert done.returncode == 0, (step.name, chunk, done.stderr[-2000:])
    out = tmp_path / "out"
    assert sorted(p.name for p in out.glob("sh.*")) == ["sh.0001.exr", "sh.0002.exr", "sh.0003.exr", "sh.nk"]
    assert (out / "preview.mp4").is_file() and (out / "report" / "index.html").is_file()
    log = (out / "logs" / "sh.log").read_text()
    assert " run render 1-2: render: frame 2 -> " in log and " run render 3: render: frame 3 -> " in log


def test_the_ray_cluster_config_passes_ray_s_own_schema_and_preparation():
    import jsonschema
    import ray
    from ray.autoscaler._private.local.config import prepare_local

    schema = json.loads((Path(ray.__file__).parent / "autoscaler" / "ray-schema.json").read_text())
    config = yaml.safe_load(CLUSTER.read_text())
    jsonschema.validate(config, schema)   # raises with the offending key
    prepared, _ = prepare_local(config)   # what `ray up` does with an on-prem config
    node = prepared["available_node_types"]["local.cluster.node"]
    assert node["min_workers"] == node["max_workers"] == len(config["provider"]["worker_ips"])


@pytest.mark.parametrize("args,needle", [(["--force", "all", "s.toml"], "unknown stage 'all'"),
                                         (["--chunk", "0", "s.toml"], "--chunk must be"), ([], "no shot file")])
def test_the_ray_job_wrapper_refuses_bad_arguments(args, needle):
    done = subprocess.run(["bash", str(REPO / "farm" / "ray" / "submit.sh"), *args], capture_output=True, text=True)
    assert done.returncode == 2 and needle in done.stderr
