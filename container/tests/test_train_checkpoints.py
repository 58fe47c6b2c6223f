"""Checkpoints: a training job stopped part-way (a spot interruption) resumes where it stopped, and ends with the
model an uninterrupted job writes."""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import joblib  # type: ignore[import-untyped]
import numpy as np

import train

TRAIN_SCRIPT = Path(__file__).resolve().parents[1] / "train.py"
# Enough stages that the job is still fitting when its first checkpoint appears (7 more checkpoints to go).
MANY_STAGES = ["--n_estimators", "200", "--max_depth", "2"]
CHECKPOINT_WAIT_SECONDS = 60.0


def _environment(layout, base_dir: Path, model_dir: Path, output_dir: Path) -> dict[str, str]:
    return dict(
        os.environ,
        SAGEMAKER_BASE_DIR=str(base_dir),
        SM_CHANNEL_TRAIN=str(layout.train_channel),
        SM_MODEL_DIR=str(model_dir),
        SM_OUTPUT_DIR=str(output_dir),
        SM_OUTPUT_DATA_DIR=str(output_dir / "data"),
    )


def _use_in_this_process(monkeypatch, environment: dict[str, str]) -> None:
    """Give this process a job's layout, for train.main() to run here."""
    for name in ("SAGEMAKER_BASE_DIR", "SM_CHANNEL_TRAIN", "SM_MODEL_DIR", "SM_OUTPUT_DIR", "SM_OUTPUT_DATA_DIR"):
        monkeypatch.setenv(name, environment[name])


def _checkpoints(base_dir: Path) -> list[Path]:
    return sorted((base_dir / "checkpoints").glob(f"{train.CHECKPOINT_PREFIX}*{train.CHECKPOINT_SUFFIX}"))


def _run(
    environment: dict[str, str], arguments: list[str] = MANY_STAGES, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(TRAIN_SCRIPT), *arguments],
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_a_job_killed_after_a_checkpoint_resumes_and_writes_the_uninterrupted_model(
    train_channel, tmp_path, monkeypatch, capsys
) -> None:
    """Given one job that runs to the end (in this process: its model file must not depend on the process that
    wrote it either), and another killed (SIGKILL, as a reclaimed instance) once its first checkpoint exists, then
    started again on the same checkpoint directory;
    When both have finished;
    Then the restarted job resumed from its checkpoint rather than from scratch, and both wrote byte-identical
    model files (so the same predictions) and metrics."""
    # Given an uninterrupted job
    whole = _environment(train_channel, tmp_path / "whole", tmp_path / "whole-model", tmp_path / "whole-out")
    _use_in_this_process(monkeypatch, whole)
    assert train.main(MANY_STAGES) == 0
    uninterrupted_stdout = capsys.readouterr().out

    # And a job killed as soon as its first checkpoint is written
    base = tmp_path / "spot"
    interrupted_env = _environment(train_channel, base, tmp_path / "spot-model", tmp_path / "spot-out")
    job = subprocess.Popen(
        [sys.executable, str(TRAIN_SCRIPT), *MANY_STAGES],
        env=interrupted_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + CHECKPOINT_WAIT_SECONDS
    while not _checkpoints(base) and job.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    job.send_signal(signal.SIGKILL)
    assert job.wait(timeout=30) == -signal.SIGKILL, "the job ended before it could be interrupted"
    stopped_at = _checkpoints(base)
    assert len(stopped_at) == 1, "the killed job left no checkpoint"
    assert not (tmp_path / "spot-model" / train.MODEL_FILENAME).exists()

    # When it is started again on the same checkpoint directory
    resumed = _run(interrupted_env)

    # Then it resumed from that checkpoint
    assert resumed.returncode == 0, resumed.stderr
    stages = int(stopped_at[0].name.removeprefix(train.CHECKPOINT_PREFIX).removesuffix(train.CHECKPOINT_SUFFIX))
    assert f"checkpoint: resuming from {stages} of 200 stages" in resumed.stderr
    assert 0 < stages < 200
    # And both wrote the same model, byte for byte (its content digest is the same), and the same metrics
    assert (tmp_path / "whole-model" / train.MODEL_FILENAME).read_bytes() == (
        tmp_path / "spot-model" / train.MODEL_FILENAME
    ).read_bytes()
    whole_model = joblib.load(tmp_path / "whole-model" / train.MODEL_FILENAME)
    spot_model = joblib.load(tmp_path / "spot-model" / train.MODEL_FILENAME)
    assert pickle.dumps(whole_model) == pickle.dumps(spot_model)
    features = train.load_dataset(train_channel.train_channel).features
    assert np.array_equal(whole_model.predict_proba(features), spot_model.predict_proba(features))
    assert (tmp_path / "whole-out" / "data" / train.METRICS_FILENAME).read_bytes() == (
        tmp_path / "spot-out" / "data" / train.METRICS_FILENAME
    ).read_bytes()
    assert uninterrupted_stdout == resumed.stdout  # the metric lines the job's MetricDefinitions read


def test_a_checkpoint_fitted_on_other_settings_is_not_resumed(train_channel, tmp_path, monkeypatch, capsys) -> None:
    """Given a checkpoint directory left by a job with other hyperparameters (the same CheckpointConfig.S3Uri
    reused), and a torn checkpoint file;
    When a job starts on it;
    Then it trains from scratch and says why it ignored each file.
    (Both jobs run in this process: what is checked is what train.py reads from the directory.)"""
    base = tmp_path / "opt-ml"
    environment = _environment(train_channel, base, tmp_path / "model", tmp_path / "out")
    _use_in_this_process(monkeypatch, environment)
    assert train.main(["--n_estimators", "30"]) == 0
    torn = base / "checkpoints" / f"{train.CHECKPOINT_PREFIX}999999{train.CHECKPOINT_SUFFIX}"
    torn.write_bytes(b"not a checkpoint")
    capsys.readouterr()

    # When a job with other hyperparameters starts there
    assert train.main(["--n_estimators", "40"]) == 0

    # Then nothing was resumed, and each file was explained
    stderr = capsys.readouterr().err
    assert "resuming" not in stderr
    assert f"ignoring {torn.name}, which cannot be read" in stderr
    assert "fitted on other data, settings or scikit-learn" in stderr
    report = json.loads((tmp_path / "out" / "data" / train.METRICS_FILENAME).read_text(encoding="utf-8"))
    assert report["hyperparameters"]["n_estimators"] == 40
    # And only the newest checkpoint is kept
    assert [path.name for path in _checkpoints(base)] == [f"{train.CHECKPOINT_PREFIX}000040{train.CHECKPOINT_SUFFIX}"]
