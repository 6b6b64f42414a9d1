"""Fault injection: each failure of the hostile-tester audit (issue 16), fed to the installed entry
point in a fresh process. Every case must end in one `face-gcn CMD: error: ...` line with exit code 1
(no traceback) and leave the files it names untouched.

The cases run two at a time (each is a separate process). Failures kept closed elsewhere, in-process:
serving requests (tests/export/test_export.py), a kill during prepare-data (tests/data/test_prepare.py),
degenerate morphable models (tests/morphable/test_model.py), leftovers of a killed run
(tests/test_fileio.py, tests/train/test_loop.py), a resumed critic (tests/train/test_texture.py),
.gif photos (tests/data/test_images.py), `info` and --help (tests/cli/test_main.py), the output
folder's names (tests/cli/test_reconstruct.py, tests/test_output_folder.py).
"""

import dataclasses
import fcntl
import hashlib
import json
import os
import shutil
from concurrent import futures

import cv2
import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEMO = os.path.join(REPO, "experiments", "demo.yaml")
COARSE = os.path.join(REPO, "experiments", "coarse_demo.yaml")


@dataclasses.dataclass(frozen=True)
class Case:
    arguments: tuple          # face-gcn ARGUMENTS (paths relative to the case folder as "{root}/...")
    expected: str             # text the last stderr line must contain (anywhere in stderr for a flag error)
    preserved: tuple = ()     # files (under root) that must keep their bytes
    absent: tuple = ()        # paths (under root) that must not be created
    flag_error: bool = False  # refused by absl's flag checks (usage on stderr, exit 1), not by the command


def read_only_folder(root: str) -> str:
    """A path where creating a folder fails: /sys as root (permissions do not stop root), else a 0o500 folder."""
    if os.geteuid() == 0:
        return "/sys/face-gcn-fault-test"
    folder = os.path.join(root, "read_only")
    os.makedirs(folder, exist_ok=True)
    os.chmod(folder, 0o500)
    return os.path.join(folder, "out")


