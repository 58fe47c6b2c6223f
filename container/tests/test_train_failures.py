"""Failed training runs: every failure exits non-zero and names its cause in the failure file."""

from __future__ import annotations

from pathlib import Path

import pytest

import train


def failure_first_line(output_dir: Path) -> str:
    return (output_dir / "failure").read_text(encoding="utf-8").splitlines()[0]


HEADER = ["a", "b", "target"]
GOOD_ROWS = [[0.1, 1, 0], [0.2, 2, 1], [0.3, 3, 0], [0.4, 4, 1], [0.5, 5, 0], [0.6, 6, 1]]


def no_csv_files(channel: Path) -> None:
    (channel / "data.parquet").write_bytes(b"PAR1")


def empty_channel(channel: Path) -> None:
    pass


def missing_channel(channel: Path) -> None:
    channel.rmdir()


def empty_file(channel: Path) -> None:
    (channel / "train.csv").write_text("", encoding="utf-8")


def header_only(channel: Path) -> None:
    (channel / "train.csv").write_text("a,b,target\n", encoding="utf-8")


def csv_text(text: str):
    def write(channel: Path) -> None:
        (channel / "train.csv").write_text(text, encoding="utf-8")

    return write


def two_files(first: str, second: str):
    def write(channel: Path) -> None:
        (channel / "a.csv").write_text(first, encoding="utf-8")
        (channel / "b.csv").write_text(second, encoding="utf-8")

    return write


GOOD_CSV = "a,b,target\n" + "".join(f"{a},{b},{t}\n" for a, b, t in GOOD_ROWS)


@pytest.mark.parametrize(
    ("make_channel", "expected_first_line"),
    [
        pytest.param(no_csv_files, "ValueError: no CSV files in the train channel", id="no-csv-files"),
        pytest.param(empty_channel, "ValueError: no CSV files in the train channel", id="empty-channel"),
        pytest.param(missing_channel, "ValueError: the train channel directory", id="missing-channel"),
        pytest.param(empty_file, "ValueError: train.csv is empty: expected a header row", id="empty-file"),
        pytest.param(header_only, "ValueError: the train channel has no data rows", id="header-only"),
        pytest.param(
            csv_text("a,b,label\n1,2,0\n3,4,1\n"),
            "ValueError: the train channel has no 'target' column (columns: a, b, label)",
            id="missing-target",
        ),
        pytest.param(
            csv_text("a,b,target\n1,2,0\n3,abc,1\n"),
            "ValueError: train.csv line 3, column 'b': non-numeric value 'abc'",
            id="non-numeric-cell",
        ),
        pytest.param(
            csv_text("a,b,target\n1,,0\n3,4,1\n"),
            "ValueError: train.csv line 2, column 'b': empty cell (missing values are not supported)",
            id="empty-cell",
        ),
        pytest.param(
            csv_text("a,b,target\n1,2,0\n3,nan,1\n"),
            "ValueError: train.csv data row 2, column 'b': non-finite value nan",
            id="nan-cell",
        ),
        pytest.param(
            csv_text("a,b,target\n1,2,0\n3,4\n"),
            "ValueError: train.csv line 3 has 2 values, but the header names 3 columns",
            id="short-row",
        ),
        pytest.param(
            csv_text("a,b,target\n1,2,1\n3,4,1\n5,6,1\n"),
            "ValueError: the 'target' column has a single class (1 in all 3 rows)",
            id="single-class",
        ),
        pytest.param(
            csv_text("a,b,target\n1,2,0\n3,4,1\n5,6,2\n"),
            "ValueError: the 'target' column must be binary 0/1; found values: 0, 1, 2",
            id="not-binary",
        ),
        pytest.param(
            csv_text("target\n0\n1\n"),
            "ValueError: the train channel has only the 'target' column",
            id="no-features",
        ),
        pytest.param(
            csv_text("a,a,target\n1,2,0\n"),
            "ValueError: train.csv: duplicate column names in the header: a",
            id="duplicate-column",
        ),
        pytest.param(
            two_files(GOOD_CSV, "a,c,target\n1,2,0\n"),
            "ValueError: b.csv has different columns from a.csv",
            id="mismatched-headers",
        ),
    ],
)
def test_bad_training_data_fails_with_a_reason(sm_layout, make_channel, expected_first_line, capsys) -> None:
    """Scenario: the train channel's data cannot be trained on."""
    # Given a train channel with the problem
    make_channel(sm_layout.train_channel)
    # When the training script runs
    exit_code = train.main(["--n_estimators", "5"])
    # Then it exits 1, its failure file's first line names the problem and no model is written
    assert exit_code == 1
    assert failure_first_line(sm_layout.output_dir).startswith(expected_first_line)
    assert not sm_layout.model_file.exists()
    # And the traceback is in the log
    assert "Traceback (most recent call last)" in capsys.readouterr().err


