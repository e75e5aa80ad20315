"""The submission queue: one JSON file per request in a requests dataset repo.

A request lives at ``<model org>/<model name>/<request id>.json`` in
``<org>/ImageAttributionBench-requests`` with a status, PENDING -> RUNNING -> FINISHED or
FAILED (with the reason and, for a failed run, the tail of its log). :func:`submit` (the Submit
tab) checks a model before queueing it; the backend (``python -m leaderboard.backend``) claims
and updates requests with :func:`commit_request`. Every write names the commit it read
(``parent_commit``), so two writers never both win: the Hub refuses the second (412) and it
reads again. That is what makes two backends safe.

    >>> path, request = submit(HfApi(token=...), "ORG/ImageAttributionBench-requests",
    ...                        "alice/attributor", "main", "score", "float32")  # doctest: +SKIP
"""

from __future__ import annotations

import json
import re
import secrets
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import imageattributionbench as iab
from harness.labels import label_index

if TYPE_CHECKING:
    from huggingface_hub import HfApi

PENDING, RUNNING, FINISHED, FAILED = "PENDING", "RUNNING", "FINISHED", "FAILED"
STATUSES = (PENDING, RUNNING, FINISHED, FAILED)
REQUEST_SCHEMA = 1
SUBMIT_METHODS = ("score",)  # the backend scores trained attributors; training runs elsewhere
# precision -> accelerate's --mixed_precision
PRECISIONS = {"float32": "no", "bfloat16": "bf16", "float16": "fp16"}
DEFAULT_REQUESTS_REPO = f"{iab.HUB_REPO_ID}-requests"
MAX_REQUEST_BYTES = 256 * 1024  # a request plus a log tail
CAS_ATTEMPTS = 8
_MODEL_ID_RE = re.compile(r"^[A-Za-z0-9][\w.-]{0,95}/[\w.-]{1,96}$")


def now_iso() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def is_conflict(e: Exception) -> bool:
    """A 412: the branch moved since it was read (someone else wrote first)."""
    response = getattr(e, "response", None)
    return getattr(response, "status_code", None) == 412


def read_requests(api: "HfApi", repo: str) -> tuple[str, dict[str, dict]]:
    """``(commit sha, {path: request})`` of the requests repo's main branch, read at one
    commit; files that are not requests are skipped."""
    from huggingface_hub import snapshot_download

    sha = api.repo_info(repo, repo_type="dataset").sha
    folder = Path(snapshot_download(repo, repo_type="dataset", revision=sha,
                                    allow_patterns=["*/*/*.json"], token=api.token,
                                    endpoint=api.endpoint))
    out = {}
    for path in sorted(folder.glob("*/*/*.json")):
        if path.stat().st_size > MAX_REQUEST_BYTES:
            continue
        try:
            request = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            continue
        if isinstance(request, dict) and request.get("status") in STATUSES:
            out[path.relative_to(folder).as_posix()] = request
    return sha, out


def commit_request(api: "HfApi", repo: str, path: str, request: dict, parent: str,
                   message: str) -> str:
    """Write one request file in a commit on top of ``parent``; raises the Hub's 412 error
    when main has moved since. Returns the new commit's sha."""
    from huggingface_hub import CommitOperationAdd

    data = (json.dumps(request, indent=2) + "\n").encode("utf-8")
    info = api.create_commit(repo, [CommitOperationAdd(path, data)], commit_message=message,
                             repo_type="dataset", parent_commit=parent)
    return info.oid


def update_request(api: "HfApi", repo: str, path: str,
                   change: Callable[[dict], dict | None], message: str) -> dict | None:
    """Read the request at ``path``, apply ``change`` (None: leave it) and commit, reading
    again whenever another writer got there first. Returns what was written."""
    for _ in range(CAS_ATTEMPTS):
        sha, requests = read_requests(api, repo)
        if path not in requests:
            raise iab.BenchmarkError(f"{repo} has no request {path}")
        new = change(dict(requests[path]))
        if new is None:
            return None
        try:
            commit_request(api, repo, path, new, sha, message)
            return new
        except Exception as e:
            if not is_conflict(e):
                raise
    raise iab.BenchmarkError(f"{repo}: {CAS_ATTEMPTS} writes in a row lost the race; try again")


def history(request: dict, status: str, **fields) -> dict:
    """``request`` moved to ``status`` (recorded with the time in its history)."""
    at = now_iso()
    return {**request, **fields, "status": status,
            "history": [*request.get("history", []), {"status": status, "at": at}]}


# ---------------------------------------------------------------------------------------------
# Submitting
# ---------------------------------------------------------------------------------------------


