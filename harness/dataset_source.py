"""Which dataset a run reads, and how its results name it.

``--dataset`` is a folder built by ``iab build`` or a Hub dataset id. Local paths are checked
first: an argument that looks like a path (``./x``, ``~/x``, ``a/b/c``, or ``demo/rpeo`` where
``demo/`` is a local folder) and does not exist is refused at once, with the sibling folders it
may have meant, instead of becoming a Hub lookup. A Hub id is resolved to the commit sha of the
requested revision before anything is loaded, so results record exactly what was evaluated;
offline (``HF_HUB_OFFLINE=1``) it must be in the local Hub cache, and an unreachable Hub fails
fast with what to do.

A local build is recorded by its row fingerprint and marked local: its numbers never reach the
Hub leaderboard, unless the user names the Hub repo it copies (``--hub-dataset``) and its
``manifest.json`` equals that repo's at a revision.

    >>> src = resolve_dataset("demo/repo")  # doctest: +SKIP
    >>> src.record()  # doctest: +SKIP
    {'repo': 'demo/repo', 'revision': None, 'local': True, 'fingerprint': '9f2c...', ...}
"""

from __future__ import annotations

import difflib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import imageattributionbench as iab

if TYPE_CHECKING:
    from huggingface_hub import HfApi

MANIFEST = "manifest.json"
_SHA_RE = re.compile(r"^[0-9a-f]{40}$")


@dataclass(frozen=True)
class DatasetSource:
    """A resolved ``--dataset``: what ``load_dataset`` reads and what the results record."""

    load_path: str  # given to load_dataset: the local folder, or the Hub id
    repo: str  # as recorded: the Hub id, or the local folder as a portable (relative) path
    revision: str | None  # the commit sha of a Hub repo; None for a local build
    local: bool
    fingerprint: str | None  # the build's row fingerprint (manifest.json), when it has one
    hub_copy_of: dict | None = None  # {"repo", "revision"}: a local build equal to a Hub repo

    def record(self) -> dict:
        """``results["dataset"]`` (``harness.results.DatasetRef``)."""
        return {"repo": self.repo, "revision": self.revision, "local": self.local,
                "fingerprint": self.fingerprint, "hub_copy_of": self.hub_copy_of}

    @property
    def hub_target(self) -> tuple[str, str] | None:
        """(Hub id, commit sha) that leaderboard entries may name, or None (a local build)."""
        if not self.local:
            return self.repo, self.revision
        if self.hub_copy_of:
            return self.hub_copy_of["repo"], self.hub_copy_of["revision"]
        return None


def portable_path(path: str | os.PathLike, out_dir: str | os.PathLike | None = None) -> str:
    """A local path as results and cards may record it: relative to ``out_dir`` when inside
    it, else relative to the working directory when inside that, else the folder's own name.
    Never absolute, never the home folder (results are published)."""
    p = Path(path).expanduser().resolve()
    for base in ([Path(out_dir).resolve()] if out_dir is not None else []) + [Path.cwd()]:
        try:
            rel = p.relative_to(base)
        except ValueError:
            continue
        return rel.as_posix() if rel.parts else "."
    return p.name


def recorded_path(arg: str, out_dir: str | os.PathLike | None = None) -> str:
    """``--dataset`` or ``--model`` as results record it: a Hub id (or ``init:NAME``) as it
    is, a local path made portable (:func:`portable_path`)."""
    if arg.startswith("init:") or not looks_like_path(arg):
        return arg
    return portable_path(arg, out_dir)


def looks_like_path(arg: str) -> bool:
    """True for an argument meant as a local folder, even one that does not exist."""
    if Path(arg).expanduser().exists():
        return True
    if arg.startswith((".", "/", "~")) or "\\" in arg or arg.endswith("/") or arg.count("/") != 1:
        return True
    return Path(arg).parent.is_dir()  # demo/rpeo beside an existing demo/


