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
from harness.model_card import (EVAL_RESULTS_PATH, MODEL_CARD, eval_results_entries, hub_id,
                                model_card)
from harness.plots import ROBUSTNESS_PNG, confusion_png_name, plot_confusion, plot_robustness
from harness.results import Results, iso_slug
from harness.results_io import atomic_write_bytes, write_results

if TYPE_CHECKING:  # huggingface_hub loads only when a card is pushed
    from huggingface_hub import HfApi


def samples_filename(protocol: str, created_at: str) -> str:
    return f"samples_{protocol}_{iso_slug(created_at)}.parquet"


# ---------------------------------------------------------------------------------------------
# Per-image predictions
# ---------------------------------------------------------------------------------------------

SAMPLE_COLUMNS = ("protocol", "split", "sha256", "generator", "semantic", "label", "prediction",
                  "score", "probabilities")


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
    largest probability. ``protocol`` fills the column of the same name.
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
        cols["label"].append(_label_name(row["label"], f"samples row {i} label"))
        cols["prediction"].append(_label_name(row["prediction"], f"samples row {i} prediction"))
        cols["score"].append(float(row["score"]) if row.get("score") is not None else max(probs))
        cols["probabilities"].append(probs)
    schema = pa.schema([(c, pa.string()) for c in SAMPLE_COLUMNS[:7]]
                       + [("score", pa.float32()), ("probabilities", pa.list_(pa.float32()))])
    buf = io.BytesIO()
    pq.write_table(pa.table(cols, schema=schema), buf)
    return atomic_write_bytes(Path(out_dir) / samples_filename(protocol, created_at),
                              buf.getvalue())


def write_report(results: Results, out_dir: str | os.PathLike,
                 samples: dict[str, list[dict]] | None = None,
                 repo_id: str | None = None) -> dict[str, Path]:
    """Write everything a run leaves behind into ``out_dir``; returns the paths by kind.

    Keys: ``results``, ``samples/<protocol>``, ``confusion/<protocol>/<split>``,
    ``robustness`` (when ``degraded`` was evaluated), ``model_card``, ``eval_results``.
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
    card = model_card(results, repo_id)
    paths["model_card"] = atomic_write_bytes(out / MODEL_CARD, str(card).encode("utf-8"))
    entries = eval_results_entries(results, results["created_at"])
    text = yaml.safe_dump(entries, sort_keys=False)
    paths["eval_results"] = atomic_write_bytes(out / EVAL_RESULTS_PATH, text.encode("utf-8"))
    return paths


# ---------------------------------------------------------------------------------------------
# Upload
# ---------------------------------------------------------------------------------------------


def results_repo_path(results: Results) -> str:
    """Where a run's results JSON goes in a results dataset repo: ``<org>/<model>/results_<iso>
    .json``; a model id without an org (or a local path) files under ``community/<name>``."""
    model_id = results["model"]["id"]
    ns = hub_id(model_id) or f"community/{Path(model_id.rstrip('/')).name}"
    return f"{ns}/results_{iso_slug(results['created_at'])}.json"


def _latest_results_file(out_dir: Path) -> Path:
    found = sorted(out_dir.glob("results_*.json"))  # ISO names sort by time
    if not found:
        raise iab.BenchmarkError(f"{out_dir} holds no results_*.json: run write_report first")
    return found[-1]


def push_report(out_dir: str | os.PathLike, repo_id: str, *, api: "HfApi | None" = None,
                token: str | None = None, private: bool = False,
                results_repo: str | None = None) -> str:
    """Upload a :func:`write_report` folder to the model repo ``repo_id`` (created if needed);
    with ``results_repo``, also put its results JSON in that dataset repo at
    :func:`results_repo_path`. Returns the model repo's URL.

    The token is ``token``, else the api's own, else the saved login or ``HF_TOKEN``; without
    one nothing is called and a BenchmarkError says how to log in.
    """
    from harness.results_io import load_results
    from huggingface_hub import HfApi, get_token

    out = Path(out_dir)
    results_file = _latest_results_file(out)
    results = load_results(results_file)
    token = token or getattr(api, "token", None) or get_token()
    if not token:
        raise iab.BenchmarkError("no Hugging Face token: run `hf auth login` or set HF_TOKEN "
                                 "(a token with write access) before pushing results")
    api = api or HfApi(token=token)
    url = api.create_repo(repo_id, token=token, private=private, repo_type="model",
                          exist_ok=True)
    api.upload_folder(repo_id=repo_id, folder_path=str(out), repo_type="model", token=token,
                      commit_message=f"{iab.BENCHMARK_NAME} {results['benchmark_version']} "
                                     f"results ({results['created_at']})")
    if results_repo:
        api.upload_file(path_or_fileobj=str(results_file),
                        path_in_repo=results_repo_path(results), repo_id=results_repo,
                        repo_type="dataset", token=token,
                        commit_message=f"Add results of {results['model']['id']}")
    return str(url)
