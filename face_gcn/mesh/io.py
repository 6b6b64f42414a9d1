"""Triangle meshes with optional per-vertex colours: Wavefront OBJ and PLY files.

OBJ: ``v x y z [r g b]`` lines (colours in [0, 1], the common MeshLab extension) and 1-based
``f i j k`` lines. Reading tolerates comments, vt/vn/g/o/s/usemtl/mtllib lines, ``f a/b/c``
forms and negative (relative) indices; polygons with more than 3 corners are split into a
fan of triangles when ``split_polygons`` is true, else rejected.
PLY: written binary little-endian with float x, y, z, uchar red, green, blue and faces as
``list uchar int vertex_indices``; read from binary little-endian/big-endian or ascii files with
any element/property layout that has vertex x, y, z and triangle faces.
Every write is atomic (face_gcn.fileio.atomic_write); every read validates what it returns.
"""

from __future__ import annotations

import os

import numpy as np

from face_gcn import fileio


class MeshFormatError(ValueError):
    """A mesh file or array is malformed."""


# --------------------------------------------------------------------------- validation


def _validate(vertices, triangles, colors, where: str):
    vertices = np.asarray(vertices)
    if vertices.ndim != 2 or vertices.shape[1] != 3 or vertices.dtype.kind not in "fiu":
        raise MeshFormatError(f"{where}: vertices must be a numeric [V, 3] array, got "
                              f"{vertices.dtype} {vertices.shape}")
    vertices = vertices.astype(np.float64)
    if not np.all(np.isfinite(vertices)):
        raise MeshFormatError(f"{where}: vertices contain NaN or infinite values")
    triangles = np.asarray(triangles)
    if triangles.size == 0:
        triangles = triangles.reshape(0, 3)
    if triangles.ndim != 2 or triangles.shape[1] != 3 or (
            triangles.size and triangles.dtype.kind not in "iu"):
        raise MeshFormatError(f"{where}: triangles must be an integer [T, 3] array, got "
                              f"{triangles.dtype} {triangles.shape}")
    triangles = triangles.astype(np.int64)
    num_v = vertices.shape[0]
    if triangles.size and (triangles.min() < 0 or triangles.max() >= num_v):
        raise MeshFormatError(f"{where}: triangle indices must lie in [0, {num_v}), got "
                              f"[{triangles.min()}, {triangles.max()}]")
    if colors is not None:
        colors = np.asarray(colors)
        if colors.shape != (num_v, 3) or colors.dtype.kind not in "fiu":
            raise MeshFormatError(f"{where}: colors must be a numeric [V, 3] = [{num_v}, 3] "
                                  f"array, got {colors.dtype} {colors.shape}")
        if colors.dtype == np.uint8:
            colors = colors.astype(np.float64) / 255.0
        colors = colors.astype(np.float64)
        if not np.all(np.isfinite(colors)):
            raise MeshFormatError(f"{where}: colors contain NaN or infinite values")
        if colors.min(initial=0.0) < 0.0 or colors.max(initial=0.0) > 1.0:
            raise MeshFormatError(f"{where}: colors must lie in [0, 1] (or be uint8), got "
                                  f"[{colors.min():.4g}, {colors.max():.4g}]")
    return vertices, triangles, colors


def _finish(vertices, triangles, colors, where):
    vertices, triangles, colors = _validate(vertices, triangles, colors, where)
    return (vertices.astype(np.float32), triangles.astype(np.int32),
            None if colors is None else colors.astype(np.float32))


# --------------------------------------------------------------------------- OBJ


def write_obj(path, vertices, triangles, colors=None) -> None:
    """Writes an OBJ file atomically.

    Args:
      path: destination.
      vertices: [V, 3] float positions.
      triangles: [T, 3] int 0-based indices (written 1-based).
      colors: [V, 3] float in [0, 1] or uint8, or None.
    """
    vertices, triangles, colors = _validate(vertices, triangles, colors, os.fspath(path))
    # One %-format of all rows at once (Python floats): 4x faster than a formatted string per row.
    if colors is None:
        vertex_line, values = "v %.9g %.9g %.9g\n", vertices
    else:
        vertex_line, values = "v %.9g %.9g %.9g %.6g %.6g %.6g\n", np.concatenate([vertices, colors], axis=1)
    with fileio.atomic_write(path, "w") as handle:
        handle.write("# face_gcn mesh\n")
        handle.write((vertex_line * len(values)) % tuple(values.astype(np.float64).ravel().tolist()))
        handle.write(("f %d %d %d\n" * len(triangles)) % tuple((triangles + 1).ravel().tolist()))


_OBJ_IGNORED = {"vt", "vn", "vp", "g", "o", "s", "usemtl", "mtllib", "l", "p"}


