"""`face-gcn reconstruct`: photos through a trained model (coarse regressor + texture GCNs).

  face-gcn reconstruct photo.jpg --model runs/celeba/model --out results/
  face-gcn reconstruct photos/ more.png --model runs/celeba/model --out results/ --batch_size 16

Per photo: MTCNN detection (the largest face), Deng's alignment to the model's crop size, the
built-in face mask (its face region from MTCNN's 5, or from dlib's 68 with --mask_landmarks 68) or a
face-parsing SavedModel's by path, then the trained networks on batches
of crops (face_gcn.reconstruction.forward: regressed coefficients, then --fit_steps of the batched
coarse fit to the 5 detected landmarks and the pixels, T_p, texture GCN, refined albedo) and
the files of face_gcn.fit.outputs: meshes with the refined colours (OBJ albedo, PLY lit), the
coarse meshes, the overlay on the original photo, NAME.json (coefficients, pose, camera,
alignment transform) and the coarse/ refined/ folders `face-gcn evaluate` reads. Photos that
cannot be read or show no face are listed with the reason in DIR/summary.json; the rest are
written. Exit code 1 only when no photo could be reconstructed.
"""

from __future__ import annotations

import os
import time

from absl import app, flags

from face_gcn.cli import _photos
from face_gcn.cli._errors import fail

FLAGS = flags.FLAGS
flags.DEFINE_string("model", None, "Model directory (written by `face-gcn train` to WORKDIR/model).")
flags.DEFINE_string("out", None, "Output folder.")
flags.DEFINE_integer("batch_size", 16, "Crops run through the networks together.")
flags.DEFINE_string("segmenter", "builtin", _photos.SEGMENTER_HELP)
flags.DEFINE_list("segmenter_classes", [], "For a SavedModel returning class scores: the face classes.")
flags.DEFINE_enum("mask_landmarks", "5", ["68", "5"], "Landmarks the built-in segmenter draws the face region "
                  "from: 5 (MTCNN's) or 68 (dlib's, research use; MTCNN's 5 where unavailable). The fit follows "
                  "MTCNN's 5 either way.")
flags.DEFINE_integer("min_face_size", 20, "Smallest face side MTCNN searches for, pixels.", lower_bound=1,
                     upper_bound=4096)
flags.DEFINE_integer("fit_steps", 20, "Rendered steps of the coarse fit after the regressor, per batch "
                     "(face_gcn.fit.coarse_fit.refinement_stages); 0: the regressor alone, as the paper.",
                     lower_bound=0, upper_bound=1000)
flags.DEFINE_enum("backend", "auto", ["auto", "op", "fallback"], "Rasterizer: the compiled op when "
                  "built (auto), or the pure-TF fallback.")
flags.DEFINE_boolean("progress", True, "Show a progress bar.")

PROG = "face-gcn reconstruct"


def batch_inference(nets, backend: str = "auto", fit_steps: int = 0):
    """A tf.function: (uint8 [B, S, S, 3] crops, float32 [B, S, S] masks, float32 [B, 5, 2] landmarks) ->
    dict of numpy-ready tensors coefficients [B, 257], coarse_albedo / refined_albedo [B, V, 3] in
    [0, 1], visibility [B, V]. fit_steps: of the coarse fit (0: the regressor alone)."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    from face_gcn.reconstruction import forward  # pylint: disable=import-outside-toplevel
    nets = forward.for_inference(nets)  # the CNNs' batch norms folded into their convolutions
    size = nets.image_size

    @tf.function(input_signature=[tf.TensorSpec([None, size, size, 3], tf.uint8),
                                  tf.TensorSpec([None, size, size], tf.float32),
                                  tf.TensorSpec([None, 5, 2], tf.float32)], autograph=False)
    def run(images, masks, landmarks):
        result = forward.reconstruct(nets, images, face_mask=masks, backend=backend, landmarks=landmarks,
                                     fit_steps=fit_steps)
        return {"coefficients": result.coefficients,
                "coarse_albedo": tf.clip_by_value(result.coarse.albedo, 0.0, 1.0),
                "refined_albedo": tf.clip_by_value(result.refined_albedo, 0.0, 1.0),
                "visibility": result.samples.visibility}

    return run


class Reconstructor:
    """Aligns photos one by one, runs the networks on full batches, writes each photo's files."""

    def __init__(self, nets, photo_outputs, batch_size: int, aligner, backend: str = "auto", source: str = "",
                 fit_steps: int = 0):
        """photo_outputs: an entered _photos.PhotoOutputs (the locked output folder)."""
        self.nets, self.outputs, self.batch_size, self.aligner = nets, photo_outputs, batch_size, aligner
        self.backend, self.source = backend, source
        self.infer = batch_inference(nets, backend, fit_steps)
        self.pending = []          # (path, AlignedPhoto, seconds to align)
        self.done, self.failed = [], []

    def add(self, path: str):
        started = time.perf_counter()
        try:
            photo = self.aligner.align(path)
        except _photos.SkipImage as skip:
            self.failed.append({"source": path, "reason": skip.reason, "detail": skip.detail})
            return
        except Exception as error:  # pylint: disable=broad-except
            self.failed.append({"source": path, "reason": "error", "detail": f"{type(error).__name__}: {error}"})
            return
        self.pending.append((path, photo, time.perf_counter() - started))
        if len(self.pending) >= self.batch_size:
            self.flush()

    def flush(self):
        import numpy as np  # pylint: disable=import-outside-toplevel

        from face_gcn.fit import outputs  # pylint: disable=import-outside-toplevel
        batch, self.pending = self.pending, []
        if not batch:
            return
        started = time.perf_counter()
        try:
            result = self.infer(np.stack([photo.crop for _, photo, _ in batch]),
                                np.stack([photo.mask for _, photo, _ in batch]).astype(np.float32),
                                np.stack([photo.landmarks for _, photo, _ in batch]).astype(np.float32))
            result = {key: value.numpy() for key, value in result.items()}
        except Exception as error:  # pylint: disable=broad-except
            for path, _, _ in batch:
                self.failed.append({"source": path, "reason": "error",
                                    "detail": f"inference failed: {type(error).__name__}: {error}"})
            return
        per_image = (time.perf_counter() - started) / len(batch)
        for index, (path, photo, align_seconds) in enumerate(batch):
            extra = {"source": path, "model": self.source, "num_faces": photo.num_faces,
                     "detection_score": photo.detection_score, "mask_landmarks": photo.mask_landmarks,
                     "visible_vertex_fraction": float(result["visibility"][index].mean())}
            try:
                name = self.outputs.claim(path)
                record = outputs.write_reconstruction(self.outputs.path, self.nets.morphable, outputs.FaceReconstruction(
                    name=name, crop=photo.crop, mask=photo.mask, landmarks=photo.landmarks,
                    transform=photo.transform, original=photo.original,
                    coefficients=result["coefficients"][index],
                    albedo={"coarse": result["coarse_albedo"][index], "refined": result["refined_albedo"][index]},
                    seconds={"detect_align_mask": align_seconds, "inference": per_image}, extra=extra),
                    backend=self.backend)
            except Exception as error:  # pylint: disable=broad-except
                self.failed.append({"source": path, "reason": "error",
                                    "detail": f"writing outputs failed: {type(error).__name__}: {error}"})
                continue
            self.done.append({"name": name, "source": path, **{key: record[key] for key in (
                "psnr_coarse", "psnr_refined", "ssim_coarse", "ssim_refined")}, "seconds": record["seconds"]})


