"""The paper_exact configs equal the official split code's own output on the same files
(tests/data/paper_split: made once by running the official dataloader.py outside the project)."""

import json
from pathlib import Path

import pytest

import imageattributionbench as iab
from iab import official, paper_split
from iab.build import build
from iab.importer import import_images
from iab.verify import verify

import paper_replica as rep

FIXTURE = Path(__file__).parent / "data" / "paper_split"
TASKS = {"task1": "cat", "task2": "bedroom", "task3": "FFHQ"}
SEMANTIC_OF_FOLDER = {rel.split("/")[-1]: s for s, rel in official.LOADER_SEMANTICS.items()}


@pytest.fixture(scope="module")
def names():
    listed = (FIXTURE / "split_files.txt").read_text().split()
    assert listed == rep.split_names(), "the replica changed: rerun the official code (README)"
    return listed


@pytest.fixture(scope="module")
def official_out():
    return json.loads((FIXTURE / "split_membership.json").read_text())


def entries(names):
    out = []
    for i, n in enumerate(names):
        parts = n.split("/")
        out.append(paper_split.Entry(official.OFFICIAL_FOLDERS[parts[0]],
                                     SEMANTIC_OF_FOLDER[parts[-2]], parts[-1], i))
    return out


def test_split_module_equals_the_official_code(names, official_out):
    samples = paper_split.loader_samples(entries(names))
    assert [e.key for e in samples] == official_out["loader_samples"]
    std = paper_split.standard_split(samples)
    got = {part: sorted(samples[i].key for i, p in std.items() if p == part)
           for part in ("train", "validation", "test", "dropped")}
    assert {k: got[k] for k in ("train", "validation", "test")} == official_out["standard"]
    assert len(got["dropped"]) == 1  # the even-length cut is exercised
    for task, semantic in TASKS.items():
        split = paper_split.semantic_split(samples, semantic)
        for part in ("train", "validation", "test"):
            assert sorted(samples[i].key for i, p in split.items() if p == part) == \
                official_out[task][part], (task, part)


@pytest.fixture(scope="module")
def paper_repo(names, tmp_path_factory):
    root = tmp_path_factory.mktemp("paper_exact")
    src = rep.write_tree(root / "tree", rep.files_of(names))
    import_images(src, root / "raw")
    report = build([root / "raw"], root / "repo", progress=False, paper_split=True)
    return root / "repo", report


def _members(repo, config, split, names):
    ds = iab.load(config, split=split, repo=str(repo))
    index = {n: i for i, n in enumerate(names)}
    return sorted(index[s.split(" ")[0]] for s in ds["source"])


def test_built_configs_equal_the_official_membership(paper_repo, names, official_out):
    repo, report = paper_repo
    for split in ("train", "validation", "test"):
        assert _members(repo, "paper_exact", split, names) == official_out["standard"][split]
    for task, semantic in TASKS.items():
        config = f"paper_exact_semantic_{iab.config_slug(semantic)}"
        for split in ("train", "validation", "test"):
            assert _members(repo, config, split, names) == official_out[task][split], \
                (config, split)
    # the six degraded test splits hold the paper_exact test images, degraded
    test = official_out["standard"]["test"]
    for d in iab.DEGRADATIONS:
        assert _members(repo, "paper_exact_degraded", d, names) == test
    assert verify(repo)[0] == []


def test_card_reports_selection_and_shared_prompts(paper_repo, official_out):
    repo, report = paper_repo
    paper = report.paper_split
    assert paper["selected"] == len(official_out["loader_samples"]) < paper["rows"]
    assert paper["test"] == len(official_out["standard"]["test"])
    # generators drew the same captions: most paper test images share a prompt with training
    assert 0 < paper["test_sharing_a_train_prompt"] <= paper["test"]
    card = (repo / "README.md").read_text()
    assert "**Selection: all images.**" in card
    assert (f"**{paper['test_sharing_a_train_prompt']:,} of the {paper['test']:,} "
            "`paper_exact` test images share a prompt") in card
    manifest = json.loads((repo / "manifest.json").read_text())
    assert manifest["paper_split"] == paper


def test_card_says_selection_paper_when_every_image_passes(tmp_path):
    names = [n for n in rep.split_names()[:60]]
    src = rep.write_tree(tmp_path / "tree", rep.files_of(names))
    import_images(src, tmp_path / "raw", selection="paper")
    report = build([tmp_path / "raw"], tmp_path / "repo", progress=False, paper_split=True)
    assert report.paper_split["selected"] == report.rows
    assert "**Selection: paper.**" in (tmp_path / "repo" / "README.md").read_text()


def test_harness_paper_exact_trains_and_scores_on_them(paper_repo, official_out, tmp_path):
    from harness import run as harness_run
    from harness.results_check import validate_results
    from harness.tiny_model import tiny_classifier

    repo, _ = paper_repo
    model = tiny_classifier(tmp_path / "model", size=16)
    out = tmp_path / "out"
    assert harness_run.main(harness_run.parse_args([
        "--model", str(model), "--method", "finetune", "--protocol", "paper_exact",
        "--dataset", str(repo), "--epochs", "1", "--batch-size", "32",
        "--output-dir", str(out)])) == 0
    (path,) = out.glob("results_*.json")
    results = json.loads(path.read_text())
    assert validate_results(results) == []
    protos = results["protocols"]
    assert set(protos) == {"paper_exact", "paper_exact_degraded", *iab.PAPER_EXACT_TASKS}
    n = results["n_samples"]
    assert n["paper_exact/test"] == len(official_out["standard"]["test"])
    for task, semantic in TASKS.items():
        config = f"paper_exact_semantic_{iab.config_slug(semantic)}"
        assert n[f"{config}/test"] == len(official_out[task]["test"])
        assert protos[config]["summary"]["unseen"] == protos[config]["splits"]["test"]["accuracy"]
    assert set(protos["paper_exact_degraded"]["summary"]["per_degradation"]) == \
        set(iab.DEGRADATIONS)
    # trained on the paper's train split, chosen on its validation split
    assert set(results["run_config"]["training"]) == {"paper_exact", *iab.PAPER_EXACT_TASKS}
