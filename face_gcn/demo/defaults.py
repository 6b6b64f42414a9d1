"""Sizes of `face-gcn demo` (no TensorFlow import: the CLI reads them to define its flags)."""

NUM_TRAIN = 512
NUM_HELDOUT = 32
IMAGE_SIZE = 96
COARSE_STEPS = 1500
TEXTURE_STEPS = 1000
FIT_STEPS = 40         # rendered steps of the coarse fit after the regressor (coarse.fit_steps)
DETAIL_SCALE = 3.0     # synthetic detail amplitude: x1 sits at the sensor-noise level
