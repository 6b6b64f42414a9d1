"""Deng's network rebuilt in Keras (deng_keras) against frozen graphs laid out like FaceReconModel.pb.

The reference is the frozen graph itself, built from raw TensorFlow ops with slim's node names
(deng_reference_graph) and run by TensorFlow through DengFrozenRegressor. Most tests use a narrow,
shallow graph (the converter reads the layout from the graph); one uses the true resnet_v1_50 sizes.
"""

import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from face_gcn.nets import deng_graph, deng_keras, deng_reference_graph
from face_gcn.nets import regressor as regressor_lib

# Every kind of unit: a shortcut convolution (first unit of each block), an identity shortcut
# (block2/unit_2), a strided identity shortcut (1x1 max-pool: last units of blocks 1-3).
SMALL = {"widths": (8, 16, 16, 32), "units": (2, 3, 2, 2)}


@pytest.fixture(scope="module")
def small_graph(tmp_path_factory):
    path = tmp_path_factory.mktemp("deng") / "FaceReconModel.pb"
    deng_reference_graph.write_graph(path, seed=1, **SMALL)
    return str(path), deng_graph.read_graph_def(str(path))


@pytest.fixture(scope="module")
def small_model(small_graph):
    return deng_keras.convert_graph_def(small_graph[1])


def _images(count, seed=0):
    """Channel-dependent RGB images in [0, 255], so that an RGB/BGR mix-up changes the answer."""
    rng = np.random.default_rng(seed)
    return (rng.uniform(0, 255, (count, 224, 224, 3)) * np.array([0.3, 0.7, 1.0])).astype(np.float32)


def test_small_graph_matches_the_frozen_graph(small_graph, small_model):
    path, graph_def = small_graph
    model, layout, count = small_model
    assert layout.blocks == (deng_keras.BlockLayout(32, 8, (1, 2)), deng_keras.BlockLayout(64, 16, (1, 1, 2)),
                             deng_keras.BlockLayout(64, 16, (1, 2)), deng_keras.BlockLayout(128, 32, (1, 1)))
    assert layout.feature_size == 128 and layout.pool_padding == "same"
    assert layout.epsilon == pytest.approx(deng_reference_graph.EPSILON, rel=1e-6)  # the FusedBatchNorm attribute
    frozen = deng_graph.DengFrozenRegressor(path, graph_def=graph_def, feature_size=None)
    images = _images(3)
    want = frozen(images)
    got = regressor_lib.regress(model, images)
    assert got.coefficients.shape == (3, 257) and got.features.shape == (3, 128)
    scale = np.abs(want.coefficients.numpy()).max()
    assert 0.3 < scale < 30  # coefficients of order one: the tolerance below means something
    np.testing.assert_allclose(got.coefficients.numpy(), want.coefficients.numpy(), rtol=0, atol=1e-5)
    np.testing.assert_allclose(got.features.numpy(), want.features.numpy(), rtol=0, atol=1e-5)
    # The model flips RGB to BGR itself: fed the other channel order, the graph disagrees.
    swapped = frozen(images[..., ::-1].copy()).coefficients.numpy()
    assert np.abs(swapped - got.coefficients.numpy()).max() > 100 * 1e-5
    differences = deng_keras.compare_with_graph(model, frozen, num_images=2, seed=4)
    assert differences["coefficients"] < 1e-5 and differences["features"] < 1e-5


def test_every_weight_is_the_graphs_constant(small_graph, small_model):
    _, graph_def = small_graph
    model, _, count = small_model
    constants = deng_keras.graph_constants(graph_def)
    assert count == sum(value.size for value in constants.values())
    seen = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            scope = deng_keras.graph_scope(layer.name)
            np.testing.assert_array_equal(layer.kernel.numpy(), constants[scope + "/weights"])
            seen += 1
        elif isinstance(layer, keras.layers.BatchNormalization):
            scope = deng_keras.graph_scope(layer.name[:-len(".bn")]) + "/BatchNorm/"
            for variable, name in zip(layer.weights, deng_keras.BN_VARIABLES):
                np.testing.assert_array_equal(variable.numpy(), constants[scope + name])
    assert seen == 1 + 3 * 9 + 3  # root, three per unit, shortcuts where the depth changes (not block3)
    kernel, bias = (w.numpy() for w in model.get_layer("coefficients").weights)
    start = 0
    for head, width in deng_keras.HEADS:
        np.testing.assert_array_equal(kernel[:, start:start + width], constants[head + "/weights"][0, 0])
        np.testing.assert_array_equal(bias[start:start + width], constants[head + "/biases"])
        start += width
    assert start == 257


def test_layout_details_come_from_the_graph(tmp_path):
    graph_def = deng_reference_graph.build_graph_def(seed=2, epsilon=1e-3, **SMALL)
    model, layout, _ = deng_keras.convert_graph_def(graph_def)
    assert layout.epsilon == pytest.approx(1e-3, rel=1e-6)
    assert all(layer.epsilon == pytest.approx(1e-3, rel=1e-6) for layer in model.layers
               if isinstance(layer, keras.layers.BatchNormalization))
    path = tmp_path / "eps.pb"
    path.write_bytes(graph_def.SerializeToString())
    frozen = deng_graph.DengFrozenRegressor(str(path), graph_def=graph_def, feature_size=None)
    assert deng_keras.compare_with_graph(model, frozen, num_images=1)["coefficients"] < 1e-5


