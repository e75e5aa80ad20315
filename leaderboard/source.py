"""Where the board's results come from, and how it stays up when they cannot be reached.

:class:`Source` reads a local folder or downloads the results repo, then loads and verifies a
:class:`leaderboard.data.Board`. A download that fails keeps the last board (empty at start)
and sets a banner; :meth:`Source.start_refresher` reloads every ``refresh_s`` seconds, and every
``retry_s`` while the repo is unreachable or a check waits for the dataset, as the Hub's
leaderboard template restarts its Space until the repo answers. ``version`` counts loads, so the
page redraws only when something changed.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import imageattributionbench as iab
from leaderboard.data import Board, Verifier, fetch_results_repo, load_board
from leaderboard.intake import shorten
from leaderboard.verify import UNCHECKED

HUB_RESULTS_REPO = f"{iab.HUB_REPO_ID}-results"
REFRESH_S = 600.0
RETRY_S = 60.0


class Source:
    """A local folder (``results_dir``) or a results dataset repo fetched with ``fetch``
    (``fetch_results_repo`` by default; tests pass their own)."""

    def __init__(self, results_dir: str | os.PathLike | None = None,
                 results_repo: str | None = None, dataset_revision: str | None = None,
                 fetch: Callable[[str], Path] = fetch_results_repo, *,
                 dataset: str | None = None, verify: bool = True,
                 require_verified: bool = False, requests_repo: str | None = None,
                 refresh_s: float = REFRESH_S, retry_s: float = RETRY_S):
        if (results_dir is None) == (results_repo is None):
            raise iab.BenchmarkError("give exactly one of results_dir and results_repo")
        self.results_dir, self.results_repo = results_dir, results_repo
        self.dataset, self.dataset_revision = dataset, dataset_revision
        self.requests_repo = requests_repo
        self.require_verified = require_verified
        self.refresh_s, self.retry_s = refresh_s, retry_s
        self.verifier = Verifier(datasets=(dataset or iab.HUB_REPO_ID,)) if verify else None
        self.queue: dict[str, dict] = {}  # path -> request, from the requests repo
        self.queue_error = ""
        self._fetch = fetch
        self._lock = threading.Lock()  # two browsers pressing Reload at once
        self._board: Board | None = None
        self.error = ""  # why the last load failed ("" when it worked)
        self.loaded_at: str | None = None
        self.version = 0
        self._thread: threading.Thread | None = None

    def api(self):
        """The Hub client the page writes requests with (the Space's token, HF_TOKEN)."""
        from huggingface_hub import HfApi

        return HfApi()

    def reload_queue(self) -> None:
        if not self.requests_repo:
            return
        from leaderboard.submissions import read_requests

        try:
            _, self.queue = read_requests(self.api(), self.requests_repo)
            self.queue_error = ""
        except Exception as e:  # the board stays up without its queue
            self.queue_error = shorten(f"{type(e).__name__}: {e}", 300)

    def reload(self, check: bool = True) -> Board:
        """Load again; on failure keep the last board and say why in :attr:`error`. With
        ``check`` False entries are not verified (a quick first look; the refresher checks)."""
        self.reload_queue()
        with self._lock:
            try:
                folder = self._fetch(self.results_repo) if self.results_repo else \
                    Path(self.results_dir)
                if not Path(folder).is_dir():
                    raise FileNotFoundError(f"no folder {folder}")
                board = load_board(folder, self.dataset_revision, dataset=self.dataset,
                                   layout="repo" if self.results_repo else "runs",
                                   verifier=self.verifier if check else None,
                                   require_verified=self.require_verified)
            except Exception as e:  # unreachable repo, network, disk: the page stays up
                self.error = shorten(f"{type(e).__name__}: {e}", 300)
                if self._board is None:
                    self._board = Board()
                    self.version += 1
                return self._board
            self.error = ""
            self._board = board
            self.loaded_at = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
            self.version += 1
            return board

    def board(self) -> Board:
        return self._board if self._board is not None else self.reload()

    def needs_retry(self) -> bool:
        board = self._board
        return bool(self.error) or (board is not None and any(
            e.verification.retry for e in board.entries))

    def start_refresher(self, now: bool = False) -> None:
        """Reload in a daemon thread: every ``refresh_s``, or ``retry_s`` while it must; with
        ``now``, a first reload at once (the full check after a quick unchecked start)."""
        if self._thread is not None:
            return

        def loop():
            if now:
                self.reload()
            while True:
                time.sleep(self.retry_s if self.needs_retry() else self.refresh_s)
                self.reload()

        self._thread = threading.Thread(target=loop, name="leaderboard-refresh", daemon=True)
        self._thread.start()

    def where(self) -> str:
        return f"the results repo {self.results_repo}" if self.results_repo else \
            f"the local folder {Path(self.results_dir).name}/"

    def banner(self) -> str:
        """Markdown shown above the table: where results come from, and trouble if any."""
        if self.error:
            return (f"**The results could not be read from {self.where()}** ({self.error}). "
                    f"Showing {'the last results read' if self.loaded_at else 'nothing yet'}; "
                    f"retrying every {self.retry_s:g} s.")
        when = f", read {self.loaded_at}" if self.loaded_at else ""
        waiting = sum(e.verification.status == UNCHECKED for e in self.board().entries)
        checking = (f" Checking {waiting} entr{'y' if waiting == 1 else 'ies'} against "
                    "their samples..." if waiting and self.verifier else "")
        return f"Results from {self.where()}{when}; refreshed every {self.refresh_s:g} s." + \
            checking
