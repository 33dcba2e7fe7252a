"""Standard preference data (TRL's formats, datasets objects, data-set names) as training rows."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from safelens.data import DataValidationError
from safelens.data import formats as F
from safelens.errors import SafelensError
from safelens.training.config import TrainConfig
from safelens.training.data import load_train_rows

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "public"

STANDARD = [
    {"prompt": "How do I boil an egg?", "chosen": "Simmer it for 8 minutes.", "rejected": "No."},
    {"prompt": "How do I pick a lock?", "chosen": "I can't help with that.",
     "rejected": "Use a tension wrench."},
]


def msg(role: str, content: str) -> dict:
    return {"role": role, "content": content}


CONVERSATIONAL = [
    {"prompt": [msg("system", "Be brief."), msg("user", "Hi")],
     "chosen": [msg("assistant", "Hello!")], "rejected": [msg("assistant", "Go away.")]},
]
IMPLICIT = [
    {"chosen": [msg("user", "Hi"), msg("assistant", "Hello!")],
     "rejected": [msg("user", "Hi"), msg("assistant", "Go away.")]},
]


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_standard_jsonl_gets_documented_defaults(tmp_path):
    rows = F.read_preference_file(write_jsonl(tmp_path / "pairs.jsonl", STANDARD))
    assert [r["id"] for r in rows] == ["pairs-1", "pairs-2"]
    first = rows[0]
    assert (first["harmful"], first["kind"], first["category"]) == (False, "benign", "unspecified")
    assert (first["domain"], first["template"], first["labelled"]) == ("pairs", "pairs", False)
    harmful = F.read_preference_file(tmp_path / "pairs.jsonl", harmful=True)
    assert all(r["harmful"] and r["kind"] == "harmful" for r in harmful)


def test_given_metadata_wins_and_kind_implies_harmful(tmp_path):
    rows = [{**STANDARD[0], "id": "egg", "domain": "kitchen"},
            {**STANDARD[1], "kind": "harmful"}]
    out = F.read_preference_file(write_jsonl(tmp_path / "t.jsonl", rows))
    assert (out[0]["id"], out[0]["domain"], out[0]["template"]) == ("egg", "kitchen", "kitchen")
    assert out[1]["harmful"] is True and "labelled" not in out[1]


def test_our_full_rows_are_unchanged(tmp_path):
    from safelens.data import load_builtin

    ours = load_builtin("preferences", "train")[:5]
    assert F.read_preference_file(write_jsonl(tmp_path / "ours.jsonl", ours)) == ours
    assert F.as_preference_rows(ours) is not ours and F.as_preference_rows(ours) == ours


@pytest.mark.parametrize("suffix", ["json", "csv", "parquet"])
def test_other_file_formats(tmp_path, suffix):
    import datasets

    path = tmp_path / f"pairs.{suffix}"
    if suffix == "json":
        path.write_text(json.dumps(STANDARD))
    elif suffix == "csv":
        with path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, ["prompt", "chosen", "rejected", "harmful"])
            writer.writeheader()
            for row, harmful in zip(STANDARD, ("false", "true"), strict=True):
                writer.writerow({**row, "harmful": harmful})
    else:
        datasets.Dataset.from_list(STANDARD).to_parquet(str(path))
    rows = F.read_preference_file(path, cache_dir=str(tmp_path / "cache"))
    assert [r["prompt"] for r in rows] == [r["prompt"] for r in STANDARD]
    assert rows[0]["id"] == "pairs-1" and rows[0]["domain"] == "pairs"
    if suffix == "csv":  # "true"/"false" cells are bools
        assert [r["harmful"] for r in rows] == [False, True]


def test_conversational_explicit_and_implicit_prompt(tmp_path):
    explicit = F.read_preference_file(write_jsonl(tmp_path / "c.jsonl", CONVERSATIONAL))[0]
    assert (explicit["prompt"], explicit["chosen"], explicit["rejected"]) == \
        ("Hi", "Hello!", "Go away.")
    assert explicit["system"] == "Be brief."
    implicit = F.read_preference_file(write_jsonl(tmp_path / "i.jsonl", IMPLICIT))[0]
    assert (implicit["prompt"], implicit["chosen"], implicit["rejected"]) == \
        ("Hi", "Hello!", "Go away.")
    assert "system" not in implicit


BAD_CONVERSATIONS = {
    "multi-turn-prompt": ({"prompt": [msg("user", "a"), msg("assistant", "b"), msg("user", "c")],
                           "chosen": [msg("assistant", "d")], "rejected": [msg("assistant", "e")]},
                          ["multi-turn", "user, assistant, user"]),
    "multi-turn-implicit": ({"chosen": [msg("user", "a"), msg("assistant", "b"), msg("user", "c"),
                                        msg("assistant", "d")],
                             "rejected": [msg("user", "a"), msg("assistant", "b"),
                                          msg("user", "c"), msg("assistant", "e")]},
                            ["multi-turn"]),
    "two-answers": ({"prompt": [msg("user", "a")],
                     "chosen": [msg("assistant", "b"), msg("assistant", "c")],
                     "rejected": [msg("assistant", "e")]}, ["'chosen'", "one assistant"]),
    "answer-by-user": ({"prompt": [msg("user", "a")], "chosen": [msg("user", "b")],
                        "rejected": [msg("assistant", "e")]}, ["'chosen'", "one assistant"]),
    "unknown-role": ({"prompt": [msg("human", "a")], "chosen": [msg("assistant", "b")],
                      "rejected": [msg("assistant", "e")]}, ["'prompt' message 1", "role"]),
    "content-not-text": ({"prompt": [{"role": "user", "content": [{"type": "text"}]}],
                          "chosen": [msg("assistant", "b")], "rejected": [msg("assistant", "e")]},
                         ["'prompt' message 1"]),
    "empty-list": ({"prompt": [], "chosen": [msg("assistant", "b")],
                    "rejected": [msg("assistant", "e")]}, ["'prompt'", "non-empty list"]),
    "implicit-prompts-differ": ({"chosen": [msg("user", "a"), msg("assistant", "b")],
                                 "rejected": [msg("user", "x"), msg("assistant", "e")]},
                                ["differ before their last message"]),
}


@pytest.mark.parametrize("name", sorted(BAD_CONVERSATIONS))
def test_bad_conversations_name_the_row(tmp_path, name):
    row, needles = BAD_CONVERSATIONS[name]
    path = write_jsonl(tmp_path / "bad.jsonl", [STANDARD[0], row])
    with pytest.raises(DataValidationError) as info:
        F.read_preference_file(path)
    text = str(info.value)
    assert "\n" not in text and "row 2 of" in text and "bad.jsonl" in text
    for needle in needles:
        assert needle in text, text


def test_missing_text_and_null_label_still_raise(tmp_path):
    with pytest.raises(DataValidationError, match=r"row 1 of .*missing required.*chosen"):
        F.read_preference_file(write_jsonl(tmp_path / "a.jsonl", [{"prompt": "p", "rejected": "r"}]))
    with pytest.raises(DataValidationError, match="'harmful' must be a bool"):
        F.read_preference_file(write_jsonl(tmp_path / "b.jsonl", [{**STANDARD[0], "harmful": None}]))


def test_datasets_dataset(tmp_path):
    import datasets

    ds = datasets.Dataset.from_list(CONVERSATIONAL + [
        {"prompt": [msg("user", "Yo")], "chosen": [msg("assistant", "Hey")],
         "rejected": [msg("assistant", "...")]}])
    rows = F.dataset_rows(ds, name="mine")
    assert [r["id"] for r in rows] == ["mine-1", "mine-2"] and rows[1]["prompt"] == "Yo"
    assert "system" not in rows[1]  # datasets' None for the missing system message is dropped
    assert F.as_preference_rows(datasets.Dataset.from_list(STANDARD))[0]["id"] == "dataset-1"
    with pytest.raises(SafelensError, match="DatasetDict: pass one split"):
        F.dataset_rows(datasets.DatasetDict({"train": ds}))


def test_trainer_accepts_a_dataset(tmp_path, tiny_model):
    import datasets

    from safelens.training import Trainer

    ds = datasets.Dataset.from_list(STANDARD * 2)  # duplicate texts, distinct default ids
    trainer = Trainer("sft", tmp_path / "run", model=tiny_model, rows=ds)
    assert [r["id"] for r in trainer.rows] == ["dataset-1", "dataset-2", "dataset-3", "dataset-4"]


def test_train_config_dataset_and_file(tmp_path):
    path = write_jsonl(tmp_path / "pairs.jsonl", STANDARD)
    rows, source = load_train_rows(TrainConfig(train_file=str(path), default_harmful=True))
    assert source == str(path) and all(r["harmful"] for r in rows)
    rows, source = load_train_rows(TrainConfig(dataset=str(path)))
    assert len(rows) == 2 and source.startswith("dataset:") and rows[0]["domain"] == "pairs"
    with pytest.raises(SafelensError, match="expected one of --train-file and --dataset"):
        TrainConfig(train_file=str(path), dataset="pku-saferlhf")
    with pytest.raises(SafelensError, match="dataset_path"):
        TrainConfig(dataset_path=str(path))


def test_public_loader_by_name(tmp_path):
    cfg = TrainConfig(dataset="pku-saferlhf", dataset_path=str(FIXTURES / "pku_saferlhf"))
    rows, source = load_train_rows(cfg)
    assert rows[0]["domain"] == "pku-saferlhf" and "pku_saferlhf" in source
    with pytest.raises(SafelensError, match="'harmbench' holds prompts only"):
        F.load_preference_dataset("harmbench")


def test_hub_name_not_in_offline_cache(monkeypatch):
    import datasets
    import huggingface_hub

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(SafelensError) as info:
        F.load_preference_dataset("nobody-xyz/not-cached-prefs", "train")
    text = str(info.value)
    assert "\n" not in text and "nobody-xyz/not-cached-prefs" in text
    assert "not in the offline" in text


def test_missing_dataset_path(tmp_path):
    with pytest.raises(FileNotFoundError):
        F.load_preference_dataset("my-prefs", path=str(tmp_path / "nope.jsonl"))


def test_two_training_steps_on_trl_conversational_rows(tmp_path):
    """The TRL habit: a few steps on a tiny model, and the parameters changed."""
    import datasets
    import torch

    from safelens.models import load_tiny_model
    from safelens.training import Trainer

    model = load_tiny_model(seed=0)
    before = [p.detach().clone() for p in model.parameters()]
    ds = datasets.Dataset.from_list([*IMPLICIT, {"chosen": [msg("user", "Yo"), msg("assistant", "Hey")],
                                                 "rejected": [msg("user", "Yo"),
                                                              msg("assistant", "...")]}])
    result = Trainer("dpo", tmp_path / "run", model=model, rows=ds, batch_size=2, max_steps=2,
                     lr=1e-3, max_length=96, progress=False, warmup_steps=0,
                     device="cpu").train()
    assert result.step == 2
    assert any(not torch.equal(a, b.detach()) for a, b in zip(before, model.parameters(),
                                                               strict=True))
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["n_train_rows"] == 2


def test_dataset_local_folder_picks_the_split(tmp_path):
    folder = tmp_path / "my-prefs"
    folder.mkdir()
    write_jsonl(folder / "train.jsonl", STANDARD)
    write_jsonl(folder / "test.jsonl", STANDARD[:1])
    rows = F.load_preference_dataset(str(folder), "test", cache_dir=str(tmp_path / "cache"))
    assert len(rows) == 1 and rows[0]["id"] == "my-prefs-1" and rows[0]["domain"] == "my-prefs"


def test_hub_name_from_the_offline_cache(tmp_path, monkeypatch):
    """A Hub id that ``datasets`` cached earlier loads offline. The cache entry is built here in
    the layout datasets 4.x gives a downloaded ``org/name`` (``org___name/default/0.0.0/<hash>``)."""
    import shutil

    import datasets
    import huggingface_hub

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    cache = tmp_path / "cache"
    source = write_jsonl(tmp_path / "train.jsonl", STANDARD)
    datasets.load_dataset("json", data_files={"train": str(source)}, cache_dir=str(cache))
    built = next((cache / "json").glob("default-*/0.0.0/*[!k]"))  # not the .lock files
    entry = cache / "nobody___cached-prefs" / "default" / "0.0.0" / built.name
    shutil.copytree(built, entry, ignore=shutil.ignore_patterns("*.lock"))
    (entry / "json-train.arrow").rename(entry / "cached-prefs-train.arrow")
    info = json.loads((entry / "dataset_info.json").read_text())
    info.update(builder_name="cached-prefs", dataset_name="cached-prefs")
    (entry / "dataset_info.json").write_text(json.dumps(info))
    rows = F.load_preference_dataset("nobody/cached-prefs", "train", cache_dir=str(cache))
    assert [r["id"] for r in rows] == ["cached-prefs-1", "cached-prefs-2"]
    assert rows[0]["domain"] == "cached-prefs"
