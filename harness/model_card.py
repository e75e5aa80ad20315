"""A run's model card (README.md with ``model-index``) and its Hub leaderboard entries
(``.eval_results/imageattributionbench.yaml``). Scores are percentages in both."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import imageattributionbench as iab
from harness.plots import ROBUSTNESS_PNG, confusion_png_name
from harness.results import (Results, hub_dataset, hub_task_values, iso_slug,
                             leaderboard_values)

if TYPE_CHECKING:  # huggingface_hub loads only when a card is made
    from huggingface_hub import ModelCard

EVAL_RESULTS_PATH = ".eval_results/imageattributionbench.yaml"
MODEL_CARD = "README.md"
TAGS = ["image-classification", "image-attribution", "imageattributionbench"]
PAPER_URL = f"https://arxiv.org/abs/{iab.PAPER_ARXIV}"
# Hub metric ids (https://hf.co/metrics) of each results metric the model-index reports
METRIC_IDS = {"accuracy": "accuracy", "auroc_unknown": "roc_auc"}
_HUB_ID_RE = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True)
class CardInfo:
    """What the card says about the repo it is for, beyond the results."""

    repo_id: str | None = None  # the model repo the card is for (the model-index name)
    base_model: str | list[str] | None = None  # Hub id(s) the trained model starts from
    license: str | None = None
    license_name: str | None = None  # license "other": its id and link
    license_link: str | None = None
    library_name: str | None = None  # "transformers" for a saved model folder


def hub_id(name: str | None) -> str | None:
    """``name`` when it reads as a Hub repo id (``org/name``) and is no local folder, else None."""
    if not name or not _HUB_ID_RE.match(name) or Path(name).exists():
        return None
    return name


def _model_index(results: Results) -> list:
    """One model-index result per Hub task value: each names its config and split."""
    from huggingface_hub import EvalResult

    target = hub_dataset(results)
    if target is None:  # a local build: nothing the Hub may file under the benchmark
        return []
    tasks = {t.id: t for t in iab.HUB_TASKS}
    return [EvalResult(
        task_type="image-classification",
        task_name="Image attribution",
        dataset_type=target[0],
        dataset_name=iab.BENCHMARK_NAME,
        dataset_config=tasks[task_id].config,
        dataset_split=tasks[task_id].split,
        dataset_revision=target[1],
        metric_type=METRIC_IDS[tasks[task_id].metric],
        metric_name=tasks[task_id].name,
        metric_value=value,
    ) for task_id, value in hub_task_values(results).items()]


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


def _usage_section(results: Results, info: CardInfo, is_method: bool) -> list[str]:
    """How a Hub user runs the pushed model (a method needs this project's package)."""
    repo = info.repo_id or "ORG/NAME"
    if results["method"] == "linear_probe":
        return ["## How to use", "",
                f"`linear_probe_head.safetensors` is a linear head over the frozen image "
                f"features of `{results['model']['id']}` (see `harness/models.py`, "
                "`LinearProbe`, in the ImageAttributionBench project).", ""]
    lines = ["## How to use", ""]
    if is_method:
        lines += ["This is a paper method of the ImageAttributionBench project: its model "
                  "class is registered with the Auto classes by `import methods` (no remote "
                  "code, so `trust_remote_code` is not needed). Install the project's package "
                  "from a clone of its repository, then load it:", "",
                  "```bash", "pip install -e \".[harness]\"   # in the project's folder",
                  "```", ""]
    lines += ["```python"] + (["import methods  # registers the paper's methods"]
                              if is_method else []) + [
        "from transformers import pipeline", "",
        f'attribute = pipeline("image-classification", model="{repo}")',
        'attribute("image.png")  # [{"label": "SDXL", "score": 0.97}, ...]',
        "```", "",
        "The saved image processor is the preprocessing the scores below were computed with "
        f"(`{results['run_config'].get('preprocess', {}).get('policy', 'unknown')}`).", ""]
    return lines


def _card_body(results: Results, title: str, info: CardInfo) -> str:
    values = hub_task_values(results)
    means = leaderboard_values(results)
    tasks = {t.id: t for t in iab.HUB_TASKS}
    mean_tasks = {t.id: t for t in iab.LEADERBOARD_TASKS}
    model = results["model"]
    ds = results["dataset"]
    target = hub_dataset(results)
    if target:
        where = (f"[{iab.BENCHMARK_NAME}](https://huggingface.co/datasets/{target[0]}) "
                 f"`{target[0]}` at `{target[1][:12]}`")
    else:
        where = (f"a **local build** of {iab.BENCHMARK_NAME} (`{ds['repo']}`, fingerprint "
                 f"`{(ds.get('fingerprint') or 'unknown')[:16]}`; not the published dataset, "
                 "so these numbers are no leaderboard entries)")
    lines = [
        f"# {title} on {iab.BENCHMARK_NAME}",
        "",
        f"`{model['id']}`" + (f" (revision `{model['revision']}`)" if model["revision"] else "")
        + f" evaluated with method `{results['method']}` on {where} (benchmark version "
        f"{results['benchmark_version']}). {iab.BENCHMARK_NAME} asks which generative model "
        f"made an image: see the [paper]({PAPER_URL}).",
        "",
    ]
    if values:
        lines += ["## Leaderboard" if target else "## Headline numbers", "",
                  f"The Hub leaderboards of `{target[0]}` (its `eval.yaml` tasks):" if target
                  else "The benchmark's headline numbers (a local build: not leaderboard "
                       "entries):", "",
                  _table(["task", "config / split", "value (%)"],
                         [[f"{tasks[k].name} (`{k}`)",
                           f"`{tasks[k].config}` / `{tasks[k].split}`", f"{v:.2f}"]
                          for k, v in values.items()], ), ""]
    means = {k: v for k, v in means.items() if k not in tasks}
    if means:
        lines += ["Summaries over several splits or configs (the Gradio leaderboard's "
                  "columns):", "",
                  _table(["summary", "value (%)"],
                         [[f"{mean_tasks[k].name}: {mean_tasks[k].description}", f"{v:.2f}"]
                          for k, v in means.items()]), ""]
    record = results["run_config"].get("method_record")
    if record:
        lines += _method_section(record)
    lines += _usage_section(results, info, bool(record))
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


def model_card(results: Results, info: CardInfo | str | None = None) -> "ModelCard":
    """The model card of a run: YAML metadata (license, library, base model, tags, dataset,
    ``model-index`` with one result per Hub task, in percent) and a body with per-protocol
    tables, the plots that :func:`write_report` saves next to it, and how to use the model.
    ``info`` names the repo the card is for (a plain string: its id)."""
    from huggingface_hub import ModelCard, ModelCardData

    if not isinstance(info, CardInfo):
        info = CardInfo(repo_id=info)
    model_id = results["model"]["id"]
    name = info.repo_id or model_id
    target = hub_dataset(results)
    index = _model_index(results)
    data = ModelCardData(
        model_name=name if index else None,  # only the model-index carries a name
        license=info.license,
        license_name=info.license_name,
        license_link=info.license_link,
        library_name=info.library_name,
        base_model=info.base_model,
        tags=list(TAGS),
        datasets=[target[0]] if target else None,
        metrics=sorted(set(METRIC_IDS.values())),
        pipeline_tag="image-classification",
        eval_results=index or None,
    )
    body = _card_body(results, name, info)
    return ModelCard.from_template(data, template_str="---\n{{ card_data }}\n---\n\n{{ body }}",
                                   body=body)


def eval_results_entries(results: Results, date: str | datetime,
                         source_url: str | None = None, source_user: str | None = None
                         ) -> list[dict]:
    """The entries of ``.eval_results/imageattributionbench.yaml``: one per Hub task value,
    ``{dataset: {id, task_id, revision}, value (percent), date, source: {url, name, user},
    notes (the method and input policy)}``; none for a local build."""
    from huggingface_hub import EvalResultEntry, eval_result_entries_to_yaml

    target = hub_dataset(results)
    if target is None:
        return []
    if isinstance(date, datetime):
        date = date.isoformat()
    policy = results["run_config"].get("preprocess", {}).get("policy")
    notes = results["method"] + (f", {policy}" if policy else "")
    entries = [
        EvalResultEntry(
            dataset_id=target[0],
            task_id=task_id,
            value=value,
            dataset_revision=target[1],
            date=date,
            source_url=source_url,
            source_name=f"{iab.BENCHMARK_NAME} results file" if source_url else None,
            source_user=source_user if source_url else None,
            notes=notes,
        )
        for task_id, value in hub_task_values(results).items()
    ]
    return eval_result_entries_to_yaml(entries)