def _obj_index(token: str, num_v: int, where: str) -> int:
    head = token.split("/", 1)[0]
    try:
        index = int(head)
    except ValueError:
        raise MeshFormatError(f"{where}: bad face index {token!r}") from None
    if index == 0:
        raise MeshFormatError(f"{where}: face index 0 (OBJ indices are 1-based)")
    return index - 1 if index > 0 else num_v + index


def read_obj(path, split_polygons: bool = True):
    """Reads an OBJ file.

    Returns:
      (vertices [V, 3] float32, triangles [T, 3] int32 0-based, colors [V, 3] float32 in
      [0, 1] or None when no vertex carries a colour).
    Raises:
      MeshFormatError with the file name and line number of the first problem.
    """
    path = os.fspath(path)
    vertices, colors, triangles = [], [], []
    try:
        with open(path, "r", encoding="utf-8", errors="strict") as handle:
            text = handle.read()
    except UnicodeDecodeError as error:
        raise MeshFormatError(f"{path}: not a UTF-8 text OBJ file ({error})") from None
    for number, raw in enumerate(text.splitlines(), start=1):
        where = f"{path}:{number}"
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        keyword, *fields = line.split()
        if keyword == "v":
            if len(fields) not in (3, 4, 6):
                raise MeshFormatError(f"{where}: 'v' needs 3 coordinates (+ optional w or "
                                      f"r g b), got {len(fields)} values")
            try:
                values = [float(f) for f in fields]
            except ValueError:
                raise MeshFormatError(f"{where}: non-numeric vertex {line!r}") from None
            vertices.append(values[:3])
            colors.append(values[-3:] if len(values) >= 6 else None)
        elif keyword == "f":
            if len(fields) < 3:
                raise MeshFormatError(f"{where}: a face needs at least 3 corners")
            corners = [_obj_index(f, len(vertices), where) for f in fields]
            if len(corners) > 3 and not split_polygons:
                raise MeshFormatError(f"{where}: face with {len(corners)} corners; only "
                                      "triangles are accepted (split_polygons=False)")
            for k in range(1, len(corners) - 1):
                triangles.append([corners[0], corners[k], corners[k + 1]])
        elif keyword in _OBJ_IGNORED:
            continue
        else:
            raise MeshFormatError(f"{where}: unknown OBJ statement {keyword!r}")
    if not vertices:
        raise MeshFormatError(f"{path}: no vertices")
    has_color = [c is not None for c in colors]
    if any(has_color) and not all(has_color):
        raise MeshFormatError(f"{path}: only some vertices carry colours")
    color_array = np.array(colors, dtype=np.float64) if all(has_color) else None
    return _finish(np.array(vertices, dtype=np.float64),
                   np.array(triangles, dtype=np.int64).reshape(-1, 3), color_array, path)


# --------------------------------------------------------------------------- PLY

_PLY_TYPES = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1",
    "short": "i2", "int16": "i2", "ushort": "u2", "uint16": "u2",
    "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
    "float": "f4", "float32": "f4", "double": "f8", "float64": "f8",
}


def write_ply(path, vertices, triangles, colors=None) -> None:
    """Writes a binary little-endian PLY file atomically.

    Args:
      vertices: [V, 3] float positions (stored as float32).
      triangles: [T, 3] int 0-based indices (stored as int32).
      colors: [V, 3] float in [0, 1] (rounded to uint8) or uint8, or None.
    """
    vertices, triangles, colors = _validate(vertices, triangles, colors, os.fspath(path))
    num_v, num_t = vertices.shape[0], triangles.shape[0]
    if num_v > np.iinfo(np.int32).max:
        raise MeshFormatError(f"{path}: too many vertices for int32 indices")
    header = ["ply", "format binary_little_endian 1.0", "comment face_gcn mesh",
              f"element vertex {num_v}", "property float x", "property float y",
              "property float z"]
    fields = [("x", "<f4"), ("y", "<f4"), ("z", "<f4")]
    if colors is not None:
        header += ["property uchar red", "property uchar green", "property uchar blue"]
        fields += [("red", "u1"), ("green", "u1"), ("blue", "u1")]
    header += [f"element face {num_t}", "property list uchar int vertex_indices",
               "end_header"]
    vertex_data = np.empty(num_v, dtype=fields)
    for axis, name in enumerate("xyz"):
        vertex_data[name] = vertices[:, axis]
    if colors is not None:
        bytes_rgb = np.round(colors * 255.0).astype(np.uint8)
        for channel, name in enumerate(("red", "green", "blue")):
            vertex_data[name] = bytes_rgb[:, channel]
    face_data = np.empty(num_t, dtype=[("count", "u1"), ("indices", "<i4", (3,))])
    face_data["count"] = 3
    face_data["indices"] = triangles
    with fileio.atomic_write(path, "wb") as handle:
        handle.write(("\n".join(header) + "\n").encode("ascii"))
        handle.write(vertex_data.tobytes())
        handle.write(face_data.tobytes())


