"""`predict`: the emotions of new tweets, from the fold models of the last blend.

Everything comes from OUTPUT/blend/report.json, so a tweet gets the labels the submission would give it.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from contextlib import nullcontext
from pathlib import Path

import numpy as np

from solution import config as config_mod
from solution import hints, log
from solution.blend import stack as stack_mod
from solution.blend import thresholds as thresholds_mod
from solution.blend.blend import fold_average
from solution.blend.report import describe_method
from solution.data import ID, TEXT, read_csv
from solution.errors import UserError
from solution.io import COUNT, REPORT_JSON, NotText, decode_text, read_checked
from solution.models.registry import model_class
from solution.options import user_path
from solution.train.model_dir import bad_fold, marked_done, read_config

FORMATS = ("table", "json", "csv")
DEFAULT_OUTPUT = Path("output")
DEMO_OUTPUT = Path("output") / "demo"
PROGRESS_FROM = 1000  # tweets: fewer are predicted in moments, and a bar would only flicker


# --- what the last blend used ----------------------------------------------------------------------

def read_blend(output: Path) -> dict:
    """Models, labels, thresholds, rules, and the weights or stacker of the last blend."""

    path = Path(output) / "blend" / "report.json"
    rerun = f"rerun {blend_hint(output)}"
    if not path.exists():
        train, run = hints.command("train", output=output), hints.command("run", output=output)
        raise UserError(f"{path}: no blend report, so no models to predict with; make it with {blend_hint(output)} "
                        f"(after `{train}`), or `{run}`")
    try:
        rep = read_checked(path, REPORT_JSON)
    except UserError as e:
        raise UserError(f"{e}; remake it with {blend_hint(output)}") from None
    stacker = rep.get("stacker") or {}
    stacked = bool(stacker.get("used"))
    needed = ("models", "thresholds", *(("coef", "intercept") if stacked else ("weights",)))
    missing = [k for k in needed if not (stacker if k in ("coef", "intercept") else rep).get(k)]
    if missing:
        raise UserError(f"{path}: incomplete blend report (no {', '.join(missing)}); {rerun}")
    labels = list(rep.get("labels") or rep["thresholds"])
    absent = [lab for lab in labels if lab not in rep["thresholds"]]
    if absent:
        raise UserError(f"{path}: incomplete blend report (no threshold for {', '.join(absent)}); {rerun}")
    weights = None if stacked else _weights(path, rep, rerun)
    if stacked:
        _check_stacker(path, stacker, len(rep["models"]), len(labels), rerun)
    weighting = (rep.get("weights_info") or {}).get("method")
    return {
        "path": path, "models": list(rep["models"]), "weights": weights, "labels": labels,
        "thresholds": np.array([float(rep["thresholds"][lab]) for lab in labels]),
        "fold_average": rep.get("fold_average") or "mean",
        "min_one": bool((rep.get("min_one_label") or {}).get("used", False)),
        "stacker": stacker, "description": describe_method(list(rep["models"]), weights, stacker, weighting),
    }


def blend_hint(output: Path) -> str:
    return f"`{hints.command('blend', output=output)}`"


def _weights(path: Path, rep: dict, rerun: str) -> dict:
    unweighted = [m for m in rep["models"] if m not in rep["weights"]]
    if unweighted:
        raise UserError(f"{path}: incomplete blend report (no weight for {', '.join(unweighted)}); {rerun}")
    weights = {m: float(rep["weights"][m]) for m in rep["models"]}
    total = sum(weights.values())
    if not np.isfinite(total) or total <= 0:
        raise UserError(f"{path}: the blend's weights do not sum to a positive number; {rerun}")
    return {m: w / total for m, w in weights.items()}


def _check_stacker(path: Path, stacker: dict, n_models: int, n_labels: int, rerun: str) -> None:
    """The stacker's coefficients as stack.fit wrote them: (labels, models x labels) and (labels,), finite."""
    for key, shape in (("coef", (n_labels, n_models * n_labels)), ("intercept", (n_labels,))):
        try:
            ok = np.isfinite(np.asarray(stacker[key], dtype=np.float64)).all() and np.shape(stacker[key]) == shape
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise UserError(f"{path}: the stacker's {key} is not {shape[0]} row(s) of finite numbers for "
                            f"{n_models} model(s) and {n_labels} labels; {rerun}")


