"""Successful training runs: outputs, the metric-line contract, determinism, inputs honoured."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import joblib  # type: ignore[import-untyped]
import numpy as np
import pytest

import train

TRAIN_SCRIPT = Path(__file__).resolve().parents[1] / "train.py"
FAST = ["--n_estimators", "50"]


def read_json(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def metric_lines(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.split("=", 1)[0] in train.METRIC_NAMES]


def test_training_run_writes_a_loadable_model_and_metrics(train_channel, capsys) -> None:
    """Scenario: a job trains with the default hyperparameters on the breast cancer data."""
    # Given the breast cancer data in the train channel (from the fixture)
    # When the training script runs with no arguments
    exit_code = train.main([])

    # Then it succeeds and model.joblib loads and predicts one 0/1 label per row
    assert exit_code == 0
    assert not train_channel.failure_file.exists()
    model = joblib.load(train_channel.model_file)
    report = read_json(train_channel.metrics_file)
    dataset = train.load_dataset(train_channel.train_channel)
    predictions = model.predict(dataset.features[:25])
    assert predictions.shape == (25,)
    assert set(np.unique(predictions)) <= {0, 1}
    # And the metrics are probabilities, with validation accuracy that a working model reaches
    metrics = report["metrics"]
    assert set(metrics) == set(train.METRIC_NAMES)
    assert all(0.0 <= value <= 1.0 for value in metrics.values())
    assert metrics["validation:accuracy"] > 0.9
    assert metrics["validation:roc_auc"] > 0.95
    # And metrics.json records what was trained on and with what
    assert report["rows"] == {"total": 569, "train": 455, "validation": 114}
    assert report["class_balance"] == {"0": 212, "1": 357}
    assert report["files"] == [{"name": "train.csv", "rows": 569}]
    assert len(report["features"]) == 30
    assert "target" not in report["features"]
    assert report["hyperparameters"] == {
        "n_estimators": 100,
        "max_depth": 3,
        "learning_rate": 0.1,
        "seed": 42,
        "validation_fraction": 0.2,
    }
    import sklearn  # type: ignore[import-untyped]

    assert report["versions"]["scikit-learn"] == sklearn.__version__
    # And the log says what was read
    log = capsys.readouterr().err
    assert "read train.csv: 569 rows" in log
    assert "569 rows, 30 features" in log
    assert "class balance: 0=212 (37.3%), 1=357 (62.7%)" in log


def test_every_metric_line_matches_its_metric_definition_regex(train_channel, capsys) -> None:
    """Scenario: SageMaker applies each MetricDefinitions regex to everything the job logs."""
    # Given a training run
    assert train.main(FAST) == 0
    captured = capsys.readouterr()
    report = read_json(train_channel.metrics_file)
    everything = captured.out + captured.err

    for name in train.METRIC_NAMES:
        # When the metric's regex is applied to the whole log
        found = re.findall(train.metric_regex(name), everything)
        # Then it captures exactly one value, equal to what metrics.json recorded
        assert len(found) == 1, f"{name}: {found}"
        assert float(found[0]) == report["metrics"][name]
    # And each metric line is `<name>=<six decimals>;`, on stdout, in the declared order
    lines = metric_lines(captured.out)
    assert [line.split("=")[0] for line in lines] == list(train.METRIC_NAMES)
    assert all(re.fullmatch(r"[a-z0-9_:]+=[01]\.\d{6};", line) for line in lines), lines


def test_metric_regex_is_the_pipeline_contract() -> None:
    # Given the names the pipeline's MetricDefinitions use, when their regexes are asked for,
    # then they are exactly the ones the pipeline declares, and an unknown name is refused
    assert train.METRIC_NAMES == (
        "train:accuracy",
        "validation:accuracy",
        "validation:f1",
        "validation:roc_auc",
    )
    assert train.metric_regex("validation:f1") == "validation:f1=([0-9.]+);"
    assert train.metric_regex("train:accuracy") == "train:accuracy=([0-9.]+);"
    assert re.search(train.metric_regex("validation:roc_auc"), "validation:roc_auc=0.993610;")
    with pytest.raises(ValueError, match="unknown metric"):
        train.metric_regex("validation:precision")


def test_same_data_and_seed_give_identical_outputs(train_channel, capsys) -> None:
    """Scenario: a job is rerun on the same data with the same hyperparameters."""
    # Given one completed run
    args = [*FAST, "--seed", "7"]
    assert train.main(args) == 0
    first_lines = metric_lines(capsys.readouterr().out)
    first_report = train_channel.metrics_file.read_bytes()

    # When it runs again
    assert train.main(args) == 0
    second_lines = metric_lines(capsys.readouterr().out)

    # Then the metric lines and metrics.json are byte-identical
    assert len(first_lines) == len(train.METRIC_NAMES)
    assert second_lines == first_lines
    assert train_channel.metrics_file.read_bytes() == first_report


def test_seed_changes_the_validation_split(train_channel, capsys) -> None:
    # Given runs that differ only in the seed, then their split (and so their metrics) differ:
    # proof that the seed is used rather than a fixed split.
    outputs = []
    for seed in ("1", "2"):
        assert train.main([*FAST, "--seed", seed]) == 0
        outputs.append(metric_lines(capsys.readouterr().out))
    assert outputs[0] != outputs[1]


def test_hyperparameters_from_argv_are_used(train_channel) -> None:
    """Scenario: the toolkit passes the job's hyperparameters as `--name value` strings."""
    # When the script runs with non-default values, one of them in the dashed spelling
    argv = ["--n-estimators", "7", "--max_depth", "2", "--learning_rate", "0.5", "--validation_fraction=0.3"]
    assert train.main(argv) == 0

    # Then metrics.json records them and the model was fitted with them
    hyperparameters = read_json(train_channel.metrics_file)["hyperparameters"]
    assert hyperparameters == {
        "n_estimators": 7,
        "max_depth": 2,
        "learning_rate": 0.5,
        "seed": 42,
        "validation_fraction": 0.3,
    }
    model = joblib.load(train_channel.model_file)
    assert model.n_estimators_ == 7
    assert model.max_depth == 2
    assert model.learning_rate == 0.5
    assert read_json(train_channel.metrics_file)["rows"]["validation"] == 171


