"""Strip machine-specific noise from committed notebooks' outputs (issue 21).

    python scripts/clean_notebooks.py notebooks/*.ipynb          # rewrite in place
    python scripts/clean_notebooks.py --check notebooks/*.ipynb  # exit 1 if any would change

What it does, output by output (no code cell's source is touched):

- developer absolute paths become relative: ``/work/<checkout>/x`` → ``x`` (the repository
  root), ``/work/shared/x`` → ``../shared/x``, ``/root/x`` and ``/home/<user>/x`` → ``…/x``;
- stale progress bars go: tqdm widgets (a widget view whose text is a bar with ``it/s``),
  progress-bar lines of stderr streams and ``\\r`` redraws of bars in stdout; an output left
  empty is dropped;
- widget-state noise goes: ``metadata.widgets`` (mostly progress-bar state) and the widget-view
  entries of outputs, whose models no longer exist without the state; a widget's own text
  (``VBox(children=...``) is replaced by a note, and a ``text/html`` fallback (the neuron
  explorer's static table) is kept, so an export or GitHub shows that instead of nothing;
- a parameters cell that comes first moves under the title (the first markdown cell starting
  with ``# ``): the title then heads the notebook; markdown does not execute, so nothing runs
  differently;
- a cell without an ``id`` (required from nbformat 4.5; a cell pasted in by a script lacks it,
  and nbformat warns under nbval) gets one derived from its position and source, so a rerun of
  this script writes the same ids.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import re
import sys
from pathlib import Path
from typing import Any

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_NOTE = "[interactive widget: run this cell in JupyterLab to use it]"
_TEXT_TYPES = ("text/plain", "text/html", "text/markdown", "text/latex", "application/json")
_PATHS = [
    (re.compile(r"/work/shared/"), "../shared/"),
    (re.compile(r"/work/[^/\s'\"<>]+/"), ""),
    (re.compile(r"/home/[^/\s'\"<>]+/"), "…/"),
    (re.compile(r"/root/"), "…/"),
]
_BAR = re.compile(r"\d+%\|.*\||\d+(\.\d+)?\s*(it/s|s/it)\b|\?it/s")
_WIDGET_REPR = re.compile(r"^[A-Za-z]\w*\(")  # VBox(children=...), IntSlider(value=...)


def strip_paths(text: str) -> str:
    """Developer absolute paths in ``text`` made relative (see the module docstring).

    Examples:
        >>> strip_paths("saved /work/main/figures/a.png; cache /root/.cache/x")
        'saved figures/a.png; cache …/.cache/x'
    """
    for pattern, repl in _PATHS:
        text = pattern.sub(repl, text)
    return text


def _join(text: Any) -> str:
    return "".join(text) if isinstance(text, list) else str(text)


def _split(text: str) -> list[str]:
    lines = text.split("\n")
    return [line + "\n" for line in lines[:-1]] + ([lines[-1]] if lines[-1] else [])


def strip_progress(text: str, redraws_only: bool = False) -> str:
    """``text`` without progress bars: of each line's ``\\r``-separated redraws, the bars go
    and the last other one stays (what the line shows once the bars are gone). With
    ``redraws_only`` (stdout) a line without ``\\r`` stays even if it looks like a bar.

    Examples:
        >>> strip_progress("epoch 1\\r 50%|##   | 1/2 [00:01<00:01, 1.0it/s]\\rdone\\nnext\\n")
        'done\\nnext\\n'
        >>> strip_progress(" 10%|#  | 1/10 [00:01<00:09, 1.0it/s]")
        ''
    """
    out = []
    for line in _split(text):
        end = "\n" if line.endswith("\n") else ""
        body = line[: len(line) - len(end)]
        if "\r" not in body and (redraws_only or not _BAR.search(body)):
            out.append(line)
            continue
        parts = [p for p in body.split("\r") if p.strip() and not _BAR.search(p)]
        if parts:
            out.append(parts[-1] + end)
    return "".join(out)


def _is_progress_widget(data: dict[str, Any]) -> bool:
    return WIDGET_VIEW in data and bool(_BAR.search(_join(data.get("text/plain", ""))))


def clean_output(output: dict[str, Any]) -> dict[str, Any] | None:
    """One output cleaned, or ``None`` when nothing worth keeping is left."""
    out = copy.deepcopy(output)
    kind = out.get("output_type")
    if kind == "stream":
        redraws_only = out.get("name") != "stderr"  # tqdm draws on stderr; stdout lines stay
        text = strip_paths(strip_progress(_join(out.get("text", "")), redraws_only))
        if not text.strip():
            return None
        out["text"] = _split(text)
        return out
    if kind == "error":
        out["traceback"] = [strip_paths(t) for t in out.get("traceback", [])]
        out["evalue"] = strip_paths(str(out.get("evalue", "")))
        return out
    data = out.get("data")
    if not isinstance(data, dict):
        return out
    if _is_progress_widget(data):
        return None
    if WIDGET_VIEW in data:
        del data[WIDGET_VIEW]
        plain = _join(data.get("text/plain", ""))
        if not plain or _WIDGET_REPR.match(plain):  # the widget's repr says nothing offline
            data["text/plain"] = [WIDGET_NOTE]
    for key in _TEXT_TYPES:
        if key in data and not isinstance(data[key], dict):
            data[key] = _split(strip_paths(_join(data[key])))
    return out if data else None


def _title_index(cells: list[dict[str, Any]]) -> int | None:
    for i, cell in enumerate(cells):
        if cell.get("cell_type") == "markdown":
            return i if _join(cell.get("source", "")).lstrip().startswith("# ") else None
    return None


def move_parameters_under_title(cells: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Cells with a leading code cell (the parameters) moved right under the title cell.

    Examples:
        >>> cells = [{"cell_type": "code", "source": "QUICK = 1"},
        ...          {"cell_type": "markdown", "source": "# Title"}]
        >>> [c["cell_type"] for c in move_parameters_under_title(cells)]
        ['markdown', 'code']
    """
    title = _title_index(cells)
    if not cells or title is None or title == 0 or cells[0].get("cell_type") != "code":
        return list(cells)
    if any(c.get("cell_type") == "code" for c in cells[1:title]):
        return list(cells)  # more than one cell above the title: leave the order alone
    rest = list(cells[1:])
    rest.insert(title, cells[0])  # right after the title (which moved up by one)
    return rest


