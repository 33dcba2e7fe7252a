"""report_to: the log.jsonl records also in TensorBoard event files and an offline W&B run."""

from __future__ import annotations

import json

import pytest
from tiny_rows import make_rows, one_thread  # noqa: F401  (one_thread is autouse)

from safelens.errors import SafelensError
from safelens.models import load_tiny_model
from safelens.training import Trainer, make_method
from safelens.training import tracking as tracking_mod
from safelens.training.methods.preference import DPOConfig

FAST = dict(batch_size=4, max_steps=2, lr=1e-3, max_length=64, progress=False, warmup_steps=0)
METRICS = ("loss", "rewards/margins", "rewards/accuracies", "logps/chosen", "lr")


def test_report_to_is_validated():
    assert DPOConfig(report_to="tensorboard,wandb").report_to == "tensorboard,wandb"
    for bad in ("tensorbord", "none,wandb", ""):
        with pytest.raises(SafelensError, match="report_to"):
            DPOConfig(report_to=bad)


def test_a_missing_tracker_package_names_the_setting_and_the_extra(monkeypatch, tmp_path):
    real = tracking_mod.importlib.util.find_spec
    monkeypatch.setattr(tracking_mod.importlib.util, "find_spec",
                        lambda name: None if name == "wandb" else real(name))
    with pytest.raises(SafelensError, match=r"report_to='wandb'.*safelens\[tracking\]") as err:
        Trainer(make_method("dpo", report_to="wandb", **FAST), tmp_path)
    assert "\n" not in str(err.value)


def test_tensorboard_gets_the_log_jsonl_metrics(tmp_path):
    event_accumulator = pytest.importorskip(
        "tensorboard.backend.event_processing.event_accumulator")
    Trainer(make_method("dpo", report_to="tensorboard", **FAST), tmp_path,
            model=load_tiny_model(), rows=make_rows(8)).train()
    log = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    events = list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    assert len(events) == 1
    acc = event_accumulator.EventAccumulator(str(tmp_path / "tensorboard"))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert set(METRICS) <= tags
    for name in METRICS:
        scalars = acc.Scalars(name)
        assert [s.step for s in scalars] == [r["step"] for r in log] == [1, 2]
        assert [s.value for s in scalars] == pytest.approx([r[name] for r in log], rel=1e-6)


def test_wandb_offline_run_lands_in_the_run_dir(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("WANDB_SILENT", "true")
    try:
        Trainer(make_method("dpo", report_to="wandb", **FAST), tmp_path,
                model=load_tiny_model(), rows=make_rows(8)).train()
    except Exception as err:  # wandb's service process can fail to start in a sandbox
        if "wandb" not in type(err).__module__ and "wandb" not in str(err).lower():
            raise
        pytest.skip(f"wandb could not start offline here: {err}")
    runs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    history = list(runs[0].glob("run-*.wandb"))
    assert len(history) == 1
    # The offline record file (protobuf records in leveldb-log blocks; wandb >= 0.2x ships no
    # Python reader) holds each history item's key and its value as JSON text.
    data = history[0].read_bytes()
    for name in METRICS:
        assert name.encode() in data, name
    log = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    for record in log:
        assert repr(record["loss"]).encode() in data