def test_sm_hps_supplies_values_and_argv_wins(train_channel, monkeypatch) -> None:
    # Given SM_HPS as the toolkit writes it (JSON-decoded values) and one value also on argv
    monkeypatch.setenv("SM_HPS", json.dumps({"n_estimators": 9, "max_depth": 4, "learning_rate": "0.3"}))
    # When the script runs
    assert train.main(["--n_estimators", "5"]) == 0
    # Then argv overrides SM_HPS, and SM_HPS overrides the defaults
    hyperparameters = read_json(train_channel.metrics_file)["hyperparameters"]
    assert hyperparameters["n_estimators"] == 5
    assert hyperparameters["max_depth"] == 4
    assert hyperparameters["learning_rate"] == 0.3


@pytest.mark.parametrize(
    ("value", "expected"),
    [("200", 200), (" 12 ", 12), ("3.0", 3), (40, 40)],
)
def test_integer_hyperparameters_accept_integral_spellings(value, expected) -> None:
    # SageMaker sends strings; SM_HPS sends JSON numbers, including 3.0 for an integer range
    hps = train.parse_hyperparameters([], json.dumps({"n_estimators": value}))
    assert hps.n_estimators == expected


def test_csv_files_in_the_channel_are_concatenated_in_name_order(sm_layout, breast_cancer, write_csv, capsys):
    """Scenario: the train channel holds the data as several part files."""
    # Given the data split into three part files, written out of order, plus a non-CSV file
    rows = breast_cancer.rows
    write_csv("part-002.csv", breast_cancer.header, rows[400:])
    write_csv("part-000.csv", breast_cancer.header, rows[:150])
    write_csv("part-001.csv", breast_cancer.header, rows[150:400])
    (sm_layout.train_channel / "manifest.json").write_text("{}", encoding="utf-8")

    # When the script trains on them
    assert train.main(FAST) == 0
    parts_lines = metric_lines(capsys.readouterr().out)

    # Then every row of every file was read, files in name order
    report = read_json(sm_layout.metrics_file)
    assert report["rows"]["total"] == len(rows)
    assert report["files"] == [
        {"name": "part-000.csv", "rows": 150},
        {"name": "part-001.csv", "rows": 250},
        {"name": "part-002.csv", "rows": 169},
    ]
    # And the result is the same as training on the data as one file (same rows, same order)
    for part in sm_layout.train_channel.glob("part-*.csv"):
        part.unlink()
    write_csv("all.csv", breast_cancer.header, rows)
    assert train.main(FAST) == 0
    assert metric_lines(capsys.readouterr().out) == parts_lines


