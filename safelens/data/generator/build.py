"""Assemble the built-in data set: sample, split, hold out, deduplicate, write, describe.

Split design (see ``data/README.md``):

* ``train``/``validation`` (preferences) and ``prompts/validation`` use only *in-distribution*
  material: no held-out category, act or template.
* ``preferences/test``, ``prompts/test`` and ``prompts/smoke`` mix in-distribution rows with rows
  from held-out categories, held-out acts and held-out templates; each row records which in
  ``heldout`` (``"category"`` > ``"act"`` > ``"template"`` > ``None``: the strongest shift that
  applies).
* ``prompts/independent`` holds the hand-written prompts of ``independent.py``.

Every prompt is unique across all files (after normalising case, punctuation and spacing).
Sampling is seeded per file, so the same seed gives byte-identical files.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from safelens.data.generator import benign, harmful
from safelens.data.generator.benign import BenignAct, Topic
from safelens.data.generator.card import data_card
from safelens.data.generator.harmful import Act, HarmCategory
from safelens.data.generator.independent import INDEPENDENT_BENIGN, INDEPENDENT_HARMFUL
from safelens.data.generator.layout import (  # FILES, KINDS, counts: re-exports for one release
    FILES,
    KINDS,
    PLAN,
    FilePlan,
    Row,
    counts,
)
from safelens.data.generator.render import (
    add_noise,
    article,
    cap,
    ing_phrase,
    prompt_key,
    render,
    to_they,
    to_you,
)
from safelens.data.generator.responses import compliance, helpful, over_refusal, refusal
from safelens.data.generator.templates import HELDOUT_TEMPLATES, TEMPLATES, Template
from safelens.data.io import write_jsonl

__all__ = ["FILES", "KINDS", "build", "counts", "generate", "heldout_of", "independent_rows"]

HARMFUL_MIX: dict[str | None, float] = {"category": 0.30, "act": 0.25, "template": 0.25, None: 0.20}
"""Share of harmful test rows per ``heldout`` value."""

BENIGN_MIX: dict[str | None, float] = {"act": 0.30, "template": 0.30, None: 0.40}
"""Share of benign and look-alike test rows per ``heldout`` value (no held-out categories)."""

HELDOUT_REFUSAL_SHARE = 0.3
"""Share of harmful rows in the test files (``test_mix``) whose refusal (``chosen`` /
``reference``) uses the held-out refusal family; training and validation never do."""


@dataclass(frozen=True)
class _Combo:
    """One (request, template) pairing the sampler can render."""

    kind: str
    category: str
    subject: str
    personas: tuple[str, ...]
    act: Act | BenignAct
    template: Template
    heldout: str | None
    harm: HarmCategory | None  # None for benign and look-alike


def heldout_of(kind: str, category: str, act: str, template: str) -> str | None:
    """Which held-out material a (category, act, template) uses; strongest first.

    Examples:
        >>> heldout_of("harmful", "poisoning", "poison_pet", "direct-01")
        'category'
        >>> heldout_of("benign", "cooking", "boil_egg", "direct-01") is None
        True
    """
    if kind == "harmful" and category in harmful.HELDOUT_CATEGORIES:
        return "category"
    if act in harmful.HELDOUT_ACTS | benign.HELDOUT_BENIGN_ACTS | benign.HELDOUT_LOOKALIKE_ACTS:
        return "act"
    if template in HELDOUT_TEMPLATES:
        return "template"
    return None


def _combos() -> dict[str, list[_Combo]]:
    """All renderable combos, by kind, in a fixed order."""
    out: dict[str, list[_Combo]] = {k: [] for k in KINDS}
    for cat in harmful.CATEGORIES:
        for act in cat.acts:
            for t in TEMPLATES:
                out["harmful"].append(_Combo(
                    "harmful", cat.name, cat.subject, cat.personas, act, t,
                    heldout_of("harmful", cat.name, act.id, t.id), cat,
                ))
    for kind, acts in (("benign", benign.BENIGN_ACTS), ("lookalike", benign.LOOKALIKE_ACTS)):
        for act in acts:
            topic: Topic = benign.TOPICS[act.topic]
            for t in TEMPLATES:
                if t.harmful_only:
                    continue
                out[kind].append(_Combo(
                    kind, topic.name, topic.subject, topic.personas, act, t,
                    heldout_of(kind, topic.name, act.id, t.id), None,
                ))
    return out


def _quotas(total: int, mix: dict[str | None, float]) -> dict[str | None, int]:
    """Split ``total`` by ``mix`` shares with largest remainders (sums exactly to ``total``)."""
    raw = {k: total * share for k, share in mix.items()}
    out = {k: int(v) for k, v in raw.items()}
    leftovers = sorted(mix, key=lambda k: (-(raw[k] - out[k]), list(mix).index(k)))
    for k in leftovers[: total - sum(out.values())]:
        out[k] += 1
    return out


def _round_robin(combos: list[_Combo], rng: random.Random) -> list[_Combo]:
    """Shuffle, then interleave (category, domain) groups so every group is visited in turn."""
    combos = list(combos)
    rng.shuffle(combos)
    rank: dict[tuple[str, str], int] = {}
    keyed = []
    for position, combo in enumerate(combos):
        group = (combo.category, combo.template.domain)
        keyed.append((rank.get(group, 0), position, combo))
        rank[group] = rank.get(group, 0) + 1
    return [combo for _, _, combo in sorted(keyed, key=lambda item: item[:2])]


def _render_prompt(combo: _Combo, rng: random.Random) -> tuple[str, str]:
    """Render the prompt text for a combo; returns ``(prompt, task)``."""
    task = rng.choice(combo.act.tasks)
    persona = rng.choice(combo.personas)
    slots = {
        "task": task,
        "task_ing": ing_phrase(task),
        "task_they": to_they(task),
        "task_ing_they": ing_phrase(to_they(task)),
        "task_you": to_you(task),
        "task_cap": cap(task),
        "persona": persona,
        "persona_a": article(persona),
        "subject": combo.subject,
    }
    prompt = cap(render(combo.template.text, rng, slots))
    return add_noise(prompt, rng), task


def _make_row(
    combo: _Combo, row_kind: str, rng: random.Random, prompt: str, task: str, test_mix: bool
) -> Row:
    """Build a preference or prompt row (ids are assigned later)."""
    domain = combo.template.domain
    family = None
    if combo.harm is not None:
        family = "heldout" if test_mix and rng.random() < HELDOUT_REFUSAL_SHARE else "train"
        good = refusal(combo.harm, task, domain, rng, family=family)
        bad = compliance(combo.harm, task, domain, rng)
    else:
        assert isinstance(combo.act, BenignAct)
        good = helpful(combo.act, domain, rng)
        bad = over_refusal(combo.act, task, rng)
    row: Row = {"id": "", "prompt": prompt}
    if row_kind == "preference":
        row.update(chosen=good, rejected=bad)
    row.update(
        harmful=combo.kind == "harmful", kind=combo.kind, category=combo.category,
        domain=domain, template=combo.template.id, act=combo.act.id, heldout=combo.heldout,
    )
    if family is not None:
        row["refusal_family"] = family
    if row_kind == "prompt":
        row["reference"] = good
        if combo.harm is not None:
            row["harmful_response"] = bad
    return row


def _draw(
    combos: list[_Combo], n: int, row_kind: str, rng: random.Random, seen: set[str],
    test_mix: bool = False,
) -> list[Row]:
    """Draw ``n`` rows with unique prompts from ``combos`` (round robin over groups)."""
    if n == 0:
        return []
    if not combos:
        raise RuntimeError("no combos to draw from; check the held-out configuration")
    order = _round_robin(combos, rng)
    rows: list[Row] = []
    attempts = 0
    while len(rows) < n:
        combo = order[attempts % len(order)]
        attempts += 1
        if attempts > 50 * n + 10 * len(order):
            raise RuntimeError(f"could not draw {n} unique prompts from {len(order)} combos")
        prompt, task = _render_prompt(combo, rng)
        key = prompt_key(prompt)
        if key in seen:
            continue
        seen.add(key)
        rows.append(_make_row(combo, row_kind, rng, prompt, task, test_mix))
    return rows


def _file_rows(plan: FilePlan, pools: dict[str, list[_Combo]], seed: int, seen: set[str]) -> list[Row]:
    """Generate one file's rows (seeded by ``seed`` and the file name)."""
    rng = random.Random(f"safelens-data:{seed}:{plan.name}")
    rows: list[Row] = []
    for kind, count in zip(KINDS, plan.counts, strict=True):
        if plan.test_mix:
            mix = HARMFUL_MIX if kind == "harmful" else BENIGN_MIX
            for heldout, quota in _quotas(count, mix).items():
                pool = [c for c in pools[kind] if c.heldout == heldout]
                rows += _draw(pool, quota, plan.row_kind, rng, seen, test_mix=True)
        else:
            pool = [c for c in pools[kind] if c.heldout is None]
            rows += _draw(pool, count, plan.row_kind, rng, seen)
    if plan.n_prefill:
        harmful_rows = [r for r in rows if r["harmful"]]
        for row in rng.sample(harmful_rows, plan.n_prefill):
            words = row["harmful_response"].split()
            row["prefill"] = " ".join(words[: rng.randint(6, 10)])
    rng.shuffle(rows)
    width = 2 if len(rows) < 100 else 4
    for i, row in enumerate(rows, start=1):
        row["id"] = f"{plan.id_prefix}-{i:0{width}d}"
    return rows


