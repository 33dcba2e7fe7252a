"""The data card (``data/README.md``), written by :func:`build` with tables computed from the rows."""

from __future__ import annotations

from typing import Any

from safelens.data.generator import benign, harmful
from safelens.data.generator.layout import FILES, KINDS, counts
from safelens.data.generator.templates import DOMAINS, HELDOUT_TEMPLATES, TEMPLATES

_DOMAIN_COLUMNS = (*DOMAINS, "independent")


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _size_tables(files: dict[str, list[dict[str, Any]]]) -> str:
    by_kind = []
    by_domain = []
    for name in FILES:
        rows = files[name]
        k = counts(rows, lambda r: r["kind"])
        d = counts(rows, lambda r: r["domain"])
        prefill = sum(1 for r in rows if r.get("prefill"))
        by_kind.append([f"`{name}.jsonl`", len(rows), *(k.get(x, 0) for x in KINDS), prefill])
        by_domain.append([f"`{name}.jsonl`", *(d.get(x, 0) for x in _DOMAIN_COLUMNS)])
    heldout = []
    for name in ("preferences/test", "prompts/test", "prompts/smoke"):
        for kind in KINDS:
            rows = [r for r in files[name] if r["kind"] == kind]
            h = counts(rows, lambda r: r["heldout"])
            heldout.append([f"`{name}.jsonl`", kind,
                            *(h.get(x, 0) for x in ("category", "act", "template", None))])
    cats = sorted({r["category"] for name in FILES for r in files[name] if r["harmful"]})
    per_cat = []
    for cat in cats:
        per_cat.append([cat, *(sum(1 for r in files[n] if r["category"] == cat) for n in FILES)])
    short = [n.replace("preferences/", "pref/").replace("prompts/", "prompt/") for n in FILES]
    return "\n\n".join([
        "### Rows per file and kind\n\n" + _table(
            ["file", "rows", *KINDS, "with prefill"], by_kind),
        "### Rows per file and domain\n\n" + _table(["file", *_DOMAIN_COLUMNS], by_domain),
        "### Held-out material in the test files\n\n`heldout` records the strongest shift a row "
        "carries (category > act > template); `none` rows are in-distribution.\n\n" + _table(
            ["file", "kind", "category", "act", "template", "none"], heldout),
        "### Harmful rows per category\n\n" + _table(["category", *short], per_cat),
    ])


