"""What one evaluation run leaves behind, and how it reaches the Hub.

:func:`write_report` turns a results dict (``harness.results``) into a folder ready to be a
model repo: the results JSON, per-image predictions (``samples_<protocol>_<iso>.parquet``),
confusion matrices and a robustness plot (``harness.plots``), a model card (README.md with
``model-index``) and the Hub leaderboard entries (``.eval_results/imageattributionbench.yaml``,
both ``harness.model_card``). :func:`push_report` uploads the folder.

    >>> paths = write_report(results, "outputs/vit", samples={"standard": rows})  # doctest: +SKIP
    >>> push_report("outputs/vit", "me/vit-iab")  # doctest: +SKIP
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

import imageattributionbench as iab
from harness.model_card import (EVAL_RESULTS_PATH, MODEL_CARD, CardInfo, eval_results_entries,
                                hub_id, model_card)
from harness.plots import ROBUSTNESS_PNG, confusion_png_name, plot_confusion, plot_robustness
from harness.results import Results, hub_dataset, iso_slug
from harness.results_io import atomic_write_bytes, results_filename, write_results

if TYPE_CHECKING:  # huggingface_hub loads only when a card is pushed
    from huggingface_hub import HfApi


def samples_filename(protocol: str, created_at: str) -> str:
    return f"samples_{protocol}_{iso_slug(created_at)}.parquet"


# ---------------------------------------------------------------------------------------------
# Per-image predictions
# ---------------------------------------------------------------------------------------------

SAMPLE_COLUMNS = ("protocol", "split", "sha256", "generator", "prompt_id", "image_index",
                  "semantic", "label", "prediction", "score", "probabilities")
# (generator, prompt_id, image_index) is a row's identity in the benchmark (docs/DESIGN.md): the
# leaderboard matches samples to the dataset's own labels by it to recompute the metrics.
IDENTITY_COLUMNS = ("generator", "prompt_id", "image_index")


def _label_name(value, where: str) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(iab.LABELS):
        return iab.LABELS[value]
    if isinstance(value, str) and value in iab.LABEL_IDS:
        return value
    raise iab.BenchmarkError(f"{where}: {value!r} is neither a label name nor a label id; "
                             f"labels: {', '.join(iab.LABELS)}")


def write_samples(rows: list[dict], out_dir: str | os.PathLike, protocol: str,
                  created_at: str) -> Path:
    """Write per-image predictions to ``out_dir/samples_<protocol>_<iso>.parquet``.

    Each row needs ``split``, ``sha256``, ``generator``, ``semantic``, ``label`` and
    ``prediction`` (label names or ids; stored as names) and ``probabilities`` (the model's
    class probabilities); ``score``, the probability of the prediction, defaults to the
    largest probability. ``prompt_id`` and ``image_index`` (with ``generator``, the row's
    identity) are null when a row lacks them; the leaderboard then matches rows by sha256.
    ``protocol`` fills the column of the same name.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    iab.protocol(protocol)  # unknown names list the valid ones
    required = ("split", "sha256", "generator", "semantic", "label", "prediction",
                "probabilities")
    cols: dict[str, list] = {c: [] for c in SAMPLE_COLUMNS}
    for i, row in enumerate(rows):
        missing = [k for k in required if k not in row]
        if missing:
            raise iab.BenchmarkError(f"samples row {i}: missing {', '.join(missing)}")
        probs = [float(p) for p in row["probabilities"]]
        if not probs:
            raise iab.BenchmarkError(f"samples row {i}: probabilities is empty")
        cols["protocol"].append(protocol)
        for k in ("split", "sha256", "generator", "semantic"):
            cols[k].append(str(row[k]))
        cols["prompt_id"].append(None if row.get("prompt_id") is None else str(row["prompt_id"]))
        cols["image_index"].append(None if row.get("image_index") is None
                                   else int(row["image_index"]))
        cols["label"].append(_label_name(row["label"], f"samples row {i} label"))
        cols["prediction"].append(_label_name(row["prediction"], f"samples row {i} prediction"))
        cols["score"].append(float(row["score"]) if row.get("score") is not None else max(probs))
        cols["probabilities"].append(probs)
    schema = pa.schema([(c, pa.int32() if c == "image_index" else pa.string())
                        for c in SAMPLE_COLUMNS[:9]]
                       + [("score", pa.float32()), ("probabilities", pa.list_(pa.float32()))])
    buf = io.BytesIO()
    pq.write_table(pa.table(cols, schema=schema), buf)
    return atomic_write_bytes(Path(out_dir) / samples_filename(protocol, created_at),
                              buf.getvalue())


def write_eval_results(results: Results, out_dir: str | os.PathLike,
                       source_url: str | None = None, source_user: str | None = None
                       ) -> Path | None:
    """``.eval_results/imageattributionbench.yaml`` (none for a local build: removed if an
    earlier run left one)."""
    path = Path(out_dir) / EVAL_RESULTS_PATH
    entries = eval_results_entries(results, results["created_at"], source_url, source_user)
    if not entries:
        path.unlink(missing_ok=True)
        return None
    text = yaml.safe_dump(entries, sort_keys=False)
    return atomic_write_bytes(path, text.encode("utf-8"))


