"""The README main job's last step: fine-tune a tiny classifier with `accelerate launch` on the
demo benchmark, score every protocol, and write results, plots and the model card."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from harness.tiny_model import tiny_classifier

RUN = Path(__file__).resolve().parent / "run.py"


def run_harness_demo(repo: Path, out: Path, processes: int = 1,
                     keep_checkpoints: bool = False) -> Path:
    """``accelerate launch harness/run.py --protocol all`` on ``repo``; returns the output dir.

    A rerun finds the finished run's results (same settings) and reuses them: no retraining,
    no second results file. An interrupted run resumes from its last epoch.
    """
    from harness import run as harness_run
    from harness.paper_table import reusable_results

    model = tiny_classifier(out / "tiny-resnet")
    results = out / "results"
    accelerate = Path(sys.executable).with_name("accelerate")
    launch = [str(accelerate), "launch", "--num_processes", str(processes), "--num_machines",
              "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
    if processes > 1:
        launch.insert(2, "--multi_gpu")
    argv = ["--model", str(model), "--method", "finetune", "--protocol", "all", "--dataset",
            str(repo), "--epochs", "4", "--batch-size", "16", "--lr", "0.01", "--output-dir",
            str(results)]
    finished = reusable_results(results, harness_run.parse_args(argv))
    if finished is not None:
        print(f"\nharness run already done: {finished} (delete {results} to run it again)")
        return results
    cmd = [*launch, str(RUN), *argv, "--resume"] + (["--keep-checkpoints"] if keep_checkpoints
                                                     else [])
    print("\n$ " + " ".join(cmd[:1] + ["launch"] + cmd[2:]))
    env = {**os.environ, "ACCELERATE_USE_CPU": "1"}
    subprocess.run(cmd, check=True, env=env)
    return results
