"""The Submit tab: queue a trained attributor for the backend, and see the queue.

Messages that repeat what a user typed go to a read-only Textbox, never to Markdown.
"""

from __future__ import annotations

import gradio as gr
import pandas as pd

import imageattributionbench as iab
from leaderboard.source import HUB_RESULTS_REPO, Source
from leaderboard.submissions import PRECISIONS, SUBMIT_METHODS, submit

SELF_COMMAND = (
    "accelerate launch harness/run.py --model <hub id> --method finetune --protocol all "
    f"--dataset {iab.HUB_REPO_ID} --push-to-hub --results-repo {HUB_RESULTS_REPO}")
QUEUE_COLUMNS = ["Model", "Revision", "Method", "Precision", "Status", "Submitted", "Detail"]


def queue_table(source: Source) -> pd.DataFrame:
    """The requests, newest first: status and, when done, the results file or the reason."""
    rows = []
    for path, r in sorted(source.queue.items(), key=lambda kv: kv[1].get("submitted_at", ""),
                          reverse=True):
        detail = r.get("reason") or r.get("results") or ""
        if r.get("status") == "FAILED" and r.get("log_tail"):
            detail += " | log: ..." + str(r["log_tail"])[-300:]
        rows.append({"Model": str(r.get("model")), "Revision": str(r.get("model_sha", ""))[:7],
                     "Method": str(r.get("method")), "Precision": str(r.get("precision")),
                     "Status": str(r.get("status")), "Submitted": str(r.get("submitted_at")),
                     "Detail": detail})
    return pd.DataFrame(rows, columns=QUEUE_COLUMNS)


def _submit(source: Source, model_id, revision, method, precision):
    try:
        path, request = submit(source.api(), source.requests_repo, model_id, revision, method,
                               precision)
    except iab.BenchmarkError as e:
        return f"Not queued: {e}", queue_table(source)
    except Exception as e:  # the Hub is down, the token cannot write: say so, stay up
        return f"Not queued: {type(e).__name__}: {e}", queue_table(source)
    source.reload_queue()
    return (f"Queued {request['model']} at {request['model_sha'][:7]} as {path} (status "
            f"{request['status']}). The backend will score it; Reload to see it.",
            queue_table(source))


def submit_tab(source: Source) -> gr.Dataframe:
    """The tab's components; returns the queue table (the page refreshes it)."""
    if not source.requests_repo:
        gr.Markdown("This board has no requests repo (start it with `--requests-repo`). Run "
                    f"the harness yourself and push the results:\n\n```\n{SELF_COMMAND}\n```")
    else:
        gr.Markdown(f"Queue a **trained attributor** (a Hub model whose `id2label` uses the "
                    f"benchmark's label names, with a license) in `{source.requests_repo}`. "
                    "The backend scores it on every protocol with `harness/run.py --method "
                    "score` and publishes results and per-image samples, which this board "
                    "then verifies.")
        with gr.Row():
            model_id = gr.Textbox(label="Model id", placeholder="org/name",
                                  elem_id="submit-model")
            revision = gr.Textbox(label="Revision", value="main", elem_id="submit-revision")
            method = gr.Dropdown(list(SUBMIT_METHODS), value=SUBMIT_METHODS[0], label="Method",
                                 elem_id="submit-method")
            precision = gr.Dropdown(list(PRECISIONS), value="float32", label="Precision",
                                    elem_id="submit-precision")
        button = gr.Button("Submit", variant="primary", elem_id="submit-button")
        status = gr.Textbox(label="Submission", interactive=False, elem_id="submit-status")
    queue = gr.Dataframe(queue_table(source), datatype="str", interactive=False, wrap=True,
                         latex_delimiters=[], label="Requests", elem_id="queue-table")
    if source.requests_repo:
        button.click(lambda *a: _submit(source, *a), [model_id, revision, method, precision],
                     [status, queue])
    return queue
