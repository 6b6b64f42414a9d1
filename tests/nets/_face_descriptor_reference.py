"""A float64 NumPy forward pass of dlib's face descriptor network, written from face-api's source
(src/faceRecognitionNet) and dlib's (examples/dnn_face_recognition_ex.cpp, dlib/dnn/input.h), and
random weights under face-api's tensor names; shared by test_face_descriptor and test_dlib_weights
(imported from this folder: the tests run with --import-mode=importlib)."""

import numpy as np

MEAN_RGB = (122.782, 117.001, 104.298)  # dlib's input_rgb_image_sized and face-api's
# (prefix, output channels, down-sampling) of the residual stages, in order (dlib's alevel4 .. alevel0)
RESIDUAL_STAGES = (("conv32_1", 32, False), ("conv32_2", 32, False), ("conv32_3", 32, False),
                   ("conv64_down", 64, True), ("conv64_1", 64, False), ("conv64_2", 64, False),
                   ("conv64_3", 64, False), ("conv128_down", 128, True), ("conv128_1", 128, False),
                   ("conv128_2", 128, False), ("conv256_down", 256, True), ("conv256_1", 256, False),
                   ("conv256_2", 256, False), ("conv256_down_out", 256, True))


def random_face_api_weights(rng):
    """face-api's tensor names and shapes with random, He-scaled values (float64)."""
    weights = {}

    def unit(prefix, size, cin, cout):
        weights[f"{prefix}/conv/filters"] = rng.normal(size=(size, size, cin, cout)) * np.sqrt(2.0 / (size * size * cin))
        weights[f"{prefix}/conv/bias"] = rng.normal(scale=0.1, size=cout)
        weights[f"{prefix}/scale/weights"] = rng.uniform(0.5, 1.5, size=cout)
        weights[f"{prefix}/scale/biases"] = rng.normal(scale=0.1, size=cout)

    unit("conv32_down", 7, 3, 32)
    channels = 32
    for prefix, cout, _ in RESIDUAL_STAGES:
        unit(f"{prefix}/conv1", 3, channels, cout)
        unit(f"{prefix}/conv2", 3, cout, cout)
        channels = cout
    weights["fc"] = rng.normal(size=(256, 128)) / 16.0
    return weights


def conv(x, filters, stride, padding):
    """TF conv2d (NHWC, HWIO) in float64; SAME pads (total // 2) before and the rest after."""
    size = filters.shape[0]
    if padding == "same":
        out = -(-x.shape[1] // stride)
        total = max((out - 1) * stride + size - x.shape[1], 0)
        x = np.pad(x, [(0, 0), (total // 2, total - total // 2), (total // 2, total - total // 2), (0, 0)])
    windows = np.lib.stride_tricks.sliding_window_view(x, (size, size), axis=(1, 2))[:, ::stride, ::stride]
    return np.einsum("bhwcij,ijco->bhwo", windows, filters)


def pool(x, size, stride, reduce):
    windows = np.lib.stride_tricks.sliding_window_view(x, (size, size), axis=(1, 2))[:, ::stride, ::stride]
    return reduce(windows, axis=(-2, -1))


def forward(images, w, divisor=255.0):
    """face-api's FaceRecognitionNet.forwardInput, step by step, in float64, with (x - mean) / divisor
    (face-api: 255, dlib: 256). images [B, 150, 150, 3] -> (features [B, 256], descriptor [B, 128])."""
    def unit(x, prefix, stride=1, padding="same", relu=True):
        out = conv(x, w[f"{prefix}/conv/filters"], stride, padding) + w[f"{prefix}/conv/bias"]
        out = out * w[f"{prefix}/scale/weights"] + w[f"{prefix}/scale/biases"]
        return np.maximum(out, 0.0) if relu else out

    x = (images.astype(np.float64) - np.array(MEAN_RGB)) / divisor
    x = pool(unit(x, "conv32_down", 2, "valid"), 3, 2, np.max)
    for prefix, cout, down in RESIDUAL_STAGES:
        if not down:
            x = np.maximum(unit(unit(x, f"{prefix}/conv1"), f"{prefix}/conv2", relu=False) + x, 0.0)
            continue
        out = unit(unit(x, f"{prefix}/conv1", 2, "valid"), f"{prefix}/conv2", relu=False)
        pooled = pool(x, 2, 2, np.mean)
        pooled = np.concatenate([pooled, np.zeros(pooled.shape[:3] + (cout - pooled.shape[3],))], axis=3)
        if out.shape[1:3] != pooled.shape[1:3]:
            out = np.pad(out, [(0, 0), (0, 1), (0, 1), (0, 0)])
        x = np.maximum(out + pooled, 0.0)
    features = x.mean(axis=(1, 2))
    return features, features @ w["fc"]


def assert_outputs_match(outputs, features, descriptor, rtol=1e-4):
    """The Keras model's dict against the reference's features and descriptor (and its unit-length
    embedding)."""
    np.testing.assert_allclose(outputs["features"].numpy(), features, rtol=rtol,
                               atol=rtol * np.abs(features).max())
    np.testing.assert_allclose(outputs["descriptor"].numpy(), descriptor, rtol=rtol,
                               atol=rtol * np.abs(descriptor).max())
    embedding = descriptor / np.linalg.norm(descriptor, axis=1, keepdims=True)
    np.testing.assert_allclose(outputs["embedding"].numpy(), embedding, rtol=rtol, atol=rtol)