def _did_you_mean(path: Path) -> str:
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        return f"; its parent folder {str(parent)!r} does not exist either"
    siblings = sorted(p.name for p in parent.iterdir() if p.is_dir() and not
                      p.name.startswith("."))
    close = difflib.get_close_matches(path.name, siblings, n=3, cutoff=0.5)
    if close:
        return "; did you mean " + " or ".join(repr(str(parent / c)) for c in close) + "?"
    return f"; folders in {str(parent)!r}: {', '.join(siblings[:12]) or 'none'}"


def read_manifest(folder: Path) -> dict:
    path = folder / MANIFEST
    if not path.is_file():
        raise iab.BenchmarkError(
            f"dataset folder {str(folder)!r} holds no {MANIFEST}, so it is not a build of "
            f"{iab.BENCHMARK_NAME}: make one with `iab build RAW --out {folder}`, or pass a Hub "
            "dataset id")
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise iab.BenchmarkError(f"{path}: unreadable ({e}); rebuild the folder") from e


def _resolve_local(arg: str, out_dir) -> DatasetSource:
    folder = Path(arg).expanduser()
    if not folder.is_dir():
        kind = "is a file, not a folder" if folder.exists() else "does not exist"
        hint = " (a Hub dataset id is written ORG/NAME)" if "/" not in arg else ""
        raise iab.BenchmarkError(f"--dataset {arg!r}: the local folder {kind}{hint}"
                                 + _did_you_mean(folder))
    manifest = read_manifest(folder)
    return DatasetSource(str(folder), portable_path(folder, out_dir), None, True,
                         manifest.get("fingerprint"))


def _hub_cache_sha(repo_id: str, revision: str | None) -> str | None:
    """The commit sha the local Hub cache holds for (repo, revision), if any."""
    from huggingface_hub import constants

    folder = Path(constants.HF_HUB_CACHE) / f"datasets--{repo_id.replace('/', '--')}"
    rev = revision or "main"
    if _SHA_RE.match(rev):
        return rev if (folder / "snapshots" / rev).is_dir() else None
    ref = folder / "refs" / rev
    return ref.read_text().strip() if ref.is_file() else None


def _offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def _unreachable(repo_id: str, endpoint: str, error: Exception) -> iab.BenchmarkError:
    return iab.BenchmarkError(
        f"cannot reach the Hub at {endpoint} to resolve dataset {repo_id!r} "
        f"({type(error).__name__}: {error}). Without network: set HF_HUB_OFFLINE=1 to use a "
        "copy in the local Hub cache, or pass a local build folder (--dataset path/to/build)")


def resolve_hub(repo_id: str, revision: str | None, api: "HfApi | None" = None) -> str:
    """The commit sha of ``repo_id`` at ``revision`` (a branch, tag or sha; default main), or
    a clear error: no such repo or revision, no network, or offline without a cached copy."""
    from huggingface_hub import HfApi, constants
    from huggingface_hub.errors import (HFValidationError, RepositoryNotFoundError,
                                        RevisionNotFoundError)
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as e:
        raise iab.BenchmarkError(f"--dataset {repo_id!r} is neither a local folder nor a Hub "
                                 f"dataset id ({e})") from e
    if _offline():
        sha = _hub_cache_sha(repo_id, revision)
        if sha is None:
            raise iab.BenchmarkError(
                f"dataset {repo_id!r}" + (f" at {revision!r}" if revision else "") +
                " is not in the local Hub cache and HF_HUB_OFFLINE=1 keeps the Hub from "
                "being asked: unset HF_HUB_OFFLINE (with network), or pass a local build "
                "folder (--dataset path/to/build)")
        return sha
    api = api or HfApi()
    endpoint = getattr(api, "endpoint", None) or constants.ENDPOINT
    try:
        info = api.dataset_info(repo_id, revision=revision, timeout=20)
    except RevisionNotFoundError as e:
        raise iab.BenchmarkError(f"dataset {repo_id!r} has no revision {revision!r} "
                                 f"on {endpoint}") from e
    except RepositoryNotFoundError as e:
        raise iab.BenchmarkError(
            f"no dataset {repo_id!r} on {endpoint} (or it is private or gated: log in with "
            "`hf auth login`); a local build is passed as a folder path") from e
    except OSError as e:  # connection refused, DNS, timeouts (httpx errors are OSErrors)
        raise _unreachable(repo_id, endpoint, e) from e
    except Exception as e:
        if type(e).__module__.startswith(("httpx", "httpcore")):
            raise _unreachable(repo_id, endpoint, e) from e
        raise
    return info.sha


