"""Benchmark of the trained model: images/s of the exported SavedModel and of each stage.

  python tools/benchmark.py --model runs/celeba/model [--savedmodel DIR] [--batch_sizes 1,16,64] [--json PATH]
  python tools/benchmark.py --make_untrained_model /tmp/r50 --image_size 224 --backbone resnet50
      (writes a model directory with untrained weights of the full-size networks, then benchmarks it)
  python tools/benchmark.py --make_untrained_model /tmp/bfm --bfm_size --facenet --image_size 224 \
      --batch_sizes 16 --json bench.json
      (the paper's scale: the demo generator at BFM density, 35,899 vertices, instead of the
      3,643-vertex demo mesh; ResNet-50 + FaceNet)

Same flags and output as `face-gcn benchmark` (face_gcn/cli/benchmark.py), plus --make_untrained_model.
"""

from __future__ import annotations

from absl import app, flags

from face_gcn.cli import benchmark

FLAGS = flags.FLAGS
flags.DEFINE_string("make_untrained_model", None, "Write a model directory here with untrained weights "
                    "(--backbone, --image_size, the paper's GCN widths) and benchmark it.")
flags.DEFINE_enum("backbone", "resnet50", ["resnet50", "compact"], "Regressor backbone of the untrained model.")
flags.DEFINE_integer("image_size", 224, "Crop side of the untrained model.")
flags.DEFINE_boolean("facenet", False, "The untrained model uses FaceNet features (random weights).")
flags.DEFINE_boolean("bfm_size", False, "The untrained model's mesh is the demo generator at BFM density "
                     "(35,899 vertices, like BFM's 35,709) instead of the 3,643-vertex demo mesh.")


def make_untrained_model(path: str, backbone: str, image_size: int, use_facenet: bool, bfm_size: bool = False) -> None:
    """A model directory of the demo morphable model (at BFM density with bfm_size) with untrained networks
    of the paper's sizes."""
    from face_gcn.graph import hierarchy as hierarchy_lib  # pylint: disable=import-outside-toplevel
    from face_gcn.morphable import configured  # pylint: disable=import-outside-toplevel
    from face_gcn.nets import facenet as facenet_lib  # pylint: disable=import-outside-toplevel
    from face_gcn.nets import gcn, recognition  # pylint: disable=import-outside-toplevel
    from face_gcn.nets import regressor as regressor_lib  # pylint: disable=import-outside-toplevel
    from face_gcn.reconstruction import forward, model_dir  # pylint: disable=import-outside-toplevel
    if bfm_size:
        from face_gcn.morphable import demo  # pylint: disable=import-outside-toplevel
        morphable = demo.build_demo_model(0, spacing=demo.BFM_DENSITY_SPACING)
    else:
        morphable = configured.load_demo()
    regressor = regressor_lib.build_regressor((image_size, image_size, 3), backbone=backbone)
    hierarchy = hierarchy_lib.load_or_build_hierarchy(morphable.mean_shape, morphable.triangles, (4, 4, 4, 4))
    facenet = facenet_lib.build_facenet() if use_facenet else None
    config = gcn.GCNConfig(embedding_size=forward.embedding_size(regressor_lib.feature_size(backbone),
                                                                 recognition.feature_size(facenet)))
    nets = forward.FaceGCN(morphable, regressor, gcn.build_texture_gcn(hierarchy, config), facenet, image_size)
    model_dir.save_model_dir(path, nets, {"untrained": True, "backbone": backbone})


def main(argv):
    if FLAGS.make_untrained_model:
        make_untrained_model(FLAGS.make_untrained_model, FLAGS.backbone, FLAGS.image_size, FLAGS.facenet,
                             FLAGS.bfm_size)
        FLAGS.model = FLAGS.make_untrained_model
    benchmark.main(argv)


if __name__ == "__main__":
    app.run(main)
