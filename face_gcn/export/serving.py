"""The serving tf.Module: the method's forward pass on the pure-TF rasterizer.

TF Serving (and `saved_model_cli run`) cannot load our compiled rasterizer op, so every function
here calls forward.reconstruct(..., backend="fallback"): the graph holds stock TensorFlow ops only.

The coarse stage here is the regressor alone (fit_steps=0), whatever the model was trained with:
the regress-then-fit stage needs landmarks that an aligned crop does not carry, and each of its
rendered steps costs a forward and backward pass of the pure-TF rasterizer (about 45 ms for one 224-px
face-sized mesh on a 2-core CPU, so 20 steps would take about a second per request). `face-gcn
reconstruct` runs the fit.

Signatures (S = the model's image size, V vertices, T triangles):
  serving_default(images: uint8 [B, S, S, 3])   aligned RGB crops (face_gcn.data.alignment)
  serve_masked(images: uint8 [B, S, S, 3], face_mask: float32 [B, S, S])
                                                the same with the face region in [0, 1], as in
                                                training: T_p also requires the mask (without it
                                                visibility is geometric only)
  serve_encoded(encoded: string [B])            JPEG or PNG bytes of aligned square crops; grey
                                                gets 3 channels, alpha is dropped, other sides
                                                are resized to S (bilinear, antialiased)
Outputs of both:
  vertices       float32 [B, V, 3]  posed mesh, Deng's camera frame (camera at z = 10)
  refined_colors float32 [B, V, 3]  refined albedo T' (linear RGB in [0, 1])
  refined_lit    float32 [B, V, 3]  T' lit by the regressed SH light
  coarse_colors  float32 [B, V, 3]  3DMM albedo T from the coefficients, clipped to [0, 1]
  coarse_lit     float32 [B, V, 3]  T lit by the same light
  coefficients   float32 [B, 257]   Deng's layout (id 80 | exp 64 | tex 80 | angles 3 | gamma 27 | t 3)
  render         float32 [B, S, S, 3] refined render over black, [0, 1] (not clipped)
  coverage       float32 [B, S, S]  1 where the mesh covers the pixel
An export with render_outputs=False leaves out the last two (IMAGE_OUTPUTS) and its graph never
shades them; the rasterization stays, since T_p's visibility reads it.
The regressor and the recognizer run with their BatchNormalizations folded into the convolutions
before them (forward.for_inference: the same function, fewer passes over the activations).
Every output has the batch first, so TF Serving's REST row format ("instances" in, "predictions" out)
serves every signature. The mesh's triangles (int32 [T, 3], constant) are not an output: the module's
function mesh_triangles() returns them, and the export writes them to assets/triangles.json.
Bad input: a wrong dtype is refused by the signature; a wrong shape or rank (checked before any
network runs), an empty batch, bytes that are neither JPEG nor PNG, an image with a side over
MAX_ENCODED_SIDE (checked in the header, before decoding), a non-square decoded image or a face_mask
with NaN or inf raise InvalidArgumentError. face_mask values outside [0, 1] are clipped.
"""

from __future__ import annotations

import tensorflow as tf

from face_gcn.morphable import formation
from face_gcn.reconstruction import forward

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PNG_HEADER_BYTES = 33  # signature, then the IHDR chunk that holds the size
MAX_ENCODED_SIDE = 4096  # pixels; larger crops are refused before decoding (memory bound)
OUTPUT_NAMES = ("vertices", "refined_colors", "refined_lit", "coarse_colors", "coarse_lit", "coefficients",
                "render", "coverage")
IMAGE_OUTPUTS = ("render", "coverage")
SIGNATURES = ("serving_default", "serve_masked", "serve_encoded")


