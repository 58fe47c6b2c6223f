"""Train a gradient-boosting classifier under the SageMaker training contract.

SageMaker (through the sagemaker-training toolkit) runs this script as
``python train.py --n_estimators 200 --max_depth 3 ...`` with the SM_* environment set:

* ``SM_CHANNEL_TRAIN``: the ``train`` channel, one or more CSV files with a header row, every
  column numeric, the binary 0/1 label in the ``target`` column.
* ``SM_MODEL_DIR``: ``model.joblib`` goes here; SageMaker uploads it as model.tar.gz.
* ``SM_OUTPUT_DATA_DIR``: ``metrics.json`` goes here; SageMaker uploads it as output.tar.gz.
* ``SM_OUTPUT_DIR``: on failure, ``failure`` goes here; its first 1024 characters become the
  training job's FailureReason.
* ``/opt/ml/checkpoints`` (under ``SAGEMAKER_BASE_DIR`` when the toolkit's base directory is moved): the
  checkpoint directory, CheckpointConfig's default LocalPath. SageMaker copies it to CheckpointConfig.S3Uri
  while the job runs and back into a restarted job after a spot interruption; the fit resumes from the last
  checkpoint there (see ``fit_with_checkpoints``).
* ``SM_HPS``: the hyperparameters as JSON. The command line wins over it; it is read so that the
  script also works when started without the toolkit's arguments.

Metrics are printed to stdout as ``<name>=<value>;`` lines, one per metric, for the job's
MetricDefinitions (see ``METRIC_NAMES`` and ``metric_regex``).

Deterministic: the same data, hyperparameters and package versions give the same ``model.joblib``, byte for
byte (the split and the estimator take ``seed``; gradient boosting with ``subsample=1.0`` draws only from
it; nothing in the model depends on time, host or hash seed). The pipeline's model content digest relies on
it to tell whether a re-run reproduced its original's model; container/tests checks it across processes. It
holds across a spot interruption too: the fit always continues from the checkpoint it has just written, so an
interrupted and resumed job and an uninterrupted one take the same steps, and `write_model` writes the same
model as the same bytes whatever the process did before.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import os
import pickle
import platform
import sys
import traceback
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import NoReturn

import joblib  # type: ignore[import-untyped]
import numpy as np
import numpy.typing as npt
import sklearn  # type: ignore[import-untyped]
from sklearn.ensemble import GradientBoostingClassifier  # type: ignore[import-untyped]
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score  # type: ignore[import-untyped]
from sklearn.model_selection import train_test_split  # type: ignore[import-untyped]

METRIC_NAMES = ("train:accuracy", "validation:accuracy", "validation:f1", "validation:roc_auc")
TARGET_COLUMN = "target"
MODEL_FILENAME = "model.joblib"
METRICS_FILENAME = "metrics.json"
FAILURE_FILENAME = "failure"
# DescribeTrainingJob returns only the first 1024 characters of the failure file.
FAILURE_REASON_LIMIT = 1024
# Exit status for a bad command line or hyperparameter, as argparse itself uses.
EXIT_BAD_HYPERPARAMETER = 2
# Boosting stages between two checkpoints. Part of the image (and so of the training cache key), not a
# hyperparameter: the stage count between checkpoints shapes the model file's bytes, though not its predictions.
CHECKPOINT_EVERY_STAGES = 25
CHECKPOINT_PREFIX = "gradient-boosting-"
CHECKPOINT_SUFFIX = ".joblib"

Features = npt.NDArray[np.float64]
Labels = npt.NDArray[np.int64]


class HyperparameterError(ValueError):
    """A hyperparameter is unknown, malformed or out of range."""


def metric_regex(name: str) -> str:
    """The MetricDefinitions regex that extracts ``name`` from the lines this script prints."""
    if name not in METRIC_NAMES:
        raise ValueError(f"unknown metric {name!r}; known: {', '.join(METRIC_NAMES)}")
    return f"{name}=([0-9.]+);"


def format_metric_line(name: str, value: float) -> str:
    # Six fixed decimals: never an exponent, so `[0-9.]+` always captures the whole number.
    return f"{name}={value:.6f};"


# ---------------------------------------------------------------- hyperparameters


@dataclass(frozen=True)
class Hyperparameters:
    n_estimators: int = 100
    max_depth: int = 3
    learning_rate: float = 0.1
    seed: int = 42
    validation_fraction: float = 0.2


HYPERPARAMETER_NAMES = tuple(f.name for f in fields(Hyperparameters))


class _ArgumentParser(argparse.ArgumentParser):
    # argparse would print usage and exit on its own; raising lets main() write the failure file.
    def error(self, message: str) -> NoReturn:
        expected = ", ".join(f"--{name}" for name in HYPERPARAMETER_NAMES)
        raise HyperparameterError(f"{message} (expected hyperparameters: {expected})")


def _build_parser() -> argparse.ArgumentParser:
    # Abbreviations off: a misspelt hyperparameter must fail, not silently match another one.
    parser = _ArgumentParser(
        prog="train.py",
        description="Train a GradientBoostingClassifier on the SageMaker 'train' channel.",
        allow_abbrev=False,
    )
    defaults = Hyperparameters()
    for name in HYPERPARAMETER_NAMES:
        # Values stay strings here (SageMaker sends every hyperparameter as a string) and are
        # converted in one place, so the command line and SM_HPS get the same checks and messages.
        spellings = dict.fromkeys((f"--{name}", f"--{name.replace('_', '-')}"))
        parser.add_argument(
            *spellings,
            dest=name,
            default=None,
            metavar="VALUE",
            help=f"default: {getattr(defaults, name)}",
        )
    return parser


def _read_sm_hps(text: str) -> dict[str, object]:
    try:
        decoded = json.loads(text)
    except json.JSONDecodeError as exc:
        raise HyperparameterError(f"SM_HPS is not valid JSON: {exc}") from exc
    if not isinstance(decoded, dict):
        raise HyperparameterError(f"SM_HPS must be a JSON object, got {type(decoded).__name__}")
    values = {str(key).replace("-", "_"): value for key, value in decoded.items()}
    unknown = sorted(set(values) - set(HYPERPARAMETER_NAMES))
    if unknown:
        raise HyperparameterError(
            f"unknown hyperparameter(s) in SM_HPS: {', '.join(unknown)} (expected: {', '.join(HYPERPARAMETER_NAMES)})"
        )
    return values


def _to_int(name: str, value: object, minimum: int, maximum: int | None = None) -> int:
    bounds = f">= {minimum}" if maximum is None else f"between {minimum} and {maximum}"
    problem = HyperparameterError(f"{name} must be an integer {bounds}, got {value!r}")
    # bool is an int subclass; a JSON true for n_estimators is a mistake, not 1.
    if isinstance(value, bool):
        raise problem
    text = str(value).strip()
    try:
        number = int(text)
    except ValueError:
        # JSON numbers such as 200.0 are integers in all but spelling.
        try:
            as_float = float(text)
        except ValueError:
            raise problem from None
        if not (math.isfinite(as_float) and as_float.is_integer()):
            raise problem from None
        number = int(as_float)
    if number < minimum or (maximum is not None and number > maximum):
        raise problem
    return number


def _to_fraction(name: str, value: object, *, include_one: bool) -> float:
    bounds = "0 < value <= 1" if include_one else "0 < value < 1"
    problem = HyperparameterError(f"{name} must be a number with {bounds}, got {value!r}")
    if isinstance(value, bool):
        raise problem
    try:
        number = float(str(value).strip())
    except ValueError:
        raise problem from None
    # Written so that NaN fails every comparison and is rejected.
    in_range = 0.0 < number <= 1.0 if include_one else 0.0 < number < 1.0
    if not in_range:
        raise problem
    return number


def parse_hyperparameters(argv: Sequence[str], sm_hps: str | None = None) -> Hyperparameters:
    """Hyperparameters from the defaults, then ``SM_HPS`` (JSON), then the command line."""
    raw: dict[str, object] = asdict(Hyperparameters())
    if sm_hps:
        raw.update(_read_sm_hps(sm_hps))
    parsed = _build_parser().parse_args(list(argv))
    raw.update({name: value for name, value in vars(parsed).items() if value is not None})
    return Hyperparameters(
        n_estimators=_to_int("n_estimators", raw["n_estimators"], minimum=1),
        max_depth=_to_int("max_depth", raw["max_depth"], minimum=1),
        learning_rate=_to_fraction("learning_rate", raw["learning_rate"], include_one=True),
        # numpy's RandomState accepts seeds in [0, 2**32 - 1] only.
        seed=_to_int("seed", raw["seed"], minimum=0, maximum=2**32 - 1),
        validation_fraction=_to_fraction("validation_fraction", raw["validation_fraction"], include_one=False),
    )


# ---------------------------------------------------------------- data


@dataclass(frozen=True)
class Dataset:
    features: Features
    labels: Labels
    feature_names: tuple[str, ...]
    # (file name, data rows) in the order the files were concatenated.
    files: tuple[tuple[str, int], ...]

    @property
    def rows(self) -> int:
        return int(self.labels.shape[0])

    def class_counts(self) -> dict[int, int]:
        classes, counts = np.unique(self.labels, return_counts=True)
        return {int(c): int(n) for c, n in zip(classes, counts, strict=True)}


def _short_list(names: Sequence[str], limit: int = 20) -> str:
    # Keeps messages readable (and the failure file under its limit) on wide datasets.
    shown = ", ".join(names[:limit])
    return shown if len(names) <= limit else f"{shown}, … (+{len(names) - limit} more)"


def _read_header(path: Path) -> list[str]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            row = next(csv.reader(handle), None)
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path.name} is not UTF-8 text: {exc.reason} at byte {exc.start}") from exc
    if row is None:
        raise ValueError(f"{path.name} is empty: expected a header row naming the columns")
    names = [cell.strip() for cell in row]
    for position, name in enumerate(names, start=1):
        if not name:
            raise ValueError(f"{path.name}: column {position} of the header has no name")
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"{path.name}: duplicate column names in the header: {_short_list(duplicates)}")
    return names


def _locate_bad_cell(path: Path, header: Sequence[str]) -> str | None:
    # numpy's parse errors count rows inconsistently and name no column; this slower pass runs
    # only after a failure, to point at the exact line and column.
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        next(reader, None)
        for row in reader:
            if not row:
                continue
            where = f"{path.name} line {reader.line_num}"
            if len(row) != len(header):
                return f"{where} has {len(row)} values, but the header names {len(header)} columns"
            for name, cell in zip(header, row, strict=True):
                if not cell.strip():
                    return f"{where}, column {name!r}: empty cell (missing values are not supported)"
                try:
                    float(cell)
                except ValueError:
                    return f"{where}, column {name!r}: non-numeric value {cell!r}"
    return None


def _read_values(path: Path, header: Sequence[str]) -> Features:
    try:
        with warnings.catch_warnings():
            # A header-only file is allowed (it adds no rows); numpy warns about it.
            warnings.simplefilter("ignore", UserWarning)
            values = np.loadtxt(
                path,
                delimiter=",",
                skiprows=1,
                ndmin=2,
                comments=None,
                quotechar='"',
                encoding="utf-8-sig",
                dtype=np.float64,
            )
    except ValueError as exc:
        raise ValueError(_locate_bad_cell(path, header) or f"{path.name}: {exc}") from exc
    if values.size == 0:
        return np.empty((0, len(header)), dtype=np.float64)
    if values.shape[1] != len(header):
        raise ValueError(f"{path.name}: rows have {values.shape[1]} values, but the header names {len(header)} columns")
    bad = np.argwhere(~np.isfinite(values))
    if bad.size:
        row, column = (int(i) for i in bad[0])
        raise ValueError(
            f"{path.name} data row {row + 1}, column {header[column]!r}: "
            f"non-finite value {values[row, column]} (missing values are not supported)"
        )
    return values


def _csv_files(channel: Path) -> list[Path]:
    if not channel.is_dir():
        raise ValueError(f"the train channel directory {channel} does not exist (is SM_CHANNEL_TRAIN set?)")
    files = sorted((p for p in channel.glob("*.csv") if p.is_file()), key=lambda p: p.name)
    if not files:
        others = sorted(p.name for p in channel.iterdir())
        found = f"found: {_short_list(others)}" if others else "it is empty"
        raise ValueError(f"no CSV files in the train channel {channel} ({found})")
    return files


def load_dataset(channel: Path, target: str = TARGET_COLUMN) -> Dataset:
    """Every ``*.csv`` in ``channel``, sorted by name and concatenated, split into X and y."""
    files = _csv_files(channel)
    # The header is checked before any value is parsed: a missing label column is the more
    # fundamental problem to report.
    header = _read_header(files[0])
    if target not in header:
        raise ValueError(f"the train channel has no {target!r} column (columns: {_short_list(header)})")
    if len(header) == 1:
        raise ValueError(f"the train channel has only the {target!r} column: at least one feature is needed")
    blocks: list[Features] = []
    for path in files:
        names = _read_header(path)
        if names != header:
            raise ValueError(
                f"{path.name} has different columns from {files[0].name}: "
                f"[{_short_list(names)}] instead of [{_short_list(header)}]"
            )
        blocks.append(_read_values(path, header))
    values = np.concatenate(blocks, axis=0)
    if values.shape[0] == 0:
        raise ValueError(f"the train channel has no data rows ({len(files)} CSV file(s), header only)")

    target_index = header.index(target)
    raw_labels = values[:, target_index]
    classes = np.unique(raw_labels)
    if not np.isin(classes, (0.0, 1.0)).all():
        shown = _short_list([f"{c:g}" for c in classes])
        raise ValueError(f"the {target!r} column must be binary 0/1; found values: {shown}")
    if classes.size < 2:
        raise ValueError(
            f"the {target!r} column has a single class ({classes[0]:g} in all {values.shape[0]} rows): "
            "a binary classifier needs rows of both 0 and 1"
        )
    return Dataset(
        features=np.ascontiguousarray(np.delete(values, target_index, axis=1)),
        labels=raw_labels.astype(np.int64),
        feature_names=tuple(name for name in header if name != target),
        files=tuple((path.name, int(block.shape[0])) for path, block in zip(files, blocks, strict=True)),
    )


def describe_dataset(dataset: Dataset, channel: Path) -> list[str]:
    """Log lines that say what was read, for the job's CloudWatch log."""
    counts = dataset.class_counts()
    balance = ", ".join(f"{label}={count} ({count / dataset.rows:.1%})" for label, count in sorted(counts.items()))
    return [
        f"train channel: {channel}",
        *(f"  read {name}: {rows} rows" for name, rows in dataset.files),
        f"dataset: {dataset.rows} rows, {len(dataset.feature_names)} features, label {TARGET_COLUMN!r}",
        f"features: {_short_list(dataset.feature_names)}",
        f"class balance: {balance}",
    ]


