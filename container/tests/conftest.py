"""Fixtures for the training container's tests: a real dataset as CSV and a SageMaker-like /opt/ml.

The tests run from the repository root (`pytest`) and from CodeBuild as
`cd container && python -m pytest -q tests`; putting the container directory on sys.path makes
`import train` work in both.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

CONTAINER_DIR = Path(__file__).resolve().parents[1]
if str(CONTAINER_DIR) not in sys.path:
    sys.path.insert(0, str(CONTAINER_DIR))

Cell = float | int | str
WriteCsv = Callable[[str, Sequence[str], Sequence[Sequence[Cell]]], Path]


@dataclass(frozen=True)
class Table:
    header: list[str]
    rows: list[list[Cell]]


@dataclass(frozen=True)
class SageMakerLayout:
    """The directories a training job sees, under a temporary /opt/ml."""

    root: Path
    train_channel: Path
    model_dir: Path
    output_dir: Path
    output_data_dir: Path
    checkpoint_dir: Path

    @property
    def model_file(self) -> Path:
        return self.model_dir / "model.joblib"

    @property
    def metrics_file(self) -> Path:
        return self.output_data_dir / "metrics.json"

    @property
    def failure_file(self) -> Path:
        return self.output_dir / "failure"


def write_table(path: Path, header: Sequence[str], rows: Sequence[Sequence[Cell]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture(scope="session")
def breast_cancer() -> Table:
    """The Wisconsin breast cancer data that ships inside scikit-learn (569 rows, 30 features)."""
    from sklearn.datasets import load_breast_cancer  # type: ignore[import-untyped]

    data = load_breast_cancer()
    # repr keeps every float exact, so the CSV round-trips to the same numbers.
    rows: list[list[Cell]] = [
        [repr(float(value)) for value in features] + [int(label)]
        for features, label in zip(data.data, data.target, strict=True)
    ]
    return Table(header=[str(name) for name in data.feature_names] + ["target"], rows=rows)


@pytest.fixture
def sm_layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SageMakerLayout:
    """An empty train channel and the SM_* variables pointing into a temporary /opt/ml.

    The model and output directories are not created: train.py must create them.
    """
    root = tmp_path / "opt" / "ml"
    layout = SageMakerLayout(
        root=root,
        train_channel=root / "input" / "data" / "train",
        model_dir=root / "model",
        output_dir=root / "output",
        output_data_dir=root / "output" / "data",
        checkpoint_dir=root / "checkpoints",
    )
    layout.train_channel.mkdir(parents=True)
    # The toolkit's base directory: train.py keeps its checkpoints under it, as /opt/ml/checkpoints.
    monkeypatch.setenv("SAGEMAKER_BASE_DIR", str(root))
    monkeypatch.setenv("SM_CHANNEL_TRAIN", str(layout.train_channel))
    monkeypatch.setenv("SM_MODEL_DIR", str(layout.model_dir))
    monkeypatch.setenv("SM_OUTPUT_DIR", str(layout.output_dir))
    monkeypatch.setenv("SM_OUTPUT_DATA_DIR", str(layout.output_data_dir))
    monkeypatch.delenv("SM_HPS", raising=False)
    return layout


@pytest.fixture
def write_csv(sm_layout: SageMakerLayout) -> WriteCsv:
    """Write a CSV file into the train channel."""

    def write(name: str, header: Sequence[str], rows: Sequence[Sequence[Cell]]) -> Path:
        return write_table(sm_layout.train_channel / name, header, rows)

    return write


@pytest.fixture
def train_channel(sm_layout: SageMakerLayout, breast_cancer: Table, write_csv: WriteCsv) -> SageMakerLayout:
    """The layout with the breast cancer data as train.csv in the train channel."""
    write_csv("train.csv", breast_cancer.header, breast_cancer.rows)
    return sm_layout
