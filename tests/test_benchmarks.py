"""Benchmark scripts run on CPU with tiny configs (smoke tests; no timing is asserted)."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_script(*args: str) -> str:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_gpu_pipeline_benchmark_runs_tiny_on_cpu():
    out = run_script("benchmarks/gpu_pipeline.py", "--tiny", "--warmup", "1", "--iters", "1")
    for step in ("textual inversion", "static", "coarse", "refine", "total"):
        assert f"| {step} |" in out
    print(out)


def test_prior_sds_benchmark_runs_tiny_on_cpu():
    out = run_script("benchmarks/priors_sds.py", "--tiny", "--steps", "1", "--warmup", "1")
    assert "ms" in out
    print(out)