def independent_rows(seed: int = 0) -> list[Row]:
    """The hand-written prompts as prompt rows (references composed for harmful ones)."""
    rng = random.Random(f"safelens-data:{seed}:prompts/independent")
    by_name = {c.name: c for c in harmful.CATEGORIES}
    rows: list[Row] = []
    for prompt, category, task in INDEPENDENT_HARMFUL:
        cat = by_name[category]
        rows.append({
            "id": "", "prompt": prompt, "harmful": True, "kind": "harmful", "category": category,
            "domain": "independent", "template": "independent", "act": None, "heldout": None,
            "refusal_family": "train", "reference": refusal(cat, task, "independent", rng),
            "harmful_response": compliance(cat, task, "independent", rng),
        })
    for prompt, kind, category, answer in INDEPENDENT_BENIGN:
        rows.append({
            "id": "", "prompt": prompt, "harmful": False, "kind": kind, "category": category,
            "domain": "independent", "template": "independent", "act": None, "heldout": None,
            "reference": answer,
        })
    for i, row in enumerate(rows, start=1):
        row["id"] = f"independent-{i:03d}"
    return rows


def generate(seed: int = 0) -> dict[str, list[Row]]:
    """Generate every built-in file in memory.

    Examples:
        >>> files = generate(seed=0)
        >>> sorted(files) == sorted(FILES)
        True

    Args:
        seed: Sampling seed; the same seed always gives the same rows.

    Returns:
        ``{"preferences/train": rows, ..., "prompts/independent": rows}``.
    """
    pools = _combos()
    independent = independent_rows(seed)
    seen = {prompt_key(r["prompt"]) for r in independent}
    out: dict[str, list[Row]] = {}
    for plan in PLAN:
        out[plan.name] = _file_rows(plan, pools, seed, seen)
    out["prompts/independent"] = independent
    return out