class ServingModule(tf.Module):
    """The serving functions; signatures() tracks the variables they read, so each is saved once.

    The Keras models are deliberately not attributes: their own tracking would save every weight a
    second time next to the variables list, and misses the GCNs' sparse matrices anyway.
    """

    def __init__(self, nets: forward.FaceGCN, render_outputs: bool = True):
        super().__init__(name="face_gcn_serving")
        self._nets = forward.for_inference(nets)  # a plain dataclass: not tracked
        self.image_size = int(nets.image_size)
        self.output_names = tuple(name for name in OUTPUT_NAMES if render_outputs or name not in IMAGE_OUTPUTS)
        size = self.image_size
        self.serve_images = tf.function(
            self._serve_images, input_signature=[tf.TensorSpec([None, size, size, 3], tf.uint8, name="images")],
            autograph=False)
        self.serve_masked = tf.function(
            self._serve_masked, input_signature=[tf.TensorSpec([None, size, size, 3], tf.uint8, name="images"),
                                                 tf.TensorSpec([None, size, size], tf.float32, name="face_mask")],
            autograph=False)
        self.serve_encoded = tf.function(
            self._serve_encoded, input_signature=[tf.TensorSpec([None], tf.string, name="encoded")], autograph=False)
        triangles = formation.model_tensors(nets.morphable).triangles
        self.mesh_triangles = tf.function(lambda: tf.identity(triangles, name="triangles"), input_signature=[],
                                          autograph=False)

    def signatures(self) -> dict:
        """{signature name: concrete function} for tf.saved_model.save.

        Also tracks every variable the functions read (the networks' weights and the GCNs' sparse
        matrices, which live on plain helper objects that object-graph tracking does not reach).
        """
        functions = {"serving_default": self.serve_images.get_concrete_function(),
                     "serve_masked": self.serve_masked.get_concrete_function(),
                     "serve_encoded": self.serve_encoded.get_concrete_function()}
        seen, variables = set(), []
        for function in functions.values():
            for variable in function.variables:
                if id(variable) not in seen:
                    seen.add(id(variable))
                    variables.append(variable)
        self.serving_variables = variables
        return functions

    # Loaded signatures (and TF Serving) do not enforce the declared shapes, and a wrong rank would
    # reach the first convolution (oneDNN aborts the process on it): every check below is a control
    # dependency of what follows, so a bad request ends in InvalidArgumentError before any network runs.
    def _checked_images(self, images):
        size = self.image_size
        shape = tf.shape(images)
        padded = tf.concat([shape, tf.zeros([4], tf.int32)], 0)
        well_formed = tf.logical_and(tf.equal(tf.size(shape), 4),
                                     tf.reduce_all(tf.equal(padded[1:4], [size, size, 3])))
        checks = [tf.debugging.Assert(well_formed, [f"images must be uint8 [B, {size}, {size}, 3] aligned crops; "
                                                    "got shape", shape]),
                  tf.debugging.Assert(padded[0] > 0, ["empty batch: give at least one image"])]
        with tf.control_dependencies(checks):
            return tf.identity(images)

    def _checked_mask(self, face_mask, images):
        """face_mask [B, S, S] matching images; NaN or inf refused, values clipped to [0, 1]."""
        size = self.image_size
        # after the image checks, so a bad image is reported first; every op here accepts any rank
        # (a reduction with axis=None would be traced as axes 0..2 and fail on a rank-2 mask)
        with tf.control_dependencies([images]):
            shape = tf.shape(face_mask)
            padded = tf.concat([shape, tf.zeros([3], tf.int32)], 0)[:3]
            matches = tf.logical_and(tf.equal(tf.size(shape), 3),
                                     tf.reduce_all(tf.equal(padded, tf.shape(images)[:3])))
            checks = [tf.debugging.Assert(matches, [f"face_mask must be float32 [B, {size}, {size}], one per image; "
                                                    "got shape", shape]),
                      tf.debugging.Assert(tf.reduce_all(tf.math.is_finite(tf.reshape(face_mask, [-1]))),
                                          ["face_mask must be finite (no NaN or inf)"])]
        with tf.control_dependencies(checks):
            return tf.clip_by_value(face_mask, 0.0, 1.0)

    def _serve_masked(self, images, face_mask):
        images = self._checked_images(images)
        return self.outputs(images, self._checked_mask(face_mask, images))

    # The other signatures call serve_masked with a mask of ones, which leaves T_p's visibility
    # geometric (vertex_sampling: visible &= mask > 0.5): the method is traced and stored once.
    def _serve_images(self, images):
        images = self._checked_images(images)
        return self.serve_masked(images, tf.ones(tf.shape(images)[:3], tf.float32))

    def _serve_encoded(self, encoded):
        images = decode_batch(encoded, self.image_size)
        return self.serve_masked(images, tf.ones(tf.shape(images)[:3], tf.float32))

    def outputs(self, images, face_mask=None) -> dict:
        """images: uint8 [B, S, S, 3], face_mask: None or [B, S, S] -> the outputs named in output_names.

        Outputs left out are not computed: tracing prunes what no output reads.
        """
        result = forward.reconstruct(self._nets, images, face_mask=face_mask, backend="fallback", fit_steps=0)
        coarse = result.coarse
        outputs = {
            "vertices": tf.identity(coarse.posed, name="vertices"),
            "refined_colors": tf.identity(result.refined_albedo, name="refined_colors"),
            "refined_lit": tf.identity(result.refined_colors, name="refined_lit"),
            "coarse_colors": tf.clip_by_value(coarse.albedo, 0.0, 1.0, name="coarse_colors"),
            "coarse_lit": tf.identity(coarse.colors, name="coarse_lit"),
            "coefficients": tf.identity(result.coefficients, name="coefficients"),
            "render": tf.identity(result.refined_image, name="render"),
            "coverage": tf.identity(result.refined_alpha, name="coverage"),
        }
        return {name: outputs[name] for name in self.output_names}


