"""A recording stand-in for the Hub's write API, in front of olah (tests/hub_server.py).

olah serves reads of local git repos but has no write API. ``RecordingHub`` is one endpoint
(``HF_ENDPOINT``) for both: write calls are answered here, applied as real git commits to the
repos olah serves (so what one step pushes, the next step reads back through the Hub client),
and recorded; every other request is passed to olah unchanged.

The write calls huggingface_hub makes, with the Hub's answers (huggingface_hub 2.x):

- ``POST /api/repos/create`` (create_repo; 409 when it exists, which ``exist_ok`` accepts)
- ``POST /api/validate-yaml`` (create_commit checks a README's metadata first)
- ``POST /api/{type}s/{repo}/preupload/{rev}`` (every file "regular": contents ride the commit)
- ``POST /api/{type}s/{repo}/commit/{rev}`` (ndjson: header, file, deletedFile; ``parentCommit``
  is checked like the Hub does, 412 when the branch moved; ``?create_pr=1`` opens a PR)
- ``POST /api/{type}s/{repo}/discussions`` and ``GET .../discussions/{num}`` (pull requests)
- ``GET /api/whoami-v2`` (who the token is)

Permissions are the Hub's: a token writes to its user's and its organisations' namespaces
only (403 elsewhere); anyone may open a pull request on a repo that exists.

    hub = RecordingHub(tmp_path, users={"tok-alice": ("alice", ["ImageAttributionBench"])})
    hub.start()                   # hub.endpoint -> HF_ENDPOINT; hub.writes: what was pushed
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import subprocess
import tempfile
import threading
import urllib.parse
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from hub_server import HubServer, git

REPO_TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}
HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
               "proxy-authorization", "proxy-authenticate"}


@dataclass
class Write:
    """One recorded write call."""

    kind: str  # create_repo | commit | pull_request
    repo_type: str
    repo_id: str
    user: str | None
    revision: str | None = None
    files: dict[str, str] = field(default_factory=dict)  # path -> sha256 of the content
    deleted: list[str] = field(default_factory=list)
    message: str = ""
    pr: int | None = None  # the pull request a commit went to (or opened)
    commit: str | None = None
    contents: dict[str, bytes] = field(default_factory=dict, repr=False)


class Refused(Exception):
    def __init__(self, status: int, message: str, **extra):
        super().__init__(message)
        self.status, self.message, self.extra = status, message, extra


class RecordingHub:
    """olah for reads, this process for writes; one ``endpoint`` for both."""

    def __init__(self, root: Path, users: dict[str, tuple[str, list[str]]] | None = None):
        self.root = Path(root)
        self.olah = HubServer(self.root / "olah")
        self.users = users or {}
        self.writes: list[Write] = []
        self.discussions: dict[tuple[str, str], list[dict]] = {}
        self._lock = threading.Lock()  # one write at a time, as a git server serialises refs
        self._server: ThreadingHTTPServer | None = None
        self.endpoint = ""

    # -- repos on disk ----------------------------------------------------------------------

    def repo_path(self, repo_type: str, repo_id: str) -> Path:
        """The git repo olah serves for ``repo_type`` ("model", "dataset", "space")."""
        return self.olah.mirrors / f"{repo_type}s" / repo_id

    def create_repo(self, repo_type: str, repo_id: str) -> Path:
        """A repo with one empty commit on main, as the Hub creates it (also for test set-up)."""
        path = self.repo_path(repo_type, repo_id)
        if not (path / "HEAD").exists():
            path.mkdir(parents=True, exist_ok=True)
            git(path, "init", "-q", "--bare", "-b", "main")
            empty_tree = subprocess.run(["git", "hash-object", "-t", "tree", "-w", "--stdin"],
                                        cwd=path, input=b"", check=True,
                                        capture_output=True).stdout.decode().strip()
            sha = git(path, "commit-tree", empty_tree, "-m", "initial commit")
            git(path, "update-ref", "refs/heads/main", sha)
        return path

    def files(self, repo_type: str, repo_id: str, revision: str = "main") -> dict[str, bytes]:
        """Every file of a repo at a revision (path -> bytes)."""
        path = self.repo_path(repo_type, repo_id)
        listing = git(path, "ls-tree", "-r", "--name-only", revision)
        return {p: subprocess.run(["git", "show", f"{revision}:{p}"], cwd=path, check=True,
                                  capture_output=True).stdout
                for p in listing.splitlines() if p}

    def head(self, repo_type: str, repo_id: str, revision: str = "main") -> str:
        return git(self.repo_path(repo_type, repo_id), "rev-parse", revision)

    def put_files(self, repo_type: str, repo_id: str, files: dict[str, bytes],
                  message: str = "test set-up") -> str:
        """Commit files directly (test set-up: not recorded as a write)."""
        self.create_repo(repo_type, repo_id)
        with self._lock:
            return self._commit(repo_type, repo_id, "main", files, [], message, None)

    # -- server -----------------------------------------------------------------------------

    def start(self) -> "RecordingHub":
        self.olah.start()
        hub = self

        class Handler(_Handler):
            recording = hub

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
        self.olah.stop()

    def env(self, token: str | None = None, **extra) -> dict[str, str]:
        """Environment for a child process that talks to this Hub (and only to it)."""
        env = {**os.environ, "HF_ENDPOINT": self.endpoint, "HF_HUB_DISABLE_TELEMETRY": "1",
               **extra}
        for k in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_TOKEN"):
            env.pop(k, None)
        if token:
            env["HF_TOKEN"] = token
        return env

    # -- the write calls --------------------------------------------------------------------

    def user_of(self, authorization: str | None) -> tuple[str, list[str]] | None:
        token = (authorization or "").removeprefix("Bearer ").strip()
        return self.users.get(token)

    def _may_write(self, who, repo_id: str) -> bool:
        return who is not None and repo_id.split("/")[0] in [who[0], *who[1]]

    def handle_create(self, who, body: dict) -> dict:
        if who is None:
            raise Refused(401, "Invalid credentials in Authorization header")
        repo_type = body.get("type") or "model"
        repo_id = f"{body.get('organization') or who[0]}/{body['name']}"
        if not self._may_write(who, repo_id):
            raise Refused(403, f"You don't have the rights to create a {repo_type} under "
                               f"the namespace {repo_id.split('/')[0]!r}")
        prefix = "" if repo_type == "model" else f"{repo_type}s/"
        url = f"{self.endpoint}/{prefix}{repo_id}"
        if (self.repo_path(repo_type, repo_id) / "HEAD").exists():
            raise Refused(409, "You already created this repo", url=url)
        self.create_repo(repo_type, repo_id)
        self.writes.append(Write("create_repo", repo_type, repo_id, who[0]))
        return {"url": url, "name": repo_id}

    def handle_commit(self, who, repo_type: str, repo_id: str, revision: str, lines: list[dict],
                      create_pr: bool) -> dict:
        if who is None:
            raise Refused(401, "Invalid credentials in Authorization header")
        if not (self.repo_path(repo_type, repo_id) / "HEAD").exists():
            raise Refused(404, "Repository not found")
        header = next((ln["value"] for ln in lines if ln.get("key") == "header"), {})
        files, deleted = {}, []
        for ln in lines:
            if ln.get("key") == "file":
                v = ln["value"]
                files[v["path"]] = base64.b64decode(v["content"]) if v.get(
                    "encoding") == "base64" else v["content"].encode()
            elif ln.get("key") in ("deletedFile", "deletedFolder"):
                deleted.append(ln["value"]["path"])
            elif ln.get("key") in ("lfsFile", "copyFile"):
                raise Refused(400, f"{ln['key']} is not supported by this stand-in (every "
                                   "file is 'regular' in its preupload answer)")
        pr = None
        if revision.startswith("refs/pr/"):
            pr = int(revision.rsplit("/", 1)[1])
            if not any(d["num"] == pr for d in self.discussions.get((repo_type, repo_id), [])):
                raise Refused(404, f"pull request {pr} not found")
        elif create_pr:
            pr = self._open_pr(who, repo_type, repo_id, header.get("summary", ""))["num"]
            revision = f"refs/pr/{pr}"
        elif not self._may_write(who, repo_id):
            raise Refused(403, f"You don't have the rights to write to {repo_id}: open a pull "
                               "request (create_pr=True)")
        sha = self._commit(repo_type, repo_id, revision, files, deleted,
                           header.get("summary", ""), header.get("parentCommit"))
        self.writes.append(Write("commit", repo_type, repo_id, who[0], revision,
                                 {p: _sha256(b) for p, b in files.items()}, deleted,
                                 header.get("summary", ""), pr, sha, files))
        prefix = "" if repo_type == "model" else f"{repo_type}s/"
        out = {"commitUrl": f"{self.endpoint}/{prefix}{repo_id}/commit/{sha}", "commitOid": sha,
               "success": True}
        if pr is not None:
            out["pullRequestUrl"] = f"{self.endpoint}/{prefix}{repo_id}/discussions/{pr}"
        return out

    def _open_pr(self, who, repo_type: str, repo_id: str, title: str) -> dict:
        if not (self.repo_path(repo_type, repo_id) / "HEAD").exists():
            raise Refused(404, "Repository not found")
        items = self.discussions.setdefault((repo_type, repo_id), [])
        num = len(items) + 1
        path = self.repo_path(repo_type, repo_id)
        git(path, "update-ref", f"refs/pr/{num}", git(path, "rev-parse", "refs/heads/main"))
        items.append({"num": num, "title": title, "author": who[0], "isPullRequest": True,
                      "status": "open", "createdAt": _now()})
        self.writes.append(Write("pull_request", repo_type, repo_id, who[0], f"refs/pr/{num}",
                                 message=title, pr=num))
        return items[-1]

    def handle_discussion(self, who, repo_type: str, repo_id: str, body: dict) -> dict:
        if who is None:
            raise Refused(401, "Invalid credentials in Authorization header")
        if not body.get("pullRequest"):
            raise Refused(400, "only pull requests are supported by this stand-in")
        return {"num": self._open_pr(who, repo_type, repo_id, body.get("title", ""))["num"]}

    def discussion_details(self, repo_type: str, repo_id: str, num: int) -> dict:
        for d in self.discussions.get((repo_type, repo_id), []):
            if d["num"] == num:
                return {**d, "author": {"name": d["author"]},
                        "repo": {"name": repo_id, "type": repo_type}, "events": [],
                        "changes": {"base": "refs/heads/main"}, "filesWithConflicts": []}
        raise Refused(404, f"discussion {num} not found")

    def _commit(self, repo_type, repo_id, revision, files, deleted, message, parent) -> str:
        """A git commit of ``files`` (and deletions) on ``revision``, moved only if the branch
        is still where it was read (compare-and-swap, as the Hub's parentCommit check)."""
        path = self.repo_path(repo_type, repo_id)
        ref = revision if revision.startswith("refs/") else f"refs/heads/{revision}"
        try:
            old = git(path, "rev-parse", "--verify", ref)
        except subprocess.CalledProcessError as e:
            raise Refused(404, f"Revision {revision} not found") from e
        if parent and not old.startswith(parent) and parent != old:
            raise Refused(412, f"A commit has happened since {parent}: the branch is at {old}")
        with tempfile.TemporaryDirectory() as tmp:
            env = {**os.environ, "GIT_INDEX_FILE": str(Path(tmp) / "index")}
            run = lambda *a, **kw: subprocess.run(  # noqa: E731
                ["git", *a], cwd=path, env=env, check=True, capture_output=True, **kw)
            run("read-tree", old)
            for p in deleted:
                run("rm", "-r", "-q", "--cached", "--ignore-unmatch", "--", p.rstrip("/"))
            for p, data in files.items():
                blob = run("hash-object", "-w", "--stdin", input=data).stdout.decode().strip()
                run("update-index", "--add", "--cacheinfo", f"100644,{blob},{p}")
            tree = run("write-tree").stdout.decode().strip()
            sha = run("-c", "user.name=hub", "-c", "user.email=hub@example.invalid",
                      "commit-tree", tree, "-p", old, "-m", message or "commit").stdout.decode(
                ).strip()
            run("update-ref", ref, sha, old)
        return sha


def _sha256(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


class _Handler(BaseHTTPRequestHandler):
    recording: RecordingHub
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # quiet: tests read hub.writes, not logs
        pass

    def _reply(self, status: int, payload: dict) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if status >= 400:
            self.send_header("X-Error-Message", payload.get("error", ""))
        self.end_headers()
        self.wfile.write(body)

    def _body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _route(self) -> tuple[str, list[str], dict]:
        url = urllib.parse.urlsplit(self.path)
        parts = [urllib.parse.unquote(p) for p in url.path.split("/") if p]
        return url.path, parts, dict(urllib.parse.parse_qsl(url.query))

    def do_POST(self):
        hub = self.recording
        path, parts, query = self._route()
        who = hub.user_of(self.headers.get("Authorization"))
        try:
            with hub._lock:
                if path == "/api/repos/create":
                    return self._reply(200, hub.handle_create(who, json.loads(self._body())))
                if path == "/api/validate-yaml":
                    self._body()
                    return self._reply(200, {"errors": [], "warnings": []})
                if len(parts) >= 5 and parts[0] == "api" and parts[1] in REPO_TYPES:
                    repo_type, repo_id = REPO_TYPES[parts[1]], f"{parts[2]}/{parts[3]}"
                    action, rest = parts[4], "/".join(parts[5:])
                    if action == "preupload":
                        files = json.loads(self._body())["files"]
                        return self._reply(200, {"files": [
                            {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                            for f in files]})
                    if action == "commit":
                        lines = [json.loads(ln) for ln in self._body().splitlines() if ln]
                        return self._reply(200, hub.handle_commit(
                            who, repo_type, repo_id, rest or "main", lines,
                            query.get("create_pr") == "1"))
                    if action == "discussions" and not rest:
                        return self._reply(200, hub.handle_discussion(
                            who, repo_type, repo_id, json.loads(self._body())))
        except Refused as e:
            return self._reply(e.status, {"error": e.message, **e.extra})
        self._proxy()

    def do_GET(self):
        hub = self.recording
        path, parts, _ = self._route()
        if path == "/api/whoami-v2":
            who = hub.user_of(self.headers.get("Authorization"))
            if who is None:
                return self._reply(401, {"error": "Invalid user token."})
            return self._reply(200, {"type": "user", "name": who[0],
                                     "orgs": [{"name": o, "roleInOrg": "write"} for o in who[1]],
                                     "auth": {"type": "access_token",
                                              "accessToken": {"role": "write"}}})
        if (len(parts) == 6 and parts[0] == "api" and parts[1] in REPO_TYPES
                and parts[4] == "discussions" and parts[5].isdigit()):
            try:
                return self._reply(200, hub.discussion_details(
                    REPO_TYPES[parts[1]], f"{parts[2]}/{parts[3]}", int(parts[5])))
            except Refused as e:
                return self._reply(e.status, {"error": e.message})
        self._proxy()

    def do_HEAD(self):
        self._proxy()

    def _pin_revision(self, raw_path: str) -> str:
        """A branch or PR ref in a read URL becomes its commit sha: olah offline resolves
        ``main`` but not ``refs/pr/N``, and a sha always reads what the ref points at now."""
        url = urllib.parse.urlsplit(raw_path)
        raw = url.path.split("/")
        parts = [urllib.parse.unquote(p) for p in raw]
        for i, word in enumerate(parts):
            if word in ("resolve", "revision", "tree", "paths-info") and i + 1 < len(parts):
                head = [p for p in parts[:i] if p]
                if head and head[0] == "api":
                    head = head[1:]
                kind = head[0] if head and head[0] in REPO_TYPES else "models"
                repo = head[-2:]
                if len(repo) != 2:
                    return raw_path
                repo_path = self.recording.repo_path(REPO_TYPES[kind], "/".join(repo))
                rev = parts[i + 1]
                if not repo_path.exists() or len(rev) == 40:
                    return raw_path
                try:
                    sha = git(repo_path, "rev-parse", "--verify", rev + "^{commit}")
                except subprocess.CalledProcessError:
                    return raw_path
                raw[i + 1] = sha
                return urllib.parse.urlunsplit(url._replace(path="/".join(raw)))
        return raw_path

    def _proxy(self) -> None:
        """Pass the request to olah, and its answer back (its own address made ours)."""
        body = self._body()
        path, parts, _ = self._route()
        target_path = self.path
        if len(parts) == 4 and parts[0] == "api" and parts[1] in REPO_TYPES:
            # olah offline resolves a repo's info without a revision from its cache only: ask
            # for main, which it reads from the git repo, as the Hub answers.
            target_path = path + "/revision/main" + self.path[len(path):]
        target_path = self._pin_revision(target_path)
        target = urllib.parse.urlsplit(self.recording.olah.endpoint)
        conn = http.client.HTTPConnection(target.hostname, target.port, timeout=120)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS}
        headers["Host"] = target.netloc
        conn.request(self.command, target_path, body=body or None, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() in HOP_HEADERS or (k.lower() == "content-length"
                                            and self.command != "HEAD"):
                continue
            self.send_header(k, v.replace(target.netloc, self.headers.get("Host", "")))
        if self.command != "HEAD":
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        conn.close()
