import json
import os
import subprocess
import sys


def test_mirrored_strategy_step_matches_single_device():
    """One SGD step on two logical CPUs equals the same step on one device."""
    worker = os.path.join(os.path.dirname(os.path.abspath(__file__)), "distribute_worker.py")
    completed = subprocess.run([sys.executable, worker], capture_output=True, text=True, timeout=300,
                               env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    assert completed.returncode == 0, completed.stderr[-3000:]
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert result["replicas"] == 2
    assert result["moved"] > 1e-4  # the step changed the weights
    assert result["difference"] < 1e-5
