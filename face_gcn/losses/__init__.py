"""Training losses of Lin et al. 2020 (Eq. 4-8): pure functions on tensors.

pixel_loss (L_pix), identity_loss (L_id), vertex_loss (L_vert), adversarial (WGAN-GP critic and
generator losses, gradient penalty) and schedule (s1..s4 and the Eq. 4 total).
"""

from face_gcn.losses.adversarial import critic_loss, generator_loss, gradient_penalty
from face_gcn.losses.identity import identity_loss
from face_gcn.losses.photometric import pixel_loss
from face_gcn.losses.schedule import LossWeights, loss_weights, total_loss
from face_gcn.losses.vertex import vertex_loss

__all__ = ["critic_loss", "generator_loss", "gradient_penalty", "identity_loss", "pixel_loss",
           "LossWeights", "loss_weights", "total_loss", "vertex_loss"]
