"""Tests for OBJ/PLY reading and writing: round trips, hand-written files, malformed input."""

import os
import struct

import numpy as np
import pytest

from face_gcn.mesh import io as mesh_io


def _grid(rows=4, cols=5, seed=0):
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:rows, 0:cols]
    vertices = np.stack([xs.ravel(), ys.ravel(), rng.normal(size=xs.size)], axis=1) * 0.1
    triangles = []
    for r in range(rows - 1):
        for c in range(cols - 1):
            a = r * cols + c
            triangles += [[a, a + 1, a + cols + 1], [a, a + cols + 1, a + cols]]
    colors = rng.uniform(size=(xs.size, 3))
    return vertices.astype(np.float32), np.array(triangles, np.int32), colors.astype(np.float32)


@pytest.mark.parametrize("extension", [".obj", ".ply"])
@pytest.mark.parametrize("with_colors", [True, False])
def test_round_trip(tmp_path, extension, with_colors):
    vertices, triangles, colors = _grid()
    path = tmp_path / f"mesh{extension}"
    mesh_io.write_mesh(path, vertices, triangles, colors if with_colors else None)
    got_v, got_t, got_c = mesh_io.read_mesh(path)
    assert got_v.dtype == np.float32 and got_t.dtype == np.int32
    np.testing.assert_array_equal(got_v, vertices)   # float32 survives both formats exactly
    np.testing.assert_array_equal(got_t, triangles)
    if with_colors:
        tolerance = 0.5 / 255 + 1e-6 if extension == ".ply" else 1e-6
        np.testing.assert_allclose(got_c, colors, atol=tolerance)
    else:
        assert got_c is None
    assert [p.name for p in tmp_path.iterdir()] == [path.name]   # no temporary left behind


def test_obj_text_is_one_based_with_colours(tmp_path):
    path = tmp_path / "tri.obj"
    mesh_io.write_obj(path, [[0, 0, 0], [1, 0, 0], [0, 1, 0]], [[0, 1, 2]],
                      [[1.0, 0.0, 0.5], [0, 0, 0], [1, 1, 1]])
    lines = [l for l in path.read_text().splitlines() if not l.startswith("#")]
    assert lines[0].split() == ["v", "0", "0", "0", "1", "0", "0.5"]
    assert lines[-1] == "f 1 2 3"


def test_ply_bytes_follow_the_declared_layout(tmp_path):
    path = tmp_path / "tri.ply"
    mesh_io.write_ply(path, [[0, 0, 0], [1, 0, 0], [0, 1.5, 0]], [[0, 1, 2]],
                      [[1.0, 0.0, 0.5], [0, 0, 0], [1, 1, 1]])
    data = path.read_bytes()
    header, body = data.split(b"end_header\n")
    assert b"format binary_little_endian 1.0" in header
    assert b"property list uchar int vertex_indices" in header
    assert len(body) == 3 * (12 + 3) + (1 + 12)
    x, y, z, r, g, b = struct.unpack("<fffBBB", body[30:45])
    assert (x, y, z, r, g, b) == (0.0, 1.5, 0.0, 255, 255, 255)
    assert struct.unpack("<BBBB", body[12:15] + b"\0")[:3] == (255, 0, 128)
    assert struct.unpack("<Biii", body[45:]) == (3, 0, 1, 2)


def test_read_hand_written_obj_with_extras(tmp_path):
    path = tmp_path / "hand.obj"
    path.write_text(
        "# a comment\nmtllib x.mtl\no thing\n"
        "v 0 0 0\nv 1 0 0\nv 1 1 0  # trailing comment\nv 0 1 0\n"
        "vt 0 0\nvn 0 0 1\ns off\nusemtl skin\n"
        "f 1/1/1 2/2/1 3//1\n"
        "f -4 -2 -1\n"        # relative indices: vertices 1, 3, 4
        "f 1 2 3 4\n")        # a quad, split into a fan
    vertices, triangles, colors = mesh_io.read_obj(path)
    assert vertices.shape == (4, 3) and colors is None
    np.testing.assert_array_equal(triangles, [[0, 1, 2], [0, 2, 3], [0, 1, 2], [0, 2, 3]])
    with pytest.raises(mesh_io.MeshFormatError, match="4 corners"):
        mesh_io.read_obj(path, split_polygons=False)


def test_read_hand_written_ascii_ply(tmp_path):
    path = tmp_path / "hand.ply"
    path.write_text(
        "ply\nformat ascii 1.0\ncomment made by hand\n"
        "element vertex 4\nproperty float x\nproperty float y\nproperty float z\n"
        "property uchar red\nproperty uchar green\nproperty uchar blue\n"
        "element face 1\nproperty list uchar int vertex_indices\nend_header\n"
        "0 0 0 255 0 0\n1 0 0 0 255 0\n1 1 0 0 0 255\n0 1 0 51 51 51\n"
        "4 0 1 2 3\n")
    vertices, triangles, colors = mesh_io.read_ply(path)
    np.testing.assert_array_equal(triangles, [[0, 1, 2], [0, 2, 3]])
    np.testing.assert_allclose(colors[3], [0.2, 0.2, 0.2], atol=1e-7)
    np.testing.assert_allclose(vertices[2], [1, 1, 0])