def fold_dirs(output: Path, name: str, labels: list[str]) -> tuple[object, list[Path]]:
    """(config, [fold<k>/model dirs]) of a model whose folds are all done."""

    mdir = Path(output) / name
    train_cmd = f"`{hints.command('train', name, output=output)}`"
    if not (mdir / "config.json").exists():
        raise UserError(f"{mdir}: no trained model {name!r} (the blend used it); train it with {train_cmd}")
    retrain = f"retrain with `{hints.command('train', name, '--force', output=output)}`"
    try:
        rec = read_config(mdir)
        cfg = config_mod.from_dict(rec["config"])
    except UserError as e:
        raise UserError(f"{e}; {retrain}") from None
    except (KeyError, TypeError) as e:
        raise UserError(f"{mdir / 'config.json'}: not a model config ({e}); {retrain}") from None
    if rec["labels"] != labels:
        raise UserError(f"{mdir} was trained with other labels than the blend's; {retrain}, then rerun "
                        f"{blend_hint(output)}")
    n_splits = rec["folds"].get("n_splits")
    if not COUNT.ok(n_splits):
        raise UserError(f"{mdir / 'config.json'}: 'folds' has no fold count; {retrain}")
    dirs, missing = [], []
    for k in range(n_splits):
        fdir = mdir / f"fold{k}"
        done = marked_done(fdir, rec["config_fingerprint"])
        why = bad_fold(fdir) if done else None
        if why:
            raise UserError(f"{why}; retrain that fold with {train_cmd}")
        (dirs if done and (fdir / "model").is_dir() else missing).append(fdir / "model")
    if missing or not dirs:
        ks = [int(p.parent.name[4:]) for p in missing]
        raise UserError(f"{mdir}: fold model(s) {ks or 'all'} missing or incomplete; finish them with {train_cmd}")
    return cfg, dirs


# what loading a damaged model raises; anything else is the kit's bug and keeps its traceback
LOAD_ERRORS = (OSError, EOFError, KeyError, ValueError, AttributeError, ImportError, RuntimeError)


def load_fold_model(cfg, directory: Path, labels: list[str]):
    """A saved fold model; a damaged one is refused naming the file."""
    import pickle

    cls = model_class(cfg.kind)
    output = hints.fold_model_output(directory)
    retrain = f"retrain it with `{hints.command('train', cfg.name, '--force', output=output)}`"
    try:
        return cls.load(directory, cfg, labels)
    except Exception as e:  # a UserError too: a loader may blame the backbone for a damaged file
        damaged = damaged_file(directory)
        if damaged:
            file, why = damaged
            raise UserError(f"{directory}: cannot load the fold model: {file.relative_to(directory)} is damaged "
                            f"({why}); {retrain}") from None
        if isinstance(e, UserError) or not isinstance(e, LOAD_ERRORS + (pickle.UnpicklingError,)):
            raise
        if type(e).__name__ == "OutOfMemoryError" or "out of memory" in str(e):  # the files are fine
            raise UserError(f"{directory}: out of memory loading the fold model; predict where there is more "
                            f"(GPU) memory, or with CUDA_VISIBLE_DEVICES= on the CPU") from None
        why = str(e).splitlines()[0] if str(e) else ""
        raise UserError(f"{directory}: cannot load the fold model ({type(e).__name__}: {why}); {retrain}") from None


def damaged_file(directory: Path) -> tuple[Path, str] | None:
    for path in sorted(p for p in Path(directory).rglob("*") if p.is_file()):
        try:
            if path.stat().st_size == 0:
                return path, "empty file"
            _read_back(path)
        except Exception as e:  # whatever the reader raises, the file is what is wrong
            why = (str(e).strip().splitlines() or [type(e).__name__])[0]
            return path, f"truncated or corrupt: {why[:200]}"
    return None


def _read_back(path: Path) -> None:
    import pickle

    if path.suffix == ".json":
        json.loads(path.read_text(encoding="utf-8"))
    elif path.suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            for key in f.keys():
                f.get_slice(key)
    elif path.suffix == ".pkl":
        with open(path, "rb") as f:
            pickle.load(f)
    elif path.suffix in (".bin", ".pt", ".pth"):
        import torch

        torch.load(path, map_location="cpu", weights_only=True)


