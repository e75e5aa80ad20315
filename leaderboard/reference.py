"""The benchmark's own labels at a dataset revision: what a submission is checked against.

``ReferenceLabels.split(ref, config, split)`` gives every row of one split by its identity
(generator, prompt_id, image_index), with its label, semantic and sha256, read with the real
``load_dataset`` at that revision, streaming and with only those columns: the images are never
downloaded, so a Space checks a benchmark of any size. A split at a Hub commit sha never
changes, so it is kept on disk after the first read; a local build is read again whenever its
manifest fingerprint changes.
"""

from __future__ import annotations

import json
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path

import imageattributionbench as iab

IDENTITY = ("generator", "prompt_id", "image_index")
COLUMNS = (*IDENTITY, "label", "semantic", "sha256")
_SHA_RE = re.compile(r"^[0-9a-f]{40}$")


@dataclass(frozen=True)
class DatasetRef:
    """The dataset a results file was scored on: a Hub repo at a revision, or a local build."""

    repo: str
    revision: str | None
    local: bool  # a folder built by `iab build`, not a Hub repo
    fingerprint: str | None = None  # a local build's row fingerprint (its manifest.json)

    def describe(self) -> str:
        if self.local:
            return f"local build {self.repo}"
        return f"{self.repo} at {self.revision or 'an unrecorded revision'}"


def dataset_ref(results: dict) -> DatasetRef:
    """Where a results file says its numbers come from."""
    ds = results["dataset"]
    repo, revision = ds["repo"], ds.get("revision")
    local = bool(ds.get("local")) or not _looks_like_hub_id(repo) or Path(repo).is_dir()
    return DatasetRef(repo, revision, local, ds.get("fingerprint") if local else None)