# ---------------------------------------------------------------- training


@dataclass(frozen=True)
class Split:
    x_train: Features
    y_train: Labels
    x_validation: Features
    y_validation: Labels


def split_dataset(dataset: Dataset, validation_fraction: float, seed: int) -> Split:
    """A stratified, seeded train/validation split."""
    parts = train_test_split(
        dataset.features,
        dataset.labels,
        test_size=validation_fraction,
        stratify=dataset.labels,
        random_state=seed,
    )
    split = Split(
        x_train=np.asarray(parts[0], dtype=np.float64),
        x_validation=np.asarray(parts[1], dtype=np.float64),
        y_train=np.asarray(parts[2], dtype=np.int64),
        y_validation=np.asarray(parts[3], dtype=np.int64),
    )
    # Stratification rounds per class, so a tiny minority class can miss one side entirely;
    # ROC AUC is undefined there and the model would learn a constant.
    for side, labels in (("training", split.y_train), ("validation", split.y_validation)):
        if np.unique(labels).size < 2:
            raise ValueError(
                f"the {side} split ({labels.shape[0]} rows) has a single class: add rows of the "
                "minority class or change validation_fraction"
            )
    return split


def _estimator(hyperparameters: Hyperparameters, stages: int) -> GradientBoostingClassifier:
    # warm_start: each fit adds stages to the ones already fitted; the estimator keeps its random state
    # between fits (and in its pickle), so stages fitted across several fits equal stages fitted in one.
    return GradientBoostingClassifier(
        n_estimators=stages,
        max_depth=hyperparameters.max_depth,
        learning_rate=hyperparameters.learning_rate,
        random_state=hyperparameters.seed,
        warm_start=True,
    )


