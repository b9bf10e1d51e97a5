"""Export every tutorial notebook to HTML, offline, and count the figures each page shows.

    python benchmarks/notebooks_html.py                  # execute in FAST mode, export, count
    python benchmarks/notebooks_html.py 03 11            # only these notebooks (other rows kept)
    python benchmarks/notebooks_html.py --executed DIR   # take executed DIR/*.ipynb instead
                                                         # (each run keeps them in benchmarks/out/executed)

Each notebook runs in a fresh kernel with the working directory ``notebooks/`` (as nbval runs
them), in FAST mode (``FDMER_LITE_FAST=1``), in order, runs kept in a temporary folder; then
``fdmer_lite.viz.export_html`` writes ``benchmarks/out/html/<name>.html`` with MathJax from the
local copy beside it. Per page: the plotly figures (``plotly-graph-div``), whether plotly.js is
inlined, where MathJax comes from and any outside URL the page would load. Where Chromium and
Playwright are installed, each page is also opened from disk with every network request refused,
and the figures drawn (a ``main-svg`` inside the figure) and the typeset equations are counted.

Writes ``benchmarks/results/notebooks-html.md``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from fdmer_lite.viz import export_html, inspect_html  # noqa: E402

NOTEBOOKS = ROOT / "notebooks"
OUT = ROOT / "benchmarks" / "out" / "html"
RESULTS = ROOT / "benchmarks" / "results" / "notebooks-html.md"
HEADER = ("| notebook | figures in the HTML | drawn offline (browser) | equations typeset | plotly.js inlined "
          "| MathJax | outside loads | executed in |")


def execute(path: Path, env: dict, timeout: int) -> tuple[nbformat.NotebookNode, float, str | None]:
    nb = nbformat.read(path, as_version=4)
    old = dict(os.environ)
    os.environ.update(env)
    start = time.perf_counter()
    error = None
    try:
        NotebookClient(nb, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(path.parent)}}).execute()
    except Exception as err:                              # report it and go on
        error = f"{type(err).__name__}: {str(err).strip().splitlines()[-1][:160]}"
    finally:
        os.environ.clear()
        os.environ.update(old)
    return nb, time.perf_counter() - start, error


def chromium() -> str | None:
    for candidate in (os.environ.get("FDMER_LITE_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


def browser_counts(pages: list[Path]) -> dict[str, tuple[int, int, int]]:
    """Per page: (figures drawn, equations typeset, network requests refused), or {} without
    Playwright and Chromium."""
    exe = chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return {}
    if exe is None:
        return {}
    counts = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=["--no-sandbox"])
        for page_path in pages:
            page = browser.new_page()
            refused = []

            def route(r, request):                        # playwright passes (route, request)
                if request.url.startswith("file:"):
                    return r.continue_()
                refused.append(request.url)
                return r.abort()

            page.route("**/*", route)
            page.goto(page_path.resolve().as_uri())
            page.wait_for_timeout(5000)                   # plotly draws and MathJax typesets
            drawn = page.evaluate("[...document.querySelectorAll('.plotly-graph-div')]"
                                  ".filter(d => d.querySelector('.main-svg')).length")
            maths = page.evaluate("document.querySelectorAll('.MathJax, .MathJax_Display').length")
            counts[page_path.stem] = (drawn, maths, len(refused))
            page.close()
        browser.close()
    return counts


def read_rows() -> dict[str, str]:
    if not RESULTS.is_file():
        return {}
    rows = {}
    for line in RESULTS.read_text().splitlines():
        m = re.match(r"^\| (\d\d_[a-z0-9_]+) \|", line)
        if m:
            rows[m.group(1)] = line
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("names", nargs="*", help="notebook numbers or names (default: all)")
    ap.add_argument("--executed", default=None, help="a folder of executed notebooks to export as they are")
    ap.add_argument("--timeout", type=int, default=900, help="seconds per cell")
    args = ap.parse_args(argv)
    paths = sorted((Path(args.executed) if args.executed else NOTEBOOKS).glob("*.ipynb"))
    if args.names:
        paths = [p for p in paths if any(p.name.startswith(n) or n in p.stem for n in args.names)]
    if not paths:
        print("no notebooks found", file=sys.stderr)
        return 2
    runs = tempfile.TemporaryDirectory(prefix="fdmer-lite-html-runs-")
    env = {"FDMER_LITE_FAST": "1", "FDMER_LITE_RUNS_DIR": runs.name,
           "FDMER_LITE_THREADS": os.environ.get("FDMER_LITE_THREADS", "1")}
    pages, info = [], {}
    for path in paths:
        if args.executed:
            nb, seconds, error = nbformat.read(path, as_version=4), None, None
        else:
            nb, seconds, error = execute(path, env, args.timeout)
        if not args.executed:                             # kept, so --executed can redo the pages
            (OUT.parent / "executed").mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, OUT.parent / "executed" / path.name)
        page = export_html(nb, OUT / f"{path.stem}.html")
        found = inspect_html(page.read_text(encoding="utf-8"))
        pages.append(page)
        info[path.stem] = (found, seconds, error)
        print(f"{path.stem}: {found['figures']} figure(s), MathJax local {found['mathjax_local']}, "
              f"outside loads {len(found['external_loads'])}"
              + (f", executed in {seconds:.0f} s" if seconds is not None else "") + (f"; ERROR {error}" if error else ""))
    browser = browser_counts(pages)
    rows = read_rows()
    for stem, (found, seconds, error) in info.items():
        drawn, maths, refused = browser.get(stem, ("not checked", "not checked", 0))
        where = "local" if found["mathjax_local"] else ("none" if not found["mathjax"] else "CDN")
        loads = ", ".join(found["external_loads"]) or "none"
        if refused:
            loads += f" ({refused} request(s) refused in the browser)"
        before = rows.get(stem, "").rstrip(" |").rsplit("| ", 1)[-1]
        ran = (before if "FAST" in before else "executed before") if seconds is None else f"{seconds:.0f} s (FAST)"
        if seconds is not None and stem.startswith("08") and os.environ.get("FDMER_LITE_MOSI_DIR"):
            ran += ", real data (FDMER_LITE_MOSI_DIR set)"
        if error:
            ran += f"; failed: {error}"
        rows[stem] = (f"| {stem} | {found['figures']} | {drawn} | {maths} | "
                      f"{'yes' if found['plotlyjs_inlined'] else 'no'} | {where} | {loads} | {ran} |")
    lines = ["# Notebooks exported to HTML, offline",
             "",
             "Written by `python benchmarks/notebooks_html.py` (FAST mode; rerun to refresh). Each notebook "
             "is executed, exported by nbconvert's lab template through `fdmer_lite.viz.export_html` "
             "(MathJax 2 from the local copy of `jupyter-server-mathjax`, no require.js or mermaid from a "
             "CDN), and the page inspected: plotly figures in the HTML, whether plotly.js is inlined, where "
             "MathJax comes from, and the outside URLs the page would load. \"Drawn offline\" and "
             "\"equations typeset\" come from opening the page from disk in headless Chromium with every "
             "network request refused (a figure counts when plotly drew its SVG).",
             "",
             HEADER, "|---|---|---|---|---|---|---|---|"]
    lines += [rows[k] for k in sorted(rows)]
    total = sum(int(r.split("|")[2]) for r in rows.values())
    none = [k for k in sorted(rows) if rows[k].split("|")[2].strip() == "0"]
    lines += ["", f"{len(rows)} notebooks, {total} figures in their HTML."
              + (f" Without a figure: {', '.join(none)}." if none else " Every notebook shows a figure."), ""]
    RESULTS.write_text("\n".join(lines))
    print(f"wrote {RESULTS.relative_to(ROOT)} and {OUT.relative_to(ROOT)}/")
    return 1 if any(error for _, _, error in info.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
