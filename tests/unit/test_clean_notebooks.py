"""scripts/clean_notebooks.py on a small synthetic notebook: paths, progress bars, widget state,
the parameters cell under the title, and code sources left as they were."""

from __future__ import annotations

import json

import pytest


@pytest.fixture(scope="module")
def cleaner(load_script):
    return load_script("scripts/clean_notebooks.py")


def _code(source, outputs=()):
    return {"cell_type": "code", "execution_count": 1, "metadata": {}, "source": source,
            "outputs": list(outputs)}


def _notebook():
    bar = {"output_type": "display_data", "metadata": {}, "data": {
        "application/vnd.jupyter.widget-view+json": {"model_id": "abc", "version_major": 2,
                                                     "version_minor": 0},
        "text/plain": ["Loading weights:   0%|          | 0/272 [00:00<?, ?it/s]"]}}
    explorer = {"output_type": "execute_result", "execution_count": 3, "metadata": {}, "data": {
        "application/vnd.jupyter.widget-view+json": {"model_id": "def", "version_major": 2,
                                                     "version_minor": 0},
        "text/plain": ["VBox(children=(HBox(children=(…"]}}
    explorer_html = {"output_type": "execute_result", "execution_count": 4, "metadata": {},
                     "data": {"application/vnd.jupyter.widget-view+json": {"model_id": "g"},
                              "text/html": ["<table><tr><td>1</td></tr></table>"],
                              "text/plain": ["NeuronExplorer: L1 neuron 2"]}}
    return {
        "nbformat": 4, "nbformat_minor": 5,
        "metadata": {"kernelspec": {"name": "python3"},
                     "widgets": {"application/vnd.jupyter.widget-state+json": {"state": {}}}},
        "cells": [
            _code(["# Parameters\n", "QUICK = False\n"]),
            {"cell_type": "markdown", "metadata": {}, "source": ["# 01 · Title\n", "text"]},
            _code(["model = load()\n"], [
                bar,
                {"output_type": "stream", "name": "stdout",
                 "text": ["saved /work/main/figures/a.png\n", "cache /root/.cache/s/x\n",
                          "home /home/alice/runs/r1\n", "speed 3.0 it/s (a result)\n"]},
                {"output_type": "stream", "name": "stderr",
                 "text": ["\r  0%|   | 0/9 [00:00<?, ?it/s]\r100%|###| 9/9 [00:01<00:00, "
                          "9.0it/s]\n"]},
                {"output_type": "stream", "name": "stderr",
                 "text": ["/work/wt-a/safelens/x.py:3: UserWarning: cut\n",
                          " 50%|#  | 1/2 [00:01<00:01, 1.0it/s]\n"]},
            ]),
            _code(["explorer\n"], [explorer, explorer_html]),
            {"cell_type": "markdown", "metadata": {}, "source": ["## Section"]},
            _code("x = '/work/main/keep/this/in/code'", [
                {"output_type": "display_data", "metadata": {},
                 "data": {"image/png": "iVBORw0KGgo=", "text/plain": ["<Figure size 2x2>"]}}]),
        ],
    }


def test_clean_notebook(cleaner):
    nb = _notebook()
    before = json.dumps(nb, sort_keys=True)
    out = cleaner.clean_notebook(nb)
    assert json.dumps(nb, sort_keys=True) == before  # input untouched
    assert "widgets" not in out["metadata"] and out["metadata"]["kernelspec"]
    cells = out["cells"]
    # Title first, parameters right under it, everything else in order.
    assert [c["cell_type"] for c in cells] == ["markdown", "code", "code", "code", "markdown",
                                              "code"]
    assert cells[1]["source"] == ["# Parameters\n", "QUICK = False\n"]
    # Code sources are exactly the original ones (paths inside code are not outputs).
    assert [c["source"] for c in cells if c["cell_type"] == "code"] == [
        c["source"] for c in nb["cells"] if c["cell_type"] == "code"]
    outputs = cells[2]["outputs"]
    assert [o["output_type"] for o in outputs] == ["stream", "stream"]  # bar + bar-only gone
    assert outputs[0]["text"] == ["saved figures/a.png\n", "cache …/.cache/s/x\n",
                                  "home …/runs/r1\n", "speed 3.0 it/s (a result)\n"]
    assert outputs[1] == {"output_type": "stream", "name": "stderr",
                          "text": ["safelens/x.py:3: UserWarning: cut\n"]}
    widget, fallback = cells[3]["outputs"]
    assert widget["data"] == {"text/plain": [cleaner.WIDGET_NOTE]}
    assert widget["execution_count"] == 3
    assert fallback["data"] == {"text/html": ["<table><tr><td>1</td></tr></table>"],
                                "text/plain": ["NeuronExplorer: L1 neuron 2"]}
    figure = cells[5]["outputs"][0]
    assert figure["data"]["image/png"] == "iVBORw0KGgo="  # other outputs kept as they were
    assert "/work/" not in json.dumps(out["cells"][2:4]) and "it/s]" not in json.dumps(out)
    assert cleaner.clean_notebook(out) == out  # idempotent


def test_parameters_stay_when_title_is_first(cleaner):
    cells = [{"cell_type": "markdown", "source": "# T"}, _code("QUICK = 1"), _code("run()")]
    assert cleaner.move_parameters_under_title(cells) == cells
    no_title = [_code("QUICK = 1"), {"cell_type": "markdown", "source": "Just text"}]
    assert cleaner.move_parameters_under_title(no_title) == no_title


def test_main_check_and_write(cleaner, tmp_path, capsys):
    path = tmp_path / "n.ipynb"
    path.write_text(json.dumps(_notebook()), encoding="utf-8")
    assert cleaner.main(["--check", str(path)]) == 1
    assert "would clean" in capsys.readouterr().out
    assert cleaner.main([str(path)]) == 0
    assert cleaner.main(["--check", str(path)]) == 0  # nothing left to clean
    assert json.loads(path.read_text(encoding="utf-8"))["cells"][0]["cell_type"] == "markdown"


def test_missing_cell_ids_are_added_deterministically(cleaner):
    nb = _notebook()
    nb["cells"][1]["id"] = "kept-id"
    first, again = cleaner.clean_notebook(nb), cleaner.clean_notebook(nb)
    ids = [c["id"] for c in first["cells"]]
    assert all(ids) and len(set(ids)) == len(ids)
    assert "kept-id" in ids and ids == [c["id"] for c in again["cells"]]
    old = {**_notebook(), "nbformat_minor": 4}  # ids came with nbformat 4.5
    assert not any("id" in c for c in cleaner.clean_notebook(old)["cells"])


def test_committed_notebooks_are_clean(cleaner, capsys):
    from pathlib import Path

    notebooks = sorted(str(p) for p in (Path(__file__).parents[2] / "notebooks").glob("*.ipynb"))
    assert notebooks
    assert cleaner.main(["--check", *notebooks]) == 0, capsys.readouterr().out
