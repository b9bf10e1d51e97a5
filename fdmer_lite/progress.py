"""Progress a newcomer can see: a bar that moves within a second, whatever the work.

* :func:`bar`: a tqdm bar (``tqdm.auto``: a widget in a notebook, text in a terminal), or ``None``
  when progress is switched off. The trainer's bar counts batches, so it moves at the first
  step, not at the end of the first epoch.
* :func:`mark_stopped`: a bar that ends before its total turns red (``bar_style`` "danger" in a
  notebook, ``colour`` red in a terminal) and says why, so a run that early stopping ended is
  not mistaken for one that ran all its epochs.
* :func:`heartbeat`: for work that cannot report steps (generating or loading a data set), a
  bar without a total that ticks every ``interval`` seconds from a background thread, showing
  the elapsed time, and closes when the work ends.
"""

from __future__ import annotations

import contextlib
import sys
import threading

from tqdm.auto import tqdm


def bar(enabled: bool = True, **kw):
    """``tqdm.auto.tqdm(**kw)``, or ``None`` when ``enabled`` is false."""
    if not enabled:
        return None
    return tqdm(**kw)


def mark_stopped(bar, why: str) -> None:
    """Show on ``bar`` (a tqdm bar, or ``None``) that the work ended early, and ``why``."""
    if bar is None:
        return
    bar.colour = "red"
    bar.set_description(why, refresh=False)
    container = getattr(bar, "container", None)          # tqdm.notebook: an HBox of label, bar, text
    if container is not None:
        container.children[1].bar_style = "danger"
    bar.refresh()


@contextlib.contextmanager
def heartbeat(desc: str, enabled: bool = True, interval: float = 1.0, file=None):
    """Show ``desc`` and the seconds spent so far, ticking every ``interval`` s, while the block
    runs. Yields the bar (``None`` when disabled)."""
    if not enabled:
        yield None
        return
    ticker = bar(True, desc=desc, unit="s", total=None, file=file or sys.stderr,
                 bar_format="{desc}: {elapsed}", mininterval=0)
    stop = threading.Event()

    def tick():
        while not stop.wait(interval):
            ticker.update(1)

    thread = threading.Thread(target=tick, name=f"heartbeat: {desc}", daemon=True)
    thread.start()
    try:
        yield ticker
    finally:
        stop.set()
        thread.join()
        ticker.close()
