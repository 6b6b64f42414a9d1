"""`face-gcn benchmark`: images per second of the exported model and of each stage.

  face-gcn benchmark --model runs/celeba/model --savedmodel serving/face_gcn/1 \\
      --batch_sizes 1,16,64 --json bench.json

On the device TensorFlow uses (GPU when one is visible, else CPU), at each batch size: the
exported SavedModel's serving_default (when --savedmodel is absent the model is exported to a
temporary folder first), the same forward pass in Python (tf.function, the compiled rasterizer
when built) and each stage on its own: detection (MTCNN, image by image), alignment + face mask,
regressor, the recognition network (FaceNet or dlib's descriptor, when the model has one), the texture GCNs, and the rendering (coarse render,
T_p sampling with its visibility pass, refined render). Tracing and --warmup calls are not timed;
the median of --repeats calls is, and at each batch size the calls of the stages alternate round
by round, so a machine that drifts during the run shifts every stage alike. The CNNs alone bound
the end-to-end rate: `cnn_bound` gives that bound (the regressor and the recognition network, one
after the other) and the SavedModel's and the Python path's fractions of it. Every stage runs the
CNNs as the SavedModel does, with their batch norms folded into the convolutions (forward.for_inference). The inputs are
aligned crops of skimage's astronaut photo.
Also measured: the SavedModel's size and its cold start (a fresh process: import TensorFlow,
load, first call). The printed table ends with the paper's figure (about 50 images/s on one
GTX 1080Ti, Lin et al. 2020) as the reference line.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time

from absl import app, flags, logging

from face_gcn.cli._errors import fail

FLAGS = flags.FLAGS
flags.DEFINE_string("model", None, "Model directory (written by `face-gcn train` to WORKDIR/model).")
flags.DEFINE_string("savedmodel", None, "Exported SavedModel (face-gcn export); default: export "
                    "the model to a temporary folder.")
flags.DEFINE_list("batch_sizes", ["1", "16", "64"], "Batch sizes to measure.")
flags.DEFINE_integer("repeats", 5, "Timed calls per stage and batch size (the median is reported).")
flags.DEFINE_integer("warmup", 1, "Untimed calls after tracing, per stage and batch size.")
flags.DEFINE_boolean("cold_start", True, "Measure the SavedModel's cold start in a fresh process.")
flags.DEFINE_string("json", None, "Write the results as JSON here.")

PROG = "face-gcn benchmark"
PAPER_IMAGES_PER_SECOND = 50.0
PAPER_DEVICE = "one NVIDIA GTX 1080Ti (Lin et al. 2020)"
STAGES = ("savedmodel", "python", "detection", "align_mask", "regressor", "facenet", "face_descriptor", "gcn",
          "render")
STAGE_TEXT = {"savedmodel": "end to end, exported SavedModel (pure-TF rasterizer)",
              "python": "end to end, Python forward pass",
              "detection": "detection (MTCNN, per image)",
              "align_mask": "alignment + face mask (per image)",
              "regressor": "regressor (coefficients + features)",
              "facenet": "FaceNet features",
              "face_descriptor": "dlib descriptor features",
              "gcn": "texture GCNs (Decoder + Refiner + Combiner)",
              "render": "rendering (coarse, T_p visibility, refined)"}


def time_interleaved(calls: dict, repeats: int, warmup: int) -> dict:
    """Median seconds of each of ``calls`` (name -> function), timed in ``repeats`` rounds of one call of
    each, after ``warmup`` + 1 untimed calls of each (tracing). Alternating keeps a drift of the
    machine out of the ratios between them."""
    for function in calls.values():
        for _ in range(warmup + 1):
            function()
    times = {name: [] for name in calls}
    for _ in range(repeats):
        for name, function in calls.items():
            started = time.perf_counter()
            function()
            times[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in times.items()}


def cnn_bound(rates: dict) -> dict:
    """The rate the CNNs alone allow (regressor, then the recognition network when there is one:
    1 / sum of 1 / rate) and the SavedModel's and the Python path's fractions of it, from one batch
    size's images/s."""
    cnns = [rates[stage] for stage in ("regressor", "facenet", "face_descriptor") if stage in rates]
    bound = 1.0 / sum(1.0 / rate for rate in cnns)
    return {"images_per_second": bound, "savedmodel_fraction": rates["savedmodel"] / bound,
            "python_fraction": rates["python"] / bound}


def device_name() -> str:
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        return f"GPU: {details.get('device_name', gpus[0].name)}"
    return f"CPU: {os.cpu_count()} logical cores"