def model_probs(cfg, dirs: list[Path], texts: list[str], labels: list[str], how: str, on_fold=lambda: None
                ) -> np.ndarray:
    """One model's probabilities, averaged over folds as the blend did."""
    probs = []
    for d in dirs:
        model = load_fold_model(cfg, d, labels)
        probs.append(np.asarray(model.predict(texts), dtype=np.float64))
        del model
        on_fold()
        if getattr(cfg, "frozen_layers", 0) and cfg.adapter == "none":  # each fold has its own frozen blocks
            from solution.models import frozen  # lazy: torch

            frozen.release()
    return fold_average(probs, how)


def predict_probs(output: Path, texts: list[str], blend: dict | None = None, verbose: bool = False
                  ) -> tuple[np.ndarray, dict]:
    """(blended probabilities, the blend settings used); verbose: the libraries' messages on stderr, not in
    OUTPUT/predict.log."""
    output = Path(output)
    blend = blend or read_blend(output)
    labels = blend["labels"]
    stacked = bool(blend["stacker"].get("used"))
    # a stacker reads every model's probabilities; an average only the weighted ones
    used = list(blend["models"]) if stacked else [m for m in blend["models"] if blend["weights"][m] > 0]
    located = {m: fold_dirs(output, m, labels) for m in used}  # check every model before loading any
    report_time = blend["path"].stat().st_mtime
    for m, (cfg, dirs) in located.items():
        if any((d.parent / "DONE.json").stat().st_mtime > report_time for d in dirs):
            log.warn(f"{output / m} was retrained after the last blend: its thresholds may not fit; "
                     f"rerun {blend_hint(output)}")
    # the libraries' load reports (a head "missing" until the adapter restores it) go to this run's log
    logged = nullcontext() if verbose else log.library_log(output / "predict.log")
    n_folds = sum(len(dirs) for _, dirs in located.values())
    with logged, log.progress(total=n_folds, desc=f"predict {len(texts)} tweets", unit="fold",
                              disable=len(texts) < PROGRESS_FROM) as bar:
        per_model = {m: model_probs(cfg, dirs, texts, labels, blend["fold_average"], bar.update)
                     for m, (cfg, dirs) in located.items()}
    if stacked:

        return stack_mod.apply(blend["stacker"], stack_mod.features(np.stack(list(per_model.values())))), blend
    return sum(blend["weights"][m] * p for m, p in per_model.items()), blend


# --- reading tweets --------------------------------------------------------------------------------

def read_tweets(args, stdin=None) -> tuple[list[str], list[str]]:
    """(IDs, tweets) from the arguments, --file, or stdin."""

    if args.file is not None:
        if args.tweets:
            raise UserError("give tweets either as arguments or with --file, not both")
        df = read_csv(args.file, [ID, TEXT])
        return df[ID].tolist(), df[TEXT].tolist()
    if args.tweets:
        tweets = [_text(t.encode("utf-8", "surrogateescape"), f"tweet argument {i}")
                  for i, t in enumerate(args.tweets, 1)]
    else:
        stdin = sys.stdin if stdin is None else stdin
        if stdin is None or _isatty(stdin):
            raise UserError('no tweets: give them as arguments (python -m solution predict "a tweet"), '
                            "with --file tweets.csv (ID, Tweet), or one per line on stdin")
        buffer = getattr(stdin, "buffer", None)  # bytes: the text layer would pass undecodable ones on escaped
        raw = buffer.read() if buffer is not None else stdin.read().encode("utf-8", "surrogateescape")
        tweets = [t for t in (line.rstrip("\r") for line in _text(raw, "stdin").split("\n")) if t.strip()]
        if not tweets:
            raise UserError("no tweets on stdin (one tweet per line)")
    return [str(i + 1) for i in range(len(tweets))], tweets


def _text(raw: bytes, where: str) -> str:
    """UTF-8 text without NUL bytes; anything else is one line naming `where` (and, on stdin, the line)."""
    try:
        return decode_text(raw)
    except NotText as e:
        what = f"not UTF-8 (byte 0x{e.byte:02x})" if e.byte is not None else "a NUL byte (binary data)"
        line = f" on line {e.line}" if where == "stdin" else ""
        raise UserError(f"{where}: {what}{line}; give the tweets as UTF-8 text") from None


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


# --- printing --------------------------------------------------------------------------------------

