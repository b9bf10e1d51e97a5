"""Figures and equations wherever a notebook is read, with no network: live in JupyterLab and
in an HTML export by nbconvert.

* :func:`use_offline_renderer` (called by ``lessons.setup``): every figure carries plotly's own
  mimetype (JupyterLab draws it) and an HTML copy for exports. The HTML copy is plotly's
  ``notebook`` renderer, which inlines plotly.js once per notebook, less the one thing it fetches
  from a CDN: a MathJax script tag in every figure (our figures hold no LaTeX; the page's MathJax
  typesets the markdown).
* :func:`export_html`: nbconvert's ``lab`` template with MathJax 2 served from a local copy (the
  files of the ``jupyter-server-mathjax`` package, copied once beside the HTML), and without the
  two scripts the template loads from a CDN that these notebooks do not need (require.js,
  mermaid), nor the widget manager (from unpkg): a widget shows the static HTML copy it sent, if any.
* ``python -m fdmer_lite.offline NOTEBOOK [--out PAGE] [--execute]``: the command a student
  exports with (plain ``jupyter nbconvert --to html`` loads MathJax, require.js and the widget
  manager from CDNs, so offline its equations show as raw ``$$...$$`` and widgets as nothing).
* :func:`inspect_html`: what an exported page holds: the plotly figures (``plotly-graph-div``),
  whether plotly.js is inlined, where MathJax comes from, and every external URL it would load.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from pathlib import Path

RENDERER = "notebook_offline"
MATHJAX_CONFIG = "TeX-AMS-MML_HTMLorMML-full,Safe"     # the configuration jupyter-server-mathjax ships
_MATHJAX_TAG = re.compile(r'<script[^>]*\bsrc="https?://[^"]*mathjax[^"]*"[^>]*>\s*</script>', re.I)
# What a page *loads* (not URLs quoted inside plotly.js): script/link/img sources and imports.
_LOADS = re.compile(r'<(?:script|img|iframe)\b[^>]*\bsrc="(https?://[^"]+)"'
                    r'|<link\b[^>]*\bhref="(https?://[^"]+)"'
                    r'|\bimport\(\s*"(https?://[^"]+)"\s*\)'
                    r"|\b\w*src\s*=\s*'(https?://[^']+)'", re.I)        # a script added by code

# A widget's output needs the widget manager, which the template fetches from a CDN (unpkg) when
# the widget state was saved, and renders as nothing otherwise. Offline, the manager is left out,
# and where a widget also sent a static HTML copy (the beta/gamma explorer does) the page shows it.
_TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block data_widget_view scoped -%}
{%- if 'text/html' in output.data -%}
<div class="jp-RenderedHTMLCommon jp-RenderedHTML jp-OutputArea-output {{ extra_class }}" data-mime-type="text/html">
{{ output.data['text/html'] }}
</div>
{%- else -%}{{ super() }}{%- endif -%}
{%- endblock data_widget_view -%}
"""


def use_offline_renderer() -> str:
    """Register the offline notebook renderer and make ``plotly_mimetype+`` it the default."""
    import plotly.io as pio
    from plotly.io._base_renderers import NotebookRenderer

    class OfflineNotebookRenderer(NotebookRenderer):
        def to_mimebundle(self, fig_dict):
            bundle = super().to_mimebundle(fig_dict)
            bundle["text/html"] = _MATHJAX_TAG.sub("", bundle["text/html"])
            return bundle

    if RENDERER not in pio.renderers:
        pio.renderers[RENDERER] = OfflineNotebookRenderer()
    pio.renderers.default = f"plotly_mimetype+{RENDERER}"
    return pio.renderers.default


def mathjax_source() -> Path:
    """The MathJax 2 files of the ``jupyter-server-mathjax`` package."""
    try:
        import jupyter_server_mathjax
    except ImportError:
        raise ImportError("offline equations need the package jupyter-server-mathjax "
                          "(pip install jupyter-server-mathjax)") from None
    static = Path(jupyter_server_mathjax.__file__).parent / "static"
    if not (static / "MathJax.js").is_file():
        raise FileNotFoundError(f"{static}: no MathJax.js in jupyter-server-mathjax")
    return static


def local_mathjax(folder: str | Path) -> Path:
    """Copy MathJax into ``folder/mathjax`` (once) and return that folder."""
    target = Path(folder) / "mathjax"
    if not (target / "MathJax.js").is_file():
        shutil.copytree(mathjax_source(), target, dirs_exist_ok=True)
    return target


def export_html(notebook, out_path: str | Path) -> Path:
    """Write ``notebook`` (a path or an executed ``nbformat`` node) as HTML that needs no network:
    MathJax from ``<folder of out_path>/mathjax`` (a relative URL, so the folder can be moved)."""
    import nbformat
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter

    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    local_mathjax(out_path.parent)
    nb = nbformat.read(notebook, as_version=4) if isinstance(notebook, (str, Path)) else notebook
    exporter = HTMLExporter(template_name="lab", extra_loaders=[DictLoader({"offline.html.j2": _TEMPLATE})],
                            template_file="offline.html.j2",
                            mathjax_url=f"mathjax/MathJax.js?config={MATHJAX_CONFIG}")
    body, _ = exporter.from_notebook_node(nb)
    out_path.write_text(body, encoding="utf-8")
    return out_path


def inspect_html(text: str) -> dict:
    """Figures and outside loads of an exported page (``text``: its HTML)."""
    loads = sorted({next(g for g in m.groups() if g) for m in _LOADS.finditer(text)})
    mathjax = re.findall(r'<script[^>]*\bsrc="([^"]*MathJax[^"]*)"', text, re.I)
    return {"figures": text.count('class="plotly-graph-div"'),
            "plotlyjs_inlined": "plotly.js v" in text and "Plotly.newPlot" in text,
            "mathjax": mathjax,
            "mathjax_local": bool(mathjax) and all(not re.match(r"https?://", u) for u in mathjax),
            "external_loads": loads}


def main(argv: list[str] | None = None) -> int:
    """``python -m fdmer_lite.offline NOTEBOOK``: write NOTEBOOK's HTML page, offline, beside it."""
    parser = argparse.ArgumentParser(
        prog="python -m fdmer_lite.offline",
        description="Export a notebook as an HTML page that shows its figures, equations and the "
                    "explorer's static figures with no network (MathJax copied beside the page).")
    parser.add_argument("notebook", help="the .ipynb file (saved from JupyterLab, with its outputs)")
    parser.add_argument("--out", help="the page to write (default: the notebook's name with .html)")
    parser.add_argument("--execute", action="store_true",
                        help="run the notebook first (in its own folder), as nbconvert --execute does")
    args = parser.parse_args(argv)
    source = Path(args.notebook)
    if source.suffix != ".ipynb" or not source.is_file():
        print(f"{source}: expected an existing .ipynb notebook file", file=sys.stderr)
        return 2
    import nbformat

    try:
        nb = nbformat.read(source, as_version=4)
    except Exception as err:                               # not JSON, or not a notebook
        print(f"{source}: not a readable notebook ({type(err).__name__}: {err})", file=sys.stderr)
        return 2
    if args.execute:
        from nbclient import NotebookClient
        NotebookClient(nb, timeout=None, kernel_name="python3",
                       resources={"metadata": {"path": str(source.parent.resolve())}}).execute()
    page = export_html(nb, Path(args.out) if args.out else source.with_suffix(".html"))
    print(f"wrote {page} (equations from {page.parent / 'mathjax'}; open it with no network)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
