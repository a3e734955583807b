"""Wall time of `cdk synth` for the default app against a one-bucket CDK app (the floor).

Both run through the same CDK CLI, Node.js and Python, so the ratio shows what the
project's own constructs, cdk-nag and asset staging add to the floor every CDK app pays.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CDK = ROOT / "node_modules" / ".bin" / "cdk"
RUNS = int(os.environ.get("BENCH_RUNS", "5"))
TARGET_RATIO = 2.0

ONE_BUCKET_APP = """
from aws_cdk import App, Stack
from aws_cdk import aws_s3 as s3

app = App()
stack = Stack(app, "OneBucket")
s3.Bucket(stack, "Bucket")
app.synth()
"""


def time_synth(app_dir: Path, app_command: str) -> float:
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        subprocess.run(
            [str(CDK), "synth", "--no-notices", "--quiet", "-o", out, "--app", app_command],
            cwd=app_dir,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return time.perf_counter() - started


def measure(app_dir: Path, app_command: str) -> list[float]:
    time_synth(app_dir, app_command)  # warm the file cache and jsii's module cache
    return [time_synth(app_dir, app_command) for _ in range(RUNS)]


def main() -> int:
    python = sys.executable
    with tempfile.TemporaryDirectory() as floor_dir:
        floor_path = Path(floor_dir)
        (floor_path / "app.py").write_text(ONE_BUCKET_APP)
        (floor_path / "cdk.json").write_text(json.dumps({"app": f"{python} app.py"}))
        floor = measure(floor_path, f"{python} app.py")
    project = measure(ROOT, f"{python} app.py")
    floor_median, project_median = statistics.median(floor), statistics.median(project)
    ratio = project_median / floor_median
    print(f"runs per app:           {RUNS} (after one warm-up)")
    print(f"one-bucket app (floor): median {floor_median:.2f} s  (min {min(floor):.2f} s)")
    print(f"ProStudio default app:  median {project_median:.2f} s  (min {min(project):.2f} s)")
    print(f"ratio:                  {ratio:.2f}x  (target <= {TARGET_RATIO:.1f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