def checkpoint_fingerprint(features: Features, labels: Labels, hyperparameters: Hyperparameters) -> str:
    """What a checkpoint was fitted on: a checkpoint of other data, settings or scikit-learn is never resumed."""
    digest = hashlib.sha256()
    for array in (np.ascontiguousarray(features), np.ascontiguousarray(labels)):
        digest.update(str((array.dtype.str, array.shape)).encode())
        digest.update(array.tobytes())
    digest.update(json.dumps([asdict(hyperparameters), str(sklearn.__version__)], sort_keys=True).encode())
    return digest.hexdigest()


def _checkpoint_path(directory: Path, stages: int) -> Path:
    return directory / f"{CHECKPOINT_PREFIX}{stages:06d}{CHECKPOINT_SUFFIX}"


def latest_checkpoint(directory: Path, fingerprint: str) -> tuple[int, GradientBoostingClassifier] | None:
    """The checkpoint with the most stages that was fitted on `fingerprint`, as (stages, estimator)."""
    if not directory.is_dir():
        return None
    for path in sorted(directory.glob(f"{CHECKPOINT_PREFIX}*{CHECKPOINT_SUFFIX}"), reverse=True):
        try:
            saved = joblib.load(path)
        except Exception as error:  # a torn or foreign file is skipped, never fatal
            _log(f"checkpoint: ignoring {path.name}, which cannot be read ({type(error).__name__})")
            continue
        if isinstance(saved, dict) and saved.get("fingerprint") == fingerprint:
            return int(saved["stages"]), saved["estimator"]
        _log(f"checkpoint: ignoring {path.name}, fitted on other data, settings or scikit-learn")
    return None


