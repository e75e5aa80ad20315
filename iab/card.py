"""The dataset card (README.md) and eval.yaml of a built repo, from dataset_card/template.md."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from fnmatch import fnmatchcase
from importlib import resources
from itertools import product
from string import Template
from typing import TYPE_CHECKING

import yaml

import imageattributionbench as iab

if TYPE_CHECKING:
    from iab.shards import ImageStat


def template_text() -> str:
    return resources.files("iab.dataset_card").joinpath("template.md").read_text()


def pattern_matches(pattern: str, path: str) -> bool:
    pp, fp = pattern.split("/"), path.split("/")
    return len(pp) == len(fp) and all(fnmatchcase(f, p) for p, f in zip(pp, fp))


def _generalizations(path: str) -> list[str]:
    """Patterns that match ``path``, most general first: any middle folder may become ``*``
    and the file name ``*.parquet``; the path itself comes last."""
    parts = path.split("/")
    middle = parts[1:-1]
    cands = []
    for stars in product((True, False), repeat=len(middle)):
        mids = ["*" if s else m for s, m in zip(stars, middle)]
        cands.append((sum(stars), "/".join([parts[0], *mids, "*.parquet"])))
    cands.sort(key=lambda c: -c[0])
    return [c for _, c in cands] + [path]


def data_file_patterns(files: list[str], all_files: set[str]) -> list[str]:
    """Compact data_files for a split: the most general globs that match no file outside it
    and no file an earlier glob matched (load_dataset reads a file twice if two globs match
    it)."""
    members: dict[str, set[str]] = defaultdict(set)
    for f in all_files:
        for cand in _generalizations(f):
            members[cand].add(f)
    wanted, patterns, covered = set(files), [], set()
    for f in sorted(files):
        if f in covered:
            continue
        for cand in _generalizations(f):
            if members[cand] <= wanted and not members[cand] & covered:
                patterns.append(cand)
                covered |= members[cand]
                break
    return patterns


def expand_patterns(patterns: list[str], files: set[str]) -> set[str]:
    """The files that data_files patterns select."""
    out = {p for p in patterns if p in files}
    for p in patterns:
        if any(ch in p for ch in "*?["):
            out |= {f for f in files if pattern_matches(p, f)}
    return out


def _size_category(n: int) -> str:
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
                        (1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M")):
        if n < limit:
            return name
    return "10M<n<100M"


# Where the paper's real photographs of each subclass come from (the card's source_datasets)
SOURCE_DATASETS = {"cat": "AFHQ", "dog": "AFHQ", "wild": "AFHQ", "FFHQ": "FFHQ",
                   "celebahq": "CelebA-HQ", "bedroom": "LSUN", "church": "LSUN",
                   "classroom": "LSUN", "ImageNet-1k": "ImageNet", "COCO": "COCO"}
DEMO_MODEL_PREFIX = "tiny-random/"  # generation --tiny records model_id tiny-random/<generator>


def is_demo(stats: list["ImageStat"]) -> bool:
    """A demo build: its generated rows come from tiny random-weight pipelines."""
    return any((s.model_id or "").startswith(DEMO_MODEL_PREFIX) for s in stats)


def card_metadata(configs: dict[str, dict[str, list[str]]], counts: dict[str, dict[str, int]],
                  sizes: dict[str, int], total_rows: int, stats: list["ImageStat"] | None = None,
                  repo_id: str = iab.HUB_REPO_ID) -> dict:
    """The YAML front matter (hub-docs datasetcard.md fields only): Hub metadata, ``configs``
    and one ``dataset_info`` per config."""
    from datasets import DatasetInfo, SplitDict, SplitInfo

    all_files = set(sizes)
    feats = iab.features()
    configs_yaml, infos = [], []
    for name, splits in configs.items():
        entry = {"config_name": name}
        if iab.PROTOCOLS[name].default:
            entry["default"] = True
        entry["data_files"] = [{"split": s, "path": data_file_patterns(files, all_files)}
                               for s, files in splits.items()]
        configs_yaml.append(entry)
        split_dict = SplitDict()
        for s, files in splits.items():
            split_dict.add(SplitInfo(name=s, num_bytes=sum(sizes[f] for f in files),
                                     num_examples=counts[name][s]))
        info = DatasetInfo(features=feats, splits=split_dict,
                           download_size=sum(sizes[f] for fs in splits.values() for f in fs),
                           dataset_size=sum(sizes[f] for fs in splits.values() for f in fs))
        infos.append({"config_name": name, **info._to_yaml_dict()})
    stats = stats or []
    present = [sem for sem in iab.SEMANTICS if any(st.semantic == sem for st in stats)]
    sources = sorted({SOURCE_DATASETS[sem] for sem in present if sem in SOURCE_DATASETS})
    meta = {
        "pretty_name": iab.BENCHMARK_NAME + (" (demo build)" if is_demo(stats) else ""),
        "license": "other",
        "license_name": "imageattributionbench-mixed",
        # the card's own Licenses section says what applies to which images
        "license_link": f"https://huggingface.co/datasets/{repo_id}/blob/main/README.md#licenses",
        "language": ["en"],
        "task_categories": ["image-classification"],
        "tags": ["image-attribution", "model-attribution", "ai-generated-image-detection",
                 "synthetic-image-detection", "image-forensics", "benchmark"],
        "size_categories": [_size_category(total_rows)],
        "source_datasets": sources if sources and not is_demo(stats) else None,
        "configs": configs_yaml,
        "dataset_info": infos,
    }
    return {k: v for k, v in meta.items() if v is not None}


def _table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _configs_table(counts: dict[str, dict[str, int]]) -> str:
    rows = []
    for name, splits in counts.items():
        desc = iab.PROTOCOLS[name].description
        for i, (split, n) in enumerate(splits.items()):
            rows.append([f"`{name}`" if i == 0 else "", f"`{split}`", f"{n:,}",
                         desc if i == 0 else ""])
    return _table(["config", "split", "rows", "what it is"], rows)


def _images_table(stats: list["ImageStat"]) -> str:
    present = [s for s in iab.SEMANTICS if any(st.semantic == s for st in stats)]
    count = Counter((st.label, st.semantic) for st in stats)
    rows = []
    for label in iab.LABELS:
        row = [count[(label, s)] for s in present]
        if any(row):
            rows.append([f"`{label}`", *row, sum(row)])
    totals = [sum(count[(lb, s)] for lb in iab.LABELS) for s in present]
    rows.append(["**all**", *totals, sum(totals)])
    return _table(["label", *present, "all"], rows)


def _biases_table(stats: list["ImageStat"]) -> str:
    by_label: dict[str, list] = defaultdict(list)
    for st in stats:
        by_label[st.label].append(st)
    rows = []
    for label in iab.LABELS:
        sts = by_label.get(label)
        if not sts:
            continue
        n = len(sts)
        formats = ", ".join(f"{f} {100 * c / n:.0f}%" for f, c in
                            Counter(s.format for s in sts).most_common())
        sizes = Counter(f"{s.width}x{s.height}" for s in sts)
        common, c = sizes.most_common(1)[0]
        size_text = f"{common} ({100 * c / n:.0f}%)" + (f", {len(sizes)} sizes" if len(sizes) > 1
                                                       else "")
        qs = [s.jpeg_quality for s in sts if s.jpeg_quality is not None]
        q_text = f"{statistics.median(qs):g} ({min(qs)}-{max(qs)})" if qs else "-"
        kb = statistics.mean(s.nbytes for s in sts) / 1024
        rows.append([f"`{label}`", n, formats, size_text, q_text, f"{kb:.1f}"])
    return _table(["label", "images", "format", "most common size", "JPEG quality median (range)",
                   "mean KB"], rows)


def _shortcut_table(stats: list["ImageStat"]) -> str:
    from iab.shortcut import scores

    rows = [[f"`{s.protocol}`", f"{100 * s.accuracy:.1f}%", f"{100 * s.chance:.1f}%", s.n_test,
             "**yes: a shortcut leaks**" if s.leaks else "no"] for s in scores(stats)]
    if not rows:
        return "No protocol of this build has both a train and a test split."
    return _table(["protocol", "shortcut test accuracy", "chance (largest label)", "test images",
                   "above chance"], rows)


def _row_settings(stats: list["ImageStat"]) -> str:
    """What a label's rows of this build really hold: model id, steps, guidance, size."""
    if not stats:
        return "no"
    models = Counter(s.model_id for s in stats if s.model_id)
    steps = Counter(s.steps for s in stats if s.steps is not None)
    guidance = Counter(s.guidance for s in stats if s.guidance is not None)
    sizes = Counter(f"{s.width}x{s.height}" for s in stats)
    parts = [f"{len(stats)} rows"]
    if models:
        parts.append(", ".join(f"`{m}`" for m, _ in models.most_common(2)))
    if steps:
        parts.append(f"{steps.most_common(1)[0][0]} steps")
    if guidance:
        parts.append(f"guidance {guidance.most_common(1)[0][0]:g}")
    parts.append(sizes.most_common(1)[0][0])
    return "; ".join(parts)


