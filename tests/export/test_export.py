"""SavedModel export: loads in a process without face_gcn, stock ops only, same numbers as the
Python model on the compiled rasterizer, both signatures listed, bad input refused."""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from face_gcn.export import export, serving
from face_gcn.nets import recognition
from face_gcn.nets import regressor as regressor_lib
from face_gcn.reconstruction import forward
from face_gcn.render import op_library

SIZE = 64


@pytest.fixture(scope="module")
def nets(tiny_nets):
    return tiny_nets


@pytest.fixture(scope="module")
def exported(nets, tmp_path_factory):
    path = str(tmp_path_factory.mktemp("export") / "savedmodel")
    info = export.export_nets(nets, path, source="fixture")
    return path, info


def folded_away(regressor) -> tuple[int, int]:
    """(variables, values) the export drops by folding the compact regressor's conv + batch-norm pairs:
    each pair loses the norm's gamma, beta, mean and variance [C] and its bias-less conv gains a bias [C]."""
    norms = [layer for layer in regressor._flatten_layers() if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(norms) == 5 and all(norm.scale and norm.center for norm in norms)  # the compact backbone's
    return 3 * len(norms), 3 * sum(int(norm.moving_mean.shape[0]) for norm in norms)


def crops():
    """Two aligned-crop-like images: a smooth skin-coloured face blob on a dark background, and noise."""
    rows, cols = np.mgrid[0:SIZE, 0:SIZE]
    blob = np.exp(-(((rows - 34) / 20.0) ** 2 + ((cols - 32) / 16.0) ** 2))
    face = np.stack([40 + 180 * blob, 30 + 130 * blob, 25 + 100 * blob], -1)
    noise = np.random.default_rng(0).integers(0, 256, (SIZE, SIZE, 3))
    return np.stack([face, noise]).round().astype(np.uint8)


# Runs in a fresh interpreter: no face_gcn import, so our rasterizer op is not registered.
SERVE = textwrap.dedent("""
    import json
    import struct
    import sys
    import numpy as np
    import tensorflow as tf
    from tensorflow.core.protobuf import saved_model_pb2
    from tensorflow.python.framework import op_def_registry

    path, images_path, out_path = sys.argv[1:4]
    proto = saved_model_pb2.SavedModel()
    with open(path + "/saved_model.pb", "rb") as handle:
        proto.ParseFromString(handle.read())
    graph = proto.meta_graphs[0].graph_def
    op_types = {node.op for node in graph.node}
    functions = {function.signature.name for function in graph.library.function}
    for function in graph.library.function:
        op_types |= {node.op for node in function.node_def}
    unknown = sorted(op for op in op_types - functions if op_def_registry.get(op) is None)

    model = tf.saved_model.load(path)
    images = np.load(images_path)
    plain = model.signatures["serving_default"](images=tf.constant(images))
    encoded = [tf.io.encode_png(images[0]).numpy(), tf.io.encode_png(images[1]).numpy()]
    from_bytes = model.signatures["serve_encoded"](encoded=tf.constant(encoded))
    # a grey 2x-size PNG is made RGB and resized to the crop side
    big = tf.image.resize(images[:1].astype(np.float32), [2 * images.shape[1]] * 2, method="nearest")
    grey_image = tf.cast(tf.reduce_mean(big[0], -1, keepdims=True), tf.uint8)
    grey = tf.io.encode_png(grey_image).numpy()
    resized = model.signatures["serve_encoded"](encoded=tf.constant([grey]))
    masks = np.zeros(images.shape[:3], np.float32)
    masks[:, 16:48, 20:44] = 1.0
    masked = model.signatures["serve_masked"](images=tf.constant(images), face_mask=tf.constant(masks))

    # TF Serving's REST row format: a JSON list of instances in, one JSON object per instance out, which
    # needs every output to have the batch first (as TF Serving's json_tensor.cc checks)
    def row_format(signature, request):
        instances = json.loads(request)["instances"]
        inputs = {key: tf.constant([instance[key] for instance in instances],
                                   dtype=signature.structured_input_signature[1][key].dtype) for key in instances[0]}
        outputs = {key: value.numpy() for key, value in signature(**inputs).items()}
        for key, value in outputs.items():
            assert value.ndim >= 1 and value.shape[0] == len(instances), (key, value.shape)
        return json.dumps({"predictions": [{key: value[i].tolist() for key, value in outputs.items()}
                                           for i in range(len(instances))]})
    request = json.dumps({"instances": [{"images": image.tolist()} for image in images]})
    rows = json.loads(row_format(model.signatures["serving_default"], request))["predictions"]
    row_coefficients = np.array([row["coefficients"] for row in rows], np.float32)
    mask_request = json.dumps({"instances": [{"images": i.tolist(), "face_mask": m.tolist()} for i, m in zip(images, masks)]})
    masked_rows = json.loads(row_format(model.signatures["serve_masked"], mask_request))["predictions"]
    import base64  # the REST API's binary values: {"b64": ...}, decoded by TF Serving into the string tensor
    bytes_request = json.dumps({"instances": [{"encoded": {"b64": base64.b64encode(e).decode()}} for e in encoded]})
    decoded = [{"encoded": base64.b64decode(item["encoded"]["b64"])} for item in json.loads(bytes_request)["instances"]]
    bytes_outputs = model.signatures["serve_encoded"](encoded=tf.constant([item["encoded"] for item in decoded]))
    bytes_rows = [value.shape[0] for value in bytes_outputs.values()]
    triangles = model.mesh_triangles().numpy()
    import json as json_module, os
    with open(os.path.join(path, "assets", "triangles.json")) as handle:
        asset_triangles = np.array(json_module.load(handle)["triangles"])

    errors = {}
    cases = {
        "empty": lambda: model.signatures["serving_default"](images=tf.zeros([0] + list(images.shape[1:]), tf.uint8)),
        "float": lambda: model.signatures["serving_default"](images=tf.zeros(images.shape, tf.float32)),
        "shape": lambda: model.signatures["serving_default"](images=tf.zeros([1, 8, 8, 3], tf.uint8)),
        "garbage": lambda: model.signatures["serve_encoded"](encoded=tf.constant([encoded[0], b"not an image"])),
        "unbatched": lambda: model.signatures["serving_default"](images=tf.constant(images[0])),
        "unbatched_masked": lambda: model.signatures["serve_masked"](images=tf.constant(images[0]),
                                                                     face_mask=tf.constant(masks[0])),
        "mask_rank": lambda: model.signatures["serve_masked"](images=tf.constant(images[:1]),
                                                              face_mask=tf.constant(masks[0])),
        "binary": lambda: model.signatures["serve_encoded"](encoded=tf.constant([b"\\xff\\xfe\\x81\\x00garbage"])),
        "webp": lambda: model.signatures["serve_encoded"](encoded=tf.constant([b"RIFF\\x24\\x00\\x00\\x00WEBPVP8 "])),
        "png_signature": lambda: model.signatures["serve_encoded"](encoded=tf.constant([b"\\x89PNG\\r\\n\\x1a\\n"])),
        "mask_nan": lambda: model.signatures["serve_masked"](images=tf.constant(images),
                                                             face_mask=tf.constant(np.full(masks.shape, np.nan, np.float32))),
        "empty_bytes": lambda: model.signatures["serve_encoded"](encoded=tf.zeros([0], tf.string)),
        "truncated": lambda: model.signatures["serve_encoded"](encoded=tf.constant([encoded[0][:60]])),
        "mask_shape": lambda: model.signatures["serve_masked"](images=tf.constant(images),
                                                               face_mask=tf.constant(masks[:1])),
        "not_square": lambda: model.signatures["serve_encoded"](
            encoded=tf.constant([tf.io.encode_png(images[0, :40]).numpy()])),
        "jpeg": lambda: model.signatures["serve_encoded"](encoded=tf.constant([tf.io.encode_jpeg(images[0]).numpy()])),
        # a PNG whose header claims 100000 x 100000 pixels must be refused before decoding
        "huge": lambda: model.signatures["serve_encoded"](encoded=tf.constant([
            b"\\x89PNG\\r\\n\\x1a\\n" + struct.pack(">I", 13) + b"IHDR" + struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0)
            + b"\\0" * 4 + b"\\0" * 64])),
    }
    for name, case in cases.items():
        try:
            case()
            errors[name] = "none"
        except Exception as error:  # noqa: BLE001 - the type is what is checked
            errors[name] = type(error).__name__ + ": " + str(error)[:400]
    loaded_ours = sorted(name for name in sys.modules if name.split(".")[0] == "face_gcn")
    np.savez(out_path, **{key: value.numpy() for key, value in plain.items()},
             **{"bytes_" + key: value.numpy() for key, value in from_bytes.items()},
             resized_coefficients=resized["coefficients"].numpy(),
             masks=masks, masked_refined=masked["refined_colors"].numpy(), masked_render=masked["render"].numpy(),
             resized_expected=tf.image.resize(tf.cast(grey_image, tf.float32), images.shape[1:3], antialias=True).numpy(),
             unknown=np.array(unknown, dtype=str), errors=np.array(repr(errors)),
             row_coefficients=row_coefficients, masked_row_refined=np.array([r["refined_colors"] for r in masked_rows]),
             bytes_rows=np.array(bytes_rows), triangles=triangles, asset_triangles=asset_triangles,
             loaded_ours=np.array(loaded_ours, dtype=str))
""")


def test_fresh_process_serves_the_python_model(nets, exported, tmp_path):
    path, info = exported
    assert info["image_size"] == SIZE and info["outputs"] == list(serving.OUTPUT_NAMES)
    assert json.loads(open(os.path.join(path, export.INFO_FILE)).read())["num_triangles"] == len(nets.morphable.triangles)
    images = crops()
    np.save(tmp_path / "images.npy", images)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run([sys.executable, "-c", SERVE, path, str(tmp_path / "images.npy"), str(tmp_path / "out.npz")],
                            capture_output=True, text=True, timeout=240, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    got = dict(np.load(tmp_path / "out.npz", allow_pickle=False))
    assert list(got["loaded_ours"]) == []
    assert list(got["unknown"]) == []  # every op is a stock TensorFlow op

    backend = "op" if op_library.load() is not None else "fallback"
    expected = forward.reconstruct(nets, images, backend=backend)
    np.testing.assert_allclose(got["coefficients"], expected.coefficients.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got["vertices"], expected.coarse.posed.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got["coarse_colors"], np.clip(expected.coarse.albedo.numpy(), 0, 1), atol=1e-5)
    np.testing.assert_allclose(got["coarse_lit"], expected.coarse.colors.numpy(), atol=1e-5)
    np.testing.assert_array_equal(got["triangles"], nets.morphable.triangles)  # mesh_triangles()
    np.testing.assert_array_equal(got["asset_triangles"], nets.morphable.triangles)  # assets/triangles.json
    # the REST row format serves every signature
    np.testing.assert_allclose(got["row_coefficients"], got["coefficients"], atol=1e-6)
    np.testing.assert_allclose(got["masked_row_refined"], got["masked_refined"], atol=1e-6)
    assert list(got["bytes_rows"]) == [len(images)] * len(serving.OUTPUT_NAMES)
    # T_p visibility comes from the z-buffer: the two rasterizers may disagree on a few edge vertices
    np.testing.assert_allclose(got["refined_colors"], expected.refined_albedo.numpy(), atol=2e-3)
    np.testing.assert_allclose(got["refined_lit"], expected.refined_colors.numpy(), atol=2e-3)
    coverage = expected.refined_alpha.numpy()
    assert coverage.sum() > 50  # the face is in view
    assert np.mean(got["coverage"] != coverage) < 0.002
    outliers = np.abs(got["render"] - expected.refined_image.numpy()).max(-1) > 0.01
    assert outliers.mean() < 0.005
    # the bytes signature decodes the same crops (PNG is lossless) and gives the same outputs
    for key in serving.OUTPUT_NAMES:
        np.testing.assert_allclose(got["bytes_" + key], got[key], atol=1e-6, err_msg=key)
    # the resized grey image reaches the networks as the antialiased resize of the grey crop
    grey = np.round(np.clip(got["resized_expected"], 0, 255)).astype(np.uint8)
    np.testing.assert_allclose(got["resized_coefficients"],
                               forward.reconstruct(nets, np.repeat(grey[None], 3, -1), backend=backend).coefficients.numpy(),
                               rtol=1e-4, atol=1e-4)

    # the masked signature: T_p visibility also needs the face region
    with_mask = forward.reconstruct(nets, images, face_mask=got["masks"], backend=backend)
    np.testing.assert_allclose(got["masked_refined"], with_mask.refined_albedo.numpy(), atol=2e-3)
    assert np.abs(got["masked_refined"] - got["refined_colors"]).max() > 1e-3  # the mask matters
    assert (np.abs(got["masked_render"] - with_mask.refined_image.numpy()).max(-1) > 0.01).mean() < 0.005

    errors = eval(str(got["errors"]))  # noqa: S307 - a repr of a dict of strings written above
    assert errors["empty"].startswith("InvalidArgumentError") and "empty batch" in errors["empty"]
    assert errors["empty_bytes"].startswith("InvalidArgumentError") and "empty batch" in errors["empty_bytes"]
    assert errors["garbage"].startswith("InvalidArgumentError") and "neither JPEG nor PNG" in errors["garbage"]
    assert errors["truncated"].startswith("InvalidArgumentError")
    assert errors["mask_shape"].startswith("InvalidArgumentError") and "face_mask must be" in errors["mask_shape"]
    assert errors["not_square"].startswith("InvalidArgumentError") and "square" in errors["not_square"]
    assert errors["jpeg"] == "none"  # JPEG crops are read too (their size from the frame header)
    assert errors["huge"].startswith("InvalidArgumentError") and "too large" in errors["huge"]
    assert errors["float"].startswith("InvalidArgumentError") and "uint8" in errors["float"]  # the signature
    assert errors["shape"].startswith("InvalidArgumentError") and f"[B, {SIZE}, {SIZE}, 3]" in errors["shape"]
    # one image without its batch dimension: refused before the first convolution (which would abort)
    for name in ("unbatched", "unbatched_masked"):
        assert errors[name].startswith("InvalidArgumentError") and f"[B, {SIZE}, {SIZE}, 3]" in errors[name], name
    for name in ("binary", "webp"):  # printable messages (the first bytes as numbers), not UnicodeDecodeError
        assert errors[name].startswith("InvalidArgumentError") and "neither JPEG nor PNG" in errors[name], name
    assert errors["png_signature"].startswith("InvalidArgumentError")
    assert errors["mask_rank"].startswith("InvalidArgumentError") and "face_mask must be" in errors["mask_rank"]
    assert errors["mask_nan"].startswith("InvalidArgumentError") and "must be finite" in errors["mask_nan"]


def test_saved_model_cli_lists_and_runs_the_signatures(exported, tmp_path):
    path, _ = exported
    tool = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    result = subprocess.run([tool, "show", "--dir", path, "--all"], capture_output=True, text=True, timeout=120,
                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    assert result.returncode == 0, result.stderr[-2000:]
    text = result.stdout
    for signature in serving.SIGNATURES:
        assert f"signature_def['{signature}']" in text
    assert f"shape: (-1, {SIZE}, {SIZE}, 3)" in text and f"shape: (-1, {SIZE}, {SIZE})" in text and "dtype: DT_UINT8" in text and "DT_STRING" in text
    for name in serving.OUTPUT_NAMES:
        assert f"outputs['{name}']" in text
    assert "outputs['triangles']" not in text  # no output without a batch dimension (REST row format)
    np.save(tmp_path / "images.npy", crops())
    result = subprocess.run([tool, "run", "--dir", path, "--tag_set", "serve", "--signature_def", "serving_default",
                             "--inputs", f"images={tmp_path / 'images.npy'}"],
                            capture_output=True, text=True, timeout=180, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    assert result.returncode == 0, result.stderr[-2000:]
    for name in serving.OUTPUT_NAMES:
        assert f"Result for output key {name}:" in result.stdout, name


def test_export_is_atomic_and_never_replaces_foreign_folders(nets, exported, tmp_path):
    path, _ = exported
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep")
    with pytest.raises(export.ExportError, match="refusing"):
        export.export_nets(nets, str(foreign))
    assert (foreign / "notes.txt").read_text() == "keep"
    assert os.listdir(tmp_path) == ["mine"]  # nothing staged left behind
    assert export.read_info(path)["source_model"] == "fixture"
    export.export_nets(nets, path, source="again")  # replacing an export leaves only the export
    assert os.listdir(os.path.dirname(path)) == [os.path.basename(path)]
    assert export.read_info(path)["source_model"] == "again"
    # every weight is saved once (the networks' own tracking would store them twice), the regressor's
    # batch norms folded into its convolutions
    saved = tf.train.load_checkpoint(os.path.join(path, "variables", "variables")).get_variable_to_shape_map()
    saved = {key: shape for key, shape in saved.items() if key.endswith("VARIABLE_VALUE")}
    weights = {id(v): v for v in nets.regressor.variables + nets.texture_gcn.variables}
    dropped_variables, dropped_values = folded_away(nets.regressor)
    assert len(saved) == len(weights) - dropped_variables
    assert sum(int(np.prod(shape)) for shape in saved.values()) == (
        sum(int(np.prod(v.shape)) for v in weights.values()) - dropped_values)
    with pytest.raises(export.ExportError, match="not a face-gcn SavedModel"):
        export.read_info(str(foreign))


def test_export_without_render_outputs_serves_the_rest_unchanged(nets, exported, tmp_path):
    full_path, _ = exported
    path = str(tmp_path / "no_render")
    info = export.export_nets(nets, path, render_outputs=False)
    expected_names = [name for name in serving.OUTPUT_NAMES if name not in serving.IMAGE_OUTPUTS]
    assert info["outputs"] == expected_names and export.read_info(path)["outputs"] == expected_names
    images = tf.constant(crops())
    full = tf.saved_model.load(full_path).signatures["serving_default"](images=images)
    signatures = tf.saved_model.load(path).signatures
    for name in serving.SIGNATURES:
        assert sorted(signatures[name].structured_outputs) == sorted(expected_names), name
    got = signatures["serving_default"](images=images)
    for name in expected_names:
        np.testing.assert_allclose(got[name].numpy(), full[name].numpy(), rtol=1e-5, atol=1e-5, err_msg=name)



# Runs in a fresh interpreter without face_gcn: serving_default's outputs for the images.
SERVE_OUTPUTS = textwrap.dedent("""
    import sys
    import numpy as np
    import tensorflow as tf
    path, images_path, out_path = sys.argv[1:4]
    outputs = tf.saved_model.load(path).signatures["serving_default"](images=tf.constant(np.load(images_path)))
    np.savez(out_path, **{name: value.numpy() for name, value in outputs.items()})
""")


def test_export_with_the_face_descriptor_inside_serves_the_python_model(tiny_nets_with_descriptor, tmp_path):
    """dlib's face descriptor (the demo's and `train`'s default recognizer) feeds the GCNs' embedding:
    the export carries its weights, and a process without face_gcn serves what the Python model computes."""
    nets = tiny_nets_with_descriptor
    path = str(tmp_path / "savedmodel")
    export.export_nets(nets, path, render_outputs=False)
    saved = tf.train.load_checkpoint(os.path.join(path, "variables", "variables")).get_variable_to_shape_map()
    saved_values = sum(int(np.prod(shape)) for key, shape in saved.items() if key.endswith("VARIABLE_VALUE"))
    weights = {id(v): v for v in nets.regressor.variables + nets.texture_gcn.variables + nets.recognizer.variables}
    assert saved_values == sum(int(np.prod(v.shape)) for v in weights.values()) - folded_away(nets.regressor)[1]
    assert sum(int(np.prod(v.shape)) for v in nets.recognizer.variables) > 10 ** 6  # the descriptor is in there

    images = crops()
    np.save(tmp_path / "images.npy", images)
    result = subprocess.run([sys.executable, "-c", SERVE_OUTPUTS, path, str(tmp_path / "images.npy"),
                             str(tmp_path / "out.npz")], capture_output=True, text=True, timeout=240,
                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    assert result.returncode == 0, result.stderr[-3000:]
    got = dict(np.load(tmp_path / "out.npz", allow_pickle=False))
    backend = "op" if op_library.load() is not None else "fallback"
    expected = forward.reconstruct(nets, images, backend=backend)
    np.testing.assert_allclose(got["coefficients"], expected.coefficients.numpy(), rtol=1e-5, atol=1e-5)
    # T_p visibility comes from the z-buffer: the two rasterizers may disagree on a few edge vertices
    np.testing.assert_allclose(got["refined_colors"], expected.refined_albedo.numpy(), atol=2e-3)
    # the descriptor's part of the embedding matters: zeros in its place change the colours
    regressed = regressor_lib.regress(nets.regressor, tf.cast(images, tf.float32), training=False)
    embedding = forward.image_embedding(regressed.features, nets.recognizer, tf.cast(images, tf.float32)).numpy()
    descriptor_part = slice(regressed.features.shape[-1], None)
    assert embedding.shape[-1] - regressed.features.shape[-1] == recognition.feature_size(nets.recognizer) == 256
    assert np.abs(embedding[:, descriptor_part]).max() > 0
    embedding[:, descriptor_part] = 0.0
    zeroed = forward.reconstruct(nets, images, backend=backend, coefficients=expected.coefficients, embedding=embedding)
    assert np.abs(zeroed.refined_albedo.numpy() - got["refined_colors"]).max() > 1e-2