def _save_checkpoint(directory: Path, stages: int, fingerprint: str, model: GradientBoostingClassifier) -> Path:
    # Written under a temporary name and renamed, so that a copy taken at any moment (SageMaker syncs the
    # directory to S3 while the job runs) holds whole checkpoints only; the older ones are then removed.
    directory.mkdir(parents=True, exist_ok=True)
    path = _checkpoint_path(directory, stages)
    partial = path.with_name(f".{path.name}.partial")
    joblib.dump({"fingerprint": fingerprint, "stages": stages, "estimator": model}, partial)
    partial.replace(path)
    for older in directory.glob(f"{CHECKPOINT_PREFIX}*{CHECKPOINT_SUFFIX}"):
        if older != path:
            older.unlink(missing_ok=True)
    return path


def fit_with_checkpoints(
    features: Features, labels: Labels, hyperparameters: Hyperparameters, checkpoint_dir: Path
) -> GradientBoostingClassifier:
    """Fit in steps of CHECKPOINT_EVERY_STAGES stages, checkpointing after each; resume from the last checkpoint.

    Every step continues from the checkpoint it has just written, read back, rather than from the estimator in
    memory: a job that was interrupted and restarted takes exactly the steps an uninterrupted one takes, so the
    two write byte-identical models.
    """
    fingerprint = checkpoint_fingerprint(features, labels, hyperparameters)
    resumed = latest_checkpoint(checkpoint_dir, fingerprint)
    # The fingerprint holds n_estimators: a resumed checkpoint never has more stages than asked for.
    if resumed is not None:
        stages, model = resumed
        _log(f"checkpoint: resuming from {stages} of {hyperparameters.n_estimators} stages")
    else:
        stages, model = 0, _estimator(hyperparameters, 0)
    while stages < hyperparameters.n_estimators:
        stages = min(stages + CHECKPOINT_EVERY_STAGES, hyperparameters.n_estimators)
        model.n_estimators = stages
        model.fit(features, labels)
        path = _save_checkpoint(checkpoint_dir, stages, fingerprint, model)
        _log(f"checkpoint: {stages} of {hyperparameters.n_estimators} stages in {path.name}")
        model = joblib.load(path)["estimator"]
    # What a fresh fit would hold: the model file does not say it was fitted in steps.
    model.warm_start = False
    return model


