"""The evaluation backend: claims a pending request, scores the model, publishes the results.

    python -m leaderboard.backend --requests-repo ORG/ImageAttributionBench-requests \\
        --results-repo ORG/ImageAttributionBench-results             # one request, then exit
    python -m leaderboard.backend ... --loop --interval 60          # a GPU machine's service

Each request runs ``accelerate launch harness/run.py --method score`` on the model commit the
request names and on the dataset revision resolved once for it (so the results record it and
the board can verify them), then uploads the results JSON and its samples parquet to
``<model org>/<model name>/`` of the results repo in one commit and marks the request
FINISHED. A run that fails is marked FAILED with the reason and the tail of its log; a backend
stopped by a signal puts its request back to PENDING; one killed outright leaves it RUNNING,
and any backend claims it again once it is older than ``--stale-after`` hours. Claims are
compare-and-swap commits (:mod:`leaderboard.submissions`): two backends never run one request.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import imageattributionbench as iab
from iab.faults import fault_point
from iab.scripts import run_script
from leaderboard.submissions import (CAS_ATTEMPTS, DEFAULT_REQUESTS_REPO, FAILED, FINISHED,
                                     PENDING, PRECISIONS, RUNNING, commit_request, history,
                                     is_conflict, read_requests, update_request)

DEFAULT_RESULTS_REPO = f"{iab.HUB_REPO_ID}-results"
LOG_TAIL_CHARS = 4000
RUNNING_PROTOCOL = "all"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--requests-repo", default=DEFAULT_REQUESTS_REPO)
    p.add_argument("--results-repo", default=DEFAULT_RESULTS_REPO)
    p.add_argument("--dataset", default=iab.HUB_REPO_ID,
                   help="benchmark dataset repo id (or a folder built by `iab build`)")
    p.add_argument("--dataset-revision",
                   help="default: the dataset's main branch, resolved to its commit per request")
    p.add_argument("--protocol", default=RUNNING_PROTOCOL,
                   help="harness protocol to score every request on (default: all)")
    p.add_argument("--work-dir", default="backend_runs", help="one output folder per request")
    p.add_argument("--loop", action="store_true", help="keep polling for requests")
    p.add_argument("--interval", type=float, default=60.0, help="seconds between polls")
    p.add_argument("--max-requests", type=int,
                   help="stop after this many requests (default: 1, or no limit with --loop)")
    p.add_argument("--stale-after", type=float, default=24.0,
                   help="hours after which a RUNNING request whose backend died is claimed again")
    p.add_argument("--accelerate-args", default="",
                   help="extra `accelerate launch` options, e.g. '--num_processes 8'")
    p.add_argument("--name", default=f"{socket.gethostname()}-{os.getpid()}",
                   help="this backend's name in the requests it claims")
    args = p.parse_args(argv)
    if args.max_requests is None:
        args.max_requests = 0 if args.loop else 1
    return args


def _stale(request: dict, hours: float, now: datetime) -> bool:
    started = request.get("started_at")
    if not started:
        return True
    at = datetime.strptime(started, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    return now - at >= timedelta(hours=hours)


def claim(api, repo: str, holder: str, stale_after: float, read=read_requests
          ) -> tuple[str, dict] | None:
    """Mark the oldest claimable request RUNNING for ``holder``: a PENDING one, or a RUNNING one
    whose backend has been silent for ``stale_after`` hours. None when there is none. A claim is
    a commit on top of what was read, so of two backends reading the same queue only one wins;
    the other reads again and takes the next request."""
    for _ in range(CAS_ATTEMPTS):
        sha, requests = read(api, repo)
        read = read_requests  # a test may hand in the first read
        now = datetime.now(timezone.utc)
        ready = sorted((r.get("submitted_at", ""), path) for path, r in requests.items()
                       if r["status"] == PENDING
                       or (r["status"] == RUNNING and _stale(r, stale_after, now)))
        if not ready:
            return None
        path = ready[0][1]
        request = history(requests[path], RUNNING, backend=holder,
                          started_at=now.strftime("%Y-%m-%dT%H:%M:%SZ"), reason="")
        try:
            commit_request(api, repo, path, request, sha, f"Claim {path} ({holder})")
            return path, request
        except Exception as e:
            if not is_conflict(e):
                raise
    return None


def _resolve_dataset(api, dataset: str, revision: str | None) -> str | None:
    if Path(dataset).is_dir():
        return revision
    return api.dataset_info(dataset, revision=revision).sha


def _harness_command(args, request: dict, dataset_revision: str | None, out: Path) -> list[str]:
    run_py = importlib.util.find_spec("harness.run").origin
    accelerate = str(Path(sys.executable).with_name("accelerate"))
    cmd = [accelerate, "launch", *shlex.split(args.accelerate_args), "--mixed_precision",
           PRECISIONS[request["precision"]], run_py, "--model", request["model"],
           "--model-revision", request["model_sha"], "--method", request["method"],
           "--protocol", args.protocol, "--dataset", args.dataset, "--output-dir", str(out)]
    return cmd + (["--revision", dataset_revision] if dataset_revision else [])


def _tail(log: Path) -> str:
    try:
        text = log.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return text[-LOG_TAIL_CHARS:]


def _exit_reason(code: int) -> str:
    if code < 0:
        try:
            return f"the harness was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"the harness was killed by signal {-code}"
    return f"the harness exited with status {code}"


def publish(api, results_repo: str, out: Path) -> str:
    """Upload the run's results JSON and samples parquet files to the results repo, under the
    model's folder, in one commit; returns the results file's path there."""
    from huggingface_hub import CommitOperationAdd

    from harness.report import results_repo_path

    (results_file,) = sorted(out.glob("results_*.json"))[-1:]
    results = json.loads(results_file.read_text())
    path = results_repo_path(results)
    folder = path.rsplit("/", 1)[0]
    stamp = results_file.stem.removeprefix("results_")
    ops = [CommitOperationAdd(path, str(results_file))] + [
        CommitOperationAdd(f"{folder}/{p.name}", str(p))
        for p in sorted(out.glob(f"samples_*_{stamp}.parquet"))]
    api.create_commit(results_repo, ops, repo_type="dataset",
                      commit_message=f"Results of {results['model']['id']} "
                                     f"({results['created_at']})")
    return path


def run_request(api, args, path: str, request: dict) -> dict:
    """Evaluate one claimed request and mark it FINISHED or FAILED; returns the final record."""
    out = Path(args.work_dir) / path.removesuffix(".json")
    out.mkdir(parents=True, exist_ok=True)
    log = out / "backend.log"

    def mine(r: dict) -> dict | None:  # still ours: not taken over after we looked stale
        return r if r.get("backend") == args.name and r["status"] == RUNNING else None

    def mark(status: str, **fields) -> dict:
        return update_request(api, args.requests_repo, path,
                              lambda r: mine(r) and history(r, status, **fields),
                              f"{status.title()} {path}")

    try:
        dataset_revision = _resolve_dataset(api, args.dataset, args.dataset_revision)
        cmd = _harness_command(args, request, dataset_revision, out)
        with open(log, "w") as f:
            f.write("$ " + shlex.join(cmd) + "\n")
            f.flush()
            code = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT).returncode
        if code != 0:
            return mark(FAILED, reason=_exit_reason(code), log_tail=_tail(log))
        fault_point("leaderboard.backend.evaluated")
        results_path = publish(api, args.results_repo, out)
        return mark(FINISHED, results=results_path, dataset_revision=dataset_revision)
    except (KeyboardInterrupt, SystemExit):
        raise  # stopped, not failed: main() puts the request back
    except Exception as e:
        return mark(FAILED, reason=f"{type(e).__name__}: {e}"[:1000], log_tail=_tail(log))


def requeue(api, args, path: str) -> None:
    """Put a request this backend holds back to PENDING: it was stopped, not failed."""
    update_request(api, args.requests_repo, path,
                   lambda r: history(r, PENDING, backend=None, started_at=None,
                                     reason="requeued: its backend was stopped")
                   if r.get("backend") == args.name and r["status"] == RUNNING else None,
                   f"Requeue {path}")
    print(f"{path}: back to PENDING", flush=True)


def _stop(signum, frame):
    raise SystemExit(128 + signum)


def main(args: argparse.Namespace) -> int:
    import time

    from huggingface_hub import HfApi

    signal.signal(signal.SIGTERM, _stop)  # `docker stop`, a job scheduler's preemption
    api = HfApi()
    holder = f"{args.name}-{uuid.uuid4().hex[:6]}"
    args.name = holder
    done = 0
    while True:
        claimed = claim(api, args.requests_repo, holder, args.stale_after)
        if claimed is None:
            if not args.loop:
                print(f"no pending request in {args.requests_repo}")
                return 0
            time.sleep(args.interval)
            continue
        path, request = claimed
        print(f"claimed {path}: {request['model']}@{request['model_sha'][:7]}", flush=True)
        try:
            fault_point("leaderboard.backend.claimed")
            final = run_request(api, args, path, request)
        except (KeyboardInterrupt, SystemExit):
            requeue(api, args, path)
            raise
        status = final["status"] if final else "taken over by another backend"
        print(f"{path}: {status}" + (f" ({final['reason']})" if final and final.get("reason")
                                     else ""), flush=True)
        done += 1
        if args.max_requests and done >= args.max_requests:
            return 0


if __name__ == "__main__":
    run_script(lambda: main(parse_args()))
