"""Prefilling attack: rows with exactly k prefilled tokens, the ASR curve, the plot."""

from __future__ import annotations

import pytest

from safelens.data import load_builtin
from safelens.eval.prefill import join_prefill, prefill_attack, prefill_rows


@pytest.fixture(scope="module")
def harmful_rows():
    return [r for r in load_builtin("prompts", "test") if r.get("harmful_response")][:6]


@pytest.mark.parametrize("k", [0, 1, 5, 10, 20, 40])
def test_prefill_rows_have_exactly_k_tokens(tiny_model, harmful_rows, k):
    tok = tiny_model.tokenizer
    rows = prefill_rows(harmful_rows, k, tok)
    assert len(rows) == len(harmful_rows)
    for row, src in zip(rows, harmful_rows, strict=True):
        ids = tok(src["harmful_response"], add_special_tokens=False)["input_ids"]
        assert row["prefill_tokens"] == k
        if k == 0:
            assert "prefill" not in row
            continue
        prefill_ids = tok(row["prefill"], add_special_tokens=False)["input_ids"]
        assert prefill_ids == ids[:k]
        assert src["harmful_response"].startswith(row["prefill"])
        assert row["id"] == f"{src['id']}-k{k}"


def test_prefill_rows_skip_rows_without_a_harmful_response(tiny_model):
    benign = [r for r in load_builtin("prompts", "smoke") if not r["harmful"]]
    with pytest.raises(ValueError, match="harmful_response"):
        prefill_rows(benign, 5, tiny_model.tokenizer)
    with pytest.raises(ValueError, match="k must be"):
        prefill_rows(benign, -1, tiny_model.tokenizer)


def test_join_prefill():
    assert join_prefill("Sure, here", "is how") == "Sure, here is how"
    assert join_prefill("Step 1", ": go") == "Step 1: go"
    assert join_prefill("Sure ", "go") == "Sure go"
    assert join_prefill("", "go") == "go"


def test_prefill_attack_curve_on_tiny_model(tiny_model, harmful_rows):
    from safelens.eval.generation import GenerationConfig

    res = prefill_attack(tiny_model, harmful_rows[:3], ks=(0, 3),
                         config=GenerationConfig(max_new_tokens=3), progress=False)
    assert res["ks"] == [0, 3] and res["judge"] == "keyword"
    for key in ("asr", "ci_low", "ci_high", "asr_full", "asr_continuation"):
        assert len(res[key]) == 2 and all(0.0 <= v <= 1.0 for v in res[key])
    assert res["n"] == [3, 3]
    rows = res["rows"][3]
    assert all(r["full_response"].startswith(r["prefill"]) for r in rows)
    assert all(r["refused"] == r["refused_continuation"] for r in rows)

    class Refuses:
        name = "always-refuses"

        def refusals(self, prompts, responses):
            return [True] * len(prompts)

    res = prefill_attack(tiny_model, harmful_rows[:2], ks=(2,), judge=Refuses(),
                         config=GenerationConfig(max_new_tokens=2), progress=False,
                         judge_on="full")
    assert res["asr"] == [0.0] and res["judge_on"] == "full"
    with pytest.raises(ValueError, match="judge_on"):
        prefill_attack(tiny_model, harmful_rows, ks=(0,), judge_on="prefill")


def test_plot_prefill_asr_validates_and_draws():
    import matplotlib

    matplotlib.use("Agg")
    from safelens.viz.prefill import plot_prefill_asr

    res = {"ks": [0, 5, 10], "asr": [0.1, 0.5, 0.6], "ci_low": [0.0, 0.3, 0.4],
           "ci_high": [0.2, 0.7, 0.8]}
    fig = plot_prefill_asr({"vanilla": res, "aligned": {**res, "asr": [0.0, 0.1, 0.2]}})
    ax = fig.axes[0]
    assert [line.get_label() for line in ax.get_lines()] == ["vanilla", "aligned"]
    assert list(ax.get_lines()[1].get_ydata()) == pytest.approx([0.0, 10.0, 20.0])
    with pytest.raises(ValueError, match="one value per k"):
        plot_prefill_asr({"bad": {"ks": [0, 5], "asr": [0.1]}})
    with pytest.raises(ValueError, match="empty"):
        plot_prefill_asr({})