def train(
    features: Features, labels: Labels, hyperparameters: Hyperparameters, checkpoint_dir: Path
) -> GradientBoostingClassifier:
    """Fit the classifier; the seed makes the fit, and so the metrics, reproducible."""
    return fit_with_checkpoints(features, labels, hyperparameters, checkpoint_dir)


def evaluate(model: GradientBoostingClassifier, split: Split) -> dict[str, float]:
    """The metrics named in METRIC_NAMES, in that order."""
    positive_scores = np.asarray(model.predict_proba(split.x_validation))[:, 1]
    validation_predictions = model.predict(split.x_validation)
    metrics = {
        "train:accuracy": float(accuracy_score(split.y_train, model.predict(split.x_train))),
        "validation:accuracy": float(accuracy_score(split.y_validation, validation_predictions)),
        "validation:f1": float(f1_score(split.y_validation, validation_predictions, pos_label=1)),
        "validation:roc_auc": float(roc_auc_score(split.y_validation, positive_scores)),
    }
    for name, value in metrics.items():
        # A NaN would print as "nan", which the MetricDefinitions regex cannot capture.
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"metric {name} is {value}, outside [0, 1]")
    return metrics


# ---------------------------------------------------------------- outputs


def build_report(
    metrics: Mapping[str, float],
    dataset: Dataset,
    split: Split,
    hyperparameters: Hyperparameters,
) -> dict[str, object]:
    """The content of metrics.json. Nothing time- or host-dependent, so reruns are byte-identical."""
    return {
        # Rounded as printed, so metrics.json and the job's metrics agree exactly.
        "metrics": {name: round(metrics[name], 6) for name in METRIC_NAMES},
        "rows": {
            "total": dataset.rows,
            "train": int(split.y_train.shape[0]),
            "validation": int(split.y_validation.shape[0]),
        },
        "class_balance": {str(label): count for label, count in dataset.class_counts().items()},
        "files": [{"name": name, "rows": rows} for name, rows in dataset.files],
        "target": TARGET_COLUMN,
        "features": list(dataset.feature_names),
        "hyperparameters": asdict(hyperparameters),
        "model": "sklearn.ensemble.GradientBoostingClassifier",
        "versions": {
            "scikit-learn": str(sklearn.__version__),
            "numpy": np.__version__,
            "python": platform.python_version(),
        },
    }