CASES = {
    # 3. output folders
    "out_is_the_photo_folder": Case(("fit", "{root}/photos", "--out", "{root}/photos"),
                                    "is the folder of the input photos", preserved=("photos/me.png",)),
    "out_in_use_by_another_run": Case(("reconstruct", "{root}/photos", "--model", "{model}", "--out", "{root}/locked"),
                                      "in use by another face-gcn run", absent=("locked/summary.json",)),
    # 4. config ranges
    "negative_steps": Case(("train", "--config", DEMO, "--workdir", "{root}/run", "--set", "train.steps=-5",
                            "--set", "data.train={root}/data"), "train.steps", absent=("run/model",)),
    "checkpoint_every_zero": Case(("train-coarse", "--config", COARSE, "--workdir", "{root}/coarse",
                                   "--set", "train.checkpoint_every=0", "--set", "data.train={root}/data"),
                                  "train.checkpoint_every", absent=("coarse/checkpoints",)),
    # 5. tracebacks to one line
    "out_is_a_file": Case(("make-synthetic", "--out", "{root}/notes.txt/data", "--num_images", "1",
                           "--num_heldout", "0", "--image_size", "64"), "notes.txt", preserved=("notes.txt",)),
    "read_only_make_synthetic": Case(("make-synthetic", "--out", "{read_only}", "--num_images", "1",
                                      "--num_heldout", "0", "--image_size", "64"), "face-gcn-fault-test"),
    "read_only_prepare_data": Case(("prepare-data", "--input", "{root}/photos", "--output_dir", "{read_only}"),
                                   "face-gcn-fault-test"),
    "read_only_export": Case(("export", "--model", "{model}", "--out", "{read_only}"), "face-gcn-fault-test"),
    "read_only_reconstruct": Case(("reconstruct", "{root}/photos", "--model", "{model}", "--out", "{read_only}"),
                                  "face-gcn-fault-test"),
    "read_only_train": Case(("train", "--config", DEMO, "--workdir", "{read_only}", "--steps", "1",
                             "--set", "data.train={root}/data"), "face-gcn-fault-test"),
    "truncated_record": Case(("train", "--config", DEMO, "--workdir", "{root}/run_truncated", "--steps", "1",
                              "--set", "data.train={root}/truncated"),
                             "truncated/synthetic-00000-of-00001.tfrecord: truncated", absent=("run_truncated/model",)),
    "corrupted_record": Case(("train", "--config", DEMO, "--workdir", "{root}/run_corrupted", "--steps", "1",
                              "--set", "data.crop_size=64", "--set", "data.shuffle_buffer=1",
                              "--set", "coarse.fit_steps=0", "--set", "coarse.landmarks=detected",
                              "--set", "loss.adversarial=false", "--set", "data.train={root}/corrupted"),
                             "damaged training data in", absent=("run_corrupted/model",)),
    "damaged_savedmodel": Case(("benchmark", "--model", "{model}", "--savedmodel", "{root}/savedmodel",
                                "--batch_sizes", "1"), "cannot load the SavedModel"),
    "garbage_facenet_checkpoint": Case(("convert-facenet", "--checkpoint", "{root}/garbage.ckpt-1",
                                        "--out", "{root}/facenet.weights.h5"),
                                       "not a readable TensorFlow checkpoint", absent=("facenet.weights.h5",)),
    "garbage_facenet_weights_reconstruct": Case(("reconstruct", "{root}/photos", "--model", "{root}/with_facenet",
                                                 "--out", "{root}/out_facenet"), "cannot load the FaceNet weights"),
    "garbage_facenet_weights_export": Case(("export", "--model", "{root}/with_facenet", "--out", "{root}/served"),
                                           "cannot load the FaceNet weights", absent=("served",)),
    "format_version_not_an_integer": Case(("fit", "{root}/photos", "--out", "{root}/fit_version",
                                           "--morphable_model", "{root}/version.npz"),
                                          "format_version must be an integer"),
    "all_zero_shape": Case(("fit", "{root}/photos", "--out", "{root}/fit_flat", "--morphable_model", "{root}/flat.npz"),
                           "flat.npz"),
    "not_a_zip": Case(("fit", "{root}/photos", "--out", "{root}/fit_junk", "--morphable_model", "{root}/junk.npz"),
                      "junk.npz"),
    # 6. messages that name the fix
    "mat_as_morphable_model": Case(("fit", "{root}/photos", "--out", "{root}/fit_mat",
                                    "--morphable_model", "{root}/BFM_model_front.mat"), "convert-bfm"),
    "lfs_pointer": Case(("fit", "{root}/photos", "--out", "{root}/fit_lfs", "--morphable_model", "{root}/lfs.npz"),
                        "Git LFS pointer"),
    # the second sweep (101 hostile cases): its tracebacks, silent results and lost files
    "model_files_not_a_mapping": Case(("reconstruct", "{root}/photos", "--model", "{root}/files_str",
                                       "--out", "{root}/out_files_str"), "files must map each network"),
    "config_value_null": Case(("train", "--config", DEMO, "--workdir", "{root}/run_null", "--set", "train.steps=null"),
                              "train.steps: expected a number, got null"),
    "config_value_nan": Case(("train-coarse", "--config", COARSE, "--workdir", "{root}/coarse_nan",
                              "--set", "train.learning_rate=.nan", "--set", "data.train={root}/data"),
                             "expected a finite number"),
    "foreign_savedmodel": Case(("benchmark", "--model", "{model}", "--savedmodel", "{root}/foreign_savedmodel",
                                "--batch_sizes", "1"), "not a face-gcn SavedModel"),
    "identities_not_utf8": Case(("evaluate", "--results", "{root}/results", "--json", "{root}/e.json",
                                 "--recognizer", "{root}/failing_recognizer", "--identities", "{root}/ids.csv"),
                                "not UTF-8"),
    "recognizer_fails": Case(("evaluate", "--results", "{root}/results", "--json", "{root}/e2.json",
                              "--recognizer", "{root}/failing_recognizer"), "failed on"),
    "nothing_evaluated": Case(("evaluate", "--results", "{root}/results_bad", "--json", "{root}/e3.json"),
                              "no image could be evaluated"),
    "segmenter_classes_not_integers": Case(("reconstruct", "{root}/photos", "--model", "{model}", "--out",
                                            "{root}/out_classes", "--segmenter_classes", "x,y"),
                                           "--segmenter_classes must be integers"),
    "segmenter_not_a_savedmodel": Case(("reconstruct", "{root}/photos", "--model", "{model}", "--out",
                                        "{root}/out_segmenter", "--segmenter", "{root}/locked"),
                                       "SavedModel"),
    "regressor_zip_not_keras": Case(("fit", "{root}/photos", "--out", "{root}/fit_zip", "--regressor",
                                     "{root}/notes.keras"), "not a Keras model"),
    "prepare_coarse_truncated": Case(("prepare-coarse", "--config", DEMO, "--data", "{root}/truncated",
                                      "--out", "{root}/coarse_cache"), "truncated"),
    "make_synthetic_over_user_files": Case(("make-synthetic", "--out", "{root}/user_data", "--num_images", "1",
                                            "--num_heldout", "0", "--image_size", "64"),
                                           "did not write", preserved=("user_data/train/manifest.json",)),
    "export_over_user_files": Case(("export", "--model", "{model}", "--out", "{root}/user_export"), "refusing",
                                   preserved=("user_export/NOTES.txt",)),
    "nothing_prepared": Case(("prepare-data", "--input", "{root}/photos", "--output_dir", "{root}/prepared"),
                             "no photo could be prepared"),
    "negative_seed": Case(("make-synthetic", "--out", "{root}/seeded", "--num_images", "1", "--seed", "-1"),
                          "--seed must be >= 0", flag_error=True),
    "nan_noise": Case(("make-synthetic", "--out", "{root}/noisy", "--num_images", "1", "--noise_std", "nan"),
                      "--noise_std must be in [0, 1]", flag_error=True),
    "zero_min_face_size": Case(("prepare-data", "--input", "{root}/photos", "--output_dir", "{root}/prepared0",
                                "--min_face_size", "0"), "min_face_size", flag_error=True),
}


