"""``safelens reward train|score`` — the Bradley–Terry MiniLM reward model and win rate."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from safelens.data.jsonfile import dumps_json, write_json


def cmd_reward_train(args: argparse.Namespace) -> int:
    from safelens.data import load_builtin, read_preference_file
    from safelens.reward import RewardConfig, train_reward_model

    # our JSONL or TRL's formats (metadata optional), as `safelens align --train-file`
    rows = (read_preference_file(args.train) if args.train
            else load_builtin("preferences", "train"))
    val = (read_preference_file(args.val) if args.val
           else None if args.train else load_builtin("preferences", "validation"))
    config = RewardConfig(epochs=args.epochs, seed=args.seed, lr=args.lr)
    model, metrics = train_reward_model(rows, config, val_rows=val)
    out = model.save(args.out)
    write_json(Path(out) / "metrics.json", metrics)
    print(json.dumps({k: v for k, v in metrics.items() if not isinstance(v, list)},
                     indent=2, default=float))
    print(f"saved to {out}")
    return 0


def cmd_reward_winrate(args: argparse.Namespace) -> int:
    """Win rate of the responses in an eval output file against each row's ``reference``."""
    from safelens.data import read_jsonl
    from safelens.eval.runner import reward_win_rate
    from safelens.reward import HFRewardModel, RewardModel

    rows = [r for r in read_jsonl(args.responses) if r.get("reference")]
    if not rows:
        raise ValueError(f"{args.responses}: no row has both 'response' and 'reference'")
    missing = [r.get("id", i) for i, r in enumerate(rows) if "response" not in r]
    if missing:
        raise ValueError(f"{args.responses}: rows {missing[:5]} have no 'response'")
    path = Path(args.reward_model)
    scorer = (RewardModel.load(path) if (path / "reward_config.json").is_file()
              else HFRewardModel(args.reward_model, negate=args.negate))
    result = reward_win_rate(scorer, [r["prompt"] for r in rows], [r["response"] for r in rows],
                             [r["reference"] for r in rows])
    print(dumps_json(result, indent=2))
    return 0


def add_reward_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``safelens reward`` on the top-level subparsers."""
    p = sub.add_parser("reward", help="train a reward model / compute win rates")
    rsub = p.add_subparsers(dest="reward_command", required=True)
    t = rsub.add_parser("train", help="train the Bradley–Terry MiniLM reward model")
    t.add_argument("--out", required=True, help="output directory (safetensors + json)")
    t.add_argument("--train", default=None, help="preference file, ours or TRL's prompt/chosen/rejected (default: built-in train)")
    t.add_argument("--val", default=None, help="preference file (as --train) for held-out accuracy")
    t.add_argument("--epochs", type=int, default=100, help="passes over the training pairs")
    t.add_argument("--lr", type=float, default=1e-3, help="AdamW learning rate")
    t.add_argument("--seed", type=int, default=0, help="seed of initialisation and data order")
    t.set_defaults(func=cmd_reward_train)
    w = rsub.add_parser("winrate", help="win rate of eval responses against row references")
    w.add_argument("--responses", required=True, help="output JSONL of `safelens eval`")
    w.add_argument("--reward-model", required=True,
                   help="a directory from `safelens reward train`, or an HF reward/cost model")
    w.add_argument("--negate", action="store_true", help="negate scores (cost models)")
    w.set_defaults(func=cmd_reward_winrate)
