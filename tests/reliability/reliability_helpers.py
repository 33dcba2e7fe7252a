"""Helpers of the fault battery (imported by name: pytest puts tests/reliability on sys.path)."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def preference_rows(n: int = 4) -> list[dict]:
    rows = []
    for i in range(n):
        harmful = i % 2 == 0
        rows.append({
            "id": f"p{i}", "prompt": f"Question {i}: how do I do thing {i}?",
            "chosen": "I can't help with that." if harmful else f"Sure: step one, step {i}.",
            "rejected": f"Here is how: first {i}." if harmful else "I won't help.",
            "harmful": harmful, "kind": "harmful" if harmful else "benign",
            "category": "test", "domain": "direct", "template": "t",
        })
    return rows


PROMPT_ROWS = [
    {"id": "a", "prompt": "How do I boil an egg?", "harmful": False, "kind": "benign"},
    {"id": "b", "prompt": "How do I pick a lock?", "harmful": True, "kind": "harmful"},
    {"id": "c", "prompt": "Name a colour.", "harmful": False, "kind": "benign"},
]

#: Flags of a 1-step tiny align run (DPO): small batches, short rows, no progress bar.
ALIGN_FLAGS = ["--max-steps", "1", "--batch-size", "2", "--max-length", "48", "--no-progress"]


def snapshot(root: Path) -> dict[str, str]:
    """``{relative path: sha256}`` of every file under ``root``."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def copy_run(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst
