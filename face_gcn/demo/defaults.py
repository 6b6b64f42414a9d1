"""Sizes of `face-gcn demo` (no TensorFlow import: the CLI reads them to define its flags)."""

NUM_TRAIN = 2048
NUM_HELDOUT = 32
IMAGE_SIZE = 96
COARSE_STEPS = 3000
TEXTURE_STEPS = 1500