def _parse_ply_header(handle, path):
    first = handle.readline()
    if first.rstrip(b"\r\n") != b"ply":
        raise MeshFormatError(f"{path}: not a PLY file (first line {first[:20]!r})")
    fmt = None
    elements = []   # [name, count, [(prop_name, type) or (prop_name, ('list', count_t, item_t))]]
    while True:
        raw = handle.readline()
        if not raw:
            raise MeshFormatError(f"{path}: header has no 'end_header'")
        try:
            line = raw.decode("ascii").strip()
        except UnicodeDecodeError:
            raise MeshFormatError(f"{path}: non-ASCII bytes in the header") from None
        if line == "end_header":
            break
        tokens = line.split()
        if not tokens or tokens[0] in ("comment", "obj_info"):
            continue
        if tokens[0] == "format":
            if len(tokens) != 3 or tokens[1] not in ("ascii", "binary_little_endian",
                                                     "binary_big_endian"):
                raise MeshFormatError(f"{path}: unsupported format line {line!r}")
            fmt = tokens[1]
        elif tokens[0] == "element":
            if len(tokens) != 3 or not tokens[2].isdigit():
                raise MeshFormatError(f"{path}: bad element line {line!r}")
            elements.append([tokens[1], int(tokens[2]), []])
        elif tokens[0] == "property":
            if not elements:
                raise MeshFormatError(f"{path}: property before any element")
            if len(tokens) == 5 and tokens[1] == "list":
                if tokens[2] not in _PLY_TYPES or tokens[3] not in _PLY_TYPES:
                    raise MeshFormatError(f"{path}: unknown list types in {line!r}")
                elements[-1][2].append((tokens[4], ("list", _PLY_TYPES[tokens[2]],
                                                    _PLY_TYPES[tokens[3]])))
            elif len(tokens) == 3 and tokens[1] in _PLY_TYPES:
                elements[-1][2].append((tokens[2], _PLY_TYPES[tokens[1]]))
            else:
                raise MeshFormatError(f"{path}: bad property line {line!r}")
        else:
            raise MeshFormatError(f"{path}: unknown header line {line!r}")
    if fmt is None:
        raise MeshFormatError(f"{path}: header has no 'format' line")
    return fmt, elements


def _read_binary_element(data, offset, count, properties, order, path, name):
    """Reads one element's records from bytes; returns ({prop: array}, new offset)."""
    if all(not isinstance(t, tuple) for _, t in properties):
        dtype = np.dtype([(p, order + t) for p, t in properties])
        size = dtype.itemsize * count
        if offset + size > len(data):
            raise MeshFormatError(f"{path}: file ends inside element '{name}'")
        records = np.frombuffer(data, dtype=dtype, count=count, offset=offset)
        return {p: records[p] for p, _ in properties}, offset + size
    # Lists: fast path for constant-length lists, record by record otherwise.
    columns = {p: [] for p, _ in properties}
    for _ in range(count):
        for prop, kind in properties:
            if isinstance(kind, tuple):
                count_t, item_t = np.dtype(order + kind[1]), np.dtype(order + kind[2])
                if offset + count_t.itemsize > len(data):
                    raise MeshFormatError(f"{path}: file ends inside element '{name}'")
                length = int(np.frombuffer(data, count_t, 1, offset)[0])
                offset += count_t.itemsize
                if offset + length * item_t.itemsize > len(data):
                    raise MeshFormatError(f"{path}: file ends inside element '{name}'")
                columns[prop].append(np.frombuffer(data, item_t, length, offset))
                offset += length * item_t.itemsize
            else:
                scalar_t = np.dtype(order + kind)
                if offset + scalar_t.itemsize > len(data):
                    raise MeshFormatError(f"{path}: file ends inside element '{name}'")
                columns[prop].append(np.frombuffer(data, scalar_t, 1, offset)[0])
                offset += scalar_t.itemsize
    return columns, offset


def _fast_faces(data, offset, count, properties, order):
    """Faces stored as one 'list <n> <int> vertex_indices' of triangles: one vectorised read."""
    if len(properties) != 1 or not isinstance(properties[0][1], tuple):
        return None
    _, (_, count_t, item_t) = properties[0]
    dtype = np.dtype([("n", order + count_t), ("i", order + item_t, (3,))])
    if offset + dtype.itemsize * count > len(data):
        return None
    records = np.frombuffer(data, dtype=dtype, count=count, offset=offset)
    if count and not np.all(records["n"] == 3):
        return None
    return {properties[0][0]: records["i"].astype(np.int64)}, offset + dtype.itemsize * count


