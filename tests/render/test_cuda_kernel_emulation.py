"""The CUDA rasterizer kernels, run as host C++ under a CUDA shim, against the CPU kernel.

tools/cuda_rasterizer/emulate.cc compiles face_gcn/render/kernels/rasterize_gpu.cu.h with
g++ through tools/cuda_rasterizer/cuda_host_shim.h (no GPU, no nvcc) and compares it with
rasterize_core.cc on random and hand-made meshes, in four launch orders. The CPU kernel is
the reference here; it is checked against independent NumPy formulas in test_rasterize_op.py.
"""

import pathlib
import re
import shutil
import subprocess

import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
EMULATE_SOURCE = REPO_ROOT / "tools" / "cuda_rasterizer" / "emulate.cc"
CORE_SOURCE = REPO_ROOT / "face_gcn" / "render" / "kernels" / "rasterize_core.cc"


def _compiler():
    for name in ("g++", "c++"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _supports_cxx20(compiler, tmp_path):
    probe = tmp_path / "probe.cc"
    probe.write_text("#include <atomic>\nint main() { int v = 0; std::atomic_ref<int> r(v);"
                     " return r.load(); }\n")
    result = subprocess.run([compiler, "-std=c++20", "-fsyntax-only", str(probe)],
                            capture_output=True, text=True, timeout=60)
    return result.returncode == 0


def _parse_summary(stdout):
    lines = [line for line in stdout.splitlines() if line.startswith("SUMMARY ")]
    assert len(lines) == 1, f"expected one SUMMARY line, got:\n{stdout}"
    return dict(re.findall(r"(\w+)=(\S+)", lines[0]))


@pytest.fixture(scope="module")
def emulation_run(tmp_path_factory):
    compiler = _compiler()
    if compiler is None:
        pytest.skip("no C++ compiler (g++) on PATH")
    tmp_path = tmp_path_factory.mktemp("cuda_emulation")
    if not _supports_cxx20(compiler, tmp_path):
        pytest.skip(f"{compiler} lacks C++20 std::atomic_ref")
    binary = tmp_path / "emulate"
    build = subprocess.run(
        [compiler, "-std=c++20", "-O1", "-pthread", f"-I{REPO_ROOT}", "-o", str(binary),
         str(EMULATE_SOURCE), str(CORE_SOURCE)],
        capture_output=True, text=True, timeout=240)
    assert build.returncode == 0, f"emulation build failed:\n{build.stderr}"
    run = subprocess.run([str(binary)], capture_output=True, text=True, timeout=120)
    return run


def test_emulated_gpu_kernel_equals_cpu_kernel(emulation_run):
    assert emulation_run.returncode == 0, (
        f"emulated CUDA kernel differs from the CPU kernel:\n{emulation_run.stdout}\n"
        f"{emulation_run.stderr}")
    summary = _parse_summary(emulation_run.stdout)
    assert summary["result"] == "PASS"
    assert int(summary["id_mismatches"]) == 0
    assert int(summary["order_mismatches"]) == 0
    assert int(summary["launch_errors"]) == 0
    assert int(summary["check_failures"]) == 0
    # Same compiler and flags for both paths, so the floats must match bit for bit.
    assert float(summary["max_dbary"]) == 0.0
    assert float(summary["max_dz"]) == 0.0
    assert int(summary["bit_different_pixels"]) == 0


def test_emulation_compared_a_nontrivial_workload(emulation_run):
    summary = _parse_summary(emulation_run.stdout)
    assert int(summary["cases"]) >= 20
    assert int(summary["images"]) >= 40
    assert int(summary["covered"]) >= 20000
    # Some pixels must stay empty so the background path is compared too.
    assert int(summary["pixels"]) - int(summary["covered"]) >= 1000
    assert int(summary["emulated_threads"]) >= 100000
    # Every hand-made edge case ran and reported a line.
    for name in ("aligned-ties", "ties(-0,+0)", "ties(+0,-0)", "eye-plane", "stack-50",
                 "soup-empty", "dome-grid"):
        assert re.search(rf"^{re.escape(name)}\s", emulation_run.stdout, re.MULTILINE), name
    checks = [line for line in emulation_run.stdout.splitlines() if line.startswith("check ")]
    assert len(checks) == 8 and all(line.endswith(" ok") for line in checks), checks
