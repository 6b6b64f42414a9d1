"""`face-gcn demo`: the main job on the built-in demo model, with no downloads.

Builds (or loads from the cache) the demo morphable model, samples faces with random identity,
expression, albedo, pose and spherical-harmonics light, renders them through the
differentiable rasterizer with Deng's camera, and writes for each face a mesh with lit vertex
colours (OBJ and PLY), the render (PNG) and its parameters (JSON), plus DIR/summary.json.
"""

from __future__ import annotations

import json
import os
import time

from absl import flags, logging

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", "demo_out", "Directory to write the demo's outputs into.")
flags.DEFINE_integer("num_faces", 4, "How many random faces to generate.", lower_bound=1,
                     upper_bound=1024)
flags.DEFINE_integer("seed", 0, "Seed of the random faces.")
flags.DEFINE_integer("image_size", 224, "Square render size in pixels.", lower_bound=16,
                     upper_bound=2048)
flags.DEFINE_string("morphable_model", None,
                    "Path of a face_gcn morphable model (.npz); default: the built-in demo.")


def main(argv):
    del argv
    # Heavy imports only after flag parsing, so `--help` stays instant.
    import numpy as np  # pylint: disable=import-outside-toplevel
    from tqdm import tqdm  # pylint: disable=import-outside-toplevel
    from face_gcn import fileio  # pylint: disable=import-outside-toplevel
    from face_gcn.mesh import io as mesh_io  # pylint: disable=import-outside-toplevel
    from face_gcn.morphable import coefficients as coeff_lib  # pylint: disable=import-outside-toplevel
    from face_gcn.morphable import configured, sampling  # pylint: disable=import-outside-toplevel
    from face_gcn.render import camera, face_renderer, op_library  # pylint: disable=import-outside-toplevel

    started = time.perf_counter()
    workdir = FLAGS.workdir
    os.makedirs(workdir, exist_ok=True)
    model = configured.load_configured(FLAGS.morphable_model)
    logging.info("morphable model: %s (%d vertices, %d triangles)", model.name,
                 model.num_vertices, model.num_triangles)
    coefficients = sampling.sample_coefficients(np.random.default_rng(FLAGS.seed),
                                                FLAGS.num_faces)
    focal, center = face_renderer.camera_for_size(FLAGS.image_size)
    faces = []
    for index in tqdm(range(FLAGS.num_faces), desc="rendering faces", unit="face"):
        render = face_renderer.render_coefficients(model, coefficients[index:index + 1],
                                                   image_size=FLAGS.image_size)
        stem = os.path.join(workdir, f"face_{index:03d}")
        posed = render.posed[0].numpy()
        lit = np.clip(render.colors[0].numpy(), 0.0, 1.0)
        mesh_io.write_obj(stem + ".obj", posed, model.triangles, lit)
        mesh_io.write_ply(stem + ".ply", posed, model.triangles, lit)
        fileio.write_png(stem + ".png", render.image[0].numpy())
        blocks = coeff_lib.split_coefficients(coefficients[index])
        record = {
            "image": os.path.basename(stem) + ".png",
            "meshes": [os.path.basename(stem) + ".obj", os.path.basename(stem) + ".ply"],
            "coefficients": coefficients[index],
            "pose": {"angles_xyz_radians": blocks.angles.numpy(),
                     "translation": blocks.translation.numpy()},
            "camera": {"focal_px": focal, "principal_point_px": [center, center],
                       "camera_z": camera.DENG_CAMERA_DISTANCE, "image_size": FLAGS.image_size},
            "landmarks_68_px": render.landmarks[0].numpy(),
            "coverage": float(render.alpha[0].numpy().mean()),
        }
        fileio.write_json(stem + ".json", record)
        faces.append({key: record[key] for key in ("image", "meshes", "coverage")})
    summary = {
        "morphable_model": model.name,
        "num_vertices": model.num_vertices,
        "num_triangles": model.num_triangles,
        "rasterizer": "compiled op" if op_library.load() is not None else "pure-TF fallback",
        "image_size": FLAGS.image_size,
        "faces": faces,
        "seconds": round(time.perf_counter() - started, 3),
    }
    fileio.write_json(os.path.join(workdir, "summary.json"), summary)
    print(f"wrote {len(faces)} faces (OBJ, PLY, PNG, JSON) to {workdir} "
          f"in {summary['seconds']:.1f} s using the {summary['rasterizer']}")
