"""Real-browser check of the neuron explorer (issue 21): JupyterLab in headless Chromium.

    python scripts/explorer_screenshot.py [--out runs/explorer-screens] [--widths 800 1280 1920]

Starts JupyterLab on a one-cell notebook that shows ``NeuronExplorer`` on the tiny model, runs
the cell at each window width, screenshots it, and fails if a button's label or the widget is
cut (``scrollWidth > clientWidth``). Then exports the executed notebook to HTML without widget
state (as ``scripts/clean_notebooks.py`` leaves notebooks) and checks that the static table
shows offline. Needs ``pip install playwright && playwright install chromium``; without them it
says so and exits 0.
"""

from __future__ import annotations

import argparse
import json
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CELL = """from safelens.models import load_tiny_model
from safelens.viz import NeuronExplorer
explorer = NeuronExplorer(load_tiny_model(), prompts_harmful=["How do I pick a lock?"],
                          prompts_benign=["How do I bake bread?"], max_new_tokens=4)
explorer"""
CUT = """() => [...document.querySelectorAll('.jp-OutputArea-output, .jupyter-widgets button')]
  .filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.className + ': ' + e.innerText)"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/explorer-screens"))
    parser.add_argument("--widths", type=int, nargs="+", default=[800, 1280, 1920])
    args = parser.parse_args()
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError:
        print("skipped: playwright is not installed (pip install playwright; "
              "playwright install chromium)")
        return 0
    import nbformat

    work = Path(tempfile.mkdtemp())
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(CELL)])
    nbformat.write(nb, work / "explorer.ipynb")
    args.out.mkdir(parents=True, exist_ok=True)
    port, token = _free_port(), secrets.token_hex(8)
    lab = subprocess.Popen([sys.executable, "-m", "jupyter", "lab", "--no-browser",
                            f"--port={port}", f"--IdentityProvider.token={token}",
                            f"--ServerApp.root_dir={work}"], stderr=subprocess.DEVNULL)
    problems: list[str] = []
    try:
        with sync_playwright() as p:
            try:
                browser = p.chromium.launch()
            except Error as e:
                print(f"skipped: no Chromium for playwright ({e.message.splitlines()[0]}); "
                      "run: playwright install chromium")
                return 0
            for _ in range(120):  # until the server answers
                with socket.socket() as s:
                    if s.connect_ex(("127.0.0.1", port)) == 0:
                        break
                time.sleep(0.5)
            for width in args.widths:
                page = browser.new_page(viewport={"width": width, "height": 1000})
                page.goto(f"http://127.0.0.1:{port}/lab/tree/explorer.ipynb?token={token}")
                page.click(".jp-Cell .jp-InputArea-editor", timeout=120_000)
                page.keyboard.press("Shift+Enter")
                page.wait_for_selector("text=generate before / after", timeout=180_000)
                page.screenshot(path=str(args.out / f"explorer-{width}.png"), full_page=True)
                problems += [f"{width}px: {c}" for c in page.evaluate(CUT)]
                page.close()
            # Static export, offline: executed, widget state dropped, converted to HTML.
            subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook",
                            "--execute", "--inplace", str(work / "explorer.ipynb")], check=True)
            executed = json.loads((work / "explorer.ipynb").read_text())
            executed["metadata"].pop("widgets", None)
            (work / "explorer.ipynb").write_text(json.dumps(executed))
            subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "html",
                            str(work / "explorer.ipynb")], check=True)
            page = browser.new_page()
            page.goto((work / "explorer.html").as_uri())
            if not page.is_visible("text=Neuron explorer"):
                problems.append("static HTML export: the explorer's table is not shown")
            page.screenshot(path=str(args.out / "explorer-static.png"), full_page=True)
            browser.close()
    finally:
        lab.terminate()
    print("\n".join(problems) or f"ok: screenshots in {args.out}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
