"""Progress for every job of the project: tqdm's bar on a terminal, plain lines elsewhere.

A bar redraws itself with carriage returns; sent to a log file or a pipe it becomes one very
long line (or hundreds). So when stdout or stderr is not a terminal, :func:`progress` prints a
short line at each quarter of the work (or every 30 s when the total is unknown) and one at
the end, and :func:`quiet_library_bars` turns off the bars of datasets, huggingface_hub,
transformers and diffusers, for this process and the jobs it starts.

    >>> bar = progress(total=8, desc="SDXL", unit="img")      # doctest: +SKIP
    >>> bar.update(4); bar.set_postfix(img_s="2.0"); bar.close()  # doctest: +SKIP
    SDXL: 4/8 img (50%), 2 s, img_s=2.0
"""

from __future__ import annotations

import os
import sys
import time

PLAIN_EVERY_FRACTION = 0.25
PLAIN_EVERY_SECONDS = 30.0


def interactive(stream=None) -> bool:
    """True when ``stream`` is a terminal; by default, when both stdout and stderr (where bars
    go) are: output sent to a file or a pipe, even half of it, gets plain lines."""
    if stream is None:
        return interactive(sys.stdout) and interactive(sys.stderr)
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # closed or replaced streams
        return False


class PlainProgress:
    """The part of tqdm's interface the project uses, printing plain lines."""

    def __init__(self, iterable=None, *, total=None, desc=None, unit="it", disable=False,
                 stream=None):
        self.iterable = iterable
        if total is None and iterable is not None:
            try:
                total = len(iterable)
            except TypeError:  # a stream: no length (a DataLoader over one raises)
                total = None
        self.total, self.desc, self.unit, self.disable = total, desc or "", unit, disable
        self.stream = stream
        self.n = 0
        self.postfix = ""
        self._started = self._last_time = time.perf_counter()
        self._last_n = 0
        self._closed = False

    def __iter__(self):
        for item in self.iterable:
            yield item
            self.update(1)
        self.close()

    def __len__(self):
        return self.total or 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def set_postfix(self, ordered_dict=None, refresh=True, **kwargs) -> None:
        items = {**(ordered_dict or {}), **kwargs}
        self.postfix = ", ".join(f"{k}={v}" for k, v in items.items())

    def set_description(self, desc=None, refresh=True) -> None:
        self.desc = desc or ""

    def refresh(self) -> None:
        pass

    def update(self, n=1) -> None:
        self.n += n
        now = time.perf_counter()
        if self.total:
            due = self.n - self._last_n >= PLAIN_EVERY_FRACTION * self.total
        else:
            due = now - self._last_time >= PLAIN_EVERY_SECONDS
        if due and (not self.total or self.n < self.total):
            self._print(now)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            if self.n or self.total == 0:
                self._print(time.perf_counter())

    def _print(self, now: float) -> None:
        self._last_n, self._last_time = self.n, now
        if self.disable:
            return
        done = f"{self.n}/{self.total}" if self.total else f"{self.n}"
        pct = f" ({100 * self.n / self.total:.0f}%)" if self.total else ""
        line = f"{self.desc}: {done} {self.unit}{pct}, {now - self._started:.0f} s"
        stream = self.stream if self.stream is not None else sys.stderr
        print(line + (f", {self.postfix}" if self.postfix else ""), file=stream, flush=True)


def progress(iterable=None, *, total=None, desc=None, unit="it", disable=False):
    """A tqdm bar on a terminal (see :func:`interactive`), else a :class:`PlainProgress`."""
    if interactive():
        from tqdm.auto import tqdm

        return tqdm(iterable, total=total, desc=desc, unit=unit, disable=disable)
    return PlainProgress(iterable, total=total, desc=desc, unit=unit, disable=disable)


_LIBRARY_BARS_ENV = ("HF_DATASETS_DISABLE_PROGRESS_BARS", "HF_HUB_DISABLE_PROGRESS_BARS",
                     "TQDM_DISABLE")


def quiet_library_bars() -> None:
    """Without a terminal, no library progress bars: set the variables the libraries (and the
    processes this one starts) read, and switch off those already imported."""
    if interactive():
        return
    for name in _LIBRARY_BARS_ENV:
        os.environ.setdefault(name, "1")
    if "datasets" in sys.modules:
        from datasets.utils import logging as datasets_logging

        datasets_logging.disable_progress_bar()
    if "huggingface_hub" in sys.modules:
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()
    if "transformers" in sys.modules:
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()
    if "diffusers" in sys.modules:
        from diffusers.utils import logging as diffusers_logging

        diffusers_logging.disable_progress_bar()