def paper_settings_text(g: iab.Generator) -> str:
    """The paper profile in a few words (the card's Labels table)."""
    p = g.paper
    if p is None:
        return "not in the paper's code"
    bits = [f"`{p.model}`"]
    if p.steps is not None:
        bits.append(f"{p.steps} steps, guidance {p.guidance:g}")
    if p.width is not None:
        bits.append(f"{p.width} px")
    if p.negative_prompt == iab.PAPER_NEGATIVE_PROMPT:
        bits.append("SD negative prompt")
    elif p.negative_prompt:
        bits.append("negative prompt")
    bits += [f"{k} {v}" for k, v in p.extra]
    return ", ".join(bits)


def _generators_table(present: set[str], stats: list["ImageStat"] | None = None) -> str:
    by_label: dict[str, list] = defaultdict(list)
    for st in stats or []:
        by_label[st.label].append(st)

    def here(name: str) -> str:
        if stats is None:
            return "yes" if name in present else "no"
        return _row_settings(by_label.get(name, []))

    rows = [["0", "`real`", "real photographs", "-", "-", "-", "-", here(iab.REAL)]]
    for g in iab.GENERATORS:
        if g.runs == "diffusers":
            how = (f"diffusers `{g.pipeline}` (`{g.hub_id}`), {g.steps} steps, "
                   f"guidance {g.guidance:g}, {g.resolution} px")
        else:
            how = f"API ({g.api})" if g.runs == "api" else "imported images"
        if g.watermark_crop:
            c = g.watermark_crop
            how += f"; watermark cropped (right {c.right} px, bottom {c.bottom} px)"
        rows.append([str(g.label_id), f"`{g.name}`", g.display_name, g.organization, g.released,
                     how, paper_settings_text(g), here(g.name)])
    return _table(["id", "label", "model", "by", "released", "how images are made (model card)",
                   "the paper's settings", "in this build (what its rows hold)"], rows)


