"""Fixtures of the fault battery: a tiny model saved as a folder and a finished tiny run.

Everything runs on the tiny random llama (``load_tiny_model``) saved once per session, so the
CLI can take it as ``--model DIR``; CLI calls run in-process (``safelens.cli.main.main``).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from reliability_helpers import ALIGN_FLAGS, preference_rows, write_jsonl


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory) -> Path:
    """The tiny model saved as an HF folder (safetensors + tokenizer)."""
    from safelens.models import load_tiny_model, save_model

    out = tmp_path_factory.mktemp("tiny") / "model"
    save_model(load_tiny_model(seed=0), out)
    return out


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory, tiny_dir) -> Path:
    """A 1-step DPO run of the tiny model (model + checkpoint + config + log)."""
    from safelens.cli.main import main

    base = tmp_path_factory.mktemp("run")
    train = write_jsonl(base / "train.jsonl", preference_rows())
    run = base / "run"
    code = main(["align", "--method", "dpo", "--model", str(tiny_dir), "--train", str(train),
                 "--out", str(run), "--save-every", "1", *ALIGN_FLAGS])
    assert code == 0
    return run