def test_tiny_minority_class_that_misses_a_split_is_reported(sm_layout, write_csv) -> None:
    # Given 40 rows of class 0 and 2 of class 1: stratification can leave validation without a 1
    rows = [[i, 0] for i in range(40)] + [[100, 1], [101, 1]]
    write_csv("train.csv", ["x", "target"], rows)
    # When the script trains with a small validation fraction
    exit_code = train.main(["--validation_fraction", "0.05", "--n_estimators", "5"])
    # Then the failure says which split lost a class, instead of an undefined ROC AUC
    assert exit_code == 1
    assert "split" in failure_first_line(sm_layout.output_dir)
    assert "single class" in failure_first_line(sm_layout.output_dir)


@pytest.mark.parametrize(
    ("argv", "expected_first_line"),
    [
        (["--n_estimators", "0"], "HyperparameterError: n_estimators must be an integer >= 1, got '0'"),
        (["--n_estimators", "abc"], "HyperparameterError: n_estimators must be an integer >= 1, got 'abc'"),
        (["--n_estimators", "2.5"], "HyperparameterError: n_estimators must be an integer >= 1, got '2.5'"),
        (["--max_depth", "0"], "HyperparameterError: max_depth must be an integer >= 1"),
        (["--learning_rate", "0"], "HyperparameterError: learning_rate must be a number with 0 < value <= 1"),
        (
            ["--learning_rate", "1.5"],
            "HyperparameterError: learning_rate must be a number with 0 < value <= 1",
        ),
        (
            ["--learning_rate", "nan"],
            "HyperparameterError: learning_rate must be a number with 0 < value <= 1",
        ),
        (
            ["--validation_fraction", "1"],
            "HyperparameterError: validation_fraction must be a number with 0 <",
        ),
        (
            ["--validation_fraction", "0"],
            "HyperparameterError: validation_fraction must be a number with 0 <",
        ),
        (["--seed", "-1"], "HyperparameterError: seed must be an integer between 0 and 4294967295"),
        (["--n_estimator", "5"], "HyperparameterError: unrecognized arguments: --n_estimator 5"),
        (["--n_estimators"], "HyperparameterError: argument --n_estimators/--n-estimators: expected one"),
    ],
)
def test_bad_hyperparameters_fail_with_a_reason(train_channel, argv, expected_first_line) -> None:
    """Scenario: a job is started with a hyperparameter that cannot be used."""
    # Given good data, when the script runs with the bad hyperparameter
    exit_code = train.main(argv)
    # Then it exits 2 (a usage error), names the hyperparameter and trains nothing
    assert exit_code == 2
    assert failure_first_line(train_channel.output_dir).startswith(expected_first_line)
    assert not train_channel.model_file.exists()


@pytest.mark.parametrize(
    ("sm_hps", "expected"),
    [
        ("{not json", "SM_HPS is not valid JSON"),
        ("[1, 2]", "SM_HPS must be a JSON object"),
        ('{"n_trees": 5}', "unknown hyperparameter(s) in SM_HPS: n_trees"),
        ('{"n_estimators": true}', "n_estimators must be an integer >= 1, got True"),
    ],
)
def test_bad_sm_hps_fails_with_a_reason(train_channel, monkeypatch, sm_hps, expected) -> None:
    # Given a malformed SM_HPS, when the script runs, then it fails and says what is wrong
    monkeypatch.setenv("SM_HPS", sm_hps)
    assert train.main([]) == 2
    assert expected in failure_first_line(train_channel.output_dir)


def test_unexpected_error_is_reported_too(train_channel, monkeypatch, capsys) -> None:
    """Scenario: something the script did not anticipate goes wrong while fitting."""

    # Given a fit that raises
    def broken_fit(*args: object) -> None:
        raise RuntimeError("out of cheese")

    monkeypatch.setattr(train, "train", broken_fit)
    # When the script runs
    exit_code = train.main(["--n_estimators", "5"])
    # Then it exits 1, with the exception on the first line of the failure file
    assert exit_code == 1
    lines = (train_channel.output_dir / "failure").read_text(encoding="utf-8").splitlines()
    assert lines[0] == "RuntimeError: out of cheese"
    assert "traceback" in lines[1]
    assert "out of cheese" in capsys.readouterr().err


def test_failure_reason_fits_sagemakers_limit(sm_layout, write_csv) -> None:
    # Given data with hundreds of long column names and no target column
    header = [f"a_rather_long_feature_name_{i:04d}" for i in range(400)]
    write_csv("train.csv", header, [list(range(400))])
    # When the script fails on it
    assert train.main([]) == 1
    # Then the failure file still names the problem first and stays within the 1024 characters
    # that DescribeTrainingJob returns as FailureReason
    text = (sm_layout.output_dir / "failure").read_text(encoding="utf-8").rstrip("\n")
    assert len(text) <= train.FAILURE_REASON_LIMIT
    assert text.startswith("ValueError: the train channel has no 'target' column")
    assert "(+380 more)" in text


def test_failure_file_is_written_where_sm_output_dir_points(sm_layout, monkeypatch, tmp_path) -> None:
    # Given SM_OUTPUT_DIR pointing at a directory that does not exist yet
    elsewhere = tmp_path / "deep" / "output"
    monkeypatch.setenv("SM_OUTPUT_DIR", str(elsewhere))
    # When the script fails, then the failure file is created there, parents and all
    assert train.main([]) == 1
    assert failure_first_line(elsewhere).startswith("ValueError: no CSV files")
