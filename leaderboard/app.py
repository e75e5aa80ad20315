"""Entry point of the leaderboard Space: ``python app.py`` (on the Space) or
``python -m leaderboard.app --results-dir results`` (from a checkout).

Without arguments it reads the Hub results repo; environment variables (the Space's settings)
set the defaults: RESULTS_REPO, RESULTS_DIR, REQUESTS_REPO, DATASET, DATASET_REVISION,
REQUIRE_VERIFIED, REFRESH_S, RETRY_S, LOCAL_BUILDS (folders holding local builds whose
results it verifies). The page starts even when the results repo cannot be
reached: a banner says so and the board retries.
"""

from __future__ import annotations

import argparse
import os

from iab.scripts import DefaultsHelpFormatter
from leaderboard.source import HUB_RESULTS_REPO, REFRESH_S, RETRY_S, Source

DESCRIPTION = ("Serve the ImageAttributionBench leaderboard (a Gradio app): the results files "
               "of a local folder or of the Hub results repo, ranked, with charts and the files "
               "it rejected and why.")


def parse_args(argv=None) -> argparse.Namespace:
    env = os.environ.get
    p = argparse.ArgumentParser(
        formatter_class=DefaultsHelpFormatter, description=DESCRIPTION)
    src = p.add_argument_group("results").add_mutually_exclusive_group()
    src.add_argument("--results-dir", default=env("RESULTS_DIR"),
                     help="local folder of results files (any layout: one entry per folder)")
    src.add_argument("--results-repo", default=None,
                     help=f"results dataset repo on the Hub (default {HUB_RESULTS_REPO})")
    rank = p.add_argument_group("ranking")
    rank.add_argument("--dataset", default=env("DATASET"),
                      help="rank results scored on this dataset repo (default: the one most "
                           "entries used)")
    rank.add_argument("--dataset-revision", default=env("DATASET_REVISION"),
                      help="rank results scored on this dataset revision; others are listed "
                           "unranked")
    rank.add_argument("--no-verify", dest="verify", action="store_false",
                      help="show self-reported numbers without recomputing them")
    rank.add_argument("--require-verified", action="store_true",
                      default=env("REQUIRE_VERIFIED", "") not in ("", "0", "false"),
                      help="reject entries whose numbers the samples do not confirm")
    p.add_argument("--requests-repo", default=env("REQUESTS_REPO"),
                   help="requests dataset repo: enables the Submit tab (needs HF_TOKEN)")
    p.add_argument("--refresh", type=float, default=float(env("REFRESH_S", REFRESH_S)),
                   help="seconds between reloads of the results")
    p.add_argument("--retry", type=float, default=float(env("RETRY_S", RETRY_S)),
                   help="seconds between retries while the results cannot be read")
    srv = p.add_argument_group("server")
    srv.add_argument("--host", default=env("GRADIO_SERVER_NAME", "127.0.0.1"),
                     help="address to serve on (GRADIO_SERVER_NAME)")
    srv.add_argument("--port", type=int, default=int(env("GRADIO_SERVER_PORT", "7860")),
                     help="port (GRADIO_SERVER_PORT)")
    args = p.parse_args(argv)
    if args.results_dir is None and args.results_repo is None:
        args.results_repo = env("RESULTS_REPO", HUB_RESULTS_REPO)
    return args


def main(args: argparse.Namespace) -> None:
    from leaderboard.ui import build_demo

    source = Source(results_dir=args.results_dir, results_repo=args.results_repo,
                    dataset=args.dataset, dataset_revision=args.dataset_revision,
                    verify=args.verify, require_verified=args.require_verified,
                    requests_repo=args.requests_repo, refresh_s=args.refresh,
                    retry_s=args.retry)
    # Up at once: a quick load without the check (it never raises: an unreachable repo gives
    # an empty board and a banner); the refresher verifies every entry straight after.
    source.reload(check=False)
    source.start_refresher(now=args.verify)
    build_demo(source).launch(server_name=args.host, server_port=args.port)


if __name__ == "__main__":
    main(parse_args())