def hub_manifest(repo_id: str, sha: str, api: "HfApi | None" = None) -> dict | None:
    """The Hub copy's manifest.json at ``sha``, or None when it has none."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import EntryNotFoundError

    api = api or HfApi()
    try:
        path = api.hf_hub_download(repo_id, MANIFEST, repo_type="dataset", revision=sha)
    except EntryNotFoundError:
        return None
    return json.loads(Path(path).read_text())


def _manifest_differences(local: dict, hub: dict) -> list[str]:
    out = []
    for key in ("benchmark", "version", "fingerprint", "rows"):
        if local.get(key) != hub.get(key):
            out.append(f"{key}: local {local.get(key)!r}, Hub {hub.get(key)!r}")
    shards_l = {s["path"]: s.get("sha256") for s in local.get("shards", [])}
    shards_h = {s["path"]: s.get("sha256") for s in hub.get("shards", [])}
    if shards_l != shards_h:
        changed = sorted(p for p in shards_l.keys() | shards_h.keys()
                         if shards_l.get(p) != shards_h.get(p))
        out.append(f"{len(changed)} shard(s) differ, e.g. {changed[0]}")
    if not out and local != hub:
        out.append("configs or other fields differ")
    return out


def resolve_dataset(arg: str, revision: str | None = None, *, out_dir=None,
                    hub_dataset: str | None = None, hub_revision: str | None = None,
                    api: "HfApi | None" = None) -> DatasetSource:
    """Resolve ``--dataset`` (and ``--revision``); with ``hub_dataset``, check that a local
    build is a copy of that Hub repo at ``hub_revision`` (its manifest.json must be equal)."""
    if looks_like_path(arg):
        if revision:
            raise iab.BenchmarkError(f"--revision {revision!r} applies to Hub datasets; "
                                     f"{arg!r} is a local folder")
        source = _resolve_local(arg, out_dir)
        if hub_dataset:
            sha = resolve_hub(hub_dataset, hub_revision, api)
            hub = hub_manifest(hub_dataset, sha, api)
            if hub is None:
                raise iab.BenchmarkError(f"{hub_dataset} at {sha[:12]} has no {MANIFEST} to "
                                         f"compare {arg!r} with")
            diff = _manifest_differences(read_manifest(Path(arg).expanduser()), hub)
            if diff:
                raise iab.BenchmarkError(
                    f"--dataset {arg!r} is not a copy of {hub_dataset} at {sha[:12]}: "
                    + "; ".join(diff) + ". Evaluate on the Hub id itself, or on a local "
                    "copy downloaded at that revision")
            source = DatasetSource(source.load_path, source.repo, None, True,
                                   source.fingerprint, {"repo": hub_dataset, "revision": sha})
        return source
    if hub_dataset:
        raise iab.BenchmarkError("--hub-dataset names the Hub repo that a LOCAL --dataset "
                                 f"folder copies; {arg!r} is a Hub id already")
    sha = resolve_hub(arg, revision, api)
    try:
        manifest = hub_manifest(arg, sha, api)
    except Exception:  # the fingerprint is a courtesy: a repo without one still evaluates
        manifest = None
    return DatasetSource(arg, arg, sha, False, (manifest or {}).get("fingerprint"))
