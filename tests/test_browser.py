"""The beta/gamma explorer as a learner uses it: JupyterLab in a real (headless) Chromium.

Starts JupyterLab on 127.0.0.1 (a free port, no token) in a temporary root holding a copy of
``notebooks/09_beta_gamma_explorer.ipynb`` (the checkout is never touched: JupyterLab autosaves),
with HOME, the Jupyter dirs and the sweep cache in a temporary folder and FDMER_LITE_FAST=1.
Playwright's Python package drives the system's Chromium (Debian's ``chromium``; never a browser
download): run all cells, wait for the explorer, move the beta slider with the keyboard, check
that the metrics text and every figure switch to the new setting, then train a missing setting
with the Train button and watch the progress bar and the result arrive. Screenshots go to
``test-artifacts/``. The server and its kernels are shut down whatever happens.

Skipped, with the reason, only where no Chromium binary can be found (or the ``browser`` extra,
which provides Playwright's Python package, is not installed).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "09_beta_gamma_explorer.ipynb"
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-dev-shm-usage"]
TOTAL_SECONDS = 240                                  # the whole test, CI on two cores included


def find_chromium() -> str | None:
    """``$FDMER_LITE_CHROMIUM``, else Debian's /usr/bin/chromium, else chromium-like names on PATH."""
    candidates = [os.environ.get("FDMER_LITE_CHROMIUM"), "/usr/bin/chromium"]
    candidates += [shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")]
    for c in candidates:
        if c and os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    return None


@pytest.fixture(scope="module")
def chromium() -> str:
    path = find_chromium()
    if path is None:
        pytest.skip("no Chromium binary found ($FDMER_LITE_CHROMIUM, /usr/bin/chromium, or chromium, "
                    "chromium-browser, google-chrome on PATH); install it with `apt-get install chromium`")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("Playwright's Python package is missing: pip install -e '.[browser]' "
                    "(the browser is the system's Chromium; no browser download is needed)")
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _children(pid: int) -> list[int]:
    """Direct child processes (Linux /proc), e.g. the kernels a Jupyter server started."""
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(x) for x in text.split()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _http(url: str, method: str = "GET", timeout: float = 5.0) -> int:
    req = urllib.request.Request(url, method=method, data=b"" if method != "GET" else None)
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return resp.status


@pytest.fixture
def lab(tmp_path):
    """A JupyterLab server on 127.0.0.1 serving a temp copy of the notebook; always shut down."""
    root = tmp_path / "lab"
    (root / "notebooks").mkdir(parents=True)
    shutil.copy(NOTEBOOK, root / "notebooks" / NOTEBOOK.name)
    home = tmp_path / "home"
    env = {**os.environ,
           "HOME": str(home), "JUPYTER_CONFIG_DIR": str(home / ".jupyter"),
           "JUPYTER_DATA_DIR": str(home / ".local/share/jupyter"),
           "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"), "IPYTHONDIR": str(home / ".ipython"),
           "FDMER_LITE_FAST": "1", "FDMER_LITE_SWEEP_CACHE": str(tmp_path / "sweep"),
           "FDMER_LITE_RUNS_DIR": str(tmp_path / "runs"), "PYTHONUNBUFFERED": "1"}
    # No network from the server: no news feed, no update check, no extension manager look-ups.
    (home / ".jupyter").mkdir(parents=True)
    (home / ".jupyter" / "jupyter_server_config.json").write_text(json.dumps({"LabApp": {
        "news_url": None, "check_for_updates_class": "jupyterlab.NeverCheckForUpdate",
        "extension_manager": "readonly"}}))
    # ... and no "get notified about Jupyter news?" toast over the screenshots.
    settings = home / ".jupyter" / "lab" / "user-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "jupyterlab.log"
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ServerApp.ip=127.0.0.1",
           f"--ServerApp.port={port}", "--ServerApp.port_retries=0", "--IdentityProvider.token=",
           "--ServerApp.password=", "--LabApp.expose_app_in_browser=True",
           f"--ServerApp.root_dir={root}", "--ServerApp.disable_check_xsrf=True"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")                                 # CI containers run as root
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=root,
                                start_new_session=True)
    kernels: set[int] = set()
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"JupyterLab exited ({proc.returncode}):\n{log_path.read_text()[-3000:]}")
            try:
                if _http(f"{url}/api/status") == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"JupyterLab did not answer in 90 s:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.5)
        yield {"url": url, "root": root, "log": log_path, "proc": proc, "kernels": kernels,
               "cache": tmp_path / "sweep"}
    finally:
        kernels.update(_children(proc.pid))
        try:
            _http(f"{url}/api/shutdown", method="POST")             # stops kernels, then itself
        except OSError:
            pass
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        for pid in kernels:                                         # kernels have their own session
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


# --------------------------------------------------------------------------- page helpers

