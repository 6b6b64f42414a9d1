"""`face-gcn evaluate`: the paper's evaluation protocol (section 5.2) on a folder of renders.

  face-gcn evaluate --results runs/celeba --json eval.json --markdown eval.md
  face-gcn evaluate --results runs/celeba --recognizer /models/lightcnn.onnx \\
      --recognizer_preprocessing unit --identities celeba_ids.csv --json eval.json

--results holds NAME.input.png, NAME.render.png, NAME.mask.png (and optionally NAME.alpha.png)
per image, or method sub-folders of them (runs/celeba/coarse, runs/celeba/refined, ...), which
become the rows of the table. L1, PSNR and SSIM are measured inside face mask AND render
coverage; a recognizer adds the input/render identity cosine similarity, and --identities (CSV
"name,identity") the earth mover's distance between same- and different-identity similarities.
The recognizer is dlib's face descriptor with its packaged weights unless --recognizer names
another (a path) or "none". See face_gcn/evaluation/report.py.
"""

from __future__ import annotations


from absl import app, flags

from face_gcn.cli._errors import fail

FLAGS = flags.FLAGS
PROG = "face-gcn evaluate"
flags.DEFINE_string("results", None, "Folder of NAME.input.png / NAME.render.png / "
                    "NAME.mask.png [/ NAME.alpha.png] files, or of method sub-folders of them.")
flags.DEFINE_string("recognizer", None, "Identity recognizer: a SavedModel folder, an .onnx file, a FaceNet "
                    "or dlib descriptor .weights.h5 (face-gcn convert-facenet / convert-face-api), or 'none'; "
                    "default: dlib's face descriptor, packaged.")
flags.DEFINE_enum("recognizer_kind", "auto", ["auto", "savedmodel", "onnx", "facenet", "face_descriptor"],
                  "Kind of --recognizer (auto: from the path).")
flags.DEFINE_integer("recognizer_input_size", None, "Square input side the recognizer gets "
                     "(default: the model's static size, else the image size).")
flags.DEFINE_enum("recognizer_preprocessing", "facenet", ["facenet", "unit", "raw"],
                  "Pixel scaling for SavedModel/ONNX recognizers: (x-127.5)/128, x/255 or x.")
flags.DEFINE_enum("recognizer_channel_order", "rgb", ["rgb", "bgr"],
                  "Channel order SavedModel/ONNX recognizers expect.")
flags.DEFINE_string("recognizer_signature", None, "SavedModel signature (default: "
                    "serving_default, else the first).")
flags.DEFINE_string("recognizer_output", None, "Output name when the recognizer has several.")
flags.DEFINE_string("identities", None, "CSV 'name,identity' per image: adds the EMD between "
                    "same- and different-identity cosine similarities (needs --recognizer).")
flags.DEFINE_string("json", None, "Write the results as JSON here.")
flags.DEFINE_string("markdown", None, "Write the results as a Markdown table here.")
flags.DEFINE_integer("batch_size", 32, "Images embedded together by the recognizer.")
flags.DEFINE_boolean("progress", True, "Show a progress bar.")


def _recognizer_options(kind: str) -> dict:
    """Keyword arguments of recognizers.load_recognizer for the recognizer kind."""
    if kind in ("facenet", "face_descriptor"):
        given = [name for name in ("recognizer_input_size", "recognizer_preprocessing",
                                   "recognizer_channel_order", "recognizer_signature",
                                   "recognizer_output") if FLAGS[name].present]
        if given:
            raise app.UsageError(f"{kind} recognizers fix their own input; drop "
                                 f"{', '.join('--' + name for name in given)}")
        return {"batch_size": FLAGS.batch_size}
    options = {"input_size": FLAGS.recognizer_input_size,
               "preprocessing": FLAGS.recognizer_preprocessing,
               "channel_order": FLAGS.recognizer_channel_order,
               "output": FLAGS.recognizer_output, "batch_size": FLAGS.batch_size}
    if kind == "savedmodel":
        options["signature"] = FLAGS.recognizer_signature
    elif FLAGS.recognizer_signature:
        raise app.UsageError("--recognizer_signature is for SavedModel recognizers")
    return options


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    if not FLAGS.results:
        raise app.UsageError("--results is required (a folder of renders)")
    if not (FLAGS.json or FLAGS.markdown):
        raise app.UsageError("give --json and/or --markdown (where to write the results)")
    if FLAGS.identities and FLAGS.recognizer == "none":
        raise app.UsageError("--identities needs a recognizer (the EMD compares embeddings), not --recognizer=none")
    if FLAGS.batch_size < 1:
        raise app.UsageError("--batch_size must be at least 1")
    if FLAGS.recognizer_input_size is not None and FLAGS.recognizer_input_size < 1:
        raise app.UsageError("--recognizer_input_size must be positive")

    from face_gcn.evaluation import recognizers  # pylint: disable=import-outside-toplevel
    from face_gcn.evaluation import report  # pylint: disable=import-outside-toplevel

    try:
        methods = report.find_methods(FLAGS.results)
        identities = report.read_identities(FLAGS.identities) if FLAGS.identities else None
    except report.EvaluationError as error:
        fail(PROG, str(error))
    recognizer = None
    if not FLAGS.recognizer:
        try:
            recognizer = recognizers.FaceDescriptorRecognizer(batch_size=FLAGS.batch_size)
        except recognizers.RecognizerError as error:
            fail(PROG, str(error))
    elif FLAGS.recognizer != "none":
        kind = FLAGS.recognizer_kind
        try:
            if kind == "auto":
                kind = recognizers.guess_kind(FLAGS.recognizer)
        except recognizers.RecognizerError as error:
            fail(PROG, str(error))
        options = _recognizer_options(kind)
        try:
            recognizer = recognizers.load_recognizer(FLAGS.recognizer, kind, **options)
        except (recognizers.RecognizerError, ValueError) as error:
            fail(PROG, str(error))
    try:
        results = report.evaluate_results(FLAGS.results, recognizer, identities,
                                          batch_size=FLAGS.batch_size, progress=FLAGS.progress)
    except (recognizers.RecognizerError, report.EvaluationError) as error:
        fail(PROG, str(error))
    report.write_reports(results, FLAGS.json, FLAGS.markdown)
    print(report.to_markdown(results, reference=False), end="")
    failed = sum(len(r["failed"]) for r in results.values())
    evaluated = sum(r["n_images"] for r in results.values())
    written = " and ".join(path for path in (FLAGS.json, FLAGS.markdown) if path)
    print(f"evaluate: {len(methods)} method(s), {evaluated} image(s) evaluated, {failed} "
          f"failed; wrote {written}")
    if not evaluated:
        fail(PROG, f"no image could be evaluated ({failed} failed; the reasons are in {written})")