def check_model(api: "HfApi", model_id: str, revision: str | None) -> tuple[str, str]:
    """``(commit sha, license)`` of a model fit to queue, or a BenchmarkError saying what to fix:
    it exists on the Hub, sets a license, and its ``id2label`` uses benchmark label names (the
    harness's own check, ``harness.labels.label_index``)."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (EntryNotFoundError, RepositoryNotFoundError,
                                        RevisionNotFoundError)

    if not _MODEL_ID_RE.match(model_id or ""):
        raise iab.BenchmarkError(f"{model_id!r} is not a Hub model id: write ORG/NAME")
    try:
        info = api.model_info(model_id, revision=revision or None)
    except RevisionNotFoundError:
        raise iab.BenchmarkError(f"{model_id} has no revision {revision!r}") from None
    except RepositoryNotFoundError:
        if revision and _exists(api, model_id):  # some servers answer a bad revision so
            raise iab.BenchmarkError(f"{model_id} has no revision {revision!r}") from None
        raise iab.BenchmarkError(f"no model {model_id} on the Hub (a private model cannot be "
                                 "evaluated: make it public)") from None
    card = info.card_data.to_dict() if info.card_data else {}
    license_ = card.get("license") or next(
        (t.split(":", 1)[1] for t in info.tags or [] if t.startswith("license:")), None)
    if not license_:
        raise iab.BenchmarkError(f"{model_id} sets no license: add `license:` to the model "
                                 "card's metadata")
    try:
        config = json.loads(Path(hf_hub_download(model_id, "config.json", revision=info.sha,
                                                 token=api.token, endpoint=api.endpoint)
                                 ).read_text())
    except EntryNotFoundError:
        raise iab.BenchmarkError(f"{model_id} has no config.json: the backend loads models "
                                 "with AutoModelForImageClassification") from None
    except ValueError as e:
        raise iab.BenchmarkError(f"{model_id}'s config.json is not JSON: {e}") from None
    id2label = config.get("id2label")
    if not isinstance(id2label, dict) or not id2label:
        raise iab.BenchmarkError(f"{model_id}'s config.json has no id2label: a trained "
                                 "attributor names its outputs with benchmark labels")
    label_index(id2label)
    return info.sha, str(license_)


def _exists(api: "HfApi", model_id: str) -> bool:
    try:
        api.model_info(model_id)
        return True
    except Exception:
        return False


def _same(a: dict, b: dict) -> bool:
    return all(a.get(k) == b.get(k) for k in ("model", "model_sha", "method", "precision"))


def submit(api: "HfApi", repo: str, model_id: str, revision: str | None, method: str,
           precision: str, user: str | None = None) -> tuple[str, dict]:
    """Check the model and queue a PENDING request; returns ``(path, request)``. A request for
    the same model commit, method and precision that is still pending or running is refused."""
    if method not in SUBMIT_METHODS:
        raise iab.BenchmarkError(f"unknown method {method!r}; valid: "
                                 f"{', '.join(SUBMIT_METHODS)} (train elsewhere, then submit "
                                 "the trained attributor)")
    if precision not in PRECISIONS:
        raise iab.BenchmarkError(f"unknown precision {precision!r}; valid: "
                                 + ", ".join(PRECISIONS))
    model_id = (model_id or "").strip()
    sha, license_ = check_model(api, model_id, (revision or "").strip() or None)
    request = history({"schema": REQUEST_SCHEMA, "model": model_id,
                       "revision": (revision or "").strip() or "main", "model_sha": sha,
                       "method": method, "precision": precision, "license": license_,
                       "submitted_by": user, "submitted_at": now_iso(), "reason": "",
                       "results": None, "log_tail": None}, PENDING)
    request_id = f"{request['submitted_at'].replace(':', '-')}_{secrets.token_hex(4)}"
    path = f"{model_id}/{request_id}.json"
    for _ in range(CAS_ATTEMPTS):
        head, requests = read_requests(api, repo)
        for other_path, other in requests.items():
            if other["status"] in (PENDING, RUNNING) and _same(other, request):
                raise iab.BenchmarkError(
                    f"{model_id} at {sha[:7]} ({method}, {precision}) is already queued: "
                    f"{other_path} is {other['status']}")
        try:
            commit_request(api, repo, path, request, head, f"Request: {model_id} ({method}, "
                                                           f"{precision})")
            return path, request
        except Exception as e:
            if not is_conflict(e):
                raise
    raise iab.BenchmarkError(f"{repo}: {CAS_ATTEMPTS} writes in a row lost the race; try again")
