"""``iab import <org>/<name>``: the paper's Hub parquet release, read file by file.

The file list comes from the Hub (pinned to one commit); each ``data/**.parquet`` file is
downloaded (huggingface_hub resumes a partial download), imported, and deleted before the
next one, so the release never has to fit on disk at once. A state file in the raw folder
(``.import-hub-<org>--<name>.json``) lists the files fully imported, which a rerun skips
without downloading; a file imported in part is downloaded again and only its missing images
are imported (per-image resume).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import imageattributionbench as iab
from iab import import_sources as sources
from iab.faults import fault_point


def state_path(out: Path, repo_id: str) -> Path:
    return out / f".import-hub-{repo_id.replace('/', '--')}.json"


def download_dir(out: Path) -> Path:
    """Beside the raw folder, never inside it: `iab build RAW` reads every parquet below RAW."""
    return out.parent / f".{out.name}.hub-download"


def release_files(repo_id: str, revision: str | None) -> tuple[str, list[str]]:
    """(commit sha, the release's data/**.parquet files) of a Hub dataset repo."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

    api = HfApi()
    try:
        info = api.dataset_info(repo_id, revision=revision or "main")
        files = api.list_repo_files(repo_id, repo_type="dataset", revision=info.sha)
    except RepositoryNotFoundError as e:
        raise iab.BenchmarkError(f"no dataset repo {repo_id!r} on the Hub ({e}); the paper's "
                                 "release is multiitsuki/ImageAttributionBench") from e
    except (HfHubHTTPError, OSError) as e:
        raise iab.BenchmarkError(f"could not list {repo_id!r} on the Hub ({e}); check the "
                                 "network (or HF_ENDPOINT) and rerun: the import resumes") from e
    data = sorted(f for f in files if f.startswith("data/") and f.endswith(".parquet"))
    if not data:
        raise iab.BenchmarkError(f"{repo_id} holds no data/**.parquet files: it is not the "
                                 "paper's parquet release")
    return info.sha, data


def write_json_atomic(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    os.replace(tmp, path)


def import_hub(repo_id: str, out: Path, revision: str | None, import_unit, report,
               keep_downloads: bool) -> None:
    """Import every release file of ``repo_id``; ``import_unit(unit)`` imports one file's
    images into ``out`` (iab.importer)."""
    from huggingface_hub import hf_hub_download

    sha, files = release_files(repo_id, revision)
    out.mkdir(parents=True, exist_ok=True)
    state_file = state_path(out, repo_id)
    state = json.loads(state_file.read_text()) if state_file.exists() else {}
    if state.get("revision") not in (None, sha):
        raise iab.BenchmarkError(
            f"{out} holds an import of {repo_id} at revision {state['revision'][:12]}; this is "
            f"{sha[:12]}: pass --revision {state['revision']} to resume it, or choose another "
            "--out")
    done = set(state.get("files", []))
    local = download_dir(out)
    for rel in files:
        if rel in done:
            report.already_imported += state.get("rows", {}).get(rel, 0)
            continue
        try:
            path = Path(hf_hub_download(repo_id, rel, repo_type="dataset", revision=sha,
                                        local_dir=local))
        except Exception as e:  # network, disk: the state so far is kept
            raise iab.BenchmarkError(f"downloading {repo_id}/{rel} failed ({e}); rerun the "
                                     "same command to resume") from e
        unit = sources.release_file_unit(path, rel, report.unmapped)
        before = report.rows + report.already_imported
        if unit is not None:
            try:
                import_unit(unit)
            finally:
                unit.close()
        done.add(rel)
        rows = dict(state.get("rows", {}), **{rel: report.rows + report.already_imported
                                              - before})
        state = {"repo_id": repo_id, "revision": sha, "files": sorted(done), "rows": rows,
                 "selection": report.selection}
        write_json_atomic(state_file, state)
        if not keep_downloads:
            path.unlink(missing_ok=True)
        fault_point("import.unit")
    if not keep_downloads:
        shutil.rmtree(local, ignore_errors=True)
