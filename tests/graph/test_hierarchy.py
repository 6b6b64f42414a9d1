import numpy as np
import pytest

from face_gcn.graph import hierarchy as hier
from face_gcn.graph.laplacian import normalized_laplacian
from .graph_test_meshes import icosphere


@pytest.fixture(scope="module")
def sphere():
    return icosphere(3, bump=0.1)


@pytest.fixture(scope="module")
def built(sphere):
    return hier.build_hierarchy(*sphere, factors=(4, 4))


def test_level_sizes_follow_ceil_rule():
    assert hier.level_sizes(35709, (4, 4, 4, 4)) == (35709, 8928, 2232, 558, 140)


def test_hierarchy_operators_have_consistent_shapes(built):
    assert built.num_vertices == (642, 161, 41)
    for level in range(2):
        fine, coarse = built.num_vertices[level], built.num_vertices[level + 1]
        assert built.down[level].shape == (coarse, fine)
        assert built.up[level].shape == (fine, coarse)
        np.testing.assert_array_equal(built.down[level] @ built.vertices[level], built.vertices[level + 1])
        # D U = I: a kept vertex up-samples to itself.
        np.testing.assert_allclose((built.down[level] @ built.up[level]).toarray(), np.eye(coarse))
    for level in range(3):
        dense = normalized_laplacian(built.adjacency(level)).toarray()
        assert built.lmax[level] == pytest.approx(np.linalg.eigvalsh(dense)[-1], rel=1e-6)
        np.testing.assert_allclose(built.chebyshev(level, "fixed").toarray(), dense - np.eye(len(dense)),
                                   atol=1e-12)


def test_cache_round_trip(tmp_path, sphere, built):
    path = tmp_path / "h.npz"
    first = hier.load_or_build_hierarchy(*sphere, factors=(4, 4), cache_path=path)
    stamp = path.stat().st_mtime_ns
    second = hier.load_or_build_hierarchy(*sphere, factors=(4, 4), cache_path=path)
    assert path.stat().st_mtime_ns == stamp  # loaded, not rebuilt
    for a, b, c in ((first, second, built),):
        assert a.lmax == b.lmax == c.lmax
        for level in range(3):
            np.testing.assert_array_equal(b.triangles[level], c.triangles[level])
            np.testing.assert_array_equal(b.vertices[level], c.vertices[level])
        for level in range(2):
            assert (b.up[level] != c.up[level]).nnz == 0
            assert (b.down[level] != c.down[level]).nnz == 0


def test_cache_rejects_stale_and_damaged_files(tmp_path, sphere):
    vertices, triangles = sphere
    path = tmp_path / "h.npz"
    good = hier.load_or_build_hierarchy(vertices, triangles, factors=(4, 4), cache_path=path)
    key = hier.hierarchy_key(vertices, triangles, (4, 4))
    # Another mesh: different key, the file is rejected.
    moved = vertices + 1e-9
    with pytest.raises(hier.StaleCacheError, match="key"):
        hier.load_hierarchy(path, hier.hierarchy_key(moved, triangles, (4, 4)), moved, triangles, (4, 4))
    # Stale algorithm version.
    with np.load(path, allow_pickle=False) as data:
        arrays = dict(data)
    stale = dict(arrays, version=np.array(hier.ALGORITHM_VERSION + 1))
    np.savez(tmp_path / "stale.npz", **stale)
    with pytest.raises(hier.StaleCacheError, match="version"):
        hier.load_hierarchy(tmp_path / "stale.npz", key, vertices, triangles, (4, 4))
    # Tampered content with the right key: caught by the consistency checks.
    broken = dict(arrays, up_values_0=arrays["up_values_0"] * 2)
    np.savez(tmp_path / "broken.npz", **broken)
    with pytest.raises(hier.StaleCacheError, match="sum to 1"):
        hier.load_hierarchy(tmp_path / "broken.npz", key, vertices, triangles, (4, 4))
    # A damaged file is rebuilt and replaced by load_or_build_hierarchy.
    path.write_bytes(b"not a zip file")
    rebuilt = hier.load_or_build_hierarchy(vertices, triangles, factors=(4, 4), cache_path=path)
    assert rebuilt.num_vertices == good.num_vertices
    hier.load_hierarchy(path, key, vertices, triangles, (4, 4))  # the new file is valid


def test_default_cache_path_uses_environment(sphere, monkeypatch, tmp_path):
    monkeypatch.setenv("FACE_GCN_CACHE", str(tmp_path))
    key = hier.hierarchy_key(*sphere, (4,))
    assert hier.default_cache_path(key).startswith(str(tmp_path))
    assert key != hier.hierarchy_key(*sphere, (4,), boundary_weight=0.0)
