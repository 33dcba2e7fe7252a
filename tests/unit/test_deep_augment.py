"""Safety-recovery augmentation: the k distribution, token-exact prefixes, and the loss mask."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from safelens.data.augment import (
    PLACEHOLDER,
    augment_rows,
    sample_prefix_length,
    split_at_tokens,
)


@pytest.fixture(scope="module")
def tok():
    from transformers import AutoTokenizer

    from safelens.models.loading import _default_tokenizer_dir

    return AutoTokenizer.from_pretrained(_default_tokenizer_dir())


HARMFUL = ("Sure, here's how to do it. Step 1: gather the materials you need. Step 2: find a "
           "quiet place. Step 3: follow the plan carefully. Step 4: double-check everything.")


def _ids(tok, text):
    return tok(text, add_special_tokens=False)["input_ids"]


def test_k_distribution_half_zero_then_uniform_and_capped():
    rng = np.random.default_rng(123)
    n_tokens, draws = 30, 20000
    ks = np.array([sample_prefix_length(rng, n_tokens, max_prefix=100, p_zero=0.5)
                   for _ in range(draws)])
    zeros = (ks == 0).mean()
    assert abs(zeros - 0.5) < 4 * np.sqrt(0.25 / draws)  # binomial, 4 sigma
    nonzero = ks[ks > 0]
    assert nonzero.min() == 1 and nonzero.max() == n_tokens  # capped at |h| < C
    counts = np.bincount(nonzero, minlength=n_tokens + 1)[1:]
    assert stats.chisquare(counts).pvalue > 1e-3  # uniform over 1..n_tokens
    # C caps when the response is longer.
    ks = [sample_prefix_length(rng, 500, max_prefix=100) for _ in range(2000)]
    assert max(ks) == 100


def test_augment_rows_distribution_over_rows(tok):
    rows = [{"id": f"r{i}", "prompt": f"Request {i}?", "harmful": True,
             "chosen": "I can't help with that.", "rejected": HARMFUL} for i in range(1500)]
    out = augment_rows(rows, tok, seed=0)
    ks = np.array([r["prefix_tokens"] for r in out])
    n = len(_ids(tok, HARMFUL))
    assert 0.44 < (ks == 0).mean() < 0.56
    assert ks.max() <= n and (ks[ks > 0] >= 1).all()
    counts = np.bincount(ks[ks > 0], minlength=n + 1)[1:]
    assert stats.chisquare(counts).pvalue > 1e-4
    # Deterministic per row: same seed and rows in another order give the same k per row.
    again = {r["id"]: r["prefix_tokens"] for r in augment_rows(rows[::-1], tok, seed=0)}
    assert all(again[r["id"]] == r["prefix_tokens"] for r in out)
    other = augment_rows(rows, tok, seed=1)
    assert [r["prefix_tokens"] for r in other] != list(ks)


@pytest.mark.parametrize("k", [1, 2, 5, 17, 40])
def test_split_at_tokens_is_token_exact(tok, k):
    prefix, rest, k_actual = split_at_tokens(tok, HARMFUL, k)
    assert k_actual == k
    assert prefix + rest == HARMFUL
    assert _ids(tok, prefix) == _ids(tok, HARMFUL)[:k]


def test_split_caps_at_length(tok):
    n = len(_ids(tok, "Sure thing."))
    prefix, rest, k = split_at_tokens(tok, "Sure thing.", n + 10)
    assert (prefix, rest, k) == ("Sure thing.", "", n)
    assert split_at_tokens(tok, "abc", 0) == ("", "abc", 0)
    with pytest.raises(ValueError, match="k must be"):
        split_at_tokens(tok, "abc", -1)


def test_retain_rows_and_continuation(tok):
    rows = [{"id": "h", "prompt": "Do a bad thing?", "harmful": True, "chosen": "I won't.",
             "rejected": HARMFUL},
            {"id": "b", "prompt": "Boil an egg?", "harmful": False, "chosen": "Boil it.",
             "rejected": "No."}]
    out = augment_rows(rows, tok, p_zero=0.0, seed=3, keep_continuation=1)
    safety, retain = out
    assert safety["part"] == "safety" and retain["part"] == "retain"
    assert safety["prefix"] + safety["continuation"] == HARMFUL
    assert safety["prefix_tokens"] <= len(_ids(tok, HARMFUL)) - 1  # one harmful token remains
    assert retain["prefix"] == "" and retain["continuation"] == PLACEHOLDER
    assert retain["chosen"] == "Boil it."
    assert rows[0].get("part") is None  # inputs untouched
    with pytest.raises(KeyError, match="has no 'rejected'"):
        augment_rows([{"id": "x", "prompt": "p", "harmful": True, "chosen": "no"}], tok)


def test_max_length_leaves_room_for_the_refusal(tok):
    rows = [{"id": f"r{i}", "prompt": "Tell me how?", "harmful": True, "chosen": "I can't.",
             "rejected": HARMFUL * 3} for i in range(40)]
    with pytest.warns(UserWarning, match="shortened"):
        out = augment_rows(rows, tok, p_zero=0.0, max_length=60, min_response_tokens=8)
    from safelens.models.chat import prompt_ids

    head = len(prompt_ids(tok, "Tell me how?"))
    assert max(r["prefix_tokens"] for r in out) <= 60 - head - 8


def test_loss_mask_is_on_refusal_tokens_only(tok):
    """The augmented example puts h_<=k in context and only the refusal (+ EOS) in the mask."""
    from safelens.training import make_method
    from safelens.training.methods import deep  # noqa: F401  (registers the methods)

    rows = augment_rows([{"id": "h", "prompt": "Do a bad thing?", "harmful": True,
                          "chosen": "I can't help with that.", "rejected": HARMFUL}],
                        tok, p_zero=0.0, seed=0)
    k = rows[0]["prefix_tokens"]
    assert k > 0
    method = make_method("augmented-sft", max_length=256)
    batch = method.build_batch(rows, torch.arange(1), tok)
    ids, mask = batch.chat.input_ids[0], batch.chat.response_mask[0].bool()
    refusal = _ids(tok, "I can't help with that.") + [tok.eos_token_id]
    assert ids[mask].tolist() == refusal
    start = int(mask.nonzero()[0])
    assert ids[start - k:start].tolist() == _ids(tok, rows[0]["prefix"])
    assert ids[start - k:start].tolist() == _ids(tok, HARMFUL)[:k]


def test_epochs_redraw_k_per_epoch_and_epoch_zero_is_a_single_draw(tok):
    rows = [{"id": f"r{i}", "prompt": f"Request {i}?", "harmful": i % 3 != 0,
             "chosen": "I can't help with that.", "rejected": HARMFUL} for i in range(60)]
    once = augment_rows(rows, tok, seed=5)
    three = augment_rows(rows, tok, seed=5, epochs=3)
    assert len(three) == 3 * len(rows)
    versions = [three[e * len(rows):(e + 1) * len(rows)] for e in range(3)]
    assert versions[0] == once  # epoch 0 = the one-draw rows ("once")
    assert augment_rows(rows, tok, seed=5, epochs=3) == three  # deterministic per seed
    for v in versions:  # same source rows, in order, in every epoch
        assert [r["id"] for r in v] == [r["id"] for r in rows]
        assert all(r["prefix"] + r["continuation"] == HARMFUL or r["prefix"] == HARMFUL
                   for r in v if r["part"] == "safety")  # (all of it: PLACEHOLDER after)
    retain = [i for i, r in enumerate(rows) if not r["harmful"]]
    assert all(versions[e][i] == once[i] for e in (1, 2) for i in retain)
    ks = np.array([[r["prefix_tokens"] for r in v] for v in versions])  # [epoch, row]
    harmful = [i for i, r in enumerate(rows) if r["harmful"]]
    changed = (ks[1, harmful] != ks[0, harmful]).mean()
    assert changed > 0.4  # fresh draws: two independent k's agree rarely
    # each epoch's k's follow the same law (half zero)
    assert all(0.2 < (ks[e, harmful] == 0).mean() < 0.8 for e in range(3))
    with pytest.raises(ValueError, match="epochs must be an integer >= 1"):
        augment_rows(rows, tok, epochs=0)
