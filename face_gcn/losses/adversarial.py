"""WGAN-GP losses (Gulrajani et al. 2017), gradient-penalty weight 10 as Lin et al.

The critic is any callable images [B, ...] -> scores [B] (or [B, 1]).
"""

from __future__ import annotations

import tensorflow as tf

from face_gcn.losses._norms import safe_norm

PENALTY_WEIGHT = 10.0
# How the interpolation weights of the penalty are drawn: one per sample (Gulrajani et al.) or one
# for the whole batch (the authors' code).
PENALTY_MIXES = ("per_sample", "per_batch")


def _scores(critic, images, training):
    scores = critic(images, training=training)
    return tf.reshape(tf.cast(scores, tf.float32), [-1])


def gradient_penalty(critic, real, fake, mix=None, training: bool = True, rng=None) -> tf.Tensor:
    """E_b[(||grad_x D(x_b)||_2 - 1)^2] at x_b = mix_b real_b + (1 - mix_b) fake_b.

    Args:
      critic: callable [B, ...] -> [B].
      real, fake: [B, ...] float images (same shape).
      mix: [B] interpolation weights, or a PENALTY_MIXES name: "per_sample" (or None; uniform [0, 1)
        per sample) or "per_batch" (one uniform draw for the whole batch).
      rng: a tf.random.Generator for the named mixes (checkpointed with the run, so a resumed run draws
        what an uninterrupted one would); None: TensorFlow's global random ops.
    Returns:
      scalar float32 (the norm is over all non-batch axes of each sample).
    """
    real = tf.convert_to_tensor(real, tf.float32)
    fake = tf.convert_to_tensor(fake, tf.float32)
    if real.shape != fake.shape or real.shape.rank < 2:
        raise ValueError(f"real and fake must be equal [B, ...], got {real.shape}, {fake.shape}")
    batch = tf.shape(real)[0]
    if mix is None:
        mix = "per_sample"
    if isinstance(mix, str):
        if mix not in PENALTY_MIXES:
            raise ValueError(f"mix must be [B] weights or one of {PENALTY_MIXES}, got {mix!r}")
        uniform = rng.uniform if rng is not None else tf.random.uniform
        mix = uniform([batch]) if mix == "per_sample" else tf.fill([batch], uniform([]))
    mix = tf.reshape(tf.cast(mix, tf.float32), [-1] + [1] * (real.shape.rank - 1))
    interpolated = mix * real + (1.0 - mix) * fake
    with tf.GradientTape() as tape:
        tape.watch(interpolated)
        total = tf.reduce_sum(_scores(critic, interpolated, training))
    gradients = tape.gradient(total, interpolated)
    norms = safe_norm(tf.reshape(gradients, [batch, -1]), axis=-1)
    return tf.reduce_mean(tf.square(norms - 1.0))


def critic_loss(critic, real, fake, penalty_weight: float = PENALTY_WEIGHT, mix=None,
                training: bool = True, rng=None) -> tuple[tf.Tensor, dict]:
    """E[D(fake)] - E[D(real)] + penalty_weight * gradient_penalty.

    Args:
      critic: callable [B, ...] -> [B]; real, fake: [B, ...] (fake is not differentiated
        through: the generator is held fixed in a critic step).
    Returns:
      (scalar loss, {"wasserstein": E[D(real)] - E[D(fake)], "penalty": gradient penalty}).
    """
    fake = tf.stop_gradient(tf.convert_to_tensor(fake, tf.float32))
    real = tf.convert_to_tensor(real, tf.float32)
    real_scores = _scores(critic, real, training)
    fake_scores = _scores(critic, fake, training)
    penalty = gradient_penalty(critic, real, fake, mix=mix, training=training, rng=rng)
    distance = tf.reduce_mean(real_scores) - tf.reduce_mean(fake_scores)
    return -distance + penalty_weight * penalty, {"wasserstein": distance, "penalty": penalty}


def generator_loss(critic, fake, training: bool = True) -> tf.Tensor:
    """-E[D(fake)]: L_adv for the generator. fake: [B, ...]; returns a scalar.

    training=True by default so a batch-norm critic scores with batch statistics, as in the
    critic step.
    """
    return -tf.reduce_mean(_scores(critic, fake, training))