def paper_split_text(paper: dict | None) -> str:
    """What the card says about the official loader's selection and the paper_exact configs."""
    if not paper:
        return "Not computed for this build."
    n, selected = paper["rows"], paper["selected"]
    if selected == n:
        selection = (f"**Selection: paper.** Every one of the {n:,} images is one the official "
                     "loader uses (`iab import --selection paper`, or images that pass its rule).")
    else:
        selection = (f"**Selection: all images.** {n:,} images, of which {selected:,} are in the "
                     "official loader's subset (`.png` generator files with prompt index < 1000 "
                     "and image index 0-1, Midjourney 0-3; the first 2,000 per generator and "
                     "subclass in sorted name order; real: the first 2,000 `.png/.jpg/.jpeg`). "
                     "`iab import --selection paper` keeps only those.")
    if not selected:
        return selection + " No paper_exact config: none of its images are here."
    shared, test = paper["test_sharing_a_train_prompt"], paper["test"]
    if not paper.get("configs", True):
        return "\n\n".join([selection, (
            f"The paper's own split of those images (`iab build --paper-split` adds it as the "
            f"`paper_exact*` configs) would put {test:,} of them in its test split, **{shared:,} "
            "of which share a prompt with one of its training images**. The standard split has "
            "none by construction.")])
    return "\n\n".join([
        selection,
        "The `paper_exact*` configs reproduce the paper's own split of those images exactly "
        "(its dataloader.py: per label a shuffle seeded 42, 80/10/10 by truncation, the train "
        "list cut to even length; the three semantic tasks 80/20 within the training subclass, "
        "test = every other subclass). They depend on every image of the build, as in the "
        "official code, and exist to compare with the paper's numbers; the prompt-grouped "
        "folds above stay the benchmark's splits.",
        f"Leakage: **{shared:,} of the {test:,} `paper_exact` test images share a prompt with a "
        "`paper_exact` training image** (the same caption drawn by another generator, or the "
        "real photograph it was captioned from). The standard split has none by construction.",
    ])


def _degradations_table() -> str:
    return _table(["split", "paper level", "what is applied", "stored as"],
                  [[f"`{d.name}`", d.level, d.description, d.output_format]
                   for d in iab.DEGRADATIONS.values()])