def write_model(model: GradientBoostingClassifier, path: Path) -> None:
    """Write the model as a pickle without memo (pickle's "fast" mode), which `joblib.load` reads.

    A memoised pickle (joblib.dump's) writes an object shared by identity once and refers to it after; which
    equal strings are the same object depends on the process's history (an estimator fitted in this process
    shares interned attribute names that one read from a checkpoint does not), so the same model could be
    written as different bytes by a job that fitted every stage and by one resumed from a checkpoint. Without a
    memo the bytes depend only on the model's values. The estimator holds no reference cycle, which fast mode
    cannot write. The file is larger (about 1.6 MB for 200 stages instead of 0.26 MB) but compresses to about
    the same size in model.tar.gz.
    """
    with path.open("wb") as handle:
        pickler = pickle.Pickler(handle, protocol=pickle.HIGHEST_PROTOCOL)
        pickler.fast = True
        pickler.dump(model)


def write_outputs(
    model: GradientBoostingClassifier,
    report: Mapping[str, object],
    model_dir: Path,
    output_data_dir: Path,
) -> tuple[Path, Path]:
    """Write model.joblib and metrics.json, creating the directories if needed."""
    model_dir.mkdir(parents=True, exist_ok=True)
    output_data_dir.mkdir(parents=True, exist_ok=True)
    model_path = model_dir / MODEL_FILENAME
    write_model(model, model_path)
    metrics_path = output_data_dir / METRICS_FILENAME
    metrics_path.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return model_path, metrics_path