def make_inputs(root: str, model: str) -> None:
    """Everything the cases read, in their broken forms."""
    from face_gcn.morphable import configured
    from face_gcn.morphable import model as model_lib
    from face_gcn.synthesis import dataset as synthetic
    os.makedirs(os.path.join(root, "photos"))
    cv2.imwrite(os.path.join(root, "photos", "me.png"), np.full((96, 96, 3), 120, np.uint8))
    with open(os.path.join(root, "notes.txt"), "w", encoding="utf-8") as handle:
        handle.write("the user's own notes")
    os.makedirs(os.path.join(root, "locked"))

    demo = configured.load_demo()
    synthetic.write_dataset(os.path.join(root, "data"), demo, 4, seed=0,
                            config=synthetic.SyntheticConfig(image_size=64), batch_size=4)
    record = os.path.join(root, "data", "synthetic-00000-of-00001.tfrecord")
    payload = open(record, "rb").read()  # noqa: SIM115 - a small test file
    for name, data in (("truncated", payload[: len(payload) * 2 // 3]),
                       ("corrupted", payload[:40] + bytes([payload[40] ^ 0xFF]) + payload[41:])):
        os.makedirs(os.path.join(root, name))
        with open(os.path.join(root, name, os.path.basename(record)), "wb") as handle:
            handle.write(data)

    os.makedirs(os.path.join(root, "savedmodel"))
    with open(os.path.join(root, "savedmodel", "face_gcn_export.json"), "w", encoding="utf-8") as handle:
        json.dump({"image_size": 64}, handle)
    with open(os.path.join(root, "savedmodel", "saved_model.pb"), "wb") as handle:
        handle.write(b"\x08\x01\x12 this protobuf stops here")
    rng = np.random.default_rng(0)
    for suffix in (".index", ".data-00000-of-00001"):
        with open(os.path.join(root, "garbage.ckpt-1" + suffix), "wb") as handle:
            handle.write(rng.bytes(3000))
    shutil.copytree(model, os.path.join(root, "with_facenet"))
    meta_path = os.path.join(root, "with_facenet", "face_model.json")
    with open(meta_path, encoding="utf-8") as handle:
        meta = json.load(handle)
    meta["uses_facenet"] = True
    meta["files"]["facenet"] = "facenet.weights.h5"
    with open(meta_path, "w", encoding="utf-8") as handle:
        json.dump(meta, handle)
    with open(os.path.join(root, "with_facenet", "facenet.weights.h5"), "wb") as handle:
        handle.write(rng.bytes(5000))

    good = os.path.join(root, "good.npz")
    model_lib.save(demo, good)
    fields = dict(np.load(good, allow_pickle=False))
    np.savez(os.path.join(root, "version.npz"), **dict(fields, format_version=np.array("1.5")))
    np.savez(os.path.join(root, "flat.npz"), **dict(fields, mean_shape=np.zeros_like(fields["mean_shape"])))
    with open(os.path.join(root, "junk.npz"), "wb") as handle:
        handle.write(b"this is not a zip archive")
    with open(os.path.join(root, "BFM_model_front.mat"), "wb") as handle:
        handle.write(b"MATLAB 5.0 MAT-file, Platform: GLNXA64" + bytes(90))
    with open(os.path.join(root, "lfs.npz"), "w", encoding="utf-8") as handle:
        handle.write("version https://git-lfs.github.com/spec/v1\noid sha256:" + "0" * 64 + "\nsize 123456\n")

    shutil.copytree(model, os.path.join(root, "files_str"))
    with open(os.path.join(root, "files_str", "face_model.json"), "w", encoding="utf-8") as handle:
        json.dump(dict(meta, uses_facenet=False, files="abc"), handle)
    import tensorflow as tf

    class Module(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="x")])
        def serve(self, x):
            return {"y": x * 2.0}

        @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32, name="images")])
        def embed(self, images):  # a recognizer that fails on any real image (a wrong reshape)
            return {"embedding": tf.reshape(images, [-1, 160 * 160 * 3])}

    module = Module()
    tf.saved_model.save(module, os.path.join(root, "foreign_savedmodel"), signatures={"serving_default": module.serve})
    shutil.copy(os.path.join(root, "savedmodel", "face_gcn_export.json"), os.path.join(root, "foreign_savedmodel"))
    tf.saved_model.save(module, os.path.join(root, "failing_recognizer"), signatures={"serving_default": module.embed})
    with open(os.path.join(root, "ids.csv"), "wb") as handle:
        handle.write(b"name,identity\n\xff\xfeabc,1\n")
    for folder, mask_side in (("results", 32), ("results_bad", 16)):
        os.makedirs(os.path.join(root, folder, "refined"))
        face = np.full((32, 32, 3), 150, np.uint8)
        cv2.imwrite(os.path.join(root, folder, "refined", "a.input.png"), face)
        cv2.imwrite(os.path.join(root, folder, "refined", "a.render.png"), face // 2)
        cv2.imwrite(os.path.join(root, folder, "refined", "a.mask.png"), np.full((mask_side, mask_side), 255, np.uint8))
    import zipfile
    with zipfile.ZipFile(os.path.join(root, "notes.keras"), "w") as archive:
        archive.writestr("hello.txt", "not a model")
    os.makedirs(os.path.join(root, "user_data", "train"))
    with open(os.path.join(root, "user_data", "train", "manifest.json"), "w", encoding="utf-8") as handle:
        handle.write('{"my": "own manifest"}')
    os.makedirs(os.path.join(root, "user_export", "variables"))
    for name in ("saved_model.pb", "NOTES.txt"):
        with open(os.path.join(root, "user_export", name), "w", encoding="utf-8") as handle:
            handle.write("the user's " + name)


def digest(path: str) -> str:
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


@pytest.fixture(scope="module")
def outcomes(tiny_model_dir, tmp_path_factory, run_main):
    """Runs every case (two processes at a time) -> {name: (CompletedProcess, root, digests before)}."""
    root = str(tmp_path_factory.mktemp("faults"))
    model = tiny_model_dir[1]
    make_inputs(root, model)
    values = {"root": root, "model": model, "read_only": read_only_folder(root)}
    before = {name: {path: digest(os.path.join(root, path)) for path in case.preserved} for name, case in CASES.items()}
    with open(os.path.join(root, "locked", ".face-gcn.lock"), "a+", encoding="utf-8") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)  # another run holds locked/
        with futures.ThreadPoolExecutor(max_workers=2) as pool:
            running = {name: pool.submit(run_main, *[a.format(**values) for a in case.arguments],
                                         cache=os.path.join(root, "cache"), timeout=600)
                       for name, case in CASES.items()}
            results = {name: job.result() for name, job in running.items()}
    return {name: (results[name], root, before[name]) for name in CASES}


@pytest.mark.parametrize("name", sorted(CASES))
def test_one_line_error_and_nothing_lost(outcomes, name):
    case = CASES[name]
    result, root, before = outcomes[name]
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1, (result.returncode, result.stderr[-3000:])
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    command = case.arguments[0]
    if case.flag_error:
        assert case.expected in result.stderr, result.stderr[-3000:]
    else:
        assert lines[-1].startswith(f"face-gcn {command}: error: "), lines[-1]
        assert case.expected in lines[-1], lines[-1]
    for path, value in before.items():
        assert digest(os.path.join(root, path)) == value, path
    for path in case.absent:
        assert not os.path.exists(os.path.join(root, path)), path
