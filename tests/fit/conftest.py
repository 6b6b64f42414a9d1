"""Faces rendered from the demo model with known coefficients, composited over a background."""

import numpy as np
import pytest

from face_gcn.losses import coarse as coarse_losses
from face_gcn.morphable import configured, sampling
from face_gcn.render import face_renderer


@pytest.fixture(scope="session")
def demo_model():
    return configured.load_demo()


def background(size: int, seed: int) -> np.ndarray:
    """A smooth two-colour gradient with a few stripes (no face-like structure), [S, S, 3] in [0, 1]."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0.0, 1.0, size, dtype=np.float32)[None, :, None]
    a, b = rng.uniform(0.1, 0.9, 3), rng.uniform(0.1, 0.9, 3)
    image = np.broadcast_to(a * (1 - ramp) + b * ramp, (size, size, 3)).copy()
    image[::16] *= 0.7
    return image.astype(np.float32)


def generated_face(model, seed: int, size: int = 224):
    """Returns (image uint8 [S,S,3], mask [S,S] {0,1}, landmarks5 pixel indices [5,2],
    landmarks68 pixel indices [68,2], coefficients [257])."""
    rng = np.random.default_rng(seed)
    coefficients = sampling.sample_coefficients(rng, 1, shape_scale=0.5, expression_scale=0.3,
                                                albedo_scale=0.7)
    render = face_renderer.render_coefficients(model, coefficients, size)
    alpha = render.alpha.numpy()[0][..., None]
    image = render.image.numpy()[0] * alpha + background(size, seed) * (1 - alpha)
    image = np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)
    landmarks68 = render.landmarks.numpy()[0] - 0.5
    landmarks5 = coarse_losses.five_from_68(render.landmarks - 0.5).numpy()[0]
    return image, alpha[..., 0].astype(np.uint8), landmarks5, landmarks68, coefficients[0]


@pytest.fixture(scope="session")
def astronaut_crop(demo_model):
    """skimage's astronaut, detected (MTCNN), aligned to the demo model and masked: (crop uint8
    [224,224,3], mask [224,224] {0,1}, landmarks [5,2] crop pixel indices)."""
    import skimage.data

    from face_gcn.data import alignment, detection, masks
    photo = skimage.data.astronaut()
    face = detection.FaceDetector().detect(photo).largest
    assert face is not None
    transform = alignment.alignment_transform(face.landmarks, demo_model.alignment_landmarks, 224)
    crop = alignment.warp_to_crop(photo, transform, 224)
    landmarks = alignment.apply_transform(transform, face.landmarks)
    mask = masks.SkinColourSegmenter().segment(crop, landmarks)
    return crop, mask, landmarks
