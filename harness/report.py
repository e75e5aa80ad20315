"""What one evaluation run leaves behind, and how it reaches the Hub.

:func:`write_report` turns a results dict (``harness.results``) into a folder ready to be a
model repo: the results JSON, per-image predictions (``samples_<protocol>_<iso>.parquet``),
confusion matrices and a robustness plot (PNG), a model card (README.md with ``model-index``)
and the Hub leaderboard entries (``.eval_results/imageattributionbench.yaml``). Scores are
percentages in the card and the leaderboard file. :func:`push_report` uploads the folder.

    >>> paths = write_report(results, "outputs/vit", samples={"standard": rows})  # doctest: +SKIP
    >>> push_report("outputs/vit", "me/vit-iab")  # doctest: +SKIP
"""

from __future__ import annotations

import io
import json
import os
import re
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

import imageattributionbench as iab
from harness.results import (
    Results,
    atomic_write_bytes,
    iso_slug,
    leaderboard_values,
    write_results,
)

if TYPE_CHECKING:  # huggingface_hub and matplotlib load only when a card or a plot is made
    from huggingface_hub import HfApi, ModelCard

EVAL_RESULTS_PATH = ".eval_results/imageattributionbench.yaml"
ROBUSTNESS_PNG = "robustness.png"
MODEL_CARD = "README.md"
TAGS = ["image-classification", "image-attribution", "imageattributionbench"]
# Count annotations stay legible up to about this many classes per axis.
ANNOTATE_MAX_LABELS = 12
_HUB_ID_RE = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_FAMILY = {"down_up": "down", "jpeg": "jpeg", "blur": "blur"}
_FAMILY_COLOR = {"down": "tab:blue", "jpeg": "tab:orange", "blur": "tab:green"}


def confusion_png_name(protocol: str, split: str) -> str:
    return f"confusion_{protocol}_{split}.png"


def samples_filename(protocol: str, created_at: str) -> str:
    return f"samples_{protocol}_{iso_slug(created_at)}.parquet"


def hub_id(name: str | None) -> str | None:
    """``name`` when it reads as a Hub repo id (``org/name``) and is no local folder, else None."""
    if not name or not _HUB_ID_RE.match(name) or Path(name).exists():
        return None
    return name


def dataset_hub_id(results: Results) -> str:
    """The Hub dataset the results refer to: the evaluated repo when it is a Hub id, else the
    official one (a local build of the benchmark has no Hub id of its own)."""
    return hub_id(results["dataset"]["repo"]) or iab.HUB_REPO_ID


def _tasks() -> dict[str, iab.LeaderboardTask]:
    return {t.id: t for t in iab.LEADERBOARD_TASKS}


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


