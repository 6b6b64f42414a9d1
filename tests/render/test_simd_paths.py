"""Every SIMD code path of the CPU rasterizer gives the same bits, however the work is split.

rasterize_core.cc runs 8 lanes under AVX2 (x86-64 CPUs that have it) and 4 lanes otherwise, with
__builtin_shufflevector where the compiler has it (GCC >= 12, Clang) and lane-by-lane code where
it does not. tests/render/simd_paths_driver.cc rasterizes fixed scenes (random soups with large,
tiny, w-crossing, clipped and repeated triangles; dense perspective grids) and their gradients
serially and split into 2 and 7 ranges run in reverse order on two threads; this test builds it
with each path and expects one forward digest and one gradient digest per scene.
"""

import pathlib
import shutil
import subprocess

import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
DRIVER = REPO_ROOT / "tests" / "render" / "simd_paths_driver.cc"
CORE = REPO_ROOT / "face_gcn" / "render" / "kernels" / "rasterize_core.cc"
VARIANTS = {
    "default": [],
    "no_avx2": ["-DFACE_GCN_NO_AVX2"],
    "no_shufflevector": ["-DFACE_GCN_NO_SHUFFLEVECTOR"],
    "plain": ["-DFACE_GCN_NO_AVX2", "-DFACE_GCN_NO_SHUFFLEVECTOR"],
}


@pytest.fixture(scope="module")
def digests(tmp_path_factory):
    compiler = shutil.which("g++") or shutil.which("c++")
    if compiler is None:
        pytest.skip("no C++ compiler (g++) on PATH")
    tmp_path = tmp_path_factory.mktemp("simd_paths")
    results = {}
    for name, flags in VARIANTS.items():
        binary = tmp_path / name
        build = subprocess.run(
            [compiler, "-std=c++17", "-O2", "-ffp-contract=off", "-pthread", f"-I{REPO_ROOT}", *flags, "-o",
             str(binary), str(DRIVER), str(CORE)],
            capture_output=True, text=True, timeout=300)
        assert build.returncode == 0, f"{name} build failed:\n{build.stderr}"
        run = subprocess.run([str(binary)], capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr
        results[name] = [line.split() for line in run.stdout.splitlines()]
    return results


def test_every_path_and_split_gives_the_same_bits(digests):
    reference = digests["default"]
    assert len(reference) == 12
    for scene in {row[0] for row in reference}:
        rows = [row for rows in digests.values() for row in rows if row[0] == scene]
        assert len(rows) == 3 * len(VARIANTS)
        assert len({(row[2], row[3]) for row in rows}) == 1, rows


def test_scenes_cover_pixels_and_ids_are_valid(digests):
    for scene, _, _, _, covered, ok in digests["default"]:
        assert int(covered.split("=")[1]) > 100, scene
        assert ok == "ok=1", scene
