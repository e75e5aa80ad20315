"""The built dataset card and eval.yaml."""

import json

import yaml

import imageattributionbench as iab


def _front_matter(repo):
    text = (repo / "README.md").read_text()
    _, front, body = text.split("---\n", 2)
    return yaml.safe_load(front), body


def test_card_metadata(built):
    repo, report = built
    meta, _ = _front_matter(repo)
    assert meta["license"] == "other" and meta["license_name"]
    assert meta["task_categories"] == ["image-classification"]
    assert meta["size_categories"] == ["n<1K"] and meta["pretty_name"] == "ImageAttributionBench"
    assert "image-attribution" in meta["tags"]
    assert [c["config_name"] for c in meta["configs"]] == list(report.configs)
    assert [c for c in meta["configs"] if c.get("default")][0]["config_name"] == "standard"
    infos = {i["config_name"]: i for i in meta["dataset_info"]}
    assert list(infos) == list(report.configs)
    for name, counts in report.configs.items():
        assert {s["name"]: s["num_examples"] for s in infos[name]["splits"]} == counts
        label = next(f for f in infos[name]["features"] if f["name"] == "label")
        assert list(label["dtype"]["class_label"]["names"].values()) == list(iab.LABELS)


def test_card_prose(built):
    repo, report = built
    _, body = _front_matter(repo)
    for heading in ("## Configs and splits", "## How to load", "## Images per label and subclass",
                    "## Folds", "## Degradations", "## Known biases", "## Citation"):
        assert heading in body
    assert f'load_dataset("{iab.HUB_REPO_ID}", "semantic_disjoint_ffhq")' in body
    # the images table: one row per label with its total
    assert "| `SD1_5` | 5 | 5 | 5 | 5 | 5 | 5 | 5 | 5 | 5 | 5 | 50 |" in body
    # known biases: the demo's real images keep their sources' formats (JPEG for .jpg sources)
    real = next(line for line in body.splitlines() if line.startswith("| `real` | 50 |"))
    assert "JPEG 60%, PNG 40%" in real and "| 90 (90-90) |" in real
    assert "| `FLUX` | 50 | PNG 100% | 32x32 (100%) | - |" in body
    for cfg, counts in report.configs.items():
        assert f"| `{cfg}` | `{next(iter(counts))}` | {next(iter(counts.values())):,} |" in body


def test_eval_yaml_declares_the_leaderboard_tasks(built):
    repo, report = built
    doc = yaml.safe_load((repo / "eval.yaml").read_text())
    # hub-docs eval-results.md: these four keys; each task an id, one config and one split
    assert list(doc) == ["name", "description", "evaluation_framework", "tasks"]
    assert doc["name"] == "ImageAttributionBench"
    assert doc["evaluation_framework"] == "imageattributionbench"
    ids = [t["id"] for t in doc["tasks"]]
    assert ids == [t.id for t in iab.HUB_TASKS if t.config in report.configs]
    assert len(set(ids)) == len(ids) and "standard_accuracy" in ids
    for task in doc["tasks"]:
        assert set(task) == {"id", "config", "split"}
        assert isinstance(task["split"], str)
        assert task["split"] in report.configs[task["config"]]


def test_eval_yaml_leaves_out_tasks_of_configs_a_build_lacks():
    from iab.card import eval_tasks

    tasks = eval_tasks({"standard": {"train": [], "validation": [], "test": []}})
    assert tasks == [{"id": "standard_accuracy", "config": "standard", "split": "test"}]


def test_manifest_matches_the_files(built):
    repo, report = built
    manifest = json.loads((repo / "manifest.json").read_text())
    assert manifest["rows"] == report.rows and manifest["fingerprint"] == report.fingerprint
    for shard in manifest["shards"]:
        assert (repo / shard["path"]).stat().st_size == shard["bytes"]