def astronaut_crop(nets):
    """(photo [H, W, 3] uint8, crop [S, S, 3] uint8, mask [S, S] float32, landmarks [5, 2]) of the astronaut."""
    import numpy as np  # pylint: disable=import-outside-toplevel
    import skimage.data  # pylint: disable=import-outside-toplevel

    from face_gcn.data import alignment, detection, masks  # pylint: disable=import-outside-toplevel
    photo = skimage.data.astronaut()
    face = detection.FaceDetector().detect(photo).largest
    if face is None:  # pragma: no cover - MTCNN finds this face
        raise RuntimeError("MTCNN found no face in the astronaut photo")
    transform = alignment.alignment_transform(face.landmarks, nets.morphable.alignment_landmarks, nets.image_size)
    crop = alignment.warp_to_crop(photo, transform, nets.image_size)
    landmarks = alignment.apply_transform(transform, face.landmarks)
    mask = np.asarray(masks.SkinColourSegmenter().segment(crop, landmarks), np.float32)
    return photo, crop, mask, face.landmarks


def stage_functions(nets, backend: str = "auto"):
    """{stage: tf.function} of the model's stages; each takes the batch tensors it needs (see run_stages)."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    from face_gcn.morphable import coefficients as coeff_lib  # pylint: disable=import-outside-toplevel
    from face_gcn.morphable import formation  # pylint: disable=import-outside-toplevel
    from face_gcn.nets import gcn, recognition  # pylint: disable=import-outside-toplevel
    from face_gcn.nets import regressor as regressor_lib  # pylint: disable=import-outside-toplevel
    from face_gcn.reconstruction import forward  # pylint: disable=import-outside-toplevel
    from face_gcn.render import deferred, face_renderer, lighting, vertex_sampling  # pylint: disable=import-outside-toplevel
    nets = forward.for_inference(nets)  # the CNNs as the SavedModel runs them (batch norms folded)
    size = nets.image_size
    tensors = formation.model_tensors(nets.morphable)
    focal, center = face_renderer.camera_for_size(size)

    @tf.function(reduce_retracing=True, autograph=False)
    def python(images, masks):
        result = forward.reconstruct(nets, images, face_mask=masks, backend=backend, fit_steps=0)
        return result.refined_albedo, result.refined_image

    @tf.function(reduce_retracing=True, autograph=False)
    def regressor(images):
        outputs = regressor_lib.regress(nets.regressor, images)
        return outputs.coefficients, outputs.features

    @tf.function(reduce_retracing=True, autograph=False)
    def recognizer(images):
        return recognition.embed(nets.recognizer, images).features

    @tf.function(reduce_retracing=True, autograph=False)
    def texture_gcn(embedding, features):
        return nets.texture_gcn([embedding, features], training=False)

    @tf.function(reduce_retracing=True, autograph=False)
    def render(images, masks, coefficients, refined_albedo):
        coarse = face_renderer.render_coefficients(nets.morphable, coefficients, image_size=size, backend=backend)
        samples = vertex_sampling.sample_vertex_colors(
            images / 255.0, coarse.posed, coarse.normals, tensors.triangles,
            face_mask=masks, focal=focal, center=center, backend=backend, fragments=coarse.fragments)
        lit = lighting.illuminate(refined_albedo, coarse.normals, coeff_lib.split_coefficients(coefficients).gamma)
        image, alpha = deferred.shade_fragments(coarse.fragments, tensors.triangles, lit)
        features = gcn.refiner_inputs(tf.clip_by_value(coarse.albedo, 0.0, 1.0), samples.colors, samples.visibility)
        return coarse.image, image, alpha, features

    functions = {"python": python, "regressor": regressor, "gcn": texture_gcn, "render": render}
    if nets.recognizer is not None:
        functions[recognition.kind_of(nets.recognizer)] = recognizer
    return functions


def run_benchmark(nets, savedmodel: str, batch_sizes, repeats: int = 5, warmup: int = 1, backend: str = "auto",
                  progress=None) -> dict:
    """Seconds per batch and images/s of every stage at every batch size (module docstring)."""
    import numpy as np  # pylint: disable=import-outside-toplevel
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    from face_gcn.data import alignment, detection, masks  # pylint: disable=import-outside-toplevel
    from face_gcn.render import rasterizer  # pylint: disable=import-outside-toplevel
    say = progress or (lambda text: None)
    photo, crop, mask, photo_landmarks = astronaut_crop(nets)
    functions = stage_functions(nets, backend)
    from face_gcn.export import export  # pylint: disable=import-outside-toplevel
    served = export.load_signature(savedmodel)  # ExportError for a damaged SavedModel
    detector = detection.FaceDetector()
    segmenter = masks.SkinColourSegmenter()

    def align_mask():
        transform = alignment.alignment_transform(photo_landmarks, nets.morphable.alignment_landmarks, nets.image_size)
        aligned = alignment.warp_to_crop(photo, transform, nets.image_size)
        return segmenter.segment(aligned, alignment.apply_transform(transform, photo_landmarks))

    per_image = time_interleaved({"detection": lambda: detector.detect(photo), "align_mask": align_mask},
                                 repeats, warmup)
    seconds, rates, bounds = {}, {}, {}
    for batch in batch_sizes:
        say(f"batch {batch}")
        images = tf.constant(np.repeat(crop[None], batch, 0))
        floats = tf.cast(images, tf.float32)
        batch_masks = tf.constant(np.repeat(mask[None], batch, 0))
        coefficients, features = functions["regressor"](floats)
        recognizers = [kind for kind in ("facenet", "face_descriptor") if kind in functions]
        embedding = [features] + [functions[kind](floats) for kind in recognizers]
        embedding = tf.concat(embedding, -1)
        refined = tf.random.uniform([batch, nets.morphable.num_vertices, 3], seed=1)
        vertex_features = functions["render"](floats, batch_masks, coefficients, refined)[3]
        calls = {
            "savedmodel": lambda: served(images=images)["render"].numpy(),
            "python": lambda: functions["python"](floats, batch_masks)[1].numpy(),
            "regressor": lambda: functions["regressor"](floats)[0].numpy(),
            "gcn": lambda: functions["gcn"](embedding, vertex_features).numpy(),
            "render": lambda: functions["render"](floats, batch_masks, coefficients, refined)[1].numpy(),
        }
        for kind in recognizers:
            calls[kind] = lambda kind=kind: functions[kind](floats).numpy()
        row = {stage: per_image[stage] * batch for stage in per_image}
        row.update(time_interleaved(calls, repeats, warmup))
        seconds[str(batch)] = {stage: row[stage] for stage in STAGES if stage in row}
        rates[str(batch)] = {stage: batch / value for stage, value in seconds[str(batch)].items()}
        bounds[str(batch)] = cnn_bound(rates[str(batch)])
        # photos end to end: detection and alignment per image, then the exported model on the batch
        rates[str(batch)]["photos_with_detection"] = batch / (row["detection"] + row["align_mask"] + row["savedmodel"])
    return {"device": device_name(), "rasterizer_python": rasterizer.backend_in_use(backend),
            "rasterizer_savedmodel": "fallback", "image_size": nets.image_size,
            "num_vertices": int(nets.morphable.num_vertices), "uses_facenet": "facenet" in functions,
            "recognizer": next((kind for kind in ("facenet", "face_descriptor") if kind in functions), None),
            "batch_sizes": [int(b) for b in batch_sizes], "repeats": repeats, "warmup": warmup,
            "images_per_second": rates, "seconds_per_batch": seconds, "cnn_bound": bounds,
            "reference": {"images_per_second": PAPER_IMAGES_PER_SECOND, "device": PAPER_DEVICE}}


COLD_START = textwrap.dedent("""
    import json, sys, time
    started = time.perf_counter()
    import numpy as np
    import tensorflow as tf
    imported = time.perf_counter()
    model = tf.saved_model.load(sys.argv[1])
    loaded = time.perf_counter()
    size = int(sys.argv[2])
    model.signatures["serving_default"](images=tf.zeros([1, size, size, 3], tf.uint8))["render"].numpy()
    called = time.perf_counter()
    print(json.dumps({"import_tensorflow_s": imported - started, "load_s": loaded - imported,
                      "first_call_s": called - loaded, "total_s": called - started}))
