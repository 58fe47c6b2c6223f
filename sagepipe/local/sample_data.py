"""The default training data: a dataset that ships with scikit-learn, written as CSV. Never downloaded."""

from __future__ import annotations

import csv
import re
from pathlib import Path


def write_breast_cancer_csv(path: Path) -> Path:
    """The Wisconsin breast cancer dataset (569 rows, 30 numeric features, binary `target`) as CSV.

    Deterministic: the same bytes every time, so the same data gives the same S3 ETag.
    """
    from sklearn.datasets import load_breast_cancer  # type: ignore[import-untyped]

    dataset = load_breast_cancer()
    columns = [re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") for name in dataset.feature_names]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([*columns, "target"])
        for features, label in zip(dataset.data, dataset.target, strict=True):
            writer.writerow([*(f"{value:.6g}" for value in features), int(label)])
    return path