def add_missing_ids(cells: list[dict[str, Any]]) -> None:
    """Give each cell without an ``id`` a deterministic one (in place): the first 8 hex digits
    of the SHA-1 of its index and source, lengthened until no other cell has it.

    Examples:
        >>> a = [{"id": "a1", "source": "x"}, {"source": "y"}]
        >>> b = [{"id": "a1", "source": "x"}, {"source": "y"}]
        >>> add_missing_ids(a); add_missing_ids(b)
        >>> a[1]["id"] == b[1]["id"], len(a[1]["id"]), a[0]["id"]
        (True, 8, 'a1')
    """
    taken = {c["id"] for c in cells if "id" in c}
    for i, cell in enumerate(cells):
        if "id" in cell:
            continue
        digest = hashlib.sha1(f"{i}\n{_join(cell.get('source', ''))}".encode()).hexdigest()
        n = 8
        while digest[:n] in taken:
            n += 1
        cell["id"] = digest[:n]
        taken.add(cell["id"])


def clean_notebook(nb: dict[str, Any]) -> dict[str, Any]:
    """A cleaned copy of a notebook dict (nbformat 4); ``nb`` is left unchanged."""
    out = copy.deepcopy(nb)
    out.get("metadata", {}).pop("widgets", None)
    for cell in out.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        cell["outputs"] = [o for o in map(clean_output, cell.get("outputs", [])) if o is not None]
    out["cells"] = move_parameters_under_title(out.get("cells", []))
    if (out.get("nbformat"), out.get("nbformat_minor", 0)) >= (4, 5):
        add_missing_ids(out["cells"])
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--check", action="store_true", help="report, do not write; exit 1 if "
                        "any notebook would change")
    args = parser.parse_args(argv)
    changed = 0
    for path in args.notebooks:
        text = path.read_text(encoding="utf-8")
        nb = json.loads(text)
        cleaned = clean_notebook(nb)
        new = json.dumps(cleaned, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
        if new == text:
            continue
        changed += 1
        print(f"{'would clean' if args.check else 'cleaned'} {path}")
        if not args.check:
            path.write_text(new, encoding="utf-8")
    return 1 if args.check and changed else 0


if __name__ == "__main__":
    sys.exit(main())