""")


def cold_start(savedmodel: str, image_size: int) -> dict:
    """A fresh Python process: seconds to import TensorFlow, load the SavedModel and run one image."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run([sys.executable, "-c", COLD_START, savedmodel, str(image_size)], capture_output=True,
                            text=True, timeout=900, env=env, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"cold start failed: {result.stderr.strip().splitlines()[-1:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def format_table(result: dict) -> str:
    """Images/s per stage (rows) and batch size (columns), with the paper's reference line."""
    batches = [str(b) for b in result["batch_sizes"]]
    rows = [stage for stage in STAGES if stage in result["images_per_second"][batches[0]]] + ["photos_with_detection"]
    labels = dict(STAGE_TEXT, photos_with_detection="photos end to end (detection + alignment + SavedModel)")
    width = max(len(labels[row]) for row in rows)
    lines = [f"images/s on {result['device']}, image size {result['image_size']}, "
             f"{result['num_vertices']} vertices (median of {result['repeats']})",
             f"{'stage':<{width}} | " + " | ".join(f"batch {b:>4}" for b in batches),
             "-" * (width + 1) + "|" + "|".join("-" * 12 for _ in batches)]
    for row in rows:
        lines.append(f"{labels[row]:<{width}} | " + " | ".join(
            f"{result['images_per_second'][b][row]:>10.2f}" for b in batches))
    if "cnn_bound" in result:
        bound_rows = (("images_per_second", "bound: the CNNs alone (regressor + recognizer)"),
                      ("savedmodel_fraction", "SavedModel / bound"),
                      ("python_fraction", "Python forward pass / bound"))
        for key, label in bound_rows:
            lines.append(f"{label:<{width}} | " + " | ".join(
                f"{result['cnn_bound'][b][key]:>10.2f}" for b in batches))
    lines.append(f"{'reference: the paper, end to end':<{width}} | " + " | ".join(
        f"{PAPER_IMAGES_PER_SECOND:>10.2f}" for _ in batches) + f"   ({PAPER_DEVICE})")
    if "savedmodel_size_bytes" in result:
        lines.append(f"SavedModel: {result['savedmodel_size_bytes'] / 2 ** 20:.1f} MiB")
    if result.get("cold_start"):
        cold = result["cold_start"]
        lines.append(f"cold start (fresh process): import TensorFlow {cold['import_tensorflow_s']:.1f} s, "
                     f"load {cold['load_s']:.1f} s, first call {cold['first_call_s']:.1f} s, "
                     f"total {cold['total_s']:.1f} s")
    return "\n".join(lines)


