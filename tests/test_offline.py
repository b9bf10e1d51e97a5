"""Figures and equations in an HTML export, with no network (``fdmer_lite.offline``)."""

import nbformat
import plotly.graph_objects as go
import pytest


def test_setup_makes_the_offline_renderer_the_default(monkeypatch):
    import plotly.io as pio

    from fdmer_lite import lessons, offline

    monkeypatch.setattr(pio.renderers, "default", "browser")
    lessons.setup(verbose=False)
    assert pio.renderers.default == f"plotly_mimetype+{offline.RENDERER}"
    bundle = pio.renderers[offline.RENDERER].to_mimebundle(go.Figure(go.Scatter(y=[1, 2])).to_dict())
    assert "plotly-graph-div" in bundle["text/html"]
    from fdmer_lite.offline import inspect_html
    assert inspect_html(bundle["text/html"])["external_loads"] == []   # plotly's own loads MathJax from a CDN
    assert "cdnjs" not in bundle["text/html"]
    plain = pio.renderers["notebook"].to_mimebundle(go.Figure(go.Scatter(y=[1, 2])).to_dict())
    assert "cdnjs.cloudflare.com/ajax/libs/mathjax" in plain["text/html"]   # what is stripped


def test_inspect_html_finds_figures_and_outside_loads():
    from fdmer_lite.offline import inspect_html

    page = ('<script src="https://cdn.example/require.js"></script><script src="mathjax/MathJax.js"></script>'
            '<div class="plotly-graph-div"></div><script>const u = "https://quoted.example/in/code"</script>'
            '<script>await import("https://cdn.example/m.mjs")</script>')
    found = inspect_html(page)
    assert found["figures"] == 1 and found["mathjax_local"]
    assert found["external_loads"] == ["https://cdn.example/m.mjs", "https://cdn.example/require.js"]


TINY = """# %% [markdown]
# # A figure and an equation
# $$ \\mathcal{L} = \\mathcal{L}_{task} + \\beta (\\mathcal{L}_{ami} + \\mathcal{L}_{ams}) $$

# %%
from fdmer_lite.offline import use_offline_renderer
use_offline_renderer()
import plotly.graph_objects as go
go.Figure(go.Scatter(y=[1, 3, 2]))
"""


def test_an_executed_notebook_exports_with_its_figure_and_no_cdn(tmp_path):
    import jupytext
    from nbclient import NotebookClient
    from nbconvert import HTMLExporter

    from fdmer_lite.offline import export_html, inspect_html

    nb = jupytext.reads(TINY, fmt="py:percent")
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    page = export_html(nb, tmp_path / "tiny.html")
    text = page.read_text(encoding="utf-8")
    found = inspect_html(text)
    assert found["figures"] == 1 and found["plotlyjs_inlined"]
    assert found["mathjax_local"] and (tmp_path / "mathjax" / "MathJax.js").is_file()
    assert found["external_loads"] == [], found["external_loads"]
    assert "cdnjs.cloudflare.com" not in text and "cdn.jsdelivr.net/npm/mathjax" not in text
    # nbconvert's own template, for contrast: the detector does see its CDN scripts.
    stock, _ = HTMLExporter(template_name="lab").from_notebook_node(nbformat.from_dict(nb))
    assert any("cdnjs.cloudflare.com" in u for u in inspect_html(stock)["external_loads"])


def test_a_widget_with_saved_state_shows_its_html_copy_and_loads_no_widget_manager(tmp_path):
    """nbclient saves widget state; nbconvert's template then fetches the widget manager from unpkg."""
    from nbconvert import HTMLExporter

    from fdmer_lite.offline import export_html, inspect_html

    nb = nbformat.v4.new_notebook()
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}, "version_major": 2,
                                                                            "version_minor": 0}}
    view = {"model_id": "abc", "version_major": 2, "version_minor": 0}
    nb.cells.append(nbformat.v4.new_code_cell("w", outputs=[nbformat.v4.new_output("display_data", data={
        "application/vnd.jupyter.widget-view+json": view, "text/plain": "W",
        "text/html": '<div class="plotly-graph-div"></div>'})]))
    stock, _ = HTMLExporter(template_name="lab").from_notebook_node(nb)
    assert any("unpkg.com" in u for u in inspect_html(stock)["external_loads"])   # the detector sees it
    found = inspect_html(export_html(nb, tmp_path / "w.html").read_text())
    assert found["external_loads"] == [] and found["figures"] == 1


def test_missing_mathjax_package_is_one_clear_message(monkeypatch):
    import builtins

    from fdmer_lite import offline

    real = builtins.__import__

    def no_mathjax(name, *args, **kwargs):
        if name == "jupyter_server_mathjax":
            raise ImportError(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_mathjax)
    with pytest.raises(ImportError, match="pip install jupyter-server-mathjax"):
        offline.mathjax_source()


def test_the_export_command_writes_an_offline_page_and_refuses_bad_input(tmp_path, capsys):
    from fdmer_lite.offline import inspect_html, main

    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_markdown_cell("$$ \\mathcal{L} = \\beta $$"))
    nbformat.write(nb, tmp_path / "lesson.ipynb")
    assert main([str(tmp_path / "lesson.ipynb")]) == 0
    page = tmp_path / "lesson.html"
    assert f"wrote {page}" in capsys.readouterr().out
    found = inspect_html(page.read_text(encoding="utf-8"))
    assert found["mathjax_local"] and found["external_loads"] == []
    assert (tmp_path / "mathjax" / "MathJax.js").is_file()
    (tmp_path / "broken.ipynb").write_text("not json")
    for bad in ("missing.ipynb", "broken.ipynb", "lesson.html"):
        assert main([str(tmp_path / bad)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(str(tmp_path / bad)) and len(err.strip().splitlines()) == 1


def test_the_export_command_runs_as_a_module(tmp_path):
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "fdmer_lite.offline", "--help"], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0 and "python -m fdmer_lite.offline" in proc.stdout
