"""The package import's process-wide setting: TensorFlow's BFC CPU allocator unless the user chose."""

import os
import subprocess
import sys

import pytest

_PROBE = """
import face_gcn
import tensorflow as tf
x = tf.ones([512, 512]) * 2.0
try:
    stats = tf.config.experimental.get_memory_info("CPU:0")
    print("bfc", stats["peak"] >= x.shape.num_elements() * 4)
except ValueError:  # the default allocator keeps no statistics
    print("default")
"""


def _allocator(environment_value):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPU_ALLOCATOR_USE_BFC"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    if environment_value is not None:
        env["TF_CPU_ALLOCATOR_USE_BFC"] = environment_value
    result = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize("environment_value, expected", [(None, "bfc True"), ("true", "bfc True"),
                                                         ("false", "default")])
def test_import_selects_the_bfc_cpu_allocator_unless_the_environment_says(environment_value, expected):
    assert _allocator(environment_value) == expected
