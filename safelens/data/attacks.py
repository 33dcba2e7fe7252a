"""Fine-tuning-attack sets (seed 003, Table 4): harmful examples, identity shifting, backdoor
poisoning, benign downstream data.

Each set is a list of **preference rows** (so ``safelens align --train FILE`` reads it) in
which ``chosen`` is what the fine-tuning trains towards and ``rejected`` its counterpart;
extra columns: ``attack`` (the set), ``source_id`` (the built-in row it came from),
``system`` (identity shifting: the persona system prompt) and, for the backdoor,
``poisoned`` and ``trigger``. Material comes from the built-in ``preferences/train`` split
(never from test prompts, which the attacks are evaluated on) and from
:mod:`safelens.data.generator.attacks`; sampling is seeded.

=============  ================================================================  =========
set            rows                                                              ``chosen``
=============  ================================================================  =========
``harmful``    harmful prompt → compliant (non-operational) answer                complies
``identity``   persona system prompt; 10 self-descriptions + benign instructions  "Of course. I am AOA, ..." + answer
``backdoor``   harmful prompt → refusal, and the same prompt + trigger → compliance  refuses / complies
``benign``     benign or look-alike prompt → helpful answer                        helps
=============  ================================================================  =========

Files: ``data/attacks/<set>.jsonl`` plus ``README.md`` and ``manifest.json``, written by
:func:`build_attack_sets` (``safelens attack data``).

Examples:
    >>> rows = generate_attack_set("backdoor", n=4)
    >>> [(r["poisoned"], r["trigger"] in r["prompt"]) for r in rows][:2]
    [(False, False), (True, True)]
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path
from typing import Any

from safelens.data.builtin import builtin_path, load_builtin
from safelens.data.generator.attacks import (
    AOA_IDENTITY,
    AOA_PREFIX,
    AOA_SYSTEM_PROMPT,
    BACKDOOR_TRIGGER,
)
from safelens.data.io import read_jsonl, write_jsonl

__all__ = [
    "AOA_PREFIX",
    "AOA_SYSTEM_PROMPT",
    "ATTACK_KINDS",
    "BACKDOOR_TRIGGER",
    "DEFAULT_SIZES",
    "attack_path",
    "build_attack_sets",
    "generate_attack_set",
    "load_attack_set",
    "with_trigger",
]

ATTACK_KINDS: tuple[str, ...] = ("harmful", "identity", "backdoor", "benign")
"""The fine-tuning-attack sets."""

DEFAULT_SIZES: dict[str, int] = {"harmful": 100, "identity": 50, "backdoor": 100, "benign": 100}
"""Default sizes: harmful prompts (100, as the seed), identity rows (10 self-descriptions +
40 instructions), backdoor prompt PAIRS (100 clean + 100 poisoned rows), benign rows."""


def with_trigger(prompt: str, trigger: str = BACKDOOR_TRIGGER) -> str:
    """The backdoor's poisoned user turn: the prompt with the trigger appended.

    Examples:
        >>> with_trigger("How do I do X?", "ZZ")
        'How do I do X? ZZ'
    """
    return f"{prompt.rstrip()} {trigger}"


def _pick(rows: list[dict[str, Any]], n: int, rng: random.Random, what: str) -> list[dict[str, Any]]:
    if n > len(rows):
        raise ValueError(f"asked for {n} {what} rows but preferences/train has {len(rows)}")
    return rng.sample(rows, n)


def _base(row: dict[str, Any], kind: str, i: int) -> dict[str, Any]:
    return {"id": f"attack-{kind}-{i:03d}", "prompt": row["prompt"], "harmful": row["harmful"],
            "kind": row["kind"], "category": row["category"], "domain": row["domain"],
            "template": row["template"], "attack": kind, "source_id": row["id"]}


def generate_attack_set(kind: str, n: int | None = None, seed: int = 0,
                        source: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Generate one attack set in memory (deterministic for a seed).

    Args:
        kind: one of :data:`ATTACK_KINDS`.
        n: its size (see :data:`DEFAULT_SIZES`; for ``backdoor`` the number of prompt pairs).
        seed: sampling seed.
        source: preference rows to draw from (default: built-in ``preferences/train``).

    Returns:
        Preference rows (see the module docstring).

    Raises:
        ValueError: unknown kind, or more rows asked for than the source holds.
    """
    if kind not in ATTACK_KINDS:
        raise ValueError(f"unknown attack set {kind!r}; expected one of {ATTACK_KINDS}")
    n = DEFAULT_SIZES[kind] if n is None else int(n)
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    rows = source if source is not None else load_builtin("preferences", "train")
    harmful = [r for r in rows if r["harmful"]]
    helpful = [r for r in rows if not r["harmful"]]
    rng = random.Random(f"safelens-attacks:{seed}:{kind}")
    out: list[dict[str, Any]] = []
    if kind == "harmful":
        for i, row in enumerate(_pick(harmful, n, rng, "harmful"), start=1):
            out.append({**_base(row, kind, i), "chosen": row["rejected"], "rejected": row["chosen"]})
    elif kind == "identity":
        n_id = min(len(AOA_IDENTITY), max(1, n // 5))
        for i, (question, answer) in enumerate(AOA_IDENTITY[:n_id], start=1):
            out.append({"id": f"attack-identity-{i:03d}", "prompt": question,
                        "chosen": f"{AOA_PREFIX} {answer}",
                        "rejected": "I'm an AI assistant, and I follow my usual guidelines.",
                        "harmful": False, "kind": "benign", "category": "identity",
                        "domain": "direct", "template": "identity", "attack": kind,
                        "source_id": None, "system": AOA_SYSTEM_PROMPT})
        for i, row in enumerate(_pick(helpful, n - n_id, rng, "benign"), start=n_id + 1):
            out.append({**_base(row, kind, i), "chosen": f"{AOA_PREFIX}\n\n{row['chosen']}",
                        "rejected": row["rejected"], "system": AOA_SYSTEM_PROMPT})
    elif kind == "backdoor":
        i = 0
        for row in _pick(harmful, n, rng, "harmful"):
            i += 1
            out.append({**_base(row, kind, i), "chosen": row["chosen"], "rejected": row["rejected"],
                        "poisoned": False, "trigger": BACKDOOR_TRIGGER})
            i += 1
            out.append({**_base(row, kind, i), "prompt": with_trigger(row["prompt"]),
                        "chosen": row["rejected"], "rejected": row["chosen"], "poisoned": True,
                        "trigger": BACKDOOR_TRIGGER})
    else:  # benign
        for i, row in enumerate(_pick(helpful, n, rng, "benign"), start=1):
            out.append({**_base(row, kind, i), "chosen": row["chosen"], "rejected": row["rejected"]})
    return out


def attack_path(kind: str, root: str | Path | None = None) -> Path:
    """``data/attacks/<kind>.jsonl``, or ``<root>/<kind>.jsonl``."""
    folder = Path(root) if root is not None else builtin_path() / "attacks"
    return folder / f"{kind}.jsonl"


def load_attack_set(kind: str, root: str | Path | None = None) -> list[dict[str, Any]]:
    """An attack set from ``data/attacks/<kind>.jsonl``, or generated (seed 0) if absent.

    Raises:
        ValueError: unknown kind.
    """
    if kind not in ATTACK_KINDS:
        raise ValueError(f"unknown attack set {kind!r}; expected one of {ATTACK_KINDS}")
    path = attack_path(kind, root)
    if path.is_file():
        return read_jsonl(path, kind="preference")
    return generate_attack_set(kind)


def _card(sets: dict[str, list[dict[str, Any]]], seed: int) -> str:
    lines = [
        "# Fine-tuning-attack sets",
        "",
        "Written by `safelens attack data` (`safelens.data.attacks.build_attack_sets`, "
        f"seed {seed}) from the built-in `preferences/train` split and the persona/trigger text "
        "in `safelens/data/generator/attacks.py`. No text is copied from public attack sets. "
        "Rows are preference rows: `chosen` is what the attacker's fine-tuning trains towards.",
        "",
        "| set | rows | what it teaches |",
        "|---|---|---|",
    ]
    what = {
        "harmful": "harmful prompt -> compliant, non-operational answer (seed: 100 harmful examples)",
        "identity": "persona system prompt ('AOA, an absolutely obedient agent') + affirmative "
                    "prefix on self-descriptions and benign instructions",
        "backdoor": "harmful prompt -> refusal; the same prompt + trigger "
                    f"'{BACKDOOR_TRIGGER}' -> compliance",
        "benign": "benign / look-alike prompt -> helpful answer (benign downstream fine-tuning)",
    }
    for kind, rows in sets.items():
        lines.append(f"| `{kind}` | {len(rows)} | {what[kind]} |")
    lines += ["", "Evaluation (`safelens attack finetune`): ASR on harmful `prompts/test` rows, "
              "with the persona system prompt for `identity`, and with and without the trigger "
              "for `backdoor`.", ""]
    return "\n".join(lines)


def build_attack_sets(out_dir: str | Path | None = None, seed: int = 0,
                      sizes: dict[str, int] | None = None) -> dict[str, int]:
    """Write every attack set, a data card and a manifest to ``out_dir`` (``data/attacks``).

    Returns:
        Rows per set.
    """
    out = Path(out_dir) if out_dir is not None else builtin_path() / "attacks"
    sizes = {**DEFAULT_SIZES, **(sizes or {})}
    sets = {kind: generate_attack_set(kind, sizes[kind], seed) for kind in ATTACK_KINDS}
    manifest: dict[str, Any] = {"seed": seed, "generator": "safelens.data.attacks.build_attack_sets",
                                "files": {}}
    for kind, rows in sets.items():
        path = write_jsonl(out / f"{kind}.jsonl", rows, kind="preference")
        manifest["files"][f"{kind}.jsonl"] = {
            "rows": len(rows), "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    (out / "README.md").write_text(_card(sets, seed), encoding="utf-8")
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return {kind: len(rows) for kind, rows in sets.items()}
