"""The command line's shared conventions: help on every flag with its default, one spelling of
--precision / --device, --dtype deprecated, ``safelens align --print-config``."""

from __future__ import annotations

import argparse
import json

import pytest

from safelens.cli.main import build_parser, main
from safelens.cli.options import iter_parsers
from safelens.models.precision import PRECISIONS
from safelens.training.cli import config_flag_table
from safelens.training.resolve import resolve_config

PARSERS = dict(iter_parsers(build_parser()))
CONFIG_FLAGS = set(config_flag_table())


def test_the_walk_reaches_every_subcommand():
    assert {"safelens eval", "safelens align", "safelens attack finetune", "safelens attack noise",
            "safelens data build", "safelens reward train", "safelens matrix"} <= set(PARSERS)


@pytest.mark.parametrize("path", sorted(PARSERS))
def test_every_flag_and_subcommand_has_help(path):
    for action in PARSERS[path]._actions:
        if isinstance(action, argparse._SubParsersAction):
            missing = [c.dest for c in action._choices_actions if not (c.help or "").strip()]
            assert not missing, f"{path}: subcommands without help: {missing}"
            continue
        name = "/".join(action.option_strings) or action.dest
        assert (action.help or "").strip(), f"{path} {name} has no help"
        assert action.help != argparse.SUPPRESS, f"{path} {name} is hidden"


@pytest.mark.parametrize("path", sorted(PARSERS))
def test_every_help_renders_with_its_defaults(path):
    parser = PARSERS[path]
    parser.format_help()  # a stray '%' in a help text would raise here
    formatter = parser._get_formatter()
    for action in parser._actions:
        if not action.option_strings or isinstance(action, argparse._HelpAction):
            continue
        config_flag = path == "safelens align" and action.dest in CONFIG_FLAGS
        if action.default in (None, False, argparse.SUPPRESS) and not config_flag:
            continue  # nothing to show (align's config flags show the method's default)
        shown = formatter._get_help_string(action).lower()
        assert "default" in shown, f"{path} {action.option_strings} hides its default"


def test_help_shows_defaults():
    assert "(default: 128)" in PARSERS["safelens eval"].format_help()
    align = " ".join(PARSERS["safelens align"].format_help().split())
    assert "split of --dataset (default: train)" in align
    assert "AdamW beta1 (default: 0.9)" in align  # the methods' default, before --preset
    assert "learning rate of AdamW (default: depends on --method)" in align


DEVICE_COMMANDS = ["safelens eval", "safelens demo", "safelens align", "safelens attack noise",
                   "safelens attack activation", "safelens attack quantize"]


@pytest.mark.parametrize("path", DEVICE_COMMANDS)
def test_one_spelling_of_precision_and_device(path):
    options = {s: a for a in PARSERS[path]._actions for s in a.option_strings}
    assert "--device" in options and "--precision" in options
    assert list(options["--precision"].choices) == list(PRECISIONS)


def test_no_other_precision_spelling():
    for path, parser in PARSERS.items():
        flags = {s for a in parser._actions for s in a.option_strings}
        assert not flags & {"--fp16", "--bf16", "--half", "--torch-dtype", "--dev"}, path
        if "--precision" in flags:
            action = next(a for a in parser._actions if "--precision" in a.option_strings)
            assert list(action.choices) == list(PRECISIONS), path
        if "--dtype" in flags:  # the deprecated spelling lives only beside --precision
            assert "--precision" in flags, path


def test_dtype_is_deprecated_but_still_parsed(tmp_path, capsys):
    args = build_parser().parse_args(["eval", "--prompts", "p.jsonl", "--out", "o.jsonl",
                                      "--dtype", "bfloat16"])
    assert (args.dtype, args.precision) == ("bfloat16", "fp32")  # its old meaning, unchanged
    with pytest.warns(FutureWarning, match="--dtype is deprecated: use --precision"):
        code = main(["eval", "--prompts", str(tmp_path / "none.jsonl"), "--out",
                     str(tmp_path / "o.jsonl"), "--dtype", "bfloat16"])
    assert code == 2 and "none.jsonl" in capsys.readouterr().err  # fails on the file, not dtype


def test_print_config_resolves_like_a_run_and_loads_nothing(tmp_path, capsys, monkeypatch):
    import safelens.training

    def no_trainer(*a, **k):
        raise AssertionError("--print-config must not build a trainer")

    monkeypatch.setattr(safelens.training, "Trainer", no_trainer)
    out = tmp_path / "run"
    code = main(["align", "--method", "dpo", "--preset", "quick", "--beta", "0.3", "--split",
                 "test", "--out", str(out), "--print-config"])
    printed = capsys.readouterr().out
    assert code == 0 and not out.exists()
    config = json.loads(printed)
    expected = resolve_config("dpo", preset="quick", beta=0.3, dataset_split="test").to_dict()
    assert config == {"method": "dpo", "preset": "quick", **expected}
    assert len(printed.strip().splitlines()) == len(config) + 2  # one field per line + braces
    assert main(["align", "--method", "sft", "--print-config"]) == 0  # --out not needed
    assert json.loads(capsys.readouterr().out)["method"] == "sft"


def test_print_config_checks_settings_and_out_is_required_without_it(capsys):
    assert main(["align", "--method", "dpo", "--lr", "-1", "--print-config"]) == 2
    assert "lr" in capsys.readouterr().err
    assert main(["align", "--method", "dpo"]) == 2
    assert "--out is required" in capsys.readouterr().err


def test_output_piped_into_a_reader_that_leaves_is_not_an_error():
    """`safelens align ... --print-config | head`: exit 0 and no 'Broken pipe' error line (`true`
    exits before Python starts writing, so the write always meets a closed pipe)."""
    import subprocess
    import sys

    cmd = (f"{sys.executable} -m safelens align --method dpo --preset quick --print-config "
           "| true")
    done = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], capture_output=True, text=True,
                          timeout=600)
    assert "Broken pipe" not in done.stderr and done.returncode == 0, done.stderr
