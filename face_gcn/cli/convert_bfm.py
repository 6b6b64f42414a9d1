"""`face-gcn convert-bfm`: turn the user's own Basel Face Model files into a face_gcn model.

Either Deng's ready front-face file:
  face-gcn convert-bfm --bfm_front_mat BFM/BFM_model_front.mat --out bfm_front.npz
or the original files, converted the way Deng's code does:
  face-gcn convert-bfm --morphable_model_mat BFM/01_MorphableModel.mat \\
      --exp_pca_bin BFM/Exp_Pca.bin --std_exp_txt BFM/std_exp.txt \\
      --front_idx_mat BFM/BFM_front_idx.mat --exp_idx_mat BFM/BFM_exp_idx.mat \\
      --facemodel_info_mat BFM/facemodel_info.mat --out bfm_front.npz
Then point --morphable_model (or $FACE_GCN_MORPHABLE_MODEL) at the .npz. Nothing is
downloaded; the Basel data stays with the user.
"""

from __future__ import annotations


from absl import app, flags

from face_gcn.cli._errors import fail

FLAGS = flags.FLAGS
flags.DEFINE_string("bfm_front_mat", None, "Deng's BFM_model_front.mat (ready front-face model).")
flags.DEFINE_string("morphable_model_mat", None, "BFM 2009's 01_MorphableModel.mat.")
flags.DEFINE_string("exp_pca_bin", None, "Exp_Pca.bin (FaceWarehouse expression basis).")
flags.DEFINE_string("std_exp_txt", None, "std_exp.txt (expression standard deviations).")
flags.DEFINE_string("front_idx_mat", None, "Deng's BFM_front_idx.mat.")
flags.DEFINE_string("exp_idx_mat", None, "Deng's BFM_exp_idx.mat.")
flags.DEFINE_string("facemodel_info_mat", None, "Deng's facemodel_info.mat.")
flags.DEFINE_string("out", None, "Where to write the face_gcn morphable model (.npz).")

_ORIGINAL_FLAGS = ("morphable_model_mat", "exp_pca_bin", "std_exp_txt", "front_idx_mat",
                   "exp_idx_mat", "facemodel_info_mat")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    if not FLAGS.out:
        raise app.UsageError("--out is required")
    given = [name for name in _ORIGINAL_FLAGS if getattr(FLAGS, name)]
    if FLAGS.bfm_front_mat and given:
        raise app.UsageError("give either --bfm_front_mat or the original files, not both")
    if not FLAGS.bfm_front_mat and len(given) != len(_ORIGINAL_FLAGS):
        missing = [f"--{name}" for name in _ORIGINAL_FLAGS if name not in given]
        raise app.UsageError("give --bfm_front_mat, or all of the original files; missing: "
                             + ", ".join(missing))

    # Imported after flag parsing so that --help stays instant.
    from face_gcn.morphable import basel  # pylint: disable=import-outside-toplevel
    from face_gcn.morphable import model as model_lib  # pylint: disable=import-outside-toplevel

    try:
        if FLAGS.bfm_front_mat:
            model = basel.load_deng_front_model(FLAGS.bfm_front_mat)
        else:
            model = basel.convert_bfm2009(
                morphable_model_mat=FLAGS.morphable_model_mat, exp_pca_bin=FLAGS.exp_pca_bin,
                front_idx_mat=FLAGS.front_idx_mat, exp_idx_mat=FLAGS.exp_idx_mat,
                facemodel_info_mat=FLAGS.facemodel_info_mat, std_exp_txt=FLAGS.std_exp_txt)
        model_lib.save(model, FLAGS.out)
    except (model_lib.MorphableModelError, OSError) as error:
        fail("face-gcn convert-bfm", str(error))
    print(f"wrote {FLAGS.out}: {model.num_vertices} vertices, {model.num_triangles} triangles, "
          f"{model.num_id} identity / {model.num_exp} expression / {model.num_albedo} albedo "
          "components")
