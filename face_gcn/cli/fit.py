"""`face-gcn fit`: reconstruct photos by fitting the morphable model, then refine the texture.

  face-gcn fit photo.jpg --out results/
  face-gcn fit photos/ more.png --out results/ --morphable_model bfm_front.npz

Per photo: MTCNN detection (the largest face), Deng's alignment to a 224 crop, with --landmarks 68
dlib's 68 landmarks of the face (MTCNN's 5, the default, where dlib, its model or a plausible
prediction is missing; recorded per photo as "landmarks" in its JSON), the face mask of the
built-in segmenter (face region from the fit's landmarks, or from those --mask_landmarks names;
"mask_landmarks" in the JSON) or of a face-parsing SavedModel by path, analysis-by-synthesis fitting of the 257
coefficients (face_gcn.fit.coarse_fit; --batch_size photos are fitted together, those with 68 and
those with 5 landmarks as two batches; starting from the mean face, or from a regressor's
coefficients with --regressor),
test-time GCN texture refinement (face_gcn.fit.refine), then the files of face_gcn.fit.outputs.
Folders are searched recursively for images. Photos without a face (or unreadable) are skipped
and listed with the reason in DIR/summary.json.
"""

from __future__ import annotations

import os
import time

from absl import app, flags

from face_gcn.cli import _photos, _recognizer
from face_gcn.cli._errors import fail

FLAGS = flags.FLAGS
flags.DEFINE_string("out", None, "Output folder.")
flags.DEFINE_string("morphable_model", None, "Morphable model (.npz; default: "
                    "$FACE_GCN_MORPHABLE_MODEL, else the built-in demo model).")
flags.DEFINE_string("regressor", None, "A regressor .keras file (face-gcn train-coarse or convert-deng) whose "
                    "coefficients start each fit; default: the mean face, frontal, ambient light.")
flags.DEFINE_enum("recognizer", None, ["auto", "facenet", "face_descriptor", "none"],
                  "Face-recognition network of the identity loss in the fit and the refinement: facenet, "
                  "face_descriptor (dlib's, packaged), auto (FaceNet with --facenet_weights, else dlib's) or none; "
                  "default: facenet with --facenet_weights, else none (dlib's term made the fit 1.4x slower for no "
                  "visible change on the photos measured, see the README).")
flags.DEFINE_string("facenet_weights", None, "FaceNet Keras weights (face-gcn convert-facenet).")
flags.DEFINE_string("face_descriptor_weights", None, "dlib descriptor weights (face-gcn convert-face-api); "
                    "default: the packaged ones.")
flags.DEFINE_string("segmenter", "builtin", _photos.SEGMENTER_HELP)
flags.DEFINE_list("segmenter_classes", [], "For a SavedModel returning class scores: the face classes.")
flags.DEFINE_enum("landmarks", "5", ["68", "5"], "Landmarks the fit follows: 5 (MTCNN's) or 68 (dlib's shape "
                  "predictor on the face MTCNN found, MTCNN's 5 for a photo where they are unavailable; its "
                  "model was trained on iBUG 300-W, which forbids commercial use).")
flags.DEFINE_enum("mask_landmarks", None, ["68", "5"], "Landmarks the built-in segmenter draws the face region "
                  "from: 68 (dlib's; MTCNN's 5 where unavailable) or 5; default: as --landmarks. 68 here with a fit to "
                  "5 points tightens the mask without the 68-point fit (see tools/bench_occlusion.py).")
flags.DEFINE_string("landmarks68_model", None, "dlib's 68-point shape predictor .dat (default: the one the "
                    "face_recognition_models package carries).")
flags.DEFINE_integer("crop_size", 224, "Side of the aligned crop that is fitted, pixels.")
flags.DEFINE_integer("pose_steps", 60, "Adam steps of the pose stage (landmarks only).")
flags.DEFINE_integer("shape_steps", 100, "Adam steps of the shape stage.")
flags.DEFINE_integer("appearance_steps", 140, "Adam steps of the albedo + light stage.")
flags.DEFINE_integer("low_resolution", 112, "Render size of the shape stage (0: the crop size).")
flags.DEFINE_integer("refine_steps", 150, "Adam steps of the test-time GCN refinement (0: none).")
flags.DEFINE_integer("min_face_size", 20, "Smallest face side MTCNN searches for, pixels.", lower_bound=1,
                     upper_bound=4096)
