"""Small deterministic meshes for the graph tests (generated, no data files)."""

import numpy as np


def icosphere(subdivisions=3, bump=0.0):
    """Unit icosphere (optionally with smooth radial bumps); closed, outward-oriented.

    subdivisions 3 -> 642 vertices, 1280 triangles.
    """
    t = (1.0 + 5 ** 0.5) / 2.0
    vertices = [(-1, t, 0), (1, t, 0), (-1, -t, 0), (1, -t, 0), (0, -1, t), (0, 1, t), (0, -1, -t),
                (0, 1, -t), (t, 0, -1), (t, 0, 1), (-t, 0, -1), (-t, 0, 1)]
    faces = [(0, 11, 5), (0, 5, 1), (0, 1, 7), (0, 7, 10), (0, 10, 11), (1, 5, 9), (5, 11, 4),
             (11, 10, 2), (10, 7, 6), (7, 1, 8), (3, 9, 4), (3, 4, 2), (3, 2, 6), (3, 6, 8), (3, 8, 9),
             (4, 9, 5), (2, 4, 11), (6, 2, 10), (8, 6, 7), (9, 8, 1)]
    vertices = [np.array(v, float) / np.linalg.norm(v) for v in vertices]
    for _ in range(subdivisions):
        midpoint = {}

        def middle(a, b):
            key = (min(a, b), max(a, b))
            if key not in midpoint:
                m = vertices[a] + vertices[b]
                vertices.append(m / np.linalg.norm(m))
                midpoint[key] = len(vertices) - 1
            return midpoint[key]

        new_faces = []
        for a, b, c in faces:
            ab, bc, ca = middle(a, b), middle(b, c), middle(c, a)
            new_faces += [(a, ab, ca), (b, bc, ab), (c, ca, bc), (ab, bc, ca)]
        faces = new_faces
    vertices = np.array(vertices)
    if bump:
        radius = 1.0 + bump * np.sin(3 * vertices[:, 0]) * np.cos(2 * vertices[:, 1])
        vertices = vertices * radius[:, None]
    return vertices, np.array(faces, dtype=np.int64)


def bumpy_grid(n=30, amplitude=0.1, flat=False):
    """Open n x n grid over [0, 1]^2 with z = amplitude sin(3x) cos(2y) (z = 0 if flat).

    Triangles alternate diagonals so the mesh is not biased to one direction.
    """
    x, y = np.meshgrid(np.linspace(0.0, 1.0, n), np.linspace(0.0, 1.0, n))
    z = np.zeros_like(x) if flat else amplitude * np.sin(3 * x) * np.cos(2 * y)
    vertices = np.stack([x.ravel(), y.ravel(), z.ravel()], axis=1)
    index = np.arange(n * n).reshape(n, n)
    faces = []
    for i in range(n - 1):
        for j in range(n - 1):
            a, b, c, d = index[i, j], index[i, j + 1], index[i + 1, j], index[i + 1, j + 1]
            if (i + j) % 2:
                faces += [(a, b, d), (a, d, c)]
            else:
                faces += [(a, b, c), (b, d, c)]
    return vertices, np.array(faces, dtype=np.int64)


def check_manifold(triangles, num_vertices):
    """Asserts the triangle list is an oriented 2-manifold (possibly with boundary).

    Every edge in one or two faces, each directed edge once (consistent orientation), no
    repeated faces, and the faces around every vertex form a single fan.
    """
    triangles = np.asarray(triangles)
    assert len(np.unique(np.sort(triangles, axis=1), axis=0)) == len(triangles), "repeated face"
    directed = {}
    for f, (a, b, c) in enumerate(triangles.tolist()):
        assert len({a, b, c}) == 3, "degenerate face"
        for u, v in ((a, b), (b, c), (c, a)):
            assert (u, v) not in directed, f"directed edge {(u, v)} twice: orientation or non-manifold"
            directed[(u, v)] = f
    used = np.unique(triangles)
    assert len(used) == num_vertices, "unreferenced vertex"
    # Fan check: the link of each vertex (edges opposite it) must be one path or one cycle.
    link = {v: [] for v in range(num_vertices)}
    for a, b, c in triangles.tolist():
        link[a].append((b, c))
        link[b].append((c, a))
        link[c].append((a, b))
    for vertex, edges in link.items():
        successor = dict(edges)
        assert len(successor) == len(edges), f"vertex {vertex}: link is not a simple fan"
        starts = set(successor) - set(successor.values())
        assert len(starts) <= 1, f"vertex {vertex}: more than one fan (pinched)"
        current = next(iter(starts)) if starts else edges[0][0]
        seen = 0
        while current in successor and seen <= len(edges):
            current = successor[current]
            seen += 1
            if not starts and current == edges[0][0]:
                break
        assert seen == len(edges), f"vertex {vertex}: faces do not form a single fan"
