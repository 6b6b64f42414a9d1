"""`face-gcn convert-deng`: Deng et al.'s FaceReconModel.pb -> a Keras regressor (.keras).

  face-gcn convert-deng --frozen_graph network/FaceReconModel.pb --out deng_regressor.keras

Rebuilds Deng's network (TF-slim resnet_v1_50 + the seven coefficient heads) in Keras, copies every
weight from the graph's constants by name (face_gcn.nets.deng_keras), then runs the Keras model and
the frozen graph on --check_images random images and refuses (exit 1, nothing written) when their
coefficients differ by more than --tolerance. The .keras file takes RGB in [0, 255] like every
face_gcn regressor and gives the 257 coefficients and the 2048 pool5 features: use it wherever a
regressor is expected (`--set nets.regressor=deng_regressor.keras` in train and prepare-coarse,
`nets.regressor_weights` to start train-coarse from it). The .pb stays with the user; nothing is
downloaded.
"""

from __future__ import annotations

import time

from absl import app, flags

from face_gcn.cli._errors import fail

FLAGS = flags.FLAGS
flags.DEFINE_string("frozen_graph", None,
                    "Deng's frozen graph, e.g. Deep3DFaceReconstruction/network/FaceReconModel.pb.")
flags.DEFINE_string("out", None, "Output Keras model; must end in .keras.")
flags.DEFINE_integer("check_images", 3, "Random images the Keras model and the graph are compared on.", lower_bound=1)
flags.DEFINE_float("tolerance", 1e-3, "Largest coefficient difference accepted (absolute); the pool5 features "
                   "may differ by tolerance x max(1, their largest magnitude).", lower_bound=0.0)
flags.DEFINE_integer("seed", 0, "Seed of the random check images.")

PROG = "face-gcn convert-deng"
_SUFFIX = ".keras"


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    if not FLAGS.frozen_graph or not FLAGS.out:
        raise app.UsageError("--frozen_graph and --out are required")
    if not FLAGS.out.endswith(_SUFFIX):
        raise app.UsageError(f"--out must end in {_SUFFIX}")
    # Imported after flag parsing so that --help stays instant.
    from face_gcn import fileio  # pylint: disable=import-outside-toplevel
    from face_gcn.nets import deng_graph, deng_keras  # pylint: disable=import-outside-toplevel

    start = time.perf_counter()
    try:
        graph_def = deng_graph.read_graph_def(FLAGS.frozen_graph)
        frozen = deng_graph.DengFrozenRegressor(FLAGS.frozen_graph, graph_def=graph_def, feature_size=None)
        model, layout, count = deng_keras.convert_graph_def(graph_def)
    except deng_keras.DengConversionError as error:
        fail(PROG, f"{FLAGS.frozen_graph}: {error} (expected Deng's FaceReconModel.pb)")
    except (deng_graph.DengGraphError, OSError) as error:
        fail(PROG, str(error))
    print(f"rebuilt {FLAGS.frozen_graph} in Keras: resnet_v1_50 ({layout.describe()}), "
          f"{count:,} values copied")
    try:
        differences = deng_keras.compare_with_graph(model, frozen, FLAGS.check_images, FLAGS.seed)
    except deng_graph.DengGraphError as error:
        fail(PROG, str(error))
    print(f"check on {FLAGS.check_images} random images: max coefficient difference "
          f"{differences['coefficients']:.3g} (largest coefficient {differences['coefficient_scale']:.3g}), "
          f"max feature difference {differences['features']:.3g} (largest feature {differences['feature_scale']:.3g})")
    feature_limit = FLAGS.tolerance * max(1.0, differences["feature_scale"])
    if differences["coefficients"] > FLAGS.tolerance or differences["features"] > feature_limit:
        fail(PROG, f"the Keras model does not reproduce {FLAGS.frozen_graph}: max coefficient difference "
              f"{differences['coefficients']:.3g}, max feature difference {differences['features']:.3g} "
              f"(tolerance {FLAGS.tolerance:g}); the graph computes something the rebuild does not (not Deng's "
              "unmodified FaceReconModel.pb?); nothing written")
    with fileio.atomic_path(FLAGS.out) as tmp:
        model.save(tmp)
    print(f"wrote {FLAGS.out} ({time.perf_counter() - start:.1f} s)")


if __name__ == "__main__":
    app.run(main)