def write_report(results: Results, out_dir: str | os.PathLike,
                 samples: dict[str, list[dict]] | None = None,
                 info: CardInfo | str | None = None) -> dict[str, Path]:
    """Write everything a run leaves behind into ``out_dir``; returns the paths by kind.

    Keys: ``results``, ``samples/<protocol>``, ``confusion/<protocol>/<split>``,
    ``robustness`` (when ``degraded`` was evaluated), ``model_card``, ``eval_results`` (not
    for a local build). ``info`` says what the card is for (repo id, base model, license).
    Invalid results are refused before anything is written.
    """
    out = Path(out_dir)
    paths: dict[str, Path] = {"results": write_results(results, out)}
    for protocol, rows in (samples or {}).items():
        paths[f"samples/{protocol}"] = write_samples(rows, out, protocol, results["created_at"])
    for protocol, proto in results["protocols"].items():
        known = iab.protocol(protocol).extra.get("known_labels")  # open set: mark the unknown
        for split, m in proto["splits"].items():
            paths[f"confusion/{protocol}/{split}"] = plot_confusion(
                m, out / confusion_png_name(protocol, split),
                f"{results['model']['id']}: {protocol} / {split}", known_labels=known)
    if "degraded" in results["protocols"]:
        paths["robustness"] = plot_robustness(results, out / ROBUSTNESS_PNG)
    card = model_card(results, info)
    paths["model_card"] = atomic_write_bytes(out / MODEL_CARD, str(card).encode("utf-8"))
    eval_results = write_eval_results(results, out)
    if eval_results is not None:
        paths["eval_results"] = eval_results
    return paths


# ---------------------------------------------------------------------------------------------
# Upload
# ---------------------------------------------------------------------------------------------


# What a model repo gets from an output folder: the model, its card and the latest run's
# results. Everything else (checkpoints/ with optimiser states and RNG pickles, init/, models/
# of later jobs, logs/, a .env) never leaves the machine.
PUSH_PATTERNS = ("README.md", "config.json", "model.safetensors", "model-*-of-*.safetensors",
                 "model.safetensors.index.json", "preprocessor_config.json",
                 "linear_probe_head.safetensors", "*.png", EVAL_RESULTS_PATH)


def files_to_push(out_dir: str | os.PathLike, results: Results) -> list[str]:
    """The allow-listed files of ``out_dir`` (relative paths): :data:`PUSH_PATTERNS`, plus the
    results JSON and samples of this run (``results``), not of earlier runs."""
    from fnmatch import fnmatchcase

    out = Path(out_dir)
    slug = iso_slug(results["created_at"])
    wanted = [results_filename(results)] + [p.name for p in out.glob(f"samples_*_{slug}.parquet")]
    for p in sorted(out.iterdir()):
        if p.is_file() and any(fnmatchcase(p.name, pat) for pat in PUSH_PATTERNS):
            wanted.append(p.name)
    if (out / EVAL_RESULTS_PATH).is_file():
        wanted.append(EVAL_RESULTS_PATH)
    return sorted(set(w for w in wanted if (out / w).is_file()))


def results_repo_path(results: Results) -> str:
    """Where a run's results JSON goes in a results dataset repo: ``<org>/<model>/results_<iso>
    .json``; a model id without an org (or a local path) files under ``community/<name>``."""
    model_id = results["model"]["id"]
    local = results["model"].get("local", hub_id(model_id) is None)
    ns = model_id if not local and hub_id(model_id) else \
        f"community/{Path(model_id.rstrip('/')).name}"
    return f"{ns}/results_{iso_slug(results['created_at'])}.json"


def _latest_results_file(out_dir: Path) -> Path:
    found = sorted(out_dir.glob("results_*.json"))  # ISO names sort by time
    if not found:
        raise iab.BenchmarkError(f"{out_dir} holds no results_*.json: run write_report first")
    return found[-1]


def file_url(endpoint: str, repo_type: str, repo_id: str, revision: str, path: str) -> str:
    """The Hub page of a file at a revision (a PR's ``refs/pr/N`` included)."""
    from urllib.parse import quote

    prefix = "" if repo_type == "model" else f"{repo_type}s/"
    return f"{endpoint.rstrip('/')}/{prefix}{repo_id}/blob/{quote(revision, safe='')}/{path}"


def _commit_or_pr(api, repo_id: str, repo_type: str, operations: list, message: str,
                  description: str):
    """A commit on main, or a pull request when the token may not write there (the Hub's
    answer is 403): how anyone contributes to a repo they do not own."""
    from huggingface_hub.errors import HfHubHTTPError

    try:
        return api.create_commit(repo_id, operations, commit_message=message,
                                 commit_description=description, repo_type=repo_type)
    except HfHubHTTPError as e:
        if e.response is None or e.response.status_code != 403:
            raise
    return api.create_commit(repo_id, operations, commit_message=message,
                             commit_description=description, repo_type=repo_type,
                             create_pr=True)