NOTEBOOK_STATE = """() => {
  const app = window.jupyterapp;
  const panel = app && app.shell.currentWidget;
  if (!panel || !panel.content || !panel.sessionContext) return null;
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  const cells = panel.content.widgets.filter(c => c.model.type === 'code');
  const errors = [];
  for (const c of cells) {
    for (const o of c.model.outputs.toJSON()) {
      if (o.output_type === 'error') errors.push(o.ename + ': ' + o.evalue);
    }
  }
  return {kernel: kernel ? kernel.status : null,
          executed: cells.filter(c => c.model.executionCount !== null).length,
          total: cells.length, errors: errors};
}"""

PANEL_STATE = """(role) => {
  const q = s => document.querySelector('.fdmer-' + role + '-' + s);
  const metrics = q('metrics');
  const figure = name => {
    const plot = q(name) && q(name).querySelector('.js-plotly-plot');
    if (!plot) return null;
    const title = plot.querySelector('.gtitle');
    const points = Array.from(plot.querySelectorAll('path.point')).slice(0, 40)
                        .map(p => p.getAttribute('transform') || p.getAttribute('d')).join(';');
    const box = plot.getBoundingClientRect();
    return {title: title ? title.textContent : '', points: points,
            visible: box.width > 100 && box.height > 100};
  };
  const tagged = metrics && metrics.querySelector('[data-setting]');
  return {metrics: metrics ? metrics.innerText : '', setting: tagged ? tagged.dataset.setting : null,
          embedding: figure('embedding'), discriminator: figure('discriminator'),
          fusion: figure('fusion')};
}"""


# Times, inside the page, from the key press to the metrics text and to all three figures of the
# current panel showing the new setting (no polling from Python in the measurement).
IN_PAGE_TIMER = """([setting, name]) => {
  const root = document.querySelector('.fdmer-current');
  const T = window.__fdmerTiming = {t0: null, metrics: null, figures: null};
  document.addEventListener('keydown', () => { if (T.t0 === null) T.t0 = performance.now(); },
                            {capture: true, once: true});
  const check = () => {
    if (T.t0 === null) return;
    const m = root.querySelector('.fdmer-current-metrics [data-setting]');
    if (T.metrics === null && m && m.dataset.setting === name) T.metrics = performance.now() - T.t0;
    const drawn = ['embedding', 'discriminator', 'fusion'].every(k => {
      const t = root.querySelector('.fdmer-current-' + k + ' .gtitle');
      return t && t.textContent.startsWith(setting) && !/[0-9.]/.test(t.textContent.charAt(setting.length));
    });
    if (T.figures === null && drawn) T.figures = performance.now() - T.t0;
  };
  new MutationObserver(check).observe(root, {subtree: true, childList: true, characterData: true,
                                             attributes: true});
}"""

PROGRESS_STATE = """() => {
  const bar = document.querySelector('.fdmer-explorer .progress-bar');
  const button = document.querySelector('button.fdmer-train');
  return [bar ? parseFloat(bar.style.width) || 0 : 0, button ? button.disabled : null];
}"""


def _wait(predicate, timeout: float, what: str, poll: float = 0.25):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last state: {last!r})")


def _names(title: str, setting: str) -> bool:
    """``title`` starts with ``setting`` exactly ("β = 0, γ = 0" does not name "β = 0, γ = 0.02")."""
    return title.startswith(setting) and title[len(setting):len(setting) + 1] not in set("0123456789.")


def _figures_show(state: dict, setting: str) -> bool:
    """Every figure of a panel is drawn, has a visible size, and its title names ``setting``."""
    return all(state.get(k) and state[k]["visible"] and _names(state[k]["title"], setting)
               for k in ("embedding", "discriminator", "fusion"))


def _shows(state: dict, setting: str, name: str) -> bool:
    """The panel's metrics are those of the cell ``name`` (e.g. beta=0_gamma=0.02)."""
    return state["setting"] == name and setting in state["metrics"]


