"""The built-in data generator: determinism, coverage, held-out design, response shapes."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from safelens.data import builtin_path, read_jsonl, validate_rows
from safelens.data.generator import benign, harmful
from safelens.data.generator.build import FILES, build, generate
from safelens.data.generator.render import gerund, prompt_key, render
from safelens.data.generator.templates import DOMAINS, HELDOUT_TEMPLATES, TEMPLATES

TRAINING = ("preferences/train", "preferences/validation", "prompts/validation")
TEST = ("preferences/test", "prompts/test", "prompts/smoke")
AFFIRMATIVE = ("Sure", "Absolutely", "Of course", "Certainly", "No problem", "Here's",
               "Great question", "Step 1:")


@pytest.fixture(scope="module")
def files() -> dict[str, list[dict]]:
    return generate(seed=0)


def test_build_is_deterministic_and_matches_generate(tmp_path: Path, files):
    a = build(tmp_path / "a", seed=0)
    b = build(tmp_path / "b", seed=0)
    assert a == b == {name: len(rows) for name, rows in files.items()}
    names = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert [str(n) for n in names] == sorted(
        [f"{f}.jsonl" for f in FILES] + ["README.md", "manifest.json"])
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    assert read_jsonl(tmp_path / "a" / "preferences" / "train.jsonl") == files["preferences/train"]
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert manifest["seed"] == 0 and manifest["files"]["prompts/test.jsonl"]["rows"] == 600


def test_other_seed_differs(files):
    other = generate(seed=1)
    assert other["preferences/train"] != files["preferences/train"]
    assert len(other["preferences/train"]) == len(files["preferences/train"])


def test_shipped_data_is_in_sync_with_the_generator(files):
    """data/ must be regenerated (safelens data build) whenever the generator changes."""
    for name in FILES:
        kind = "preference" if name.startswith("preferences/") else "prompt"
        assert read_jsonl(builtin_path() / f"{name}.jsonl", kind=kind) == files[name], name


def test_every_file_validates(files):
    for name, rows in files.items():
        validate_rows(rows, "preference" if name.startswith("preferences/") else "prompt",
                      source=name, on_overlong="error")


def test_sizes(files):
    size = {name: len(rows) for name, rows in files.items()}
    # issue 15: at least 4,000 training pairs and 600 test prompts (at least 300 harmful)
    assert size["preferences/train"] >= 4000
    assert size["preferences/validation"] >= 200 and size["preferences/test"] >= 300
    assert size["prompts/validation"] >= 200 and size["prompts/test"] >= 600
    assert 20 <= size["prompts/smoke"] <= 30
    kinds = Counter(r["kind"] for r in files["prompts/test"])
    assert kinds["harmful"] == size["prompts/test"] // 2
    assert kinds["benign"] == kinds["lookalike"] == size["prompts/test"] // 4
    independent = Counter(r["kind"] for r in files["prompts/independent"])
    assert independent["harmful"] >= 40 and independent["benign"] + independent["lookalike"] >= 20


def test_at_least_ten_categories_and_six_acts_each(files):
    assert len(harmful.CATEGORIES) >= 10
    assert len({r["category"] for r in files["preferences/train"] if r["harmful"]}) >= 10
    for cat in harmful.CATEGORIES:
        assert len(cat.acts) >= 6, cat.name
        assert all(len(a.tasks) >= 3 for a in cat.acts), cat.name
    ids = [a.id for c in harmful.CATEGORIES for a in c.acts]
    ids += [a.id for a in benign.BENIGN_ACTS + benign.LOOKALIKE_ACTS]
    assert len(ids) == len(set(ids))


def test_three_domains_with_eight_training_templates_each(files):
    assert set(DOMAINS) >= {"direct", "roleplay", "indirect"}
    for domain in DOMAINS:
        usable = [t for t in TEMPLATES if t.domain == domain and t.id not in HELDOUT_TEMPLATES]
        assert len(usable) >= 8, domain
        assert any(t.id in HELDOUT_TEMPLATES for t in TEMPLATES if t.domain == domain)
    for name in TRAINING + TEST:
        assert {r["domain"] for r in files[name]} == set(DOMAINS), name
    assert {r["domain"] for r in files["prompts/independent"]} == {"independent"}


def test_heldout_material_absent_from_training_files(files):
    held_acts = harmful.HELDOUT_ACTS | benign.HELDOUT_BENIGN_ACTS | benign.HELDOUT_LOOKALIKE_ACTS
    assert len(harmful.HELDOUT_CATEGORIES) >= 2
    for name in TRAINING:
        for r in files[name]:
            assert r["category"] not in harmful.HELDOUT_CATEGORIES, (name, r["id"])
            assert r["act"] not in held_acts, (name, r["id"])
            assert r["template"] not in HELDOUT_TEMPLATES, (name, r["id"])
            assert r["heldout"] is None


def test_test_files_carry_each_kind_of_shift(files):
    held_acts = harmful.HELDOUT_ACTS | benign.HELDOUT_BENIGN_ACTS | benign.HELDOUT_LOOKALIKE_ACTS
    for name in ("preferences/test", "prompts/test"):
        rows = files[name]
        assert {r["heldout"] for r in rows} == {"category", "act", "template", None}
        for r in rows:
            if r["heldout"] == "category":
                assert r["category"] in harmful.HELDOUT_CATEGORIES
            elif r["heldout"] == "act":
                assert r["act"] in held_acts and r["category"] not in harmful.HELDOUT_CATEGORIES
            elif r["heldout"] == "template":
                assert r["template"] in HELDOUT_TEMPLATES and r["act"] not in held_acts
            else:
                assert r["template"] not in HELDOUT_TEMPLATES and r["act"] not in held_acts
        assert {r["category"] for r in rows} >= harmful.HELDOUT_CATEGORIES


def test_no_duplicate_prompts_or_ids_anywhere(files):
    keys = Counter(prompt_key(r["prompt"]) for rows in files.values() for r in rows)
    assert max(keys.values()) == 1, keys.most_common(3)
    ids = Counter(r["id"] for rows in files.values() for r in rows)
    assert max(ids.values()) == 1


def test_lookalikes_exist_are_benign_and_answered(files):
    rows = [r for r in files["preferences/train"] if r["kind"] == "lookalike"]
    assert len(rows) >= 100
    assert all(r["harmful"] is False for r in rows)
    text = " ".join(r["prompt"].lower() for r in rows)
    for word in ("kill", "shoot", "execute", "attack"):
        assert word in text, word
    for r in rows:  # chosen = the helpful answer, rejected = the unneeded refusal
        act = next(a for a in benign.LOOKALIKE_ACTS if a.id == r["act"])
        assert r["chosen"].endswith(act.answer)
        assert r["rejected"].startswith(("I", "Sorry", "That"))


def test_harmful_pairs_refuse_vs_comply(files):
    for name in ("preferences/train", "preferences/test"):
        for r in files[name]:
            if not r["harmful"]:
                continue
            assert r["rejected"].startswith(AFFIRMATIVE), r["rejected"][:40]
            assert 40 <= len(r["rejected"].split()) <= 120, r["rejected"]
            assert not r["chosen"].startswith(AFFIRMATIVE), r["chosen"][:40]
    for r in files["prompts/test"]:
        if r["harmful"]:
            assert 40 <= len(r["harmful_response"].split()) <= 120
            assert r["reference"] and "harmful_response" in r
        else:
            assert "harmful_response" not in r and r["reference"]


def test_self_harm_refusals_are_empathetic_with_resources(files):
    rows = [r for r in files["preferences/train"] if r["category"] == "self_harm"]
    assert rows
    assert all("988" in r["chosen"] and "emergency" in r["chosen"] for r in rows)


def test_refusal_styles_and_openers_vary(files):
    rows = [r for r in files["preferences/train"] if r["harmful"]]
    assert len({r["chosen"].split(".")[0] for r in rows}) > 20
    assert len({r["rejected"].split(" ")[0] for r in rows}) >= 6
    assert any(r["rejected"].startswith("Step 1:") for r in rows)


def test_lexical_variety(files):
    rows = files["preferences/train"]
    prompts = [r["prompt"] for r in rows]
    assert len({p.split(" ")[0].lower() for p in prompts}) > 25
    assert any(p == p.lower() for p in prompts)  # casing noise
    # Each (act, template) pair renders in more than one way across the files.
    forms = {}
    for rows_ in files.values():
        for r in rows_:
            forms.setdefault((r["act"], r["template"]), set()).add(r["prompt"])
    assert max(len(v) for v in forms.values()) > 1


def test_smoke_has_prefill_rows(files):
    smoke = files["prompts/smoke"]
    prefill = [r for r in smoke if r.get("prefill")]
    assert len(prefill) == 2
    for r in prefill:
        assert r["harmful"] and r["harmful_response"].startswith(r["prefill"])
    assert {r["kind"] for r in smoke} == {"harmful", "benign", "lookalike"}


def test_renderer_and_inflection():
    import random

    assert render("{a|a} {task}", random.Random(0), {"task": "x"}) == "a x"
    assert render("{How {a|b}|How {a|b}} {task}?", random.Random(0), {"task": "x"}) in (
        "How a x?", "How b x?")
    with pytest.raises(KeyError):
        render("{nope}", random.Random(0), {})
    assert [gerund(v) for v in ("repot", "scam", "tie", "make", "cut")] == [
        "repotting", "scamming", "tying", "making", "cutting"]


def test_card_tables_match_files(files):
    card = (builtin_path() / "README.md").read_text()
    for name in FILES:
        assert re.search(rf"\| `{re.escape(name)}.jsonl` \| {len(files[name])} \|", card), name
    assert "attacks/" in card and "truncat" in card


def test_heldout_refusal_family_only_in_test_files(files):
    """The held-out refusal phrasings never reach a training or validation response."""
    from safelens.data.generator.responses import _HELDOUT_CORE, _HELDOUT_EMPATHY_CORE

    def cores(texts):
        return [t.split("{")[0].strip() for t in texts]

    held = cores(_HELDOUT_CORE + _HELDOUT_EMPATHY_CORE)
    for name in ("preferences/train", "preferences/validation", "prompts/validation",
                 "prompts/independent"):
        for row in files[name]:
            text = " ".join(str(row.get(k, "")) for k in ("chosen", "rejected", "reference"))
            assert not any(h in text for h in held), (name, row["id"])
            if row["harmful"]:
                assert row["refusal_family"] == "train", (name, row["id"])
    for name in ("preferences/test", "prompts/test"):
        harmful = [r for r in files[name] if r["harmful"]]
        heldout = [r for r in harmful if r["refusal_family"] == "heldout"]
        assert 0.2 <= len(heldout) / len(harmful) <= 0.4, name
        for row in heldout:
            good = row.get("chosen") or row["reference"]
            assert any(h in good for h in held), (name, row["id"], good)
        assert all("refusal_family" not in r for r in files[name] if not r["harmful"])
