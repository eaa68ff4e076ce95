"""ScalarMix: forward value, exact gradients, and how Thinc's L2 regularises it."""
import numpy
import pytest
from thinc.api import Adam

from spacy_elmo.layers import ScalarMix


def _data(seed=0, shapes=((3, 4, 5), (3, 2, 5))):
    rng = numpy.random.default_rng(seed)
    return [rng.normal(size=s).astype("f") for s in shapes]


def test_forward_is_softmax_weighted_sum_times_gamma():
    X = _data()
    mix = ScalarMix()
    mix.initialize(X=X)
    assert mix.get_dim("nL") == 3
    Y = mix.predict(X)
    numpy.testing.assert_allclose(Y[0], X[0].mean(0), atol=1e-6)  # starts as the uniform mean, gamma = 1
    mix.set_param("s", numpy.asarray([0.0, 1.0, 2.0], dtype="f"))
    mix.set_param("log_gamma", numpy.asarray([numpy.log(3.0)], dtype="f"))
    w = numpy.exp([0.0, 1.0, 2.0]) / numpy.exp([0.0, 1.0, 2.0]).sum()
    numpy.testing.assert_allclose(mix.predict(X)[1], 3.0 * numpy.tensordot(w, X[1], axes=1), rtol=1e-5)


@pytest.mark.parametrize("layer_norm", [False, True])
def test_gradients_match_finite_differences(layer_norm):
    X = [x.astype("float64").astype("f") for x in _data(1)]
    mix = ScalarMix(layer_norm=layer_norm)
    mix.initialize(X=X)
    mix.set_param("s", numpy.asarray([0.3, -0.2, 0.5], dtype="f"))
    mix.set_param("log_gamma", numpy.asarray([0.4], dtype="f"))
    rng = numpy.random.default_rng(2)
    dY = [rng.normal(size=y.shape).astype("f") for y in mix.predict(X)]

    def loss():
        return sum(float((y * d).sum()) for y, d in zip(mix.predict(X), dY))

    _, backprop = mix.begin_update(X)
    dX = backprop(dY)
    eps = 1e-2
    for name in ("s", "log_gamma"):
        grad = mix.get_grad(name)
        for k in range(grad.size):
            param = mix.get_param(name).copy()
            param[k] += eps
            mix.set_param(name, param)
            up = loss()
            param[k] -= 2 * eps
            mix.set_param(name, param)
            down = loss()
            param[k] += eps
            mix.set_param(name, param)
            assert grad[k] == pytest.approx((up - down) / (2 * eps), rel=2e-2, abs=2e-3)
    # input gradient, one coordinate per doc
    for d in range(2):
        x = X[d]
        idx = (1, 1, 2)
        x[idx] += eps
        up = loss()
        x[idx] -= 2 * eps
        down = loss()
        x[idx] += eps
        assert dX[d][idx] == pytest.approx((up - down) / (2 * eps), rel=2e-2, abs=2e-3)


def test_l2_decay_pulls_toward_uniform_mix_and_gamma_one():
    """Thinc's L2 weight decay on (s, log_gamma) is the paper's prior: uniform weights, no rescaling."""
    X = _data()
    mix = ScalarMix()
    mix.initialize(X=X)
    mix.set_param("s", numpy.asarray([2.0, -1.0, 0.5], dtype="f"))
    mix.set_param("log_gamma", numpy.asarray([-1.5], dtype="f"))
    optimizer = Adam(0.05, L2=0.5, L2_is_weight_decay=True)
    spread = numpy.ptp(mix.ops.softmax(mix.get_param("s")))
    for _ in range(50):
        _, backprop = mix.begin_update(X)
        backprop([numpy.zeros_like(y) for y in mix.predict(X)])  # only the regulariser acts
        mix.finish_update(optimizer)
    assert numpy.ptp(mix.ops.softmax(mix.get_param("s"))) < spread  # toward uniform
    gamma = float(numpy.exp(mix.get_param("log_gamma")[0]))
    assert numpy.exp(-1.5) < gamma <= 1.0  # toward 1, not toward 0


def test_empty_doc():
    X = _data(shapes=((3, 0, 5), (3, 2, 5)))
    mix = ScalarMix(layer_norm=True)
    mix.initialize(X=X)
    Y, backprop = mix.begin_update(X)
    assert Y[0].shape == (0, 5) and numpy.isfinite(Y[1]).all()
    assert backprop([numpy.zeros_like(y) for y in Y])[0].shape == (3, 0, 5)