def decode_one(data, image_size: int):
    """JPEG/PNG bytes (scalar string) -> uint8 [S, S, 3]; InvalidArgumentError for anything else."""
    is_png = tf.logical_and(tf.equal(tf.strings.substr(data, 0, len(PNG_MAGIC)), PNG_MAGIC),
                            tf.strings.length(data) >= PNG_HEADER_BYTES)
    known = tf.debugging.Assert(tf.logical_or(tf.io.is_jpeg(data), is_png),  # bytes as numbers: printable
                                ["encoded image is neither JPEG nor PNG (nor long enough for a PNG header); "
                                 "first bytes:", tf.io.decode_raw(tf.strings.substr(data, 0, 8), tf.uint8)])
    with tf.control_dependencies([known]):
        side = tf.cond(is_png, lambda: _png_side(data), lambda: _jpeg_side(data))
        small = tf.debugging.Assert(side <= MAX_ENCODED_SIDE,
                                    ["encoded image too large: side", side, "pixels, at most", MAX_ENCODED_SIDE])
    with tf.control_dependencies([small]):  # refuse before decoding: a huge image is never allocated
        image = tf.io.decode_image(data, channels=3, dtype=tf.uint8, expand_animations=False)
    shape = tf.shape(image)
    tf.debugging.assert_equal(shape[0], shape[1], message="encoded images must be square aligned crops")

    def resized():
        scaled = tf.image.resize(tf.cast(image, tf.float32), [image_size, image_size], antialias=True)
        return tf.cast(tf.round(tf.clip_by_value(scaled, 0.0, 255.0)), tf.uint8)

    image = tf.cond(tf.equal(shape[0], image_size), lambda: image, resized)
    return tf.ensure_shape(image, [image_size, image_size, 3])


def _png_side(data):
    """Largest side from a PNG's IHDR chunk (bytes 16-23: width, height, big-endian), without decoding."""
    header = tf.cast(tf.io.decode_raw(tf.strings.substr(data, 16, 8), tf.uint8), tf.int64)
    header = tf.concat([header, tf.zeros([8], tf.int64)], 0)[:8]  # a truncated file reads as 0 here
    weights = tf.constant([2 ** 24, 2 ** 16, 2 ** 8, 1], tf.int64)
    return tf.maximum(tf.reduce_sum(header[:4] * weights), tf.reduce_sum(header[4:] * weights))


def _jpeg_side(data):
    """Largest side of a JPEG from its frame header, without decoding."""
    return tf.cast(tf.reduce_max(tf.io.extract_jpeg_shape(data)[:2]), tf.int64)


def decode_batch(encoded, image_size: int):
    """string [B] of JPEG/PNG bytes -> uint8 [B, S, S, 3]; an empty batch raises InvalidArgumentError."""
    tf.debugging.assert_positive(tf.size(encoded), message="empty batch: give at least one image")
    return tf.map_fn(lambda data: decode_one(data, image_size), encoded,
                     fn_output_signature=tf.TensorSpec([image_size, image_size, 3], tf.uint8))
