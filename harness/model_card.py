"""A run's model card (README.md with ``model-index``) and its Hub leaderboard entries
(``.eval_results/imageattributionbench.yaml``). Scores are percentages in both."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import imageattributionbench as iab
from harness.plots import ROBUSTNESS_PNG, confusion_png_name
from harness.results import Results, iso_slug, leaderboard_values

if TYPE_CHECKING:  # huggingface_hub loads only when a card is made
    from huggingface_hub import ModelCard

EVAL_RESULTS_PATH = ".eval_results/imageattributionbench.yaml"
MODEL_CARD = "README.md"
TAGS = ["image-classification", "image-attribution", "imageattributionbench"]
_HUB_ID_RE = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


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


# What each open-set score is: the plain accuracy above counts every unknown image as an error.
OPEN_SET_SCORES = (
    "The model can only name the labels it was trained on, so `accuracy` above counts every "
    "image of an unknown generator as an error. *Known-class accuracy* is the accuracy on the "
    "images of known generators; *AUROC* is how well 1 - (largest probability over the known "
    "labels) ranks unknown images above known ones (0.5: chance); *OSCR*, the Open-Set "
    "Classification Rate (Dhamija et al., 2018), is the area under the share of known images "
    "accepted and named right against the share of unknown images accepted, over every "
    "rejection threshold (the known-class accuracy when rejection is perfect, 0 at worst).")


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
        parts += ["", f"Known-class accuracy {_pct(test.get('known_accuracy'))}, AUROC of "
                  f"rejecting unknown generators {_pct(test['auroc_unknown'])}, OSCR "
                  f"{_pct(test.get('oscr'))}" + (
                      f"; at the threshold chosen on validation (95% of known images kept), "
                      f"{_pct(test['unknown_rejection_rate'])} of unknown images rejected"
                      if test.get("unknown_rejection_rate") is not None else "") + ".", "",
                  OPEN_SET_SCORES]
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