def _read_ascii_element(lines, count, properties, path, name):
    columns = {p: [] for p, _ in properties}
    for _ in range(count):
        try:
            line = next(lines)
        except StopIteration:
            raise MeshFormatError(f"{path}: file ends inside element '{name}'") from None
        tokens = line.split()
        position = 0
        try:
            for prop, kind in properties:
                if isinstance(kind, tuple):
                    length = int(tokens[position])
                    values = tokens[position + 1: position + 1 + length]
                    if len(values) != length:
                        raise IndexError
                    columns[prop].append(np.array(values, dtype=np.dtype(kind[2]).type))
                    position += 1 + length
                else:
                    columns[prop].append(float(tokens[position]) if kind[0] == "f"
                                         else int(tokens[position]))
                    position += 1
        except (IndexError, ValueError):
            raise MeshFormatError(f"{path}: malformed '{name}' line {line.strip()!r}") from None
        if position != len(tokens):
            raise MeshFormatError(f"{path}: extra values on '{name}' line {line.strip()!r}")
    return columns


def read_ply(path, split_polygons: bool = True):
    """Reads a PLY file (ascii or binary).

    Returns:
      (vertices [V, 3] float32, triangles [T, 3] int32, colors [V, 3] float32 in [0, 1] or
      None). Colours come from uchar red/green/blue (/255) or float ones (taken as [0, 1]).
    Raises:
      MeshFormatError naming the problem.
    """
    path = os.fspath(path)
    with open(path, "rb") as handle:
        fmt, elements = _parse_ply_header(handle, path)
        body = handle.read()
    columns = {}
    if fmt == "ascii":
        try:
            lines = iter(line for line in body.decode("ascii").splitlines() if line.strip())
        except UnicodeDecodeError:
            raise MeshFormatError(f"{path}: non-ASCII bytes in an ascii PLY body") from None
        for name, count, properties in elements:
            columns[name] = _read_ascii_element(lines, count, properties, path, name)
    else:
        order = "<" if fmt == "binary_little_endian" else ">"
        offset = 0
        for name, count, properties in elements:
            fast = _fast_faces(body, offset, count, properties, order) if name == "face" \
                else None
            if fast is None:
                fast = _read_binary_element(body, offset, count, properties, order, path, name)
            columns[name], offset = fast
    if "vertex" not in columns:
        raise MeshFormatError(f"{path}: no 'vertex' element")
    vertex = columns["vertex"]
    missing = [axis for axis in "xyz" if axis not in vertex]
    if missing:
        raise MeshFormatError(f"{path}: vertex element lacks {', '.join(missing)}")
    vertices = np.stack([np.asarray(vertex[axis], dtype=np.float64) for axis in "xyz"], axis=1)
    colors = None
    if all(c in vertex for c in ("red", "green", "blue")):
        kinds = [k for n, k in next(e[2] for e in elements if e[0] == "vertex")
                 if n == "red"]
        scale = 1.0 if kinds and isinstance(kinds[0], str) and kinds[0][0] == "f" else 255.0
        colors = np.stack([np.asarray(vertex[c], dtype=np.float64) for c in
                           ("red", "green", "blue")], axis=1) / scale
    triangles = []
    face = columns.get("face", {})
    index_lists = face.get("vertex_indices", face.get("vertex_index"))
    if face and index_lists is None:
        raise MeshFormatError(f"{path}: face element lacks vertex_indices")
    if isinstance(index_lists, np.ndarray):   # all triangles, read in one go
        triangles, index_lists = index_lists, []
    for number, corners in enumerate(index_lists if index_lists is not None else []):
        corners = [int(c) for c in np.asarray(corners).reshape(-1)]
        if len(corners) < 3 or (len(corners) > 3 and not split_polygons):
            raise MeshFormatError(f"{path}: face {number} has {len(corners)} corners")
        for k in range(1, len(corners) - 1):
            triangles.append([corners[0], corners[k], corners[k + 1]])
    return _finish(vertices, np.array(triangles, dtype=np.int64).reshape(-1, 3), colors, path)


def read_mesh(path):
    """read_obj or read_ply by file extension."""
    extension = os.path.splitext(os.fspath(path))[1].lower()
    if extension == ".obj":
        return read_obj(path)
    if extension == ".ply":
        return read_ply(path)
    raise MeshFormatError(f"{path}: unknown mesh extension {extension!r} (use .obj or .ply)")


def write_mesh(path, vertices, triangles, colors=None) -> None:
    """write_obj or write_ply by file extension."""
    extension = os.path.splitext(os.fspath(path))[1].lower()
    if extension == ".obj":
        return write_obj(path, vertices, triangles, colors)
    if extension == ".ply":
        return write_ply(path, vertices, triangles, colors)
    raise MeshFormatError(f"{path}: unknown mesh extension {extension!r} (use .obj or .ply)")