def test_load_dataset_keeps_file_order_and_separates_the_label(sm_layout, write_csv) -> None:
    # Given two small files whose names sort opposite to their writing order
    write_csv("b.csv", ["x", "target", "y"], [[5, 1, 50], [6, 0, 60]])
    write_csv("a.csv", ["x", "target", "y"], [[1, 0, 10], [2, 1, 20]])
    # When the channel is loaded
    dataset = train.load_dataset(sm_layout.train_channel)
    # Then a.csv comes first, the label column is removed from the features, wherever it was
    assert dataset.feature_names == ("x", "y")
    assert dataset.features.tolist() == [[1, 10], [2, 20], [5, 50], [6, 60]]
    assert dataset.labels.tolist() == [0, 1, 1, 0]
    assert dataset.files == (("a.csv", 2), ("b.csv", 2))


def run_script(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    # The SM_* variables come from the sm_layout fixture through os.environ, as in a job.
    return subprocess.run(
        [sys.executable, str(TRAIN_SCRIPT), *args],
        cwd=cwd,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_script_runs_end_to_end_as_sagemaker_starts_it(train_channel, tmp_path) -> None:
    """Scenario: the toolkit starts `python train.py --n_estimators 50` in a fresh process."""
    # When the script runs as a program
    result = run_script(FAST, cwd=tmp_path)
    # Then it exits 0, prints the four metric lines and writes both outputs
    assert result.returncode == 0, result.stderr
    assert len(metric_lines(result.stdout)) == len(train.METRIC_NAMES)
    assert train_channel.model_file.is_file()
    assert read_json(train_channel.metrics_file)["hyperparameters"]["n_estimators"] == 50
    assert not train_channel.failure_file.exists()


def test_script_fails_as_a_program_on_a_broken_dataset(sm_layout, write_csv, tmp_path) -> None:
    """Scenario: the job's data has no label column."""
    # Given a channel whose CSV lacks `target`
    write_csv("train.csv", ["a", "b"], [[1, 2], [3, 4]])
    # When the script runs as a program
    result = run_script(FAST, cwd=tmp_path)
    # Then it exits non-zero, prints the traceback and leaves the reason in the failure file
    assert result.returncode == 1
    assert "Traceback (most recent call last)" in result.stderr
    reason = sm_layout.failure_file.read_text(encoding="utf-8").splitlines()[0]
    assert reason == "ValueError: the train channel has no 'target' column (columns: a, b)"
    assert not sm_layout.model_file.exists()


def model_files(model_dir: Path) -> dict[str, bytes]:
    return {
        path.relative_to(model_dir).as_posix(): path.read_bytes() for path in model_dir.rglob("*") if path.is_file()
    }


def test_two_trainings_in_fresh_processes_write_byte_identical_model_files(train_channel, tmp_path) -> None:
    """Scenario: a run is re-run (`sagepipe runs rerun`) on the same commit, data version and hyperparameters.

    The pipeline compares the two models by their content digest: the sha256 of every file in the model
    directory, by path (docs/audit-record.md). So every file must be the same bytes, also across processes
    whose string hashing and thread count differ.
    """
    # Given two fresh processes, each with its own hash seed and thread count, and its own model directory
    trainings = []
    for attempt, (hash_seed, threads) in enumerate((("1", "1"), ("2", "2"))):
        model_dir = tmp_path / f"model-{attempt}"
        environment = dict(
            os.environ,
            SM_MODEL_DIR=str(model_dir),
            PYTHONHASHSEED=hash_seed,
            OMP_NUM_THREADS=threads,
            # Each job starts with an empty checkpoint directory, as a new training job does.
            SAGEMAKER_BASE_DIR=str(tmp_path / f"opt-ml-{attempt}"),
        )
        # When the script trains in each (at once: neither depends on the other, and a build has two vCPUs)
        process = subprocess.Popen(
            [sys.executable, str(TRAIN_SCRIPT), *FAST],
            cwd=tmp_path,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        trainings.append((process, model_dir))
    outputs = []
    for process, model_dir in trainings:
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == 0, stderr
        outputs.append(model_files(model_dir))

    # Then both model directories hold the same files, byte for byte
    assert list(outputs[0]) == [train.MODEL_FILENAME]
    assert outputs[0] == outputs[1]
