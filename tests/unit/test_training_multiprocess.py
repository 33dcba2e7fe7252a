"""`safelens align` under a 2-process CPU launch (gloo) equals one process with the same batch.

``batch_size`` is the global batch: each process takes every 2nd pair of a step's batch and the
gradients are averaged, so the saved weights must match a single-process run to float noise,
and only the main process may write the run directory.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from safelens.training.trainer import launched_world_size, resolve_device, wants_cpu

pytestmark = pytest.mark.skipif(
    not (torch.distributed.is_available() and torch.distributed.is_gloo_available()),
    reason="torch.distributed has no gloo backend: a multi-process CPU run is impossible here",
)

ALIGN = ["align", "--method", "dpo", "--max-steps", "2", "--batch-size", "4",
         "--max-length", "64", "--lr", "1e-3", "--warmup-steps", "0", "--no-progress"]


def launch_command(n: int) -> list[str]:
    """The documented launch: Accelerate's torchrun launcher; the trainer picks a CPU group."""
    return [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu",
            "--num_processes", str(n), "--num_machines", "1", "--mixed_precision", "no",
            "--dynamo_backend", "no", "--main_process_port", "0", "-m", "safelens"]


def rows(n: int = 8) -> list[dict]:
    return [{"id": f"r{i}", "prompt": f"Question {i}: how do I do thing {i}?",
             "chosen": "I can't help with that." if i % 2 == 0 else f"Sure: step {i}.",
             "rejected": f"Here is how: first {i}, then more." if i % 2 == 0 else "No.",
             "harmful": i % 2 == 0, "kind": "harmful" if i % 2 == 0 else "benign",
             "category": "test", "domain": "direct", "template": "t"} for i in range(n)]


def test_two_cpu_processes_match_one(tmp_path):
    from safetensors.torch import load_file

    from safelens.cli.main import main
    from safelens.data import write_jsonl
    from safelens.models import load_tiny_model, save_model

    base = save_model(load_tiny_model(seed=0), tmp_path / "base")
    write_jsonl(tmp_path / "train.jsonl", rows())
    args = [*ALIGN, "--model", str(base), "--train", str(tmp_path / "train.jsonl")]
    # Without a GPU the default device is tested (the trainer must ask Accelerate for a CPU
    # group itself); with one, --device cpu keeps this a gloo test.
    device = ["--device", "cpu"] if torch.cuda.is_available() else []
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false",
           "HF_HUB_OFFLINE": "1"}
    two = tmp_path / "two"
    # The launch runs while this process trains the single-process reference.
    proc = subprocess.Popen([*launch_command(2), *args, *device, "--out", str(two)],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            assert main([*args, "--out", str(tmp_path / "one")]) == 0
        finally:
            torch.set_num_threads(threads)
        output, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, output[-4000:]

    one, runs = tmp_path / "one", {}
    for run in (one, two):
        cfg = json.loads((run / "config.json").read_text())
        log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
        state = json.loads((run / "checkpoint" / "trainer_state.json").read_text())
        assert not (run / ".staging").exists()
        runs[run.name] = cfg, log, state
    assert runs["one"][0]["num_processes"] == 1 and runs["two"][0]["num_processes"] == 2
    # only the main process writes: one record per step, not one per process
    assert [r["step"] for r in runs["two"][1]] == [1, 2] and runs["two"][2]["step"] == 2
    for a, b in zip(runs["one"][1], runs["two"][1], strict=True):
        for key in ("loss", "rewards/accuracies", "rewards/margins", "logps/chosen", "lr"):
            assert b[key] == pytest.approx(a[key], rel=1e-5, abs=1e-6), key
        assert b["grad_norm"] == pytest.approx(a["grad_norm"], rel=1e-5)
    w1 = load_file(str(one / "model" / "model.safetensors"))
    w2 = load_file(str(two / "model" / "model.safetensors"))
    w0 = load_file(str(base / "model.safetensors"))
    assert sorted(w1) == sorted(w2)
    moved = max(float((w1[k] - w0[k]).abs().max()) for k in w1)
    diff = max(float((w1[k] - w2[k]).abs().max()) for k in w1)
    assert moved > 1e-4, "training did not change the weights"
    assert diff < 1e-5, f"2-process weights differ from 1-process by {diff} (moved {moved})"


def test_cpu_flag_and_launch_detection():
    # Accelerate only forms a gloo group with cpu=True: the default on a GPU-less box is CPU
    assert wants_cpu(None, has_accelerator=False) and not wants_cpu(None, has_accelerator=True)
    assert wants_cpu("cpu") and not wants_cpu("cuda") and not wants_cpu("cuda:1")
    assert launched_world_size({}) == 1
    assert launched_world_size({"WORLD_SIZE": "2", "LOCAL_RANK": "1"}) == 2
    assert launched_world_size({"OMPI_COMM_WORLD_SIZE": "4"}) == 4
    # "cuda" means this process's GPU; an index is taken literally
    assert resolve_device("cuda", torch.device("cuda", 1)) == torch.device("cuda", 1)
    assert resolve_device("cuda:0", torch.device("cuda", 1)) == torch.device("cuda", 0)
    assert resolve_device(None, torch.device("cpu")) == torch.device("cpu")
    assert resolve_device("cpu", torch.device("cpu")) == torch.device("cpu")
