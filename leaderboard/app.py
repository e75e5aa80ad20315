"""Entry point of the leaderboard Space: ``python app.py`` (on the Space) or
``python -m leaderboard.app --results-dir results`` (from a checkout).

Without arguments it reads the Hub results repo; environment variables RESULTS_REPO,
RESULTS_DIR and DATASET_REVISION set the defaults, so a Space is configured in its settings.
"""

from __future__ import annotations

import argparse
import os

from iab.scripts import DefaultsHelpFormatter
from leaderboard.ui import HUB_RESULTS_REPO, Source, build_demo

DESCRIPTION = ("Serve the ImageAttributionBench leaderboard (a Gradio app): the results files "
               "of a local folder or of the Hub results repo, ranked, with charts and the files "
               "it rejected and why.")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        formatter_class=DefaultsHelpFormatter, description=DESCRIPTION)
    src = p.add_argument_group("results").add_mutually_exclusive_group()
    src.add_argument("--results-dir", default=os.environ.get("RESULTS_DIR"),
                     help="local folder of <org>/<model>/results_<time>.json files")
    src.add_argument("--results-repo", default=None,
                     help=f"results dataset repo on the Hub (default {HUB_RESULTS_REPO})")
    p.add_argument("--dataset-revision", default=os.environ.get("DATASET_REVISION"),
                   help="rank only results run on this dataset revision; others are rejected")
    srv = p.add_argument_group("server")
    srv.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                     help="address to serve on (GRADIO_SERVER_NAME)")
    srv.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
                     help="port (GRADIO_SERVER_PORT)")
    args = p.parse_args(argv)
    if args.results_dir is None and args.results_repo is None:
        args.results_repo = os.environ.get("RESULTS_REPO", HUB_RESULTS_REPO)
    return args


def main(args: argparse.Namespace) -> None:
    source = Source(results_dir=args.results_dir, results_repo=args.results_repo,
                    dataset_revision=args.dataset_revision)
    build_demo(source).launch(server_name=args.host, server_port=args.port)


if __name__ == "__main__":
    main(parse_args())