# ---------------------------------------------------------------------------------------------
# Plots
# ---------------------------------------------------------------------------------------------


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on clusters and CI
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path) -> Path:
    """Write a finished figure as PNG (making its folder) and free it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_confusion(split_metrics: dict, path: str | os.PathLike, title: str) -> Path:
    """Save one split's confusion matrix as a PNG: true labels on rows, predictions on columns,
    colours normalised per row (recall), counts written in the cells of small matrices.

    Labels with neither a sample nor a prediction are left off: they carry no information and
    would drown a small matrix in a 31-label grid.
    """
    import numpy as np

    plt = _pyplot()
    cm = np.asarray(split_metrics["confusion_matrix"], dtype=np.int64).reshape(
        len(split_metrics["labels"]), len(split_metrics["labels"]))
    labels = list(split_metrics["labels"])
    keep = np.flatnonzero((cm.sum(axis=0) + cm.sum(axis=1)) > 0)
    if len(keep):
        cm, labels = cm[np.ix_(keep, keep)], [labels[i] for i in keep]
    n = len(labels)
    rows = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros(cm.shape, dtype=float), where=rows > 0)

    side = max(4.0, 0.38 * n + 2.5)
    fig, ax = plt.subplots(figsize=(side + 1.0, side), dpi=100)
    im = ax.imshow(norm, cmap="Blues", vmin=0.0, vmax=1.0)
    ax.set_xticks(range(n), labels, rotation=90, fontsize=8)
    ax.set_yticks(range(n), labels, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=10)
    if n <= ANNOTATE_MAX_LABELS:
        for i in range(n):
            for j in range(n):
                if cm[i, j]:
                    ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=8,
                            color="white" if norm[i, j] > 0.5 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="fraction of the true label")
    return _save(fig, path)


def plot_robustness(results: Results, path: str | os.PathLike) -> Path:
    """Save a bar chart of accuracy (%) on clean images then each degradation, in the paper's
    order (level 1-6), coloured by family (down, jpeg, blur), with the clean level dashed."""
    plt = _pyplot()
    degraded = results["protocols"]["degraded"]
    summary = degraded.get("summary") or {}
    clean = summary.get("clean_accuracy")
    if clean is None:
        clean = results["protocols"].get("standard", {}).get("splits", {}).get("test", {}).get(
            "accuracy")
    names = [d.name for d in sorted(iab.DEGRADATIONS.values(), key=lambda d: d.level)
             if d.name in degraded["splits"]]
    xs, heights, colors = [], [], []
    if clean is not None:
        xs.append("clean")
        heights.append(100 * clean)
        colors.append("tab:gray")
    for name in names:
        xs.append(name)
        heights.append(100 * degraded["splits"][name]["accuracy"])
        colors.append(_FAMILY_COLOR[_FAMILY[iab.DEGRADATIONS[name].kind]])

    fig, ax = plt.subplots(figsize=(7.5, 4.5), dpi=100)
    bars = ax.bar(range(len(xs)), heights, color=colors)
    ax.bar_label(bars, fmt="%.1f", fontsize=8, padding=2)
    if clean is not None:
        ax.axhline(100 * clean, color="tab:gray", linestyle="--", linewidth=1)
    ax.set_xticks(range(len(xs)), xs)
    ax.set_ylim(0, 105)
    ax.set_ylabel("accuracy (%)")
    ax.set_xlabel("degradation (paper level 1-6)")
    ax.set_title(f"Robustness: {results['model']['id']}", fontsize=10)
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in _FAMILY_COLOR.values()]
    ax.legend(handles, list(_FAMILY_COLOR), loc="lower left", fontsize=8)
    return _save(fig, path)


# ---------------------------------------------------------------------------------------------
# Model card and leaderboard entries
# ---------------------------------------------------------------------------------------------


def _task_target(task: iab.LeaderboardTask, results: Results) -> tuple[str, str | None]:
    """(config, split) a leaderboard number comes from, for the model-index."""
    if task.id == "degraded_worst_accuracy":
        return task.config, results["protocols"]["degraded"]["summary"]["worst"]
    return task.config, task.splits[0] if len(task.splits) == 1 else None


def _eval_results(results: Results) -> list:
    from huggingface_hub import EvalResult

    tasks = _tasks()
    out = []
    for task_id, value in leaderboard_values(results).items():
        task = tasks[task_id]
        config, split = _task_target(task, results)
        out.append(EvalResult(
            task_type="image-classification",
            task_name="Image attribution",
            dataset_type=dataset_hub_id(results),
            dataset_name=iab.BENCHMARK_NAME,
            dataset_config=config,
            dataset_split=split,
            dataset_revision=results["dataset"]["revision"],
            metric_type="auroc" if task.metric == "auroc_unknown" else "accuracy",
            metric_name=task.name,
            metric_value=value,
        ))
    return out


def _pct(x) -> str:
    return "n/a" if x is None else f"{100 * x:.2f}"


def _table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _protocol_section(name: str, proto: dict) -> str:
    parts = [f"### `{name}`", "", iab.PROTOCOLS[name].description, ""]
    rows = []
    for split, m in proto["splits"].items():
        row = [f"`{split}`", f"{m['n_samples']:,}", _pct(m["accuracy"]), _pct(m["macro_f1"]),
               _pct(m["macro_auroc"]), _pct(m["mean_ap"])]
        rows.append(row)
    parts.append(_table(["split", "images", "accuracy", "macro F1", "macro AUROC", "mean AP"],
                        rows))
    summary = proto.get("summary") or {}
    if name == "degraded" and "per_degradation" in summary:
        parts += ["", f"Clean accuracy {_pct(summary['clean_accuracy'])}; mean "
                  f"{_pct(summary['mean_accuracy'])}, worst {_pct(summary['worst_accuracy'])} "
                  f"(`{summary['worst']}`).", ""]
        parts.append(_table(
            ["degradation", "level", "accuracy", "drop from clean"],
            [[f"`{d}`", iab.DEGRADATIONS[d].level, _pct(v["accuracy"]), _pct(v["drop"])]
             for d, v in sorted(summary["per_degradation"].items(),
                                key=lambda kv: iab.DEGRADATIONS[kv[0]].level)]))
    elif {"seen", "unseen", "gap"} <= set(summary):
        parts += ["", f"Seen subclass {_pct(summary['seen'])}, unseen subclasses "
                  f"{_pct(summary['unseen'])}: gap {_pct(summary['gap'])} points."]
    test = proto["splits"].get("test", {})
    if "auroc_unknown" in test:
        parts += ["", f"Known-vs-unknown AUROC {_pct(test['auroc_unknown'])}; accuracy on known "
                  f"labels {_pct(test.get('known_accuracy'))}."]
    return "\n".join(parts)


def _method_section(record: dict) -> list[str]:
    """The paper method a model implements: its reference, input policy and settings."""
    from harness.data import POLICY_TEXT

    policy = record["input_policy"]
    settings = ", ".join(f"{k} {v}" for k, v in record["paper_hyperparameters"].items())
    arch = ", ".join(f"{k} {v}" for k, v in sorted(record["architecture"].items()))
    return ["## Method", "",
            f"- Implements: {record['reference']} (`{record['model_type']}`, loads with "
            "`AutoModelForImageClassification` after `import methods`)",
            f"- Input policy: `{policy}`, {POLICY_TEXT.get(policy, policy)}",
            f"- The paper's training settings: {settings or 'not recorded'}",
            f"- Architecture: {arch}", ""]


def _card_body(results: Results, title: str) -> str:
    values = leaderboard_values(results)
    tasks = _tasks()
    model = results["model"]
    ds = results["dataset"]
    lines = [
        f"# {title} on {iab.BENCHMARK_NAME}",
        "",
        f"`{model['id']}`" + (f" (revision `{model['revision']}`)" if model["revision"] else "")
        + f" evaluated with method `{results['method']}` on "
        f"[{iab.BENCHMARK_NAME}](https://huggingface.co/datasets/{dataset_hub_id(results)}) "
        f"{results['benchmark_version']} (`{ds['repo']}`"
        + (f" at `{ds['revision']}`" if ds["revision"] else "") + "): which generative model "
        f"made an image? (arXiv:{iab.PAPER_ARXIV})",
        "",
    ]
    if values:
        lines += ["## Leaderboard", "",
                  _table(["task", "value (%)"],
                         [[f"{tasks[k].name} (`{k}`)", f"{v:.2f}"] for k, v in values.items()]),
                  ""]
    record = results["run_config"].get("method_record")
    if record:
        lines += _method_section(record)
    lines += ["## Results per protocol", "", "Scores in percent.", ""]
    for name, proto in results["protocols"].items():
        lines += [_protocol_section(name, proto), ""]
    if "degraded" in results["protocols"]:
        lines += ["## Robustness", "", f"![accuracy under degradations]({ROBUSTNESS_PNG})", ""]
    lines += ["## Confusion matrices", "", "<details>", "<summary>One per protocol and split "
              "(rows: true label, colours normalised per row)</summary>", ""]
    for name, proto in results["protocols"].items():
        for split in proto["splits"]:
            lines += [f"**{name} / {split}**", "",
                      f"![confusion {name} {split}]({confusion_png_name(name, split)})", ""]
    lines += ["</details>", ""]
    env = results["environment"]
    params = model["parameters"]
    lines += [
        "## How it was evaluated", "",
        f"- Checkpoint selection: {results['checkpoint_selection']}",
        f"- Parameters: {params:,}" if params is not None else "- Parameters: unknown",
        f"- Hardware: {env['hardware']}, {env['num_processes']} process(es)",
        f"- Code: {env['git_hash'] or 'unknown revision'}; "
        + ", ".join(f"{k} {v}" for k, v in sorted(env["libraries"].items())),
        f"- Run: {results['created_at']}; full numbers in "
        f"`results_{iso_slug(results['created_at'])}.json`, per-image predictions in "
        "`samples_*.parquet`",
        "",
        "Run configuration:", "",
        "```json", json.dumps(results["run_config"], indent=2, sort_keys=True), "```", "",
    ]
    return "\n".join(lines)


def model_card(results: Results, repo_id: str | None) -> "ModelCard":
    """The model card of a run: YAML metadata (tags, dataset, ``model-index`` with one entry per
    leaderboard value, in percent) and a body with per-protocol tables and the plots that
    :func:`write_report` saves next to it. ``repo_id`` names the model repo it is for (the
    evaluated model id when None)."""
    from huggingface_hub import ModelCard, ModelCardData

    model_id = results["model"]["id"]
    name = repo_id or model_id
    base = hub_id(model_id)
    data = ModelCardData(
        model_name=name,
        tags=list(TAGS),
        datasets=[dataset_hub_id(results)],
        metrics=["accuracy", "roc_auc"],
        pipeline_tag="image-classification",
        # a fine-tuned or probed repo of its own descends from the evaluated Hub model
        base_model=base if base and repo_id and repo_id != base else None,
        eval_results=_eval_results(results) or None,
    )
    body = _card_body(results, name)
    return ModelCard.from_template(data, template_str="---\n{{ card_data }}\n---\n\n{{ body }}",
                                   body=body)


def eval_results_entries(results: Results, date: str | datetime,
                         source_url: str | None = None) -> list[dict]:
    """The entries of ``.eval_results/imageattributionbench.yaml``: one per leaderboard value,
    ``{dataset: {id, task_id, revision}, value (percent), date, source, notes (the method)}``."""
    from huggingface_hub import EvalResultEntry, eval_result_entries_to_yaml

    if isinstance(date, datetime):
        date = date.isoformat()
    entries = [
        EvalResultEntry(
            dataset_id=dataset_hub_id(results),
            task_id=task_id,
            value=value,
            dataset_revision=results["dataset"]["revision"],
            date=date,
            source_url=source_url,
            source_name=f"{iab.BENCHMARK_NAME} harness" if source_url else None,
            notes=results["method"],
        )
        for task_id, value in leaderboard_values(results).items()
    ]
    return eval_result_entries_to_yaml(entries)


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
        for split, m in proto["splits"].items():
            paths[f"confusion/{protocol}/{split}"] = plot_confusion(
                m, out / confusion_png_name(protocol, split),
                f"{results['model']['id']}: {protocol} / {split}")
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
    from harness.results import load_results
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