def main(argv):
    arguments = argv[1:]
    if not arguments:
        raise app.UsageError("give at least one IMAGE or folder: face-gcn reconstruct IMAGE... --model DIR --out DIR")
    if not FLAGS.model:
        raise app.UsageError("--model is required (a model directory from `face-gcn train`)")
    if not FLAGS.out:
        raise app.UsageError("--out is required")
    if FLAGS.batch_size < 1:
        raise app.UsageError("--batch_size must be at least 1")
    classes = _photos.segmenter_classes(FLAGS.segmenter_classes, PROG)
    segmenter = _photos.check_segmenter(FLAGS.segmenter, PROG)
    try:
        paths = _photos.list_images(arguments)
    except ValueError as error:
        fail(PROG, str(error))

    with _photos.open_outputs(FLAGS.out, PROG, arguments) as photo_outputs:
        _reconstruct(paths, photo_outputs, classes, segmenter)


def _reconstruct(paths, photo_outputs, classes, segmenter):
    from face_gcn.reconstruction import model_dir  # pylint: disable=import-outside-toplevel
    try:
        nets = model_dir.load_model_dir(FLAGS.model)
    except model_dir.ModelDirError as error:
        fail(PROG, str(error))
    try:
        aligner = _photos.PhotoAligner(nets.morphable.alignment_landmarks, nets.image_size, segmenter=segmenter,
                                       segmenter_classes=classes, min_face_size=FLAGS.min_face_size,
                                       mask_landmarks=int(FLAGS.mask_landmarks))
    except ValueError as error:  # a --segmenter that is not a usable SavedModel
        fail(PROG, str(error))
    started = time.perf_counter()
    runner = Reconstructor(nets, photo_outputs, FLAGS.batch_size, aligner, FLAGS.backend,
                           source=os.path.abspath(FLAGS.model), fit_steps=FLAGS.fit_steps)
    for path in _photos.progress(paths, "reconstruct", FLAGS.progress):
        runner.add(path)
    runner.flush()
    from face_gcn.nets import recognition  # pylint: disable=import-outside-toplevel
    recognizer = recognition.kind_of(nets.recognizer)
    summary = {"model": os.path.abspath(FLAGS.model), "morphable_model": nets.morphable.name,
               "num_images": len(paths), "reconstructed": runner.done, "failed": runner.failed,
               "seconds": round(time.perf_counter() - started, 3),
               "settings": {"image_size": nets.image_size, "batch_size": FLAGS.batch_size,
                            "uses_facenet": recognizer == "facenet", "recognizer": recognizer, "segmenter": segmenter,
                            "mask_landmarks": int(FLAGS.mask_landmarks), "backend": FLAGS.backend,
                            "fit_steps": FLAGS.fit_steps}}
    photo_outputs.write_summary(summary)
    print(f"reconstruct: {len(runner.done)} reconstructed, {len(runner.failed)} skipped "
          f"({_photos.reason_counts(runner.failed)}) in {summary['seconds']:.1f} s; results in {FLAGS.out}")
    if not runner.done:
        fail(PROG, "no image could be reconstructed (see summary.json)")