def test_read_big_endian_ply_with_extra_properties(tmp_path):
    path = tmp_path / "be.ply"
    header = ("ply\nformat binary_big_endian 1.0\nelement vertex 3\nproperty double x\n"
              "property double y\nproperty double z\nproperty float quality\n"
              "element face 1\nproperty list int short vertex_indices\nproperty uchar flags\n"
              "end_header\n").encode()
    body = b"".join(struct.pack(">dddf", *v, 0.5) for v in [(0, 0, 0), (2, 0, 0), (0, 3, 0)])
    body += struct.pack(">ihhhB", 3, 2, 1, 0, 7)
    path.write_bytes(header + body)
    vertices, triangles, colors = mesh_io.read_ply(path)
    np.testing.assert_allclose(vertices, [[0, 0, 0], [2, 0, 0], [0, 3, 0]])
    np.testing.assert_array_equal(triangles, [[2, 1, 0]])
    assert colors is None


@pytest.mark.parametrize("text,message", [
    ("v 0 0\n", "3 coordinates"),
    ("v 0 0 a\n", "non-numeric"),
    ("v 0 0 0 1 1 1 1\n", "3 coordinates"),
    ("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2\n", "at least 3"),
    ("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 4\n", r"indices must lie in \[0, 3\)"),
    ("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 0 1 2\n", "1-based"),
    ("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 x 2\n", "bad face index"),
    ("v 0 0 0 1 0 0\nv 1 0 0\nv 0 1 0\n", "only some vertices"),
    ("v 0 0 0 2 0 0\n", r"colors must lie in \[0, 1\]"),
    ("bogus 1 2\n", "unknown OBJ statement"),
    ("# nothing\n", "no vertices"),
])
def test_malformed_obj(tmp_path, text, message):
    path = tmp_path / "bad.obj"
    path.write_text(text)
    with pytest.raises(mesh_io.MeshFormatError, match=message):
        mesh_io.read_obj(path)


def test_binary_garbage_is_not_an_obj(tmp_path):
    path = tmp_path / "garbage.obj"
    path.write_bytes(b"v 0 0 0\n\xff\xfe\x00\x81")
    with pytest.raises(mesh_io.MeshFormatError, match="UTF-8"):
        mesh_io.read_obj(path)


_PLY_HEAD = ("ply\nformat {fmt} 1.0\nelement vertex 3\nproperty float x\nproperty float y\n"
             "property float z\nelement face 1\nproperty list uchar int vertex_indices\n"
             "end_header\n")


@pytest.mark.parametrize("content,message", [
    (b"plx\n", "not a PLY file"),
    (b"ply\nformat ascii 1.0\nelement vertex 1\n", "end_header"),
    (b"ply\nformat binary_middle_endian 1.0\nend_header\n", "unsupported format"),
    (b"ply\nelement vertex 1\nproperty float x\nend_header\n", "no 'format'"),
    (b"ply\nformat ascii 1.0\nelement vertex 1\nproperty quaternion x\nend_header\n",
     "bad property"),
    (_PLY_HEAD.format(fmt="ascii").encode() + b"0 0 0\n1 0 0\n", "file ends"),
    (_PLY_HEAD.format(fmt="ascii").encode() + b"0 0 0\n1 0 0\n0 1 0\n3 0 1 5\n",
     r"indices must lie in \[0, 3\)"),
    (_PLY_HEAD.format(fmt="ascii").encode() + b"0 0 0\n1 0 0 9\n0 1 0\n3 0 1 2\n",
     "extra values"),
    (_PLY_HEAD.format(fmt="ascii").encode() + b"0 0 0\n1 nan 0\n0 1 0\n3 0 1 2\n",
     "NaN"),
    (_PLY_HEAD.format(fmt="binary_little_endian").encode() + b"\0" * 20, "file ends"),
])
def test_malformed_ply(tmp_path, content, message):
    path = tmp_path / "bad.ply"
    path.write_bytes(content)
    with pytest.raises(mesh_io.MeshFormatError, match=message):
        mesh_io.read_ply(path)


def test_write_validation_leaves_no_file(tmp_path):
    vertices, triangles, colors = _grid()
    cases = [
        (dict(triangles=triangles + 100), "indices must lie"),
        (dict(triangles=triangles.astype(float)), "integer"),
        (dict(vertices=vertices[:, :2]), r"\[V, 3\]"),
        (dict(colors=colors[:-1]), "colors must be"),
        (dict(colors=np.full_like(colors, np.nan)), "NaN"),
        (dict(colors=colors * 2), r"\[0, 1\]"),
        (dict(vertices=np.where(vertices > 0.2, np.inf, vertices)), "infinite"),
    ]
    for writer in (mesh_io.write_obj, mesh_io.write_ply):
        for override, message in cases:
            arguments = {**dict(vertices=vertices, triangles=triangles, colors=colors),
                         **override}
            with pytest.raises(mesh_io.MeshFormatError, match=message):
                writer(tmp_path / "out.mesh", **arguments)
    assert os.listdir(tmp_path) == []


def test_uint8_colours_and_unknown_extension(tmp_path):
    vertices, triangles, colors = _grid()
    as_bytes = np.round(colors * 255).astype(np.uint8)
    mesh_io.write_ply(tmp_path / "a.ply", vertices, triangles, as_bytes)
    np.testing.assert_array_equal(np.round(mesh_io.read_ply(tmp_path / "a.ply")[2] * 255),
                                  as_bytes)
    with pytest.raises(mesh_io.MeshFormatError, match="extension"):
        mesh_io.write_mesh(tmp_path / "a.stl", vertices, triangles)