def parse_batch_sizes(values) -> list[int]:
    try:
        sizes = [int(value) for value in values]
    except ValueError:
        raise app.UsageError(f"--batch_sizes must be integers, got {','.join(values)}") from None
    if not sizes or min(sizes) < 1:
        raise app.UsageError("--batch_sizes must be positive integers")
    return list(dict.fromkeys(sizes))


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    if not FLAGS.model:
        raise app.UsageError("--model is required (a model directory from `face-gcn train`)")
    batch_sizes = parse_batch_sizes(FLAGS.batch_sizes)
    if FLAGS.repeats < 1 or FLAGS.warmup < 0:
        raise app.UsageError("--repeats must be >= 1 and --warmup >= 0")
    logging.set_verbosity(logging.WARNING)  # tf.saved_model.save logs every step at INFO
    from face_gcn import fileio  # pylint: disable=import-outside-toplevel
    from face_gcn.export import export  # pylint: disable=import-outside-toplevel
    from face_gcn.reconstruction import model_dir  # pylint: disable=import-outside-toplevel
    try:
        nets = model_dir.load_model_dir(FLAGS.model)
    except model_dir.ModelDirError as error:
        fail(PROG, str(error))
    with tempfile.TemporaryDirectory(prefix="face_gcn_benchmark.") as scratch:
        savedmodel = FLAGS.savedmodel
        exported_here = savedmodel is None
        if exported_here:
            print("benchmark: exporting the model to a temporary SavedModel", file=sys.stderr)
            savedmodel = os.path.join(scratch, "savedmodel")
            export.export_nets(nets, savedmodel, source=os.path.abspath(FLAGS.model))
        else:
            try:
                info = export.read_info(savedmodel)
            except export.ExportError as error:
                fail(PROG, str(error))
            if info.get("image_size") != nets.image_size:
                fail(PROG, f"--savedmodel takes {info.get('image_size')} px crops, --model {nets.image_size}")
        try:
            result = run_benchmark(nets, savedmodel, batch_sizes, FLAGS.repeats, FLAGS.warmup,
                                   progress=lambda text: print(f"benchmark: {text}", file=sys.stderr))
        except export.ExportError as error:
            fail(PROG, str(error))
        result.update(model=os.path.abspath(FLAGS.model),
                      savedmodel=None if exported_here else os.path.abspath(savedmodel),
                      savedmodel_size_bytes=export.directory_size(savedmodel))
        if FLAGS.cold_start:
            result["cold_start"] = cold_start(savedmodel, nets.image_size)
    if FLAGS.json:
        fileio.write_json(FLAGS.json, result)
    print(format_table(result))
