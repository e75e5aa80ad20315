"""What ``--push-to-hub`` and ``--results-repo`` need from the run: checked before training
(a refused push must not cost hours), and the model card's facts (base model, license).

The uploads themselves are ``harness.report.push_report``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import imageattributionbench as iab
from harness.model_card import CardInfo


def _token(args: argparse.Namespace) -> str | None:
    from huggingface_hub import get_token

    return args.hub_token or get_token()


def check_push(args: argparse.Namespace, source, model_local: bool) -> str | None:
    """Refuse a push that cannot succeed, before anything runs; returns the model repo the
    push goes to (the scored model's own repo for ``--method score``), or None for
    ``--results-repo`` alone."""
    from huggingface_hub import HfApi

    if source.hub_target is None:
        raise iab.BenchmarkError(
            f"--dataset {args.dataset!r} is a local build (fingerprint "
            f"{(source.fingerprint or 'unknown')[:16]}): its results cannot be pushed as "
            f"leaderboard entries. Evaluate on the Hub id (--dataset {iab.HUB_REPO_ID}), or "
            "name the Hub repo this folder copies with --hub-dataset ORG/NAME (its "
            "manifest.json must match that repo's)")
    scored = args.method == "score"
    if scored and args.push_to_hub and model_local:
        raise iab.BenchmarkError(
            f"--method score --push-to-hub adds the results to the scored model's own Hub "
            f"repo, and {args.model!r} is a local folder: push the model first and score it "
            "by its Hub id, or drop --push-to-hub (--results-repo still works)")
    token = _token(args)
    if not token:
        raise iab.BenchmarkError("no Hugging Face token: run `hf auth login`, set HF_TOKEN or "
                                 "pass --hub-token (a token with write access) before pushing")
    if not args.push_to_hub:
        return None
    if scored:
        return args.model
    try:
        user = HfApi(token=token).whoami()["name"]
    except Exception as e:  # no network, a revoked token: say so now, not after training
        raise iab.BenchmarkError(f"cannot check the Hub token ({type(e).__name__}: {e}); "
                                 "--push-to-hub needs the Hub reachable and a valid token") from e
    name = args.hub_model_id or \
        f"{Path(args.model.split(':')[1] if args.model.startswith('init:') else args.model).name}" \
        f"-{iab.BENCHMARK_NAME.lower()}"
    return name if "/" in name else f"{user}/{name}"


def _card_license(model: str, revision: str | None) -> dict:
    """license (and license_name/link) of a model's own card: a Hub id or a local folder."""
    from huggingface_hub import ModelCard

    try:
        folder = Path(model).expanduser()
        card = ModelCard.load(folder / "README.md") if folder.is_dir() else \
            ModelCard.load(model, repo_type="model")
    except Exception:  # no card, offline: the card says nothing rather than guessing
        return {}
    data = card.data.to_dict()
    return {k: data[k] for k in ("license", "license_name", "license_link") if data.get(k)}


def card_info(args: argparse.Namespace, requested: str, model_local: bool,
              hub_repo: str | None, record: dict | None) -> CardInfo:
    """The model card's repo, base model, license and library for this run."""
    base: str | list[str] | None = None
    if args.method != "score":
        if requested.startswith("init:"):
            from methods.init import PRETRAINED

            _, name, *scale = requested.split(":")
            weights = [] if scale else sorted(set(PRETRAINED.get(name, {}).values()))
            base = (weights[0] if len(weights) == 1 else weights) or None
        elif not model_local:
            base = requested
    licensed = {"license": args.license} if args.license else {}
    if not licensed:
        first = base[0] if isinstance(base, list) else base
        licensed = _card_license(first, args.model_revision) if first else \
            (_card_license(requested, None) if model_local and not
             requested.startswith("init:") else {})
    repo = hub_repo if args.method != "score" else None
    return CardInfo(repo_id=repo or args.hub_model_id, base_model=base,
                    library_name=None if args.method == "linear_probe" else "transformers",
                    **licensed)


def push(args: argparse.Namespace, out_dir: Path, hub_repo: str | None) -> list[str]:
    """The uploads of ``--push-to-hub`` / ``--results-repo``; a line per commit or PR."""
    from harness.report import push_report

    return push_report(out_dir, hub_repo if args.method != "score" else None,
                       token=_token(args), private=args.hub_private_repo,
                       results_repo=args.results_repo, model=args.push_to_hub)
