"""Landmarks for fitting: dlib's 68 (face_gcn.data.landmarks68) vs MTCNN's 5, measured.

--mode=deng: on the sample inputs of Deng's repository (image + 5-point .txt, read from a bare git
  mirror with `git show`, never copied), the distance of MTCNN's 5 and of the 5 derived from dlib's
  68 (eye centres = mean of the 6 eye points, nose tip 30, mouth corners 48 and 54) to Deng's 5,
  in pixels and in units of Deng's eye distance, per image and mean; for the predictor on MTCNN's
  mapped box, on dlib's own HOG box where it finds the same face, and dlib's usual whole-photo
  detector + predictor at whole pixels (reference). Also prints the box calibration
  (landmarks68.BOX_SHIFT, BOX_SIDE) measured on the same photos.
--mode=synthetic: synthetic faces with known coefficients at 224 px; MTCNN and dlib run on the
  renders, then the photo fit (`face-gcn fit`'s schedule, from the mean face) with the true 5, the
  true 68, MTCNN's 5 and dlib's 68: pose error (degrees) and expression error against the truth.

  python tools/bench_landmarks.py --mode=deng [--deng_repo /work/.mirror/microsoft+Deep3DFaceReconstruction/repo]
  python tools/bench_landmarks.py --mode=synthetic [--num_faces 16]
"""

from __future__ import annotations

import subprocess

import numpy as np
from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_enum("mode", "deng", ["deng", "synthetic"], "Which measurement (module docstring).")
flags.DEFINE_string("deng_repo", "/work/.mirror/microsoft+Deep3DFaceReconstruction/repo",
                    "A git directory of microsoft/Deep3DFaceReconstruction (bare is fine).")
flags.DEFINE_integer("num_faces", 16, "--mode=synthetic: faces rendered.")
flags.DEFINE_integer("seed", 11, "--mode=synthetic: synthetic set seed.")
flags.DEFINE_integer("pose_steps", 60, "--mode=synthetic: steps of the fit's pose stage.")
flags.DEFINE_integer("shape_steps", 100, "--mode=synthetic: steps of the fit's shape stage.")
flags.DEFINE_integer("appearance_steps", 0, "--mode=synthetic: steps of the fit's appearance stage.")


def _git(repo: str, *args) -> bytes:
    return subprocess.run(["git", "-C", repo, *args], capture_output=True, check=True).stdout


def deng_inputs(repo: str):
    """Yields (name, rgb [H, W, 3] uint8, Deng's 5 points [5, 2]) for every input/NAME.{jpg,png} with a .txt."""
    import cv2  # pylint: disable=import-outside-toplevel
    names = [line.split("\t")[-1] for line in _git(repo, "ls-tree", "-r", "HEAD", "input").decode().splitlines()]
    for name in sorted(n for n in names if n.lower().endswith((".jpg", ".png"))):
        text = name.rsplit(".", 1)[0] + ".txt"
        if text not in names:
            continue
        bgr = cv2.imdecode(np.frombuffer(_git(repo, "show", f"HEAD:{name}"), np.uint8), cv2.IMREAD_COLOR)
        points = np.array([[float(v) for v in line.split()] for line in
                           _git(repo, "show", f"HEAD:{text}").decode().split("\n") if line.strip()])
        yield name.split("/")[-1], cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), points


def _distances(points5, reference5):
    """(mean distance in pixels, the same / the reference's eye distance) of [5, 2] to [5, 2]."""
    if points5 is None:
        return float("nan"), float("nan")
    mean = float(np.linalg.norm(points5 - reference5, axis=1).mean())
    return mean, mean / float(np.linalg.norm(reference5[1] - reference5[0]))


def _whole_photo_dlib(rgb, predictor_path):
    """dlib's usual use: HOG detector on the photo (upsampled once), predictor at whole pixels -> [68, 2] or None."""
    import dlib  # pylint: disable=import-outside-toplevel
    found = dlib.get_frontal_face_detector()(rgb, 1)
    if not found:
        return None
    best = max(found, key=lambda r: r.area())
    shape = dlib.shape_predictor(predictor_path)(rgb, best)
    return np.array([[shape.part(i).x, shape.part(i).y] for i in range(68)], np.float64), best


