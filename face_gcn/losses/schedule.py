"""Loss weights s1..s4 and the total loss of Eq. 4.

L = s1 (L_pix + s2 L_id + s3 L_adv) + s4 (L_vert(T, T') + L_vert(T_p, T~')).
"""

from __future__ import annotations

import dataclasses
import math


S2_IDENTITY = 0.2
S3_ADVERSARIAL = 0.001
SCHEDULES = ("authors", "paper", "constant")


@dataclasses.dataclass(frozen=True)
class LossWeights:
    s1: float  # rendering terms (L_pix, L_id, L_adv)
    s4: float  # vertex terms (L_vert)
    s2: float = S2_IDENTITY
    s3: float = S3_ADVERSARIAL


def loss_weights(epoch: float, schedule: str = "authors", warmup_epochs: float = 1.0,
                 ramp_epochs: float = 5.0) -> LossWeights:
    """s1, s4 at a (possibly fractional) epoch counted from 0.

    "constant": s1 = s4 = 1 (no warm-up; for ablations without L_vert).
    "authors" (their code): s1 = clip(0.2 e, 0, 1), s4 = clip(1 - s1, 0.2, 1) with e = floor(epoch):
      constant through each epoch, as their loop sets them once per epoch.
    "paper": s1 = 0, s4 = 1 for the first ``warmup_epochs``; then s1 rises linearly to 1 over
      ``ramp_epochs`` and s4 = 1 - s1 falls to 0 ("gradually" in the paper; the ramp length is
      ours, 5 epochs matches the authors' 0.2 per epoch).
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
    epoch = float(epoch)
    if epoch < 0:
        raise ValueError(f"epoch must be >= 0, got {epoch}")
    if schedule == "constant":
        return LossWeights(s1=1.0, s4=1.0)
    if schedule == "authors":
        s1 = min(max(0.2 * math.floor(epoch), 0.0), 1.0)
        return LossWeights(s1=s1, s4=min(max(1.0 - s1, 0.2), 1.0))
    if epoch < warmup_epochs:
        return LossWeights(s1=0.0, s4=1.0)
    if ramp_epochs <= 0:
        return LossWeights(s1=1.0, s4=0.0)
    s1 = min((epoch - warmup_epochs) / ramp_epochs + 1.0 / ramp_epochs, 1.0)
    return LossWeights(s1=s1, s4=1.0 - s1)


def total_loss(weights: LossWeights, pixel, identity, adversarial, vertex_albedo, vertex_projected):
    """Eq. 4 from scalar terms: s1 (pix + s2 id + s3 adv) + s4 (vert_T + vert_Tp)."""
    render_terms = pixel + weights.s2 * identity + weights.s3 * adversarial
    return weights.s1 * render_terms + weights.s4 * (vertex_albedo + vertex_projected)
