import numpy as np
import pytest
import tensorflow as tf

from face_gcn.losses import adversarial


def _linear_critic(weights):
    w = tf.constant(weights, tf.float32)

    def critic(images, training=False):
        return tf.reduce_sum(images * w, axis=[1, 2, 3])
    return critic


def test_gradient_penalty_of_linear_critic_is_analytic():
    rng = np.random.default_rng(3)
    w = rng.normal(size=(1, 2, 2, 3))
    critic = _linear_critic(w)
    real, fake = rng.random((4, 2, 2, 3)), rng.random((4, 2, 2, 3))
    expected = (np.linalg.norm(w) - 1.0) ** 2  # the gradient is w everywhere
    assert float(adversarial.gradient_penalty(critic, real, fake)) == pytest.approx(expected, rel=1e-5)


def test_critic_and_generator_losses_of_linear_critic():
    rng = np.random.default_rng(4)
    w = rng.normal(size=(1, 2, 2, 3))
    w /= np.linalg.norm(w)  # unit gradient: penalty 0
    critic = _linear_critic(w)
    real, fake = rng.random((3, 2, 2, 3)), rng.random((3, 2, 2, 3))
    d_real = np.sum(real * w, axis=(1, 2, 3)).mean()
    d_fake = np.sum(fake * w, axis=(1, 2, 3)).mean()
    loss, parts = adversarial.critic_loss(critic, real, fake)
    assert float(parts["penalty"]) == pytest.approx(0.0, abs=1e-10)
    assert float(loss) == pytest.approx(d_fake - d_real, rel=1e-5, abs=1e-6)
    assert float(adversarial.generator_loss(critic, fake)) == pytest.approx(-d_fake, rel=1e-5)


def test_penalty_interpolates_between_real_and_fake():
    # D(x) = 0.5 * sum(x^2): grad = x, so the penalty depends on where the sample lies.
    def critic(images, training=False):
        return 0.5 * tf.reduce_sum(images ** 2, axis=[1, 2, 3])
    real = np.full((2, 1, 1, 1), 3.0, np.float32)
    fake = np.zeros((2, 1, 1, 1), np.float32)
    mix = np.array([0.0, 1.0 / 3.0], np.float32)  # points 0 and 1 -> norms 0, 1
    got = adversarial.gradient_penalty(critic, real, fake, mix=mix)
    assert float(got) == pytest.approx(0.5)
    loss, _ = adversarial.critic_loss(critic, real, fake, mix=mix)
    assert float(loss) == pytest.approx(0.0 - 4.5 + 10 * 0.5)


def test_penalty_gradient_reaches_critic_variables():
    # D(x) = sum(v * x): penalty (||v|| - 1)^2 has gradient 2 (||v|| - 1) v / ||v|| (double backprop).
    v0 = np.random.default_rng(5).normal(size=(1, 2, 1, 3))
    v = tf.Variable(v0, dtype=tf.float32)

    def critic(images, training=False):
        return tf.reduce_sum(images * v, axis=[1, 2, 3])
    real, fake = np.ones((2, 2, 1, 3), np.float32), np.zeros((2, 2, 1, 3), np.float32)
    with tf.GradientTape() as tape:
        penalty = adversarial.gradient_penalty(critic, real, fake)
    norm = np.linalg.norm(v0)
    np.testing.assert_allclose(tape.gradient(penalty, v).numpy(), 2 * (norm - 1) * v0 / norm, rtol=1e-4)
