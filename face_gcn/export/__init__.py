"""Export of a trained model as a TensorFlow SavedModel for TF Serving (stock ops only).

serving: the tf.Module and its two signatures (aligned uint8 crops, encoded JPEG/PNG bytes).
export: writes it atomically from a model directory; reads back its description.
"""
