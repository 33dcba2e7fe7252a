"""Benchmark: the fast engine against today's fp32 path and TRL, on the default model.

Four measurements, each a ratio against a baseline measured in the same run:

* ``peaks`` — a bare 2048 x 2048 ``torch.mm`` in fp32 and in bf16 (GFLOP/s, best of 5): the
  machine's two matmul ceilings.
* ``train`` — one DPO step (8 pairs, rows cut to 128 tokens, the quick preset's freeze of the
  embeddings and blocks 0-14, AdamW) on the same batches, three contenders:

  - ``today``: fp32, through the bridge's hooked modules, one forward padded to the longest
    row, every block run (the path before the engine work; reproduced by attaching a no-op
    hook, ``bucket=False`` and no prefix);
  - ``engine``: ``precision="auto"`` (bf16 autocast here), the hook-free plain view, length
    buckets, and the frozen-prefix cache (filled before timing, as the trainer does);
  - ``trl``: TRL's ``DPOTrainer`` with ``bf16=True`` (its default), precomputed reference
    log-probs, the same frozen parameters, gradient checkpointing off (it only costs time at
    this size), timed from ``on_step_begin`` to ``on_step_end`` (TRL tokenizes beforehand, so
    its time excludes tokenization; ours includes it). Needs ``pip install trl``; skipped
    with ``--no-trl``.

  Between them, the ladder ``+bf16`` (today's path under bf16 autocast), ``+plain`` (and the
  hook-free plain view), ``+buckets`` (and length buckets), then ``engine`` (and the prefix
  cache), plus ``engine_fp32`` (the engine without bf16) show what each part buys. On a
  CPU without native bf16 matmuls (AVX2 only) ``auto`` is fp32, so ``+bf16`` and ``engine``
  run in fp32 too and the bf16 peak is emulated (near 0); the % of the bf16 peak is then n/a.
  Our paths alternate step by step in one process (load drift hits them alike);
  TRL runs afterwards in a subprocess. Tokens are non-pad tokens (prompt + response, both
  columns); the padding fraction is padded / (padded + real) positions actually run.
  GFLOP/s = 6 x trainable params x tokens / step time (as ``bench_dpo_vs_trl.py``), against
  both peaks.
* ``generate`` — greedy decoding of the built-in test prompts (``--gen-prompts``, default all
  200; 64 new tokens): ``today`` (bridged module, batches of 8 in character-length order,
  fp32) vs plain HF ``generate`` on an unbridged model with the same weights (same batching)
  vs the engine (plain view, token-length order, ``--gen-batch`` prompts per batch) in fp32,
  in fp32 with a static KV cache, and in bf16 autocast. Reports generated tokens/s and the share of prompts whose greedy answer
  equals today's fp32 answer token for token.

Usage::

    python benchmarks/bench_engine.py --json benchmarks/results/engine.json
    python benchmarks/bench_engine.py --model tiny --steps 2 --gen-prompts 8 --no-trl  # smoke
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

FREEZE = r"embed_tokens|layers\.([0-9]|1[0-4])\."


def _peak(dtype_name: str, n: int = 2048, reps: int = 5) -> float:
    import torch

    dtype = getattr(torch, dtype_name)
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def _rows(n: int) -> list[dict]:
    from safelens.data import builtin_path, read_jsonl

    rows = read_jsonl(builtin_path() / "preferences" / "train.jsonl")
    return rows[:n]


def _load(name: str):
    from safelens.models import load_model, load_tiny_model

    if name == "tiny":
        return load_tiny_model(seed=0, n_layers=4)
    return load_model(name, device="cpu")


def _freeze_for(model) -> str:
    n = len(model.original_model.get_decoder().layers)
    if n >= 30:
        return FREEZE
    return r"embed_tokens|layers\.0\."  # tiny model: block 0 frozen


# ----------------------------------------------------------------------------- training
def bench_train(args) -> dict:
    import torch

    from safelens.losses import dpo_loss
    from safelens.models.chat import encode
    from safelens.models.logprobs import response_logps
    from safelens.models.precision import autocast, resolve_precision
    from safelens.training.batch import TrainBatch
    from safelens.training.prefix import FrozenPrefixCache
    from safelens.training.trainer import named_trainable_parameters

    model = _load(args.model)
    tok = model.tokenizer
    named = named_trainable_parameters(model, _freeze_for(model))
    params = [p for _, p in named]
    n_params = sum(p.numel() for p in params)
    B, L = args.batch_size, args.max_length
    rows = _rows(B * (args.steps + 1))
    batches = [rows[i * B:(i + 1) * B] for i in range(args.steps + 1)]

    def build(chunk, index):
        prompts = [r["prompt"] for r in chunk]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            chat = encode(tok, prompts + prompts,
                          [r["chosen"] for r in chunk] + [r["rejected"] for r in chunk],
                          max_length=L)
        return TrainBatch(list(chunk), index, ("chosen", "rejected"), chat)

    precision = resolve_precision("auto", "cpu")
    amp = autocast(precision, "cpu")
    prefix = FrozenPrefixCache.for_model(model, named)
    t = time.perf_counter()
    for i, chunk in enumerate(batches):  # the cache fills on a row's first visit
        prefix.lookup(build(chunk, torch.arange(i * B, (i + 1) * B)), model, amp)
    fill_s = time.perf_counter() - t
    refs = []
    with torch.no_grad():
        for i, chunk in enumerate(batches):
            summed, _ = response_logps(model, build(chunk, torch.arange(i * B, (i + 1) * B)).chat)
            refs.append((summed[:B].clone(), summed[B:].clone()))
    opt = torch.optim.AdamW(params, lr=1e-6, weight_decay=0.0)

    fp32 = autocast("fp32", "cpu")
    # (bridged hooks, precision context, length buckets, frozen-prefix cache) per path
    paths = {"today": (True, fp32, False, False), "+bf16": (True, amp, False, False),
             "+plain": (False, amp, False, False), "+buckets": (False, amp, True, False),
             "engine": (False, amp, True, True), "engine_fp32": (False, fp32, True, True)}

    def step(i: int, path: str) -> dict:
        from safelens.models.logprobs import length_buckets

        hooked, ctx, bucket, use_prefix = paths[path]
        t0 = time.perf_counter()
        batch = build(batches[i], torch.arange(i * B, (i + 1) * B))
        hook = (model.original_model.get_decoder().layers[0].register_forward_hook(
            lambda *a: None) if hooked else None)  # a hook forces the bridged modules
        try:
            start = prefix.lookup(batch, model, ctx) if use_prefix else None
            with ctx:
                summed, _ = response_logps(model, batch.chat, bucket=bucket, start=start)
        finally:
            if hook is not None:
                hook.remove()
        lengths = batch.chat.attention_mask.sum(1).tolist()
        padded_positions = (sum(len(r) * max(lengths[j] for j in r)
                                for r in length_buckets(lengths))
                            if bucket else batch.chat.input_ids.numel())
        loss = dpo_loss(summed[:B], summed[B:], *refs[i], 0.1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        dt = time.perf_counter() - t0
        tokens = int(batch.chat.attention_mask.sum())
        return {"time": dt, "tokens": tokens, "loss": float(loss),
                "pad_fraction": 1 - tokens / padded_positions}

    records: dict[str, list[dict]] = {path: [] for path in paths}
    for i in range(args.steps + 1):  # step 0 is a warmup
        for path in paths:
            rec = step(i, path)
            if i > 0:
                records[path].append(rec)
    out = {"precision": precision, "prefix_layer": prefix.layer, "prefix_fill_s": fill_s,
           "trainable_params": n_params}
    for path, recs in records.items():
        out[path] = _summary(recs, n_params)
    return out


def _summary(recs: list[dict], n_params: int) -> dict:
    times = [r["time"] for r in recs]
    tokens = [r["tokens"] for r in recs]
    tps = [k / t for k, t in zip(tokens, times, strict=True)]
    return {"step_s": statistics.median(times), "tokens_per_s": statistics.median(tps),
            "gflops": 6 * n_params * statistics.median(tokens) / statistics.median(times) / 1e9,
            **({"pad_fraction": statistics.mean(r["pad_fraction"] for r in recs)}
               if recs and "pad_fraction" in recs[0] else {}),
            "steps": recs}


def _trl_worker(args_dict: dict, conn) -> None:
    try:
        conn.send(_bench_trl(argparse.Namespace(**args_dict)))
    except BaseException as err:  # report to the parent instead of hanging it
        conn.send({"error": f"{type(err).__name__}: {err}"})


def _bench_trl(args) -> dict:
    import datasets
    import torch
    from transformers import TrainerCallback
    from transformers.trainer_callback import PrinterCallback
    from trl import DPOConfig, DPOTrainer

    from safelens.models import load_hf
    from safelens.training.trainer import named_trainable_parameters

    datasets.disable_progress_bars()
    name = args.model
    hf, tok, _ = load_hf(name) if name != "tiny" else (_load("tiny").original_model, None, None)
    if tok is None:
        raise ValueError("the TRL contender needs a real model (not --model tiny)")
    named = named_trainable_parameters(hf, FREEZE)
    n_params = sum(p.numel() for _, p in named)
    B, L = args.batch_size, args.max_length
    rows = _rows(B * (args.steps + 1))
    ds = datasets.Dataset.from_list([
        {"prompt": [{"role": "user", "content": r["prompt"]}],
         "chosen": [{"role": "assistant", "content": r["chosen"]}],
         "rejected": [{"role": "assistant", "content": r["rejected"]}]} for r in rows])
    recs: list[dict] = []
    state: dict = {}

    class Timer(TrainerCallback):
        def on_step_begin(self, a, s, c, **kw):
            state["t0"] = time.perf_counter()

        def on_step_end(self, a, s, c, **kw):
            recs.append({"time": time.perf_counter() - state["t0"]})

    class Counting(DPOTrainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            state["tokens"] = int(inputs["attention_mask"].sum())
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)

    class Tokens(TrainerCallback):
        def on_step_end(self, a, s, c, **kw):
            recs[-1]["tokens"] = state.get("tokens", 0)

    config = DPOConfig(
        output_dir=tempfile.mkdtemp(prefix="bench_engine_trl_"), per_device_train_batch_size=B,
        max_length=L, beta=0.1, precompute_ref_log_probs=True, max_steps=args.steps + 1,
        logging_steps=1, report_to=[], learning_rate=1e-6, lr_scheduler_type="constant",
        weight_decay=0.0, use_cpu=True, bf16=True, gradient_checkpointing=False,
        train_sampling_strategy="sequential", save_strategy="no", disable_tqdm=True,
        dataloader_num_workers=0, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = Counting(model=hf, ref_model=None, args=config, train_dataset=ds,
                           processing_class=tok, callbacks=[Timer(), Tokens()])
        trainer.remove_callback(PrinterCallback)
        trainer.train()
    del torch
    return _summary(recs[1:], n_params)


# ----------------------------------------------------------------------------- generation
def bench_generate(args) -> dict:
    import copy

    import torch

    from safelens.data import builtin_path, read_jsonl
    from safelens.eval.generation import generate

    model = _load(args.model)
    prompts = [r["prompt"] for r in
               read_jsonl(builtin_path() / "prompts" / "test.jsonl")][:args.gen_prompts]
    tok = model.tokenizer
    kw = dict(max_new_tokens=args.gen_tokens, progress=False)

    def count(texts):
        return sum(len(tok(t, add_special_tokens=False)["input_ids"]) + 1 for t in texts)

    def timed(fn):
        t = time.perf_counter()
        texts = fn()
        return texts, time.perf_counter() - t

    def today():
        hook = model.original_model.get_decoder().layers[0].register_forward_hook(
            lambda *a: None)
        try:
            return generate(model, prompts, batch_size=8, **kw)
        finally:
            hook.remove()

    # Plain HF generate on an unbridged model with the same weights (no safelens code path).
    from safelens.models.plain import plain_view

    unbridged = copy.deepcopy(plain_view(model))

    def plain_hf():
        from safelens.models.chat import encode_prompts

        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
        out = [""] * len(prompts)
        with torch.no_grad():
            for s in range(0, len(order), 8):
                idx = order[s:s + 8]
                batch = encode_prompts(tok, [prompts[i] for i in idx])
                ids = unbridged.generate(input_ids=batch.input_ids,
                                         attention_mask=batch.attention_mask,
                                         max_new_tokens=args.gen_tokens, do_sample=False,
                                         temperature=None, top_p=None, top_k=None,
                                         pad_token_id=tok.pad_token_id,
                                         eos_token_id=tok.eos_token_id)
                new = ids[:, batch.input_ids.shape[1]:]
                for i, text in zip(idx, tok.batch_decode(new, skip_special_tokens=True),
                                   strict=True):
                    out[i] = text.strip()
        return out

    runs = {}
    runs["today"] = timed(today)
    runs["plain_hf"] = timed(plain_hf)
    runs["engine_fp32"] = timed(lambda: generate(model, prompts, batch_size=args.gen_batch,
                                                 precision="fp32", **kw))
    runs["engine_static"] = timed(lambda: generate(model, prompts, batch_size=args.gen_batch,
                                                   precision="fp32", kv_cache="static", **kw))
    runs["engine_bf16"] = timed(lambda: generate(model, prompts, batch_size=args.gen_batch,
                                                 precision="auto", **kw))
    base = runs["today"][0]
    out = {"prompts": len(prompts), "max_new_tokens": args.gen_tokens}
    for name, (texts, secs) in runs.items():
        toks = count(texts)
        out[name] = {"seconds": secs, "tokens": toks, "tokens_per_s": toks / secs,
                     "same_as_today": sum(a == b for a, b in zip(texts, base, strict=True))
                     / len(base)}
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--steps", type=int, default=4, help="timed training steps (after 1 warmup)")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--gen-prompts", type=int, default=200)
    ap.add_argument("--gen-tokens", type=int, default=64)
    ap.add_argument("--gen-batch", type=int, default=64)
    ap.add_argument("--no-trl", action="store_true", help="skip the TRL contender")
    ap.add_argument("--only", choices=["train", "generate"], default=None)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    import logging

    logging.disable(logging.WARNING)
    import torch

    result: dict = {"threads": torch.get_num_threads(), "torch": torch.__version__}
    result["peak_gflops"] = {"fp32": _peak("float32"), "bf16": _peak("bfloat16")}
    peaks = result["peak_gflops"]
    print(f"matmul peak: fp32 {peaks['fp32']:.0f} GFLOP/s, bf16 {peaks['bf16']:.0f} GFLOP/s")
    if args.only in (None, "train"):
        train = bench_train(args)
        if not args.no_trl:
            ctx = mp.get_context("spawn")
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_trl_worker, args=(vars(args), child))
            proc.start()
            train["trl_bf16"] = parent.recv()
            proc.join()
        result["train"] = train
        base = train["today"]["tokens_per_s"]
        print(f"\ntraining (one DPO step, {args.batch_size} pairs, max_length "
              f"{args.max_length}, blocks from {train['prefix_layer']} trained, engine "
              f"precision {train['precision']})")
        print(f"{'path':<10}{'step s':>9}{'tokens/s':>10}{'x today':>9}{'GFLOP/s':>9}"
              f"{'% bf16 pk':>10}{'% fp32 pk':>10}{'pad':>7}")
        for name in ("today", "+bf16", "+plain", "+buckets", "engine", "engine_fp32",
                     "trl_bf16"):
            s = train.get(name)
            if not s or "error" in s:
                if s:
                    print(f"{name:<10} error: {s['error']}")
                continue
            bf16_share = (f"{100 * s['gflops'] / peaks['bf16']:>9.0f}%"
                          if train["precision"] == "bf16" else f"{'n/a':>10}")
            print(f"{name:<10}{s['step_s']:>9.2f}{s['tokens_per_s']:>10.0f}"
                  f"{s['tokens_per_s'] / base:>9.2f}{s['gflops']:>9.0f}"
                  f"{bf16_share}"
                  f"{100 * s['gflops'] / peaks['fp32']:>9.0f}%"
                  + (f"{100 * s['pad_fraction']:>6.0f}%" if "pad_fraction" in s else "   n/a"))
        if train["precision"] != "bf16":
            print("no native bf16 matmul here: precision='auto' is fp32, so '+bf16' .. "
                  "'engine' run fp32 (the ladder then shows the plain view, buckets and cache)")
        if "trl_bf16" in train and "error" not in train["trl_bf16"]:
            print(f"engine / TRL bf16: "
                  f"{train['engine']['tokens_per_s'] / train['trl_bf16']['tokens_per_s']:.2f}x")
    if args.only in (None, "generate"):
        gen = bench_generate(args)
        result["generate"] = gen
        base = gen["today"]["tokens_per_s"]
        print(f"\ngeneration ({gen['prompts']} prompts, {gen['max_new_tokens']} new tokens, "
              f"greedy)")
        print(f"{'path':<13}{'seconds':>9}{'tokens/s':>10}{'x today':>9}{'= today':>9}")
        for name in ("today", "plain_hf", "engine_fp32", "engine_static", "engine_bf16"):
            s = gen[name]
            print(f"{name:<13}{s['seconds']:>9.1f}{s['tokens_per_s']:>10.1f}"
                  f"{s['tokens_per_s'] / base:>9.2f}{100 * s['same_as_today']:>8.0f}%")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