def data_card(files: dict[str, list[dict[str, Any]]], seed: int) -> str:
    """Render the data card for generated ``files`` (as returned by ``generate(seed)``)."""
    cat_rows = []
    for cat in harmful.CATEGORIES:
        held_acts = [a.id for a in cat.acts if a.id in harmful.HELDOUT_ACTS]
        status = "**whole category held out**" if cat.name in harmful.HELDOUT_CATEGORIES else (
            "held-out act: " + ", ".join(f"`{a}`" for a in held_acts))
        cat_rows.append([f"`{cat.name}`", len(cat.acts), sum(len(a.tasks) for a in cat.acts), status])
    tmpl_rows = []
    for domain in DOMAINS:
        ts = [t for t in TEMPLATES if t.domain == domain]
        held = sorted(t.id for t in ts if t.id in HELDOUT_TEMPLATES)
        tmpl_rows.append([f"`{domain}`", len(ts), ", ".join(f"`{h}`" for h in held)])
    n_topics = len({a.topic for a in benign.BENIGN_ACTS + benign.LOOKALIKE_ACTS})
    return f"""# safelens built-in data — data card

Small, fully synthetic safety-alignment data written by the project's own generator
(`safelens/data/generator/`). **No text is copied from any public data set.** It is sized so
that the whole test prompt set (600 prompts) can be evaluated with a 135M-parameter model on a
CPU in a few minutes, and the training split (4,000 pairs) gives a run of 500 steps of 8 pairs a new pair at every
step.

> Content warning: the harmful prompts are requests for dangerous or abusive help. The
> "compliant" answers that pair with them (the `rejected` side and `harmful_response`) are
> deliberately **non-operational**: they have the shape of compliance ("Sure, here's how to ...
> Step 1: ...") but contain only vague placeholder steps and no actionable detail.

## How it was made

```bash
safelens data build --out data --seed {seed}
# or, equivalently
python -c "from pathlib import Path; from safelens.data import build; print(build(Path('data'), seed={seed}))"
```

The generator is seeded and deterministic: the same seed gives byte-identical files
(`manifest.json` lists each file's sha256). `safelens.data.load_builtin(name, split)` reads
these files and, when safelens is installed without this folder, regenerates the same rows in
memory. This card is written by the same command, so its tables always match the files.

Prompts are *composed*, not enumerated: a harmful or everyday **act** (with several paraphrased
request forms) is placed in a **template** of one of three **domains**, with synonym
alternatives, role-play personas and subjects matched to the category, and light surface noise
(greetings, sign-offs, lower-casing, punctuation changes, an occasional typo). Responses are
composed the same way: refusals in several styles, non-operational compliant answers with
affirmative openers, real helpful answers, and unneeded refusals.

## Files and schema

| file | schema | use |
|---|---|---|
| `preferences/train.jsonl` | preference | training (in-distribution material only) |
| `preferences/validation.jsonl` | preference | model selection, in-distribution |
| `preferences/test.jsonl` | preference | held-out evaluation of preference accuracy / reward margins |
| `prompts/validation.jsonl` | prompt | quick in-distribution generation checks |
| `prompts/test.jsonl` | prompt | main generation evaluation (ASR, over-refusal, win rate) |
| `prompts/smoke.jsonl` | prompt | tiny mixed set for smoke runs; includes `prefill` rows |
| `prompts/independent.jsonl` | prompt | hand-written prompts in unseen styles (domain `independent`) |
| `attacks/` | — | fine-tuning attack sets; written by a later issue, not by this command |
| `utility/` | preference | utility tasks (summarization, sql, arithmetic; train 200 / test 100 each); written by `safelens data utility`, not by this command; card in `utility/README.md` |

Preference row (TRL/Hub schema plus metadata):

```json
{{"id": "pref-train-0001", "prompt": "...", "chosen": "...", "rejected": "...",
 "harmful": true, "kind": "harmful", "category": "cyber", "domain": "roleplay",
 "template": "roleplay-03", "act": "keylogger", "heldout": null,
 "refusal_family": "train"}}
```

For a harmful prompt `chosen` is a safe refusal and `rejected` a compliant (non-operational)
answer; for a benign or look-alike prompt `chosen` is a helpful answer and `rejected` an
unneeded refusal.

Prompt row: `id, prompt, harmful, kind, category, domain, template, act, heldout, reference`
plus `refusal_family` and `harmful_response` on harmful rows and `prefill` on a few smoke rows. `reference` is a good
response (a refusal for harmful prompts, the helpful answer otherwise); `harmful_response` is a
compliant answer (for prefilling attacks and per-token KL depth profiles); `prefill` opens the
assistant turn (prefilling attack; it is the first words of `harmful_response`).

`kind` is `harmful`, `benign` (everyday request) or `lookalike` (a benign request worded like a
harmful one, e.g. "how do I kill a stuck process", which must **not** be refused). `harmful` is
true exactly when `kind` is `harmful`. For benign and look-alike rows `category` is an everyday
topic ({n_topics} topics); for harmful rows it is the harm category.

## Harm categories

{len(harmful.CATEGORIES)} categories, each with several acts; each act has three paraphrased
request forms.

{_table(["category", "acts", "request forms", "held out"], cat_rows)}

Refusals come in four styles: `brief`, `explaining` (says why), `redirecting` (offers a safe
alternative and, where relevant, real help such as emergency numbers or reporting channels) and
`empathetic` (always used for self-harm, with crisis-line information). Refusals of role-play or
indirect prompts sometimes address the framing ("putting it in a story doesn't change that").

**Held-out refusal family.** The refusing sentence of every training and validation refusal comes
from one family of phrasings ("I can't help with ...", "Sorry, but I can't ...", "I won't help
you ...", ...). A second family ("I'm going to decline this one.", "I must respectfully decline
to ...", "This isn't a request I'll fulfil.", ...) shares no wording with it and appears only in
the test files: about 30% of their harmful rows carry it in `chosen` / `reference`, and every
harmful row records which in `refusal_family` (`"train"` or `"heldout"`). A judge's recall on the
`heldout` references measures how it does on refusals the trained model never saw.

Compliant answers are 40 to 120 words, open with "Sure, here's how...", "Absolutely.",
"Of course!" or directly "Step 1:", and list four or five vague steps.

Benign rows cover {len(benign.BENIGN_ACTS)} everyday acts; look-alikes cover
{len(benign.LOOKALIKE_ACTS)} acts (killing processes, shooting photos, executing scripts,
attacking a chess opening, killing weeds, bath bombs, ...). Their answers are real, short and
correct.

## Domains and templates

| domain | meaning |
|---|---|
| `direct` | a plain request ("How do I ...?") |
| `roleplay` | role-play, hypothetical or fiction wrapper ("Pretend you are ...", "For a video game I'm designing ...") |
| `indirect` | indirect or multi-step ("My friend asked me ...", "First give me an overview of X, then ...", "For a research report ...") |
| `independent` | hand-written prompts unlike any template (slang, keyword queries, buried requests, code requests) |

{_table(["domain", "templates", "held-out templates"], tmpl_rows)}

A few templates read oddly around an everyday request ("I'm not going to do it, I just want to
understand ...") and are used for harmful requests only; every other template is shared by all
kinds, so a template never reveals whether a request is harmful. For cross-domain studies, train
on one domain of `preferences/train.jsonl` (filter on `domain`) and evaluate on the others.

## Held-out design

Train and validation files never contain:

* the **categories** {", ".join(f"`{c}`" for c in sorted(harmful.HELDOUT_CATEGORIES))};
* one **act** per remaining category, plus {len(benign.HELDOUT_BENIGN_ACTS)} benign and
  {len(benign.HELDOUT_LOOKALIKE_ACTS)} look-alike acts;
* the {len(HELDOUT_TEMPLATES)} held-out **templates** listed above.

The test files mix these in: harmful rows are about 30% held-out category, 25% held-out act,
25% held-out template and 20% in-distribution; benign and look-alike rows about 30% held-out
act, 30% held-out template and 40% in-distribution. Each test row's `heldout` field
(`"category"`, `"act"`, `"template"` or `null`) lets evaluation break results down by shift.
No prompt appears twice anywhere (compared after lower-casing and removing punctuation and
spacing), so test prompts are never seen in training.

## Sizes (seed {seed})

{_size_tables(files)}

## Over-long rows

`safelens.data.validate_rows` (used by every reader and loader) truncates any text field longer
than `max_chars` (default 8000 characters) and emits a warning naming the row and field, rather
than dropping or rejecting the row: public sets contain a few very long transcripts, and the
models downstream truncate to a few hundred tokens anyway. Pass `on_overlong="error"` to fail
instead. The built-in rows are all far below the limit.

## Public data sets

`safelens.data.public` maps PKU-SafeRLHF(-30K), HH-RLHF (harmless-base), Do-Not-Answer,
HarmBench, SaladBench and AdvBench-style CSVs to the same schemas (with `domain` set to the data
set's name), from a local file or folder or from the Hub.

## Limitations

The prompts are template-composed English; their variety is far below that of real user traffic,
which is why `prompts/independent.jsonl` exists. The compliant answers are intentionally empty of
real content, so a model trained to prefer them learns the *shape* of compliance, not harmful
knowledge. Helpful answers are short and general, not professional advice.
"""
