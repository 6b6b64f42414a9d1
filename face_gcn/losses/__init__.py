"""Training losses of Lin et al. 2020 (Eq. 4-8): pure functions on tensors.

photometric.pixel_loss (L_pix), identity.identity_loss (L_id), vertex.vertex_loss (L_vert),
adversarial (WGAN-GP critic/generator losses), schedule (s1..s4 and the Eq. 4 total).
"""