def _looks_like_hub_id(name: str) -> bool:
    return bool(re.match(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$", name))


class LabelsUnavailable(Exception):
    """The labels could not be read now (network, missing folder): the check is retried later,
    never counted against the submission."""


def default_cache_dir() -> Path:
    base = os.environ.get("IAB_CACHE") or Path(os.environ.get("XDG_CACHE_HOME",
                                                               Path.home() / ".cache"))
    return Path(base) / "imageattributionbench" / "labels"


def _fingerprint(folder: Path) -> str | None:
    try:
        return json.loads((folder / "manifest.json").read_text()).get("fingerprint")
    except (OSError, ValueError, AttributeError):
        return None


class ReferenceLabels:
    """Rows of the benchmark's splits by identity, cached in memory and (Hub commits) on disk.

    Results never hold absolute paths, so a local build is found by its row fingerprint among
    ``local_builds`` (build folders, or folders of builds; default: the LOCAL_BUILDS
    environment variable, paths separated by the OS path separator) and the recorded path
    itself, read from the working folder."""

    def __init__(self, cache_dir: str | os.PathLike | None = None,
                 local_builds: list[str | os.PathLike] | None = None):
        self.cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
        if local_builds is None:
            local_builds = [p for p in os.environ.get("LOCAL_BUILDS", "").split(os.pathsep) if p]
        self.local_builds = [Path(p) for p in local_builds]
        self._memory: dict[tuple, dict[str, list]] = {}
        self._lock = threading.Lock()

    def local_folder(self, ref: DatasetRef) -> Path | None:
        """The build on this machine that ``ref`` names: the one with its fingerprint (or,
        for results that record none, the recorded path)."""
        named = [Path(ref.repo)] + [root / Path(ref.repo).name for root in self.local_builds]
        if ref.fingerprint is None:  # older results: only the very folder they name
            return next((f for f in named if (f / "manifest.json").is_file()), None)
        candidates = named + list(self.local_builds)
        for root in self.local_builds:
            if root.is_dir():
                candidates += sorted(p for p in root.iterdir() if p.is_dir())
        return next((f for f in candidates if (f / "manifest.json").is_file()
                     and _fingerprint(f) == ref.fingerprint), None)

    def why_not(self, ref: DatasetRef) -> str:
        """'' when this dataset's labels can be looked up, else why they cannot."""
        if ref.local:
            if self.local_folder(ref) is None:
                return (f"it was scored on a local build ({ref.repo}) that this board cannot "
                        "read (no build with its fingerprint among the board's LOCAL_BUILDS), "
                        "so its labels are unknown here")
            return ""
        if not ref.revision:
            return ("its dataset revision is not recorded, so the labels it was scored "
                    "against are unknown")
        return ""

    def split(self, ref: DatasetRef, config: str, split: str) -> dict[str, list]:
        """Columns ``COLUMNS`` of one split (labels as names); raises LabelsUnavailable."""
        if ref.local:
            folder = self.local_folder(ref)
            if folder is None:
                raise LabelsUnavailable(f"{ref.describe()}: no such build on this machine")
            ref = DatasetRef(str(folder), None, True, ref.fingerprint)
        key = (ref.repo, self._version(ref), config, split)
        with self._lock:
            if key in self._memory:
                return self._memory[key]
        disk = self._disk_path(ref, config, split)
        if disk is not None and disk.is_file():
            cols = json.loads(disk.read_text())
        else:
            cols = self._load(ref, config, split)
            if disk is not None:
                from harness.results_io import atomic_write_bytes

                atomic_write_bytes(disk, json.dumps(cols).encode())
        with self._lock:
            self._memory[key] = cols
        return cols

    def _version(self, ref: DatasetRef) -> str | None:
        if not ref.local:
            return ref.revision
        try:  # a rebuilt folder is another dataset: its fingerprint says so
            return json.loads((Path(ref.repo) / "manifest.json").read_text())["fingerprint"]
        except (OSError, ValueError, KeyError) as e:
            raise LabelsUnavailable(f"{ref.repo}/manifest.json: {e}") from e

    def _disk_path(self, ref: DatasetRef, config: str, split: str) -> Path | None:
        if ref.local or not ref.revision or not _SHA_RE.match(ref.revision):
            return None  # a branch name moves: read it again each time
        return self.cache_dir / ref.repo.replace("/", "--") / ref.revision / config / \
            f"{split}.json"

    @staticmethod
    def _load(ref: DatasetRef, config: str, split: str) -> dict[str, list]:
        from datasets import load_dataset

        if not ref.local:  # first ask the Hub whether that revision exists at all: datasets
            _hub_has(ref)  # falls back to its cache and words "unreachable" like "missing"
        try:
            ds = load_dataset(ref.repo, config, split=split, revision=ref.revision,
                              streaming=True, columns=list(COLUMNS))
            cols: dict[str, list] = {c: [] for c in COLUMNS}
            for row in ds:
                for c in COLUMNS:
                    cols[c].append(row[c])
        except (ValueError, KeyError) as e:  # no such config/split at that revision
            raise iab.BenchmarkError(f"{ref.describe()} has no split {config}/{split}: {e}") \
                from e
        except Exception as e:  # network, Hub or file errors: try again on the next refresh
            if _answered_not_found(e):  # the Hub answered: no such repo or revision
                raise iab.BenchmarkError(f"{ref.describe()} cannot be read: {e}") from e
            raise LabelsUnavailable(f"could not read {config}/{split} of {ref.describe()}: "
                                    f"{type(e).__name__}: {e}") from e
        cols["label"] = [iab.LABELS[v] if isinstance(v, int) else v for v in cols["label"]]
        return cols


def _hub_has(ref: DatasetRef) -> None:
    """Return if the Hub has ``ref``; BenchmarkError if it answers that it does not,
    LabelsUnavailable if it does not answer."""
    from huggingface_hub import HfApi

    try:
        HfApi().dataset_info(ref.repo, revision=ref.revision)
    except Exception as e:
        if _answered_not_found(e):
            raise iab.BenchmarkError(f"{ref.describe()} cannot be read: the Hub has no such "
                                     "dataset revision") from e
        raise LabelsUnavailable(f"could not reach the Hub for {ref.describe()}: "
                                f"{type(e).__name__}: {e}") from e


def _answered_not_found(e: Exception) -> bool:
    from datasets.exceptions import DatasetNotFoundError
    from huggingface_hub.errors import RepositoryNotFoundError, RevisionNotFoundError

    return isinstance(e, (DatasetNotFoundError, RepositoryNotFoundError, RevisionNotFoundError))

