"""The label check of a trained attributor, torch-free: the leaderboard's Submit tab runs the
harness's own check on a model's config.json before queueing it."""

from __future__ import annotations

import imageattributionbench as iab


def label_index(id2label: dict) -> list[int]:
    """Benchmark label id of each model output, or a clear error naming what does not fit:
    names that are not benchmark labels, or a name given to two outputs (one of them would
    be silently dropped)."""
    names = [id2label[i] for i in sorted(id2label, key=int)]
    seen: dict[str, list[int]] = {}
    for i, n in enumerate(names):
        seen.setdefault(n, []).append(i)
    repeated = {n: outs for n, outs in seen.items() if len(outs) > 1}
    if repeated:
        raise iab.BenchmarkError(
            "the model's id2label gives one name to several outputs: " + "; ".join(
                f"{n!r} (outputs {', '.join(map(str, outs))})" for n, outs in repeated.items())
            + "; each output must have its own benchmark label: fix id2label in config.json")
    unknown = [n for n in names if n not in iab.LABEL_IDS]
    if unknown:
        raise iab.BenchmarkError(
            f"the model's labels {', '.join(map(repr, unknown))} are not benchmark labels; a "
            f"scored model's id2label must use these names: {', '.join(iab.LABELS)} (or "
            "fine-tune it: --method finetune)")
    return [iab.LABEL_IDS[n] for n in names]