flags.DEFINE_integer("batch_size", 8, "Photos whose coarse fits run together as one batch (each face is "
                     "fitted as if alone; the texture refinement runs per photo).")
flags.DEFINE_boolean("progress", True, "Show a progress bar.")

PROG = "face-gcn fit"


class FitPipeline:
    """Detector, segmenter, fitter and refiner, built once for many photos."""

    def __init__(self, model, crop_size, fit_config, refine_config, recognizer=None, segmenter="builtin",
                 segmenter_classes=(), min_face_size=20, regressor=None, landmarks=68, landmarks68_model=None,
                 mask_landmarks=None):
        from face_gcn.fit import coarse_fit, refine  # pylint: disable=import-outside-toplevel
        self.model = model
        self.crop_size = crop_size
        self.regressor = regressor
        self.aligner = _photos.PhotoAligner(model.alignment_landmarks, crop_size, segmenter=segmenter,
                                            segmenter_classes=segmenter_classes, min_face_size=min_face_size,
                                            landmarks=landmarks, landmarks68_model=landmarks68_model,
                                            mask_landmarks=mask_landmarks)
        self.fitter = coarse_fit.CoarseFitter(model, crop_size, fit_config, recognizer=recognizer)
        self.refiner = refine.TextureRefiner(model, crop_size, refine_config, recognizer=recognizer) \
            if refine_config.steps > 0 else None

    def fit(self, photos: list) -> list:
        """The coarse fits of aligned photos, in order: those with 68 landmarks as one batch, those
        with 5 as another (fit_group)."""
        fits = [None] * len(photos)
        for count in (68, 5):
            group = [i for i, photo in enumerate(photos) if len(photo.fit_landmarks) == count]
            for i, fit in zip(group, self.fit_group([photos[i] for i in group]) if group else []):
                fits[i] = fit
        return fits

    def fit_group(self, photos: list) -> list:
        """The coarse fits of aligned photos with the same landmark count, one batch (faces are fitted
        independently, so a batch gives each face its own fit; tested). If the batch fails, each photo
        is fitted alone, so one bad photo does not lose the others: [(coefficients [257], {stage:
        {term: float}}, seconds per face) or the exception of that photo]."""
        import numpy as np  # pylint: disable=import-outside-toplevel
        try:
            crops = np.stack([p.crop for p in photos])
            result = self.fitter.fit_batch(crops, np.stack([p.mask for p in photos]),
                                           np.stack([p.fit_landmarks for p in photos]), self._initial(crops))
        except Exception:  # pylint: disable=broad-except
            return [self._fit_alone(photo) for photo in photos]
        return [(result.coefficients[b], {stage: {name: float(value[b]) for name, value in terms.items()}
                                          for stage, terms in result.losses.items()}, result.seconds / len(photos))
                for b in range(len(photos))]

    def _initial(self, crops):
        """Starting coefficients [B, 257] of aligned crops [B, S, S, 3] uint8: the regressor's, or
        None (the fitter's mean face)."""
        if self.regressor is None:
            return None
        from face_gcn.nets import regressor as regressor_lib  # pylint: disable=import-outside-toplevel
        return regressor_lib.regress(self.regressor, crops).coefficients.numpy()

    def _fit_alone(self, photo):
        try:
            initial = self._initial(photo.crop[None])
            fit = self.fitter.fit(photo.crop, photo.mask, photo.fit_landmarks, None if initial is None else initial[0])
        except Exception as error:  # pylint: disable=broad-except
            return error
        return fit.coefficients, fit.losses, fit.seconds

    def finish(self, photo, coefficients, fit_losses, fit_seconds: float, name: str, out_dir: str) -> dict:
        """Refines the texture of one fitted photo and writes its files; returns the JSON record."""
        from face_gcn.fit import outputs  # pylint: disable=import-outside-toplevel
        started = time.perf_counter()
        coarse_albedo = _coarse_albedo(self.model, coefficients)
        albedo = {"coarse": coarse_albedo}
        seconds = {"detect_align_mask": photo.seconds, "coarse_fit": fit_seconds}
        extra = {"source": photo.source, "num_faces": photo.num_faces, "detection_score": photo.detection_score,
                 "landmarks": photo.landmarks_note, "mask_landmarks": photo.mask_landmarks, "fit_losses": fit_losses}
        if photo.landmarks68 is not None:
            extra["landmarks_68_crop_px"] = photo.landmarks68
        if self.refiner is not None:
            refined = self.refiner.refine(photo.crop, photo.mask, coefficients)
            albedo["refined"] = refined.albedo
            seconds["refine"] = refined.seconds
            extra["refine_losses"] = refined.losses
            extra["visible_vertex_fraction"] = float(refined.visibility.mean())
        else:
            albedo["refined"] = coarse_albedo
            seconds["refine"] = 0.0
        seconds["fit_total"] = fit_seconds + time.perf_counter() - started
        return outputs.write_reconstruction(out_dir, self.model, outputs.FaceReconstruction(
            name=name, crop=photo.crop, mask=photo.mask, landmarks=photo.landmarks, transform=photo.transform,
            original=photo.original, coefficients=coefficients, albedo=albedo, seconds=seconds, extra=extra))