@pytest.mark.slow
def test_true_resnet_v1_50_sizes(tmp_path):
    path = deng_reference_graph.write_graph(tmp_path / "FaceReconModel.pb", seed=3)
    graph_def = deng_graph.read_graph_def(path)
    model, layout, count = deng_keras.convert_graph_def(graph_def)
    assert layout.blocks == deng_keras.RESNET_V1_50.blocks
    assert (layout.root_width, layout.root_kernel, layout.root_stride) == (64, 7, 2)
    assert count == sum(v.size for v in deng_keras.graph_constants(graph_def).values())
    assert count == 23_561_152 + 2048 * 257 + 257  # resnet_v1_50 (4 values per batch norm) + heads
    names = {node.name for node in graph_def.node}
    for name in ("resnet_v1_50/Pad", "resnet_v1_50/block3/unit_6/bottleneck_v1/shortcut/MaxPool",
                 "resnet_v1_50/block4/unit_3/bottleneck_v1/conv3/BatchNorm/moving_variance", "fc-Z/squeezed"):
        assert name in names
    frozen = deng_graph.DengFrozenRegressor(path, graph_def=graph_def)  # 2048 features required
    differences = deng_keras.compare_with_graph(model, frozen, num_images=2)
    assert differences["coefficients"] < 1e-4 and differences["features"] < 1e-4
    assert 0.3 < differences["coefficient_scale"] < 30
    assert model.output["features"].shape[-1] == regressor_lib.FEATURE_SIZE


def _without(graph_def, names):
    trimmed = tf.compat.v1.GraphDef()
    trimmed.node.extend(node for node in graph_def.node if node.name not in names)
    return trimmed


def _with_constant(graph_def, name, value):
    extended = tf.compat.v1.GraphDef()
    extended.CopyFrom(graph_def)
    node = extended.node.add()
    node.name, node.op = name, "Const"
    node.attr["dtype"].type = tf.float32.as_datatype_enum
    node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(value))
    return extended


def test_graphs_that_are_not_dengs_are_refused(small_graph):
    _, graph_def = small_graph
    with pytest.raises(deng_keras.DengConversionError, match="resnet_v1_50/conv1/weights"):
        deng_keras.convert_graph_def(_without(graph_def, {"resnet_v1_50/conv1/weights"}))
    missing = "resnet_v1_50/block2/unit_2/bottleneck_v1/conv2/weights"
    with pytest.raises(deng_keras.DengConversionError, match=missing):
        deng_keras.convert_graph_def(_without(graph_def, {missing}))
    with pytest.raises(deng_keras.DengConversionError, match="fc-gamma/biases"):
        deng_keras.convert_graph_def(_without(graph_def, {"fc-gamma/biases"}))
    shortcut = "resnet_v1_50/block2/unit_1/bottleneck_v1/shortcut/weights"
    with pytest.raises(deng_keras.DengConversionError, match=rf"depth \(32 -> 64\) but has no constant {shortcut}"):
        deng_keras.convert_graph_def(_without(graph_def, {shortcut}))
    with pytest.raises(deng_keras.DengConversionError, match="block3 has units"):
        deng_keras.convert_graph_def(_without(graph_def, {"resnet_v1_50/block3/unit_1/bottleneck_v1/conv1/weights"}))
    # weights of a layer the layout has no place for (e.g. slim's logits)
    logits = _with_constant(graph_def, "resnet_v1_50/logits/weights", np.zeros((1, 1, 128, 10), np.float32))
    with pytest.raises(deng_keras.DengConversionError, match="no place for: resnet_v1_50/logits/weights"):
        deng_keras.convert_graph_def(logits)
    wrong = _with_constant(_without(graph_def, {"fc-XY/weights"}), "fc-XY/weights",
                           np.zeros((1, 1, 128, 3), np.float32))
    with pytest.raises(deng_keras.DengConversionError, match=r"fc-XY/weights has shape \(1, 1, 128, 3\)"):
        deng_keras.convert_graph_def(wrong)


def test_keras_file_loads_in_a_fresh_process(small_model, tmp_path):
    model, _, _ = small_model
    path = tmp_path / "deng_regressor.keras"
    model.save(path)
    images = _images(2, seed=5)
    np.save(tmp_path / "images.npy", images)
    want = regressor_lib.regress(model, images).coefficients.numpy()
    # load_regressor (train, prepare-coarse), build_regressor(weights=...) (train-coarse's start) and
    # the model directory's plain keras.saving.load_model (reconstruct, export, benchmark).
    code = f"""
import numpy as np, keras
from face_gcn.nets import regressor
from face_gcn.reconstruction import model_dir
images = np.load({str(tmp_path / 'images.npy')!r})
for model in (regressor.load_regressor({str(path)!r}),
              regressor.build_regressor(weights={str(path)!r}),
              keras.saving.load_model({str(path)!r}, compile=False, safe_mode=True)):
    print(np.abs(regressor.regress(model, images).coefficients.numpy() - np.load({str(tmp_path / 'want.npy')!r})).max())
"""
    np.save(tmp_path / "want.npy", want)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert [float(line) for line in result.stdout.split()] == [0.0, 0.0, 0.0]


def test_a_frozen_graph_where_a_regressor_is_expected_names_convert_deng(small_graph):
    path, _ = small_graph
    with pytest.raises(ValueError, match="face-gcn convert-deng --frozen_graph"):
        regressor_lib.load_regressor(path)
    with pytest.raises(ValueError, match="face-gcn convert-deng --frozen_graph"):
        regressor_lib.build_regressor(weights=path)


def test_build_regressor_checks_a_keras_files_input_size(small_model, tmp_path):
    path = str(tmp_path / "deng.keras")
    small_model[0].save(path)
    with pytest.raises(ValueError, match=r"takes \(224, 224, 3\) images"):
        regressor_lib.build_regressor((64, 64, 3), weights=path)