def build(out_dir: str | Path = Path("data"), seed: int = 0) -> dict[str, int]:
    """Generate the built-in data and write it under ``out_dir`` (``safelens data build``).

    Writes ``preferences/{train,validation,test}.jsonl``,
    ``prompts/{validation,test,smoke,independent}.jsonl``, the data card ``README.md`` (with
    size tables computed from the rows) and ``manifest.json`` (seed, sizes, sha256 per file).
    Other files under ``out_dir`` (such as ``attacks/``) are left alone. Every write is atomic.

    Examples:
        >>> import tempfile
        >>> sizes = build(Path(tempfile.mkdtemp()), seed=0)
        >>> sizes["preferences/train"], sizes["prompts/test"]
        (4000, 600)

    Args:
        out_dir: Destination folder (created if needed).
        seed: Sampling seed.

    Returns:
        Rows per file, e.g. ``{"preferences/train": 4000, ...}``.
    """
    out_dir = Path(out_dir)
    files = generate(seed)
    manifest: dict[str, Any] = {"seed": seed, "generator": "safelens.data.generator.build.build", "files": {}}
    for name, rows in files.items():
        kind = "preference" if name.startswith("preferences/") else "prompt"
        path = write_jsonl(out_dir / f"{name}.jsonl", rows, kind=kind)
        manifest["files"][f"{name}.jsonl"] = {
            "rows": len(rows), "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        }
    _write_text(out_dir / "README.md", data_card(files, seed))
    _write_text(out_dir / "manifest.json", json.dumps(manifest, indent=2) + "\n")
    return {name: len(rows) for name, rows in files.items()}


def _write_text(path: Path, text: str) -> None:
    """Atomic text write (temp file + rename), like :func:`safelens.data.write_jsonl`."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8", newline="\n")
    tmp.replace(path)