def _coarse_albedo(model, coefficients):
    import numpy as np  # pylint: disable=import-outside-toplevel

    from face_gcn.morphable import coefficients as coeff_lib  # pylint: disable=import-outside-toplevel
    from face_gcn.morphable import formation  # pylint: disable=import-outside-toplevel
    tex = np.asarray(coefficients, np.float32)[coeff_lib.BLOCK_SLICES["tex"]][None]
    return np.clip(formation.albedo_from_model(model, tex).numpy()[0], 0.0, 1.0)


def main(argv):
    arguments = argv[1:]
    if not arguments:
        raise app.UsageError("give at least one IMAGE or folder: face-gcn fit IMAGE... --out DIR")
    if not FLAGS.out:
        raise app.UsageError("--out is required")
    for flag in ("pose_steps", "shape_steps", "appearance_steps", "refine_steps", "low_resolution"):
        if getattr(FLAGS, flag) < 0:
            raise app.UsageError(f"--{flag} must be >= 0")
    if not 1 <= FLAGS.batch_size <= 256:
        raise app.UsageError(f"--batch_size must be in [1, 256], got {FLAGS.batch_size}")
    if not 64 <= FLAGS.crop_size <= 1024:
        raise app.UsageError(f"--crop_size must be in [64, 1024], got {FLAGS.crop_size}")
    classes = _photos.segmenter_classes(FLAGS.segmenter_classes, PROG)
    if FLAGS.landmarks68_model and not os.path.isfile(FLAGS.landmarks68_model):
        fail(PROG, f"--landmarks68_model {FLAGS.landmarks68_model!r} is not a file")
    segmenter = _photos.check_segmenter(FLAGS.segmenter, PROG)
    for flag in ("facenet_weights", "face_descriptor_weights"):
        if getattr(FLAGS, flag) and not os.path.isfile(getattr(FLAGS, flag)):
            fail(PROG, f"--{flag} {getattr(FLAGS, flag)!r} is not a file")
    try:
        paths = _photos.list_images(arguments)
    except ValueError as error:
        fail(PROG, str(error))

    with _photos.open_outputs(FLAGS.out, PROG, arguments) as photo_outputs:
        _fit(paths, photo_outputs, classes, segmenter)