def failure_reason(error: BaseException) -> str:
    """The failure file's text: the exception on the first line, at most FAILURE_REASON_LIMIT chars."""
    message = str(error).strip()
    text = f"{type(error).__name__}: {message}" if message else type(error).__name__
    if not isinstance(error, ValueError):
        text += "\nThis is unexpected: the traceback is in the training job's log."
    if len(text) > FAILURE_REASON_LIMIT:
        text = text[: FAILURE_REASON_LIMIT - 1] + "…"
    return text


def write_failure(output_dir: Path, error: BaseException) -> Path:
    output_dir.mkdir(parents=True, exist_ok=True)
    path = output_dir / FAILURE_FILENAME
    path.write_text(failure_reason(error) + "\n", encoding="utf-8")
    return path


# ---------------------------------------------------------------- entry point


@dataclass(frozen=True)
class Paths:
    train_channel: Path
    model_dir: Path
    output_data_dir: Path
    output_dir: Path
    checkpoint_dir: Path


def resolve_paths(environ: Mapping[str, str]) -> Paths:
    """The SageMaker directories, from the SM_* variables or the container's standard layout."""
    return Paths(
        train_channel=Path(environ.get("SM_CHANNEL_TRAIN", "/opt/ml/input/data/train")),
        model_dir=Path(environ.get("SM_MODEL_DIR", "/opt/ml/model")),
        output_data_dir=Path(environ.get("SM_OUTPUT_DATA_DIR", "/opt/ml/output/data")),
        output_dir=Path(environ.get("SM_OUTPUT_DIR", "/opt/ml/output")),
        # CheckpointConfig.LocalPath's default; the toolkit has no SM_* variable for it, but moves its own
        # directories with SAGEMAKER_BASE_DIR, and so does this.
        checkpoint_dir=Path(environ.get("SAGEMAKER_BASE_DIR", "/opt/ml")) / "checkpoints",
    )


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _run(argv: Sequence[str], paths: Paths) -> None:
    hyperparameters = parse_hyperparameters(argv, os.environ.get("SM_HPS"))
    _log("hyperparameters: " + ", ".join(f"{k}={v}" for k, v in asdict(hyperparameters).items()))

    dataset = load_dataset(paths.train_channel)
    for line in describe_dataset(dataset, paths.train_channel):
        _log(line)

    split = split_dataset(dataset, hyperparameters.validation_fraction, hyperparameters.seed)
    _log(
        f"split: {split.y_train.shape[0]} train / {split.y_validation.shape[0]} validation rows "
        f"(stratified, seed {hyperparameters.seed})"
    )
    model = train(split.x_train, split.y_train, hyperparameters, paths.checkpoint_dir)
    metrics = evaluate(model, split)
    for name in METRIC_NAMES:
        print(format_metric_line(name, metrics[name]), flush=True)

    report = build_report(metrics, dataset, split, hyperparameters)
    model_path, metrics_path = write_outputs(model, report, paths.model_dir, paths.output_data_dir)
    _log(f"wrote {model_path} and {metrics_path}")


def main(argv: list[str] | None = None) -> int:
    """Run one training job; 0 on success, non-zero after writing the failure file."""
    paths = resolve_paths(os.environ)
    try:
        _run(sys.argv[1:] if argv is None else argv, paths)
    # Broad on purpose: whatever goes wrong, SageMaker must get a FailureReason.
    except Exception as error:
        reason = failure_reason(error)
        _log(f"training failed: {reason.splitlines()[0]}")
        traceback.print_exception(error, file=sys.stderr)
        try:
            write_failure(paths.output_dir, error)
        except OSError as write_error:
            _log(f"could not write the failure file in {paths.output_dir}: {write_error}")
        return EXIT_BAD_HYPERPARAMETER if isinstance(error, HyperparameterError) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