def predictions(ids, tweets, probs, blend) -> list[dict]:
    labels = blend["labels"]
    pred = thresholds_mod.predict(probs, blend["thresholds"], blend["min_one"])
    return [{"ID": i, "tweet": t, "emotions": [lab for j, lab in enumerate(labels) if pred[n, j]],
             "probabilities": {lab: float(probs[n, j]) for j, lab in enumerate(labels)}}
            for n, (i, t) in enumerate(zip(ids, tweets))]


def format_json(rows, blend) -> str:
    doc = {"method": blend["description"], "models": blend["models"], "weights": blend["weights"],
           "fold_average": blend["fold_average"],
           "thresholds": dict(zip(blend["labels"], blend["thresholds"].tolist())),
           "at_least_one_label": blend["min_one"], "predictions": rows}
    return json.dumps(doc, indent=2, ensure_ascii=False)


def format_csv(rows, blend) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["ID", "Tweet", "emotions", *blend["labels"]])
    for r in rows:
        w.writerow([r["ID"], r["tweet"], " ".join(r["emotions"]),
                    *[repr(r["probabilities"][lab]) for lab in blend["labels"]]])
    return buf.getvalue().rstrip("\n")


def format_table(rows, blend) -> str:
    labels = blend["labels"]
    width = max(len(lab) for lab in labels)
    out = []
    for r in rows:
        tweet = " ".join(str(r["tweet"]).split())
        if len(tweet) > 100:
            tweet = tweet[:97] + "..."
        out.append(f"[{r['ID']}] {tweet}")
        out.append(f"  emotions: {', '.join(r['emotions']) or '(none)'}")
        out.append(f"  {'label':<{width}}  prob   threshold")
        for j, lab in enumerate(labels):
            mark = "  *" if lab in r["emotions"] else ""
            out.append(f"  {lab:<{width}}  {r['probabilities'][lab]:.3f}  {blend['thresholds'][j]:.3f}{mark}")
        out.append("")
    out.append(f"(* = predicted: probability >= threshold; {blend['description']}; folds averaged by "
               f"{blend['fold_average']}{'; at least one label per tweet' if blend['min_one'] else ''})")
    return "\n".join(out)


FORMATTERS = {"table": format_table, "json": format_json, "csv": format_csv}


# --- the command -----------------------------------------------------------------------------------

def default_output() -> Path:
    """output/, or output/demo/ when only a demo run has made a blend."""
    if not (DEFAULT_OUTPUT / "blend" / "report.json").exists() and (DEMO_OUTPUT / "blend" / "report.json").exists():
        log.banner(f"no {DEFAULT_OUTPUT}/blend/report.json: using the DEMO models of {DEMO_OUTPUT}/ "
                   f"(trained on generated data, not the competition's)")
        return DEMO_OUTPUT
    return DEFAULT_OUTPUT


def main(argv=None, stdin=None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m solution predict", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Predict the emotions of new tweets with the trained fold models of the last blend\n"
                    "(models, how they are combined and thresholds from OUTPUT/blend/report.json, "
                    "as in the submission).\n"
                    "Never retrains. Tweets: arguments, --file (CSV with ID, Tweet), or stdin, one per line.",
        epilog="examples:\n"
               '  python -m solution predict "so happy today!" "this is awful"\n'
               "  python -m solution predict --file input/test.csv --format csv > predictions.csv\n"
               "  cat tweets.txt | python -m solution predict --format json")
    p.add_argument("tweets", nargs="*", help="tweets to classify (default: --file, else stdin)")
    p.add_argument("--file", type=user_path, default=None, help="CSV with ID and Tweet columns (e.g. test.csv)")
    p.add_argument("--format", choices=FORMATS, default="table", help="output format (default: table)")
    p.add_argument("--output", type=user_path, default=None,
                   help="where training and the blend wrote (default: output/)")
    p.add_argument("--verbose", action="store_true",
                   help="show the libraries' warnings here instead of in OUTPUT/predict.log")
    args = p.parse_args(argv)
    ids, tweets = read_tweets(args, stdin)
    output = args.output if args.output is not None else default_output()
    probs, blend = predict_probs(output, tweets, verbose=args.verbose)
    rows = predictions(ids, tweets, probs, blend)
    print(FORMATTERS[args.format](rows, blend))
    return 0