def _where(info, endpoint: str, repo_type: str, repo_id: str) -> tuple[str, str]:
    """(revision the commit landed on, a link to show): main, or the pull request."""
    if getattr(info, "pr_revision", None):
        return info.pr_revision, info.pr_url
    prefix = "" if repo_type == "model" else f"{repo_type}s/"
    return "main", f"{endpoint.rstrip('/')}/{prefix}{repo_id}"


def push_report(out_dir: str | os.PathLike, repo_id: str | None = None, *,
                api: "HfApi | None" = None, token: str | None = None, private: bool = False,
                results_repo: str | None = None, model: bool = True) -> list[str]:
    """Push a :func:`write_report` folder; returns a line per commit or pull request made.

    - A trained model (finetune, linear_probe): create ``repo_id`` (``private``) and commit the
      allow-listed files (:func:`files_to_push`), ``.eval_results`` sourced to its results JSON.
    - A scored model (``--method score``): no new repo; its ``.eval_results`` goes to the
      scored model's own repo, as a pull request when the token cannot write there (the Hub's
      way for community evaluations).
    - ``results_repo``: the results JSON at :func:`results_repo_path` and this run's samples
      beside it (the leaderboard verifies every number from them), one commit, a pull request
      when the token cannot write there.
    - ``model=False``: the results repo only.

    Results on a local build are refused (they are not the published dataset's). The token is
    ``token``, else the api's own, else the saved login or ``HF_TOKEN``; without one nothing
    is called.
    """
    from huggingface_hub import CommitOperationAdd, HfApi, get_token

    from harness.results_io import load_results

    out = Path(out_dir)
    results_file = _latest_results_file(out)
    results = load_results(results_file)
    if hub_dataset(results) is None:
        raise iab.BenchmarkError(
            f"{results_file.name} was computed on a local build ({results['dataset']['repo']}), "
            "not on a Hub revision of the benchmark: its numbers must not reach the "
            "leaderboard. Evaluate on the Hub id, or pass --hub-dataset ORG/NAME if the folder "
            "is a copy of that repo (its manifest.json must match)")
    scored = results["method"] == "score"
    if scored and results["model"].get("local", hub_id(results["model"]["id"]) is None):
        raise iab.BenchmarkError(
            f"{results['model']['id']!r} is a local model: scored results go to the model's own "
            "Hub repo, so push the model first and score it by its Hub id")
    token = token or getattr(api, "token", None) or get_token()
    if not token:
        raise iab.BenchmarkError("no Hugging Face token: run `hf auth login` or set HF_TOKEN "
                                 "(a token with write access) before pushing results")
    api = api or HfApi(token=token)
    if api.token is None:
        api.token = token
    endpoint = api.endpoint
    user = api.whoami()["name"]
    title = (f"{iab.BENCHMARK_NAME} {results['benchmark_version']} results of "
             f"{results['model']['id']} ({results['created_at']})")
    done: list[str] = []
    source_url = None
    if results_repo:
        # the samples go beside the results: the leaderboard verifies every number from them
        dest = results_repo_path(results)
        folder = dest.rsplit("/", 1)[0]
        ops = [CommitOperationAdd(dest, str(results_file))] + [
            CommitOperationAdd(f"{folder}/{p.name}", str(p)) for p in sorted(out.glob(
                f"samples_*_{iso_slug(results['created_at'])}.parquet"))]
        info = _commit_or_pr(api, results_repo, "dataset", ops,
                             f"Add results of {results['model']['id']}", title)
        rev, link = _where(info, endpoint, "dataset", results_repo)
        source_url = file_url(endpoint, "dataset", results_repo, rev, dest)
        done.append(f"results JSON and samples -> {results_repo} "
                    f"({'pull request ' if rev != 'main' else ''}{link})")
    if not model:
        return done
    if scored:
        target = results["model"]["id"]
        write_eval_results(results, out, source_url, user)
        info = _commit_or_pr(api, target, "model",
                             [CommitOperationAdd(EVAL_RESULTS_PATH, str(out / EVAL_RESULTS_PATH))],
                             f"Add {iab.BENCHMARK_NAME} evaluation results", title)
        rev, link = _where(info, endpoint, "model", target)
        done.append(f".eval_results -> {target} ({'pull request ' if rev != 'main' else ''}"
                    f"{link})")
        return done
    if not repo_id:
        raise iab.BenchmarkError("push_report needs the model repo id (--hub-model-id)")
    url = api.create_repo(repo_id, private=private, repo_type="model", exist_ok=True)
    repo_id = getattr(url, "repo_id", None) or repo_id
    write_eval_results(results, out, file_url(endpoint, "model", repo_id, "main",
                                              results_file.name), user)
    ops = [CommitOperationAdd(rel, str(out / rel)) for rel in files_to_push(out, results)]
    api.create_commit(repo_id, ops, commit_message=title, repo_type="model")
    done.append(f"model, card and results ({len(ops)} files) -> {url}")
    return done