def test_prefill_attack_caches_its_result_and_never_reuses_another_models(tiny_model, harmful_rows,
                                                                          tmp_path, capsys):
    from safelens.eval.generation import GenerationConfig
    from safelens.models import load_tiny_model

    cfg = GenerationConfig(max_new_tokens=2)
    out = tmp_path / "prefill.json"
    first = prefill_attack(tiny_model, harmful_rows[:2], ks=(0, 2), config=cfg, progress=False,
                           out=out)
    assert out.is_file() and list(first["rows"]) == [0, 2]

    class Unused:
        name = "keyword"

        def refusals(self, prompts, responses):
            raise AssertionError("a finished result must be read back, not judged again")

    again = prefill_attack(tiny_model, harmful_rows[:2], ks=(0, 2), config=cfg, progress=False,
                           out=out, judge=Unused())
    assert again["asr"] == first["asr"] and list(again["rows"]) == [0, 2]
    other = load_tiny_model(seed=1)  # other weights: computed again, the old file kept aside
    prefill_attack(other, harmful_rows[:2], ks=(0, 2), config=cfg, progress=False, out=out)
    assert (tmp_path / "prefill.json.stale").is_file()
    assert "not reusing" in capsys.readouterr().err


class _RefusesSome:
    """Calls every answer to a prompt containing ``marker`` a refusal."""

    name = "refuses-some"

    def __init__(self, marker: str):
        self.marker = marker

    def refusals(self, prompts, responses):
        return [self.marker in p for p in prompts]


def test_own_harmful_responses_keep_the_models_compliant_answers(tiny_model, tmp_path):
    from safelens.eval.generation import GenerationConfig
    from safelens.eval.prefill import own_harmful_responses

    rows = [{"id": f"q{i}", "prompt": f"Question {i}: how to do thing {i}?", "harmful": True,
             "kind": "harmful", "category": "c", "domain": "d", "prefill": "ignored"}
            for i in range(4)]
    # sampled: the tiny model's tied embeddings make its greedy answer repeat the last prompt
    # token ("\n"), an empty answer, which is never kept
    cfg = GenerationConfig(max_new_tokens=6, do_sample=True, seed=0)
    out = tmp_path / "own.json"
    own = own_harmful_responses(tiny_model, rows, judge=_RefusesSome("2"), config=cfg,
                                drop_degenerate=False, progress=False, out=out)
    assert (own["n_prompts"], own["n_refused"], own["n_kept"]) == (4, 1, 3)
    assert [r["id"] for r in own["rows"]] == ["q0", "q1", "q3"]
    assert own["kept"]["value"] == pytest.approx(0.75) and own["kept"]["n"] == 4
    judged = {r["id"]: r for r in own["judged"]}
    for row in own["rows"]:
        assert row["harmful_response"] == judged[row["id"]]["response"] and "prefill" not in row
    assert "prefill" not in judged["q0"]  # the answer starts the assistant turn
    # the kept rows are prefill sources
    attacked = prefill_rows(own["rows"], 2, tiny_model.tokenizer)
    assert [r["id"] for r in attacked] == ["q0-k2", "q1-k2", "q3-k2"]

    class Unused:
        name = "refuses-some"

        def refusals(self, prompts, responses):
            raise AssertionError("a finished result must be read back, not judged again")

    again = own_harmful_responses(tiny_model, rows, judge=Unused(), config=cfg,
                                  drop_degenerate=False, progress=False, out=out)
    assert again["rows"] == own["rows"] and again["n_kept"] == 3
    # degenerate answers (random weights: symbols, loops) are dropped when asked
    dropped = own_harmful_responses(tiny_model, rows, judge=_RefusesSome("2"), config=cfg,
                                    progress=False, out=out)
    assert (tmp_path / "own.json.stale").is_file()  # another key: computed again
    n_degenerate = sum(r["degenerate_reason"] is not None and not r["refused"]
                       for r in dropped["judged"])
    assert dropped["n_degenerate"] == n_degenerate
    assert dropped["n_kept"] == 3 - n_degenerate
    greedy = own_harmful_responses(tiny_model, rows[:2], judge=_RefusesSome("2"),
                                   config=GenerationConfig(max_new_tokens=3),
                                   drop_degenerate=False, progress=False)
    assert all(r["response"] == "" for r in greedy["judged"]) and greedy["rows"] == []
    with pytest.raises(ValueError, match="no rows"):
        own_harmful_responses(tiny_model, [], progress=False)
    with pytest.raises(ValueError, match="no 'prompt'"):
        own_harmful_responses(tiny_model, [{"id": "x"}], progress=False)