def deng_benchmark():
    from face_gcn.data import detection, landmarks68  # pylint: disable=import-outside-toplevel
    detector = detection.FaceDetector()
    by_rectangle = {name: landmarks68.LandmarkDetector68(rectangle=name, max_five_distance=1e9)
                    for name in ("mtcnn", "dlib")}
    columns = ("mtcnn5", "68@mtcnn", "68@dlib", "68 whole")
    print("distance to Deng's 5 points: mean over the 5, pixels / eye distances; 68@X: 5 derived from dlib's 68 "
          "with the predictor on X's box")
    print(f"{'image':<12}{'eyes px':>8}" + "".join(f"{c:>17}" for c in columns) + f"{'68vs5':>7}")
    rows, calibration = [], []
    for name, rgb, deng in deng_inputs(FLAGS.deng_repo):
        face = detector.detect(rgb).largest
        if face is None:
            print(f"{name:<12} MTCNN found no face")
            continue
        sets = {"mtcnn5": face.landmarks}
        predictions = {rectangle: predictor.predict(rgb, face).points for rectangle, predictor in by_rectangle.items()}
        for rectangle, points in predictions.items():
            sets[f"68@{rectangle}"] = landmarks68.five_from_68(points)
        whole = _whole_photo_dlib(rgb, by_rectangle["mtcnn"].model_path)
        sets["68 whole"] = None if whole is None else landmarks68.five_from_68(whole[0])
        if whole is not None:
            calibration.append(_box_calibration(face.box, whole[1]))
        row = [_distances(sets[c], deng) for c in columns]
        plausibility = landmarks68.five_point_distance(predictions["mtcnn"], face.landmarks)
        rows.append(row)
        eyes = np.linalg.norm(deng[1] - deng[0])
        print(f"{name:<12}{eyes:>8.1f}" + "".join(f"{px:>9.2f} /{rel:>6.3f}" for px, rel in row) + f"{plausibility:>7.2f}")
    mean = np.nanmean(np.asarray(rows), axis=0)
    print(f"{'mean':<12}{'':>8}" + "".join(f"{px:>9.2f} /{rel:>6.3f}" for px, rel in mean))
    calibration = np.asarray(calibration)
    print(f"box calibration over {len(calibration)} photos (dlib box vs MTCNN box, units of sqrt(w h)): "
          f"centre shift x {np.median(calibration[:, 0]):.3f} (std {calibration[:, 0].std():.3f}), "
          f"y {np.median(calibration[:, 1]):.3f} (std {calibration[:, 1].std():.3f}), side "
          f"{np.median(calibration[:, 2]):.3f} (std {calibration[:, 2].std():.3f}); "
          f"module: {landmarks68.BOX_SHIFT}, {landmarks68.BOX_SIDE}")


def _box_calibration(box, rectangle):
    """(centre shift x, y, side) of a dlib rectangle relative to an MTCNN box, in units of sqrt(w h)."""
    scale = float(np.sqrt(box[2] * box[3]))
    centre = box[:2] + (box[2:] - 1.0) / 2.0
    dlib_centre = np.array([(rectangle.left() + rectangle.right()) / 2.0, (rectangle.top() + rectangle.bottom()) / 2.0])
    return (*((dlib_centre - centre) / scale), (rectangle.width()) / scale)


def _expression_errors(model, fitted, truth):
    """(expression coefficient RMSE, RMS of the expression displacement error / RMS of the true displacement)."""
    from face_gcn.morphable import coefficients as coeff_lib  # pylint: disable=import-outside-toplevel
    block = coeff_lib.BLOCK_SLICES["exp"]
    basis = np.asarray(model.exp_basis, np.float64).reshape(-1, model.num_exp)
    error = (fitted[:, block] - truth[:, block]).astype(np.float64)
    displacement = error @ basis.T
    reference = truth[:, block].astype(np.float64) @ basis.T
    return (float(np.sqrt(np.mean(error ** 2))),
            float(np.sqrt(np.mean(displacement ** 2)) / np.sqrt(np.mean(reference ** 2))))