def test_explorer_in_jupyterlab(chromium, lab):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    test_start = time.monotonic()
    remaining = lambda: TOTAL_SECONDS - (time.monotonic() - test_start)   # noqa: E731
    timings = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
        page = None
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1900})
            page.set_default_timeout(60_000)
            page.goto(f"{lab['url']}/lab/tree/notebooks/{NOTEBOOK.name}")
            state = _wait(lambda: (s := page.evaluate(NOTEBOOK_STATE)) and s["kernel"] == "idle" and s,
                          min(90, remaining()), "the notebook to open with an idle kernel")
            assert state["total"] >= 5

            # Run everything, as a learner would (Run > Run All Cells).
            t = time.monotonic()
            page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
            state = _wait(lambda: (s := page.evaluate(NOTEBOOK_STATE)) and s["kernel"] == "idle"
                          and s["executed"] == s["total"] and s,
                          min(150, remaining()), "all cells to run")
            timings["run_all"] = time.monotonic() - t
            assert not state["errors"], f"cells raised: {state['errors']}"

            # The explorer shows the reference setting on both sides. Scroll to it first, as a
            # learner would: JupyterLab may leave cells far from the view undrawn.
            page.locator(".fdmer-explorer").scroll_into_view_if_needed()
            ref = "β = 0.02, γ = 0.02"
            before = _wait(lambda: (s := page.evaluate(PANEL_STATE, "current"))
                           and _shows(s, ref, "beta=0.02_gamma=0.02") and _figures_show(s, ref) and s,
                           30, "the explorer's figures")
            assert _figures_show(page.evaluate(PANEL_STATE, "reference"), ref)
            assert "test MAE" in before["metrics"]
            page.locator(".fdmer-explorer").scroll_into_view_if_needed()
            page.screenshot(path=str(ARTIFACTS / "explorer-start.png"))

            # Move beta one step left with the keyboard (0.02 -> 0, a cached setting).
            new = "β = 0, γ = 0.02"
            page.evaluate(IN_PAGE_TIMER, [new, "beta=0_gamma=0.02"])
            handle = page.locator(".fdmer-beta .noUi-handle")
            handle.focus()
            t = time.monotonic()
            page.keyboard.press("ArrowLeft")
            first_seen = {}

            def switched():
                s = page.evaluate(PANEL_STATE, "current")
                if _shows(s, new, "beta=0_gamma=0.02"):
                    first_seen.setdefault("metrics", time.monotonic() - t)
                return _shows(s, new, "beta=0_gamma=0.02") and _figures_show(s, new) and s
            after = _wait(switched, 30, f"the current panel to show {new}", poll=0.02)
            timings["cached_update"] = time.monotonic() - t             # metrics and all figures
            timings["cached_update_metrics"] = first_seen.get("metrics", timings["cached_update"])
            in_page = _wait(lambda: (tm := page.evaluate("() => window.__fdmerTiming")) and tm["figures"] and tm,
                            10, "the in-page timer")
            timings["in_page_metrics"] = in_page["metrics"] / 1000        # key down -> text replaced
            timings["in_page_figures"] = in_page["figures"] / 1000        # key down -> all 3 redrawn
            assert after["metrics"] != before["metrics"]
            for k in ("embedding", "discriminator", "fusion"):
                assert after[k]["title"] != before[k]["title"]
            assert after["embedding"]["points"] != before["embedding"]["points"]   # other points drawn
            assert _figures_show(page.evaluate(PANEL_STATE, "reference"), ref)       # the pin stays
            page.screenshot(path=str(ARTIFACTS / "explorer.png"))

            # Move gamma to 0 (not cached in the FAST notebook) and train it with the button.
            page.locator(".fdmer-gamma .noUi-handle").focus()
            page.keyboard.press("ArrowLeft")
            missing = "β = 0, γ = 0"
            _wait(lambda: page.evaluate(PANEL_STATE, "current")["setting"] == "beta=0_gamma=0", 30,
                  "the uncached setting's message")
            assert "not trained yet" in page.evaluate(PANEL_STATE, "current")["metrics"]
            t = time.monotonic()
            page.locator("button.fdmer-train").click()
            _wait(lambda: page.locator("button.fdmer-train").is_disabled(), 10,
                  "the Train button to be disabled while training")
            # Sample the progress bar while the job runs: it must move *during* training (the
            # widget is updated from the training thread), not only jump to full at the end.
            samples = []

            def trained_or_sample():
                samples.append(page.evaluate(PROGRESS_STATE))
                s = page.evaluate(PANEL_STATE, "current")
                return (_shows(s, missing, "beta=0_gamma=0") and "test MAE" in s["metrics"]
                        and _figures_show(s, missing) and s)
            _wait(trained_or_sample, min(120, remaining()), "the trained setting to be shown", poll=0.1)
            timings["train_uncached"] = time.monotonic() - t
            during = [w for w, disabled in samples if disabled and 0 < w < 100]
            assert during, f"the progress bar never moved while training: {samples}"
            _wait(lambda: "done" in page.locator(".fdmer-status").inner_text(), 10,
                  "the status line to report the finished job")
            page.screenshot(path=str(ARTIFACTS / "explorer-trained.png"))
        except BaseException:
            if page is not None:                                    # what the page showed then
                page.screenshot(path=str(ARTIFACTS / "explorer-failure.png"))
            raise
        finally:
            browser.close()
    cell = lab["cache"] / "fast-emotion-seed0" / "beta=0_gamma=0"              # trained, sealed
    assert (cell / "complete.json").is_file()
    assert json.loads((cell / "run.json").read_text())["meta"] == {"beta": 0.0, "gamma": 0.0}
    timings["total"] = time.monotonic() - test_start
    (ARTIFACTS / "browser-timings.json").write_text(json.dumps(timings, indent=2))
    print("browser timings (s):", {k: round(v, 2) for k, v in timings.items()})
