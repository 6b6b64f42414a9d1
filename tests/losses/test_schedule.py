import pytest

from face_gcn.losses.schedule import LossWeights, loss_weights, total_loss


@pytest.mark.parametrize("epoch,s1,s4", [(0, 0.0, 1.0), (0.99, 0.0, 1.0), (1, 0.2, 0.8), (2.5, 0.4, 0.6),
                                          (4, 0.8, 0.2), (4.99, 0.8, 0.2), (5, 1.0, 0.2), (30, 1.0, 0.2)])
def test_authors_schedule(epoch, s1, s4):
    w = loss_weights(epoch, "authors")
    assert (w.s1, w.s4, w.s2, w.s3) == pytest.approx((s1, s4, 0.2, 0.001))


@pytest.mark.parametrize("epoch,s1,s4", [(0, 0.0, 1.0), (0.99, 0.0, 1.0), (1, 0.2, 0.8),
                                          (3, 0.6, 0.4), (5, 1.0, 0.0), (9, 1.0, 0.0)])
def test_paper_schedule(epoch, s1, s4):
    w = loss_weights(epoch, "paper")
    assert (w.s1, w.s4) == pytest.approx((s1, s4))


def test_total_loss_eq4():
    w = LossWeights(s1=0.5, s4=0.25)
    got = total_loss(w, pixel=2.0, identity=3.0, adversarial=-100.0, vertex_albedo=4.0, vertex_projected=8.0)
    assert got == pytest.approx(0.5 * (2.0 + 0.2 * 3.0 + 0.001 * -100.0) + 0.25 * 12.0)


def test_bad_schedule():
    with pytest.raises(ValueError):
        loss_weights(1, "cosine")
    with pytest.raises(ValueError):
        loss_weights(-1)


@pytest.mark.parametrize("epoch", [0.0, 0.5, 3.0, 40.0])
def test_constant_schedule(epoch):
    weights = loss_weights(epoch, "constant")
    assert (weights.s1, weights.s4) == (1.0, 1.0)