def _fit(paths, photo_outputs, classes, segmenter):
    from face_gcn.morphable import configured  # pylint: disable=import-outside-toplevel
    from face_gcn.morphable import model as model_lib  # pylint: disable=import-outside-toplevel
    try:  # before TensorFlow is imported: a bad model file fails in a fraction of a second
        model = configured.load_configured(FLAGS.morphable_model)
    except (model_lib.MorphableModelError, OSError) as error:
        fail(PROG, f"cannot load the morphable model ({configured.describe(FLAGS.morphable_model)}): {error}")
    from face_gcn.fit import coarse_fit, refine  # pylint: disable=import-outside-toplevel
    from face_gcn.nets import recognition  # pylint: disable=import-outside-toplevel
    choice = FLAGS.recognizer or ("facenet" if FLAGS.facenet_weights else "none")
    recognizer = _recognizer.load_or_fail(PROG, choice, FLAGS.facenet_weights, FLAGS.face_descriptor_weights)
    regressor = None
    if FLAGS.regressor:
        from face_gcn.nets import regressor as regressor_lib  # pylint: disable=import-outside-toplevel
        if not os.path.isfile(FLAGS.regressor):
            fail(PROG, f"--regressor {FLAGS.regressor!r} is not a file")
        try:
            regressor = regressor_lib.build_regressor((FLAGS.crop_size, FLAGS.crop_size, 3), weights=FLAGS.regressor)
        except (OSError, ValueError) as error:
            fail(PROG, f"cannot load the regressor {FLAGS.regressor}: {error}")
    low = FLAGS.low_resolution if FLAGS.low_resolution < FLAGS.crop_size else 0
    fit_config = coarse_fit.FitConfig(stages=coarse_fit.default_stages(
        FLAGS.pose_steps, FLAGS.shape_steps, FLAGS.appearance_steps, low))
    try:
        pipeline = FitPipeline(model, FLAGS.crop_size, fit_config, refine.RefineConfig(steps=FLAGS.refine_steps),
                               recognizer=recognizer, segmenter=segmenter, segmenter_classes=classes,
                               min_face_size=FLAGS.min_face_size, regressor=regressor,
                               landmarks=int(FLAGS.landmarks), landmarks68_model=FLAGS.landmarks68_model,
                               mask_landmarks=int(FLAGS.mask_landmarks or FLAGS.landmarks))
    except ValueError as error:  # a --segmenter that is not a usable SavedModel
        fail(PROG, str(error))
    started = time.perf_counter()
    fitted, failed = [], []

    def failure(path, error):
        if isinstance(error, _photos.SkipImage):
            return {"source": path, "reason": error.reason, "detail": error.detail}
        return {"source": path, "reason": "error", "detail": f"{type(error).__name__}: {error}"}

    def fit_and_write(aligned):
        """aligned: [AlignedPhoto] fitted as one batch, then refined and written one by one."""
        for photo, fit in zip(aligned, pipeline.fit(aligned)):
            if isinstance(fit, Exception):
                failed.append(failure(photo.source, fit))
                continue
            try:
                name = photo_outputs.claim(photo.source)
                record = pipeline.finish(photo, *fit, name, photo_outputs.path)
            except Exception as error:  # pylint: disable=broad-except
                failed.append(failure(photo.source, error))
                continue
            fitted.append({"name": name, "source": photo.source, "landmarks": photo.landmarks_note,
                           **{key: record[key] for key in ("psnr_coarse", "psnr_refined", "ssim_coarse",
                                                           "ssim_refined")}, "seconds": record["seconds"]})

    aligned = []
    for path in _photos.progress(paths, "fit", FLAGS.progress):
        try:
            photo = pipeline.aligner.align(path)
        except Exception as error:  # pylint: disable=broad-except
            failed.append(failure(path, error))
            continue
        aligned.append(photo)
        if len(aligned) == FLAGS.batch_size:
            fit_and_write(aligned)
            aligned = []
    if aligned:
        fit_and_write(aligned)
    summary = {"morphable_model": model.name, "num_images": len(paths), "fitted": fitted,
               "failed": failed, "seconds": round(time.perf_counter() - started, 3),
               "settings": {"crop_size": FLAGS.crop_size, "pose_steps": FLAGS.pose_steps,
                            "shape_steps": FLAGS.shape_steps, "appearance_steps": FLAGS.appearance_steps,
                            "low_resolution": low, "refine_steps": FLAGS.refine_steps,
                            "batch_size": FLAGS.batch_size, "regressor": FLAGS.regressor or None,
                            "landmarks": int(FLAGS.landmarks), "segmenter": segmenter,
                            "mask_landmarks": int(FLAGS.mask_landmarks or FLAGS.landmarks),
                            "identity_loss": recognition.kind_of(recognizer)}}
    photo_outputs.write_summary(summary)
    reasons = _photos.reason_counts(failed)
    print(f"fit: {len(fitted)} fitted, {len(failed)} skipped ({reasons}) in {summary['seconds']:.1f} s; "
          f"results in {FLAGS.out}")
    if not fitted:
        fail(PROG, "no image could be fitted (see summary.json)")