def _pose_error(fitted, truth):
    """Angle RMSE over faces and the 3 axes, degrees."""
    from face_gcn.morphable import coefficients as coeff_lib  # pylint: disable=import-outside-toplevel
    angles = coeff_lib.BLOCK_SLICES["angles"]
    return float(np.sqrt(np.mean(np.rad2deg(fitted[:, angles] - truth[:, angles]) ** 2)))


def synthetic_benchmark():
    from face_gcn.data import detection, landmarks68  # pylint: disable=import-outside-toplevel
    from face_gcn.fit import coarse_fit  # pylint: disable=import-outside-toplevel
    from face_gcn.morphable import configured  # pylint: disable=import-outside-toplevel
    from face_gcn.synthesis import dataset  # pylint: disable=import-outside-toplevel

    model = configured.load_demo()
    faces = dataset.generate_batch(model, FLAGS.seed, "heldout", range(FLAGS.num_faces),
                                   dataset.SyntheticConfig(image_size=224))
    detector, predictor = detection.FaceDetector(), landmarks68.LandmarkDetector68()
    kept, mtcnn5, dlib68, rejected = [], [], [], 0
    for i, image in enumerate(faces.images):
        face = detector.detect(image).largest
        if face is None:
            continue
        prediction = predictor.predict(image, face)
        if prediction.points is None:
            rejected += 1
            continue
        kept.append(i)
        mtcnn5.append(face.landmarks)
        dlib68.append(prediction.points)
    kept = np.asarray(kept)
    print(f"{FLAGS.num_faces} demo-model faces at 224 px: MTCNN found {len(kept) + rejected}, dlib's 68 plausible "
          f"on {len(kept)} (rejected {rejected}); those {len(kept)} are fitted")
    sets = {"true 5": faces.landmarks[kept], "true 68": faces.landmarks68[kept],
            "MTCNN 5": np.asarray(mtcnn5), "dlib 68": np.asarray(dlib68)}
    for name in ("MTCNN 5", "dlib 68"):
        truth = sets["true 5" if name == "MTCNN 5" else "true 68"]
        print(f"  {name} vs the true points: mean {np.linalg.norm(sets[name] - truth, axis=-1).mean():.2f} px")
    dlib_error = np.linalg.norm(sets["dlib 68"] - sets["true 68"], axis=-1)
    print(f"  dlib 68 vs the true 68: jaw line (0-16) {dlib_error[:, :17].mean():.2f} px, the other 51 "
          f"{dlib_error[:, 17:].mean():.2f} px")
    sets["dlib's 5"] = np.stack([landmarks68.five_from_68(p) for p in dlib68])
    five_error = np.linalg.norm(sets["dlib's 5"] - sets["true 5"], axis=-1).mean()
    print(f"  5 derived from dlib 68 vs the true 5: mean {five_error:.2f} px")
    config = coarse_fit.default_config(pose_steps=FLAGS.pose_steps, shape_steps=FLAGS.shape_steps,
                                       appearance_steps=FLAGS.appearance_steps, low_resolution=112)
    fitter = coarse_fit.CoarseFitter(model, 224, config)
    truth = faces.coefficients[kept]
    print(f"fit from the mean face: pose {FLAGS.pose_steps}, shape {FLAGS.shape_steps}, appearance "
          f"{FLAGS.appearance_steps} steps; the truth's pose RMS {_pose_error(np.zeros_like(truth), truth):.1f} deg")
    print(f"{'landmarks':<10}{'pose RMSE deg':>15}{'exp coef RMSE':>15}{'exp disp. rel':>15}{'s':>7}")
    for name, points in sets.items():
        result = fitter.fit_batch(faces.images[kept], faces.masks[kept], points)
        exp_rmse, exp_relative = _expression_errors(model, result.coefficients, truth)
        print(f"{name:<10}{_pose_error(result.coefficients, truth):>15.2f}{exp_rmse:>15.3f}{exp_relative:>15.3f}"
              f"{result.seconds:>7.1f}")


def main(argv):
    del argv
    if FLAGS.mode == "deng":
        deng_benchmark()
    else:
        synthetic_benchmark()


if __name__ == "__main__":
    app.run(main)
