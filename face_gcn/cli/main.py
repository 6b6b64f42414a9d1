"""Entry point: `face-gcn SUBCOMMAND [--flags]`.

Each subcommand lives in its own module that defines its absl flags at import time and a
``main(argv)``; only the chosen module is imported, so flags never collide.
"""

from __future__ import annotations

import importlib
import sys

from face_gcn.cli._errors import fail

POSITIONALS = {"fit": "IMAGE_OR_FOLDER... ", "reconstruct": "PHOTO_OR_FOLDER... "}
SUBCOMMANDS = {
    "info": ("face_gcn.cli.info", "print versions, the rasterizer in use and the morphable model"),
    "demo": ("face_gcn.cli.demo", "run the main job on the built-in demo model (no downloads)"),
    "convert-bfm": ("face_gcn.cli.convert_bfm",
                    "convert a user's Basel Face Model files into a face_gcn model (.npz)"),
    "convert-facenet": ("face_gcn.cli.convert_facenet",
                        "convert Sandberg's FaceNet checkpoint (given by path) to Keras weights"),
    "convert-face-api": ("face_gcn.cli.convert_face_api",
                         "convert dlib's face descriptor network (its packaged .dat, a .dat by path, or face-api's "
                         "npm weights) to Keras weights"),
    "convert-deng": ("face_gcn.cli.convert_deng",
                     "convert Deng et al.'s FaceReconModel.pb (given by path) to a Keras regressor (.keras)"),
    "prepare-data": ("face_gcn.cli.prepare_data",
                     "detect, align, mask and crop photos into sharded TFRecords"),
    "train-coarse": ("face_gcn.cli.train_coarse",
                     "train the coarse stage (ResNet-50 -> 257 coefficients) with Deng's losses"),
    "prepare-coarse": ("face_gcn.cli.prepare_coarse",
                       "run the fixed coarse stage (regressor + fit) once per training face: a coarse cache"),
    "train": ("face_gcn.cli.train",
              "train the paper's method (texture GCNs on a fixed regressor) from a YAML config"),
    "evaluate": ("face_gcn.cli.evaluate",
                 "L1/PSNR/SSIM, identity cosine and EMD of renders vs inputs (paper section 5.2)"),
    "fit": ("face_gcn.cli.fit",
            "reconstruct photos by fitting the morphable model, with test-time GCN texture refinement"),
    "reconstruct": ("face_gcn.cli.reconstruct",
                    "reconstruct photos with a trained model: meshes, overlays, JSON, evaluate layout"),
    "export": ("face_gcn.cli.export", "write a trained model as a SavedModel for TF Serving (stock ops only)"),
    "benchmark": ("face_gcn.cli.benchmark", "images/s of the exported model and of each stage per batch size"),
    "make-synthetic": ("face_gcn.cli.make_synthetic",
                       "render a synthetic training set from the morphable model, with ground truth"),
}


def usage() -> str:
    width = max(len(name) for name in SUBCOMMANDS)
    lines = ["usage: face-gcn SUBCOMMAND [--flags]   (face-gcn SUBCOMMAND --help for flags)", "",
             "subcommands:"]
    lines += [f"  {name:<{width}}  {text}" for name, (_, text) in SUBCOMMANDS.items()]
    return "\n".join(lines)


def _reporting_user_errors(subcommand_main, name: str):
    """Wraps a subcommand so that bad input files and file-system refusals (an --out that is a file,
    a read-only or full disk: any OSError) end in one clear line and exit code 1."""
    from face_gcn.mesh.io import MeshFormatError  # pylint: disable=import-outside-toplevel
    from face_gcn.morphable.model import MorphableModelError  # pylint: disable=import-outside-toplevel
    user_errors = (MorphableModelError, MeshFormatError, OSError)

    def run(argv):
        try:
            return subcommand_main(argv)
        except user_errors as error:
            fail(f"face-gcn {name}", str(error))

    return run


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv if argv is None else argv)
    if len(argv) < 2 or argv[1] in ("-h", "--help", "help"):
        print(usage())
        return 0 if len(argv) >= 2 else 2
    name = argv[1]
    if name not in SUBCOMMANDS:
        print(f"face-gcn: unknown subcommand '{name}'\n\n{usage()}", file=sys.stderr)
        return 2
    from absl import app, flags  # pylint: disable=import-outside-toplevel
    module = importlib.import_module(SUBCOMMANDS[name][0])
    # absl's --help starts with the __main__ module's docstring: make it this subcommand's usage
    # line (its positional arguments) and its own docstring.
    sys.modules["__main__"].__doc__ = (f"USAGE: face-gcn {name} {POSITIONALS.get(name, '')}[flags]\n\n"
                                       f"{(module.__doc__ or '').strip()}\n")
    # absl's --help lists the key flags of the module named sys.argv[0]: make the
    # subcommand's flags those.
    for flag in flags.FLAGS.get_key_flags_for_module(module):
        flags.FLAGS.register_key_flag_for_module(sys.argv[0], flag)
    try:
        app.run(_reporting_user_errors(module.main, name), argv=[f"face-gcn {name}"] + argv[2:])
    except SystemExit as exit_:
        if set(argv[2:]) & {"-h", "--help", "--helpshort", "--helpfull"}:
            return 0  # absl exits 1 after printing help; asking for help is not an error
        if isinstance(exit_.code, str):  # raise SystemExit("error: ...") from a subcommand
            print(f"face-gcn {name}: {exit_.code}", file=sys.stderr)
            return 1
        return exit_.code if isinstance(exit_.code, int) else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
