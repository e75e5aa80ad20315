"""Build the Hub dataset repo folder from raw shards and upload it.

    python generation/publish.py raw/ --out build/ --repo-id ORG/ImageAttributionBench
    python generation/publish.py build/ --repo-id ORG/ImageAttributionBench --dry-run

The folder is checked with `iab verify` first. What would change is worked out by comparing its
checksums.sha256 with the one on the Hub, so ``--dry-run`` lists the files to add, replace and
delete without uploading anything; with ``HF_HUB_OFFLINE=1`` it plans from the local manifest
alone (every file listed as new). A Hub that cannot be reached fails at once, saying so. The
upload is huggingface_hub's ``upload_folder``, which (from huggingface_hub 2) commits a large
folder in several resumable commits: rerunning the same command after an interruption skips
what is already there.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from pathlib import Path

import imageattributionbench as iab
from iab.scripts import DefaultsHelpFormatter, run_script
from iab.build import build
from iab.verify import verify

CHECKSUMS = "checksums.sha256"


@dataclass
class Plan:
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    unchanged: int = 0
    compared: bool = True  # False: planned offline, without the Hub copy's checksums

    @property
    def empty(self) -> bool:
        return not (self.added or self.changed or self.deleted)


def parse_checksums(text: str) -> dict[str, str]:
    pairs = (line.split("  ", 1) for line in text.splitlines() if line.strip())
    return {name: digest for digest, name in pairs}


def remote_checksums(api, repo_id: str, revision: str | None) -> dict[str, str]:
    """Every file of the Hub copy with its sha256, from the checksums it was built with (and
    that file's own hash); empty for a new or empty repo."""
    from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError

    try:
        path = api.hf_hub_download(repo_id, CHECKSUMS, repo_type="dataset", revision=revision)
    except (EntryNotFoundError, RepositoryNotFoundError):
        return {}
    data = Path(path).read_bytes()
    return parse_checksums(data.decode()) | {CHECKSUMS: iab.sha256_hex(data)}


def plan_upload(folder: Path, remote: dict[str, str]) -> Plan:
    local = parse_checksums((folder / CHECKSUMS).read_text())
    local[CHECKSUMS] = iab.sha256_hex((folder / CHECKSUMS).read_bytes())
    plan = Plan()
    for name, digest in sorted(local.items()):
        if name not in remote:
            plan.added.append(name)
        elif remote[name] != digest:
            plan.changed.append(name)
        else:
            plan.unchanged += 1
    plan.deleted = sorted(set(remote) - set(local))
    return plan


def publish(folder: str | Path, repo_id: str, *, private: bool = False, dry_run: bool = False,
            token: str | None = None, endpoint: str | None = None, revision: str | None = None,
            api=None) -> Plan:
    """Verify a built folder, work out what changes on the Hub, and upload unless dry_run."""
    from huggingface_hub import HfApi, get_token

    folder = Path(folder)
    problems, _ = verify(folder)
    if problems:
        raise iab.BenchmarkError(f"{folder} fails verification, not uploading:\n  " +
                                 "\n  ".join(problems[:20]))
    token = token or get_token()
    if not dry_run and not token:
        raise iab.BenchmarkError("no Hugging Face token: run `hf auth login` or set HF_TOKEN "
                                 "(a token with write access to " + repo_id + ")")
    if dry_run and iab.hub_offline():  # nothing to compare with: every file is listed
        plan = plan_upload(folder, {})
        plan.compared = False
        return plan
    if not dry_run and iab.hub_offline():
        raise iab.BenchmarkError("HF_HUB_OFFLINE is set, so nothing can be uploaded: unset it "
                                 "to publish, or add --dry-run to plan from the local manifest")
    if api is None:  # fail at once, not after half a minute of retries
        iab.check_hub_reachable(f"comparing {folder} with {repo_id}", endpoint=endpoint)
        api = HfApi(endpoint=endpoint, token=token)
    plan = plan_upload(folder, remote_checksums(api, repo_id, revision))
    if dry_run or plan.empty:
        return plan
    api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    api.upload_folder(
        repo_id=repo_id, folder_path=folder, repo_type="dataset", revision=revision,
        commit_message=f"ImageAttributionBench {iab.BENCHMARK_VERSION}: "
                       f"{len(plan.added)} added, {len(plan.changed)} changed, "
                       f"{len(plan.deleted)} deleted",
        ignore_patterns=[".cache/**", ".git/**"],
        delete_patterns=plan.deleted or None,
    )
    return plan


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        formatter_class=DefaultsHelpFormatter, description=__doc__.split("\n\n")[0])
    p.add_argument("source", nargs="+", help="a built repo folder, or raw shard folders/files "
                                             "(then --out is where the build goes)")
    p.add_argument("--repo-id", required=True, help="Hub dataset repo, e.g. ORG/NAME")
    p.add_argument("--out", help="build folder when SOURCE is raw shards")
    p.add_argument("--private", action="store_true", help="create the repo as private")
    p.add_argument("--dry-run", action="store_true", help="list what would change; upload nothing")
    p.add_argument("--revision", help="branch to upload to (default main)")
    p.add_argument("--num-proc", type=int, default=1, help="build worker processes")
    p.add_argument("--endpoint", default=os.environ.get("HF_ENDPOINT"),
                   help="Hub endpoint (default HF_ENDPOINT or huggingface.co)")
    return p.parse_args(argv)


def main(args: argparse.Namespace) -> int:
    first = Path(args.source[0])
    if len(args.source) == 1 and (first / "manifest.json").is_file() and not args.out:
        folder = first
    else:
        if not args.out:
            raise iab.BenchmarkError("SOURCE is raw shards: give --out for the build folder")
        folder = Path(args.out)
        build(args.source, folder, overwrite=(folder / "manifest.json").exists(),
              num_proc=args.num_proc, repo_id=args.repo_id)
    plan = publish(folder, args.repo_id, private=args.private, dry_run=args.dry_run,
                   endpoint=args.endpoint, revision=args.revision)
    verb = "would" if args.dry_run else "did"
    if not plan.compared:
        print(f"HF_HUB_OFFLINE is set: planned from {folder / CHECKSUMS} alone, not compared "
              f"with {args.repo_id} on the Hub (files already there are listed as added)")
    print(f"{args.repo_id}: {verb} add {len(plan.added)}, replace {len(plan.changed)}, delete "
          f"{len(plan.deleted)} file(s); {plan.unchanged} unchanged")
    for tag, names in (("+", plan.added), ("~", plan.changed), ("-", plan.deleted)):
        for n in names:
            print(f"  {tag} {n}")
    return 0


if __name__ == "__main__":
    run_script(lambda: main(parse_args()))
