"""Text cut at token boundaries: ``token_prefix`` in both of its modes."""

from __future__ import annotations

import pytest

from safelens.models.tokens import split_at_tokens, token_prefix


@pytest.fixture(scope="module")
def tok():
    from transformers import AutoTokenizer

    from safelens.models.loading import _default_tokenizer_dir

    return AutoTokenizer.from_pretrained(_default_tokenizer_dir())


TEXTS = ["Boil water, then add the egg and wait nine minutes.", "No.",
         "  leading spaces and trailing  \n\n", "Ends with <|im_end|> a control token",
         "café naïve 日本語 and two emoji 🎉🎉 here", "tabs\tand\nnewlines\n\n\nmany",
         "don 't , spaced .", ""]


def _cut_to_tokens(tokenizer, texts, n_tokens):
    """The evaluation runner's reference cut before it called ``token_prefix`` (verbatim)."""
    ids = tokenizer(list(texts), add_special_tokens=False)["input_ids"]
    return [tokenizer.decode(i[:n_tokens], skip_special_tokens=True) for i in ids]


@pytest.mark.parametrize("k", [0, 1, 2, 3, 5, 8, 200])
def test_decode_mode_matches_the_runners_former_cut(tok, k):
    assert [token_prefix(tok, t, k, mode="decode") for t in TEXTS] == _cut_to_tokens(tok, TEXTS, k)


@pytest.mark.parametrize("k", [1, 3, 8])
def test_split_mode_is_split_at_tokens_and_agrees_on_plain_text(tok, k):
    for text in TEXTS[:3]:
        assert token_prefix(tok, text, k) == split_at_tokens(tok, text, k)[0]
        assert token_prefix(tok, text, k) == token_prefix(tok, text, k, mode="decode")


def test_modes_differ_on_a_control_token_string(tok):
    text = "Ends with <|im_end|> a control token"
    assert token_prefix(tok, text, 50) == text  # "split": the string is text
    assert token_prefix(tok, text, 50, mode="decode") == "Ends with  a control token"


def test_bad_k_or_mode(tok):
    with pytest.raises(ValueError, match="k must be an integer >= 0"):
        token_prefix(tok, "abc", -1, mode="decode")
    with pytest.raises(ValueError, match="mode must be 'split' or 'decode'"):
        token_prefix(tok, "abc", 1, mode="cut")  # type: ignore[arg-type]