def _load_examples(counts: dict[str, dict[str, int]], repo_id: str) -> str:
    lines = ["```python", "from datasets import load_dataset", ""]
    for name, splits in counts.items():
        lines.append(f'ds = load_dataset("{repo_id}", "{name}")  # splits: {", ".join(splits)}')
    lines += ["", "# or, with the project's helper (checks config and split names first):",
              "import imageattributionbench as iab",
              'test = iab.load("semantic_disjoint", split="test")', "```"]
    return "\n".join(lines)


def _demo_notice(stats: list["ImageStat"]) -> str:
    if not is_demo(stats):
        return ""
    reals = Counter((s.source or "unknown").split(":")[0] for s in stats if s.label == iab.REAL)
    real_text = ", ".join(f"{src} ({n})" for src, n in reals.most_common()) or "none"
    return ("> **This is a demo build**, made offline on CPU by `iab demo`: its generated images "
            "come from tiny random-weight versions of the diffusers pipelines "
            f"(`model_id` `{DEMO_MODEL_PREFIX}<generator>`, a few steps, small images; the "
            "Labels table shows what its rows really hold), and its real images from: "
            f"{real_text}. Numbers measured on it say nothing about the real generators: use "
            f"the published dataset `{iab.HUB_REPO_ID}` for that.\n\n")


def render(configs: dict[str, dict[str, list[str]]], counts: dict[str, dict[str, int]],
           skipped: dict[str, str], stats: list["ImageStat"], sizes: dict[str, int],
           fingerprint: str, repo_id: str = iab.HUB_REPO_ID, paper: dict | None = None) -> str:
    """The full README.md of a built repo."""
    meta = card_metadata(configs, counts, sizes, len(stats), stats, repo_id)
    front = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=100)
    labels_present = {s.label for s in stats}
    skipped_text = ("\n".join(f"- `{k}`: {v}" for k, v in skipped.items())
                    if skipped else "None: every config has rows in every split.")
    body = Template(template_text()).substitute(
        version=iab.BENCHMARK_VERSION,
        arxiv=iab.PAPER_ARXIV,
        total_rows=f"{len(stats):,}",
        n_labels=len(labels_present),
        n_semantics=len({s.semantic for s in stats}),
        configs_table=_configs_table(counts),
        skipped=skipped_text,
        images_table=_images_table(stats),
        generators_table=_generators_table(labels_present, stats),
        demo_notice=_demo_notice(stats),
        paper_url=f"https://arxiv.org/abs/{iab.PAPER_ARXIV}",
        degradations_table=_degradations_table(),
        paper_split=paper_split_text(paper),
        load_examples=_load_examples(counts, repo_id),
        biases_table=_biases_table(stats),
        shortcut_table=_shortcut_table(stats),
        cutoff=iab.OPEN_SET_CUTOFF,
        known_labels=", ".join(f"`{k}`" for k in iab.known_labels()),
        fingerprint=fingerprint,
        superclasses="; ".join(f"{sup}: {', '.join(subs)}"
                               for sup, subs in iab.SUPERCLASSES.items()),
    )
    return f"---\n{front}---\n\n{body}"


EVALUATION_FRAMEWORK = "imageattributionbench"  # to be added to huggingface.js eval.ts


def eval_tasks(configs=None) -> list[dict]:
    """The Hub leaderboard tasks as eval.yaml declares them: id, config and one split each
    (``imageattributionbench.HUB_TASKS``, those whose config the build has; the spec has no
    other task fields for this framework)."""
    return [{"id": t.id, "config": t.config, "split": t.split} for t in iab.HUB_TASKS
            if configs is None or t.split in configs.get(t.config, ())]


def render_eval_yaml(configs: dict | None = None) -> str:
    """eval.yaml (hub-docs eval-results.md): ``name``, ``description``,
    ``evaluation_framework`` and ``tasks``, nothing else.

    Model repos report the tasks in ``.eval_results/imageattributionbench.yaml`` (written by
    harness/run.py) with these task ids; values are percentages. The framework id is the
    project's own: the Hub validates it against huggingface.js ``EVALUATION_FRAMEWORKS``
    (packages/tasks/src/eval.ts), where it must be added, and the benchmark must be
    allow-listed by the Hub before its leaderboards show (README, Leaderboard).
    """
    doc = {
        "name": iab.BENCHMARK_NAME,
        "description": "Which generative model made this image? Attribution among real images "
                       "and text-to-image generators, under unseen semantics, degradations and "
                       f"unknown generators (arXiv:{iab.PAPER_ARXIV}). Values are percentages.",
        "evaluation_framework": EVALUATION_FRAMEWORK,
        "tasks": eval_tasks(configs),
    }
    return yaml.safe_dump(doc, sort_keys=False, width=100)
