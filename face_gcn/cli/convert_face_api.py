"""`face-gcn convert-face-api`: dlib's face descriptor network, from face-api's TF.js weights, to Keras.

  npm pack @vladmandic/face-api && tar xzf vladmandic-face-api-*.tgz
  face-gcn convert-face-api --model package/model --out face_descriptor.weights.h5

--model is the package's model/ folder (or the path of its
face_recognition_model-weights_manifest.json). Then give the .weights.h5 to
face_gcn.nets.face_descriptor.build_face_descriptor(weights=...). Nothing is downloaded here: npm
fetches the package from its registry, once.
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
flags.DEFINE_string("out", None, f"Output Keras weights file; must end in {_SUFFIX}.")


def manifest_path(model: str) -> str:
    """The recognizer's manifest inside a model folder, or the given file."""
    return os.path.join(model, MANIFEST) if os.path.isdir(model) else model


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    if not FLAGS.model or not FLAGS.out:
        raise app.UsageError("--model and --out are required")
    if not FLAGS.out.endswith(_SUFFIX):
        raise app.UsageError(f"--out must end in {_SUFFIX}")
    # Imported after flag parsing so that --help stays instant.
    from face_gcn.nets import face_descriptor, tfjs_weights  # pylint: disable=import-outside-toplevel

    path = manifest_path(FLAGS.model)
    model = face_descriptor.build_face_descriptor()
    try:
        weights = tfjs_weights.read_tfjs_weights(path)
        face_descriptor.load_face_api_weights(model, weights)
    except ValueError as error:  # TfjsWeightsError included
        fail(PROG, str(error))
    with fileio.atomic_path(FLAGS.out) as tmp:
        model.save_weights(tmp, overwrite=True)
    values = sum(int(v.size) for v in weights.values())
    print(f"wrote {FLAGS.out}: {len(weights)} tensors, {values} values from {path}")


if __name__ == "__main__":
    app.run(main)
