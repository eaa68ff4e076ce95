"""ScalarMix: gamma * sum_j softmax(s)_j * h_j over the biLM layers (Peters et al. 2018, eq. 1).

Regularisation: Thinc's optimizer applies L2 (as weight decay) to every parameter. We therefore store the
mix as logits `s` and the scale as `log_gamma`, both starting at 0:
- decaying `s` toward 0 pulls softmax(s) toward uniform, which is the paper's regulariser on the weights;
- decaying `log_gamma` toward 0 pulls gamma toward 1 (no rescaling), not toward 0, which plain L2 on
  gamma would do and which would shrink the features the downstream model reads.
So the optimizer's usual `L2` setting acts as the paper's "toward the uniform mix" prior; no separate loss.
"""
from typing import Any, Callable, List, Optional, Tuple

from thinc.api import Model, Ops
from thinc.types import Floats1d, Floats2d, Floats3d

InT = List[Floats3d]  # per doc (n_layers, n_tokens, width)
OutT = List[Floats2d]  # per doc (n_tokens, width)
EPS = 1e-12


def ScalarMix(n_layers: Optional[int] = None, layer_norm: bool = False) -> Model[InT, OutT]:
    """n_layers is inferred from the data at initialize when not given."""
    return Model(
        "scalar_mix",
        forward,
        init=init,
        dims={"nL": n_layers},
        params={"s": None, "log_gamma": None},
        attrs={"layer_norm": layer_norm},
    )


def init(model: Model[InT, OutT], X: Optional[InT] = None, Y: Optional[OutT] = None) -> None:
    if not model.has_dim("nL") and X:
        model.set_dim("nL", int(X[0].shape[0]))
    n_layers = model.get_dim("nL")
    model.set_param("s", model.ops.alloc1f(n_layers))
    model.set_param("log_gamma", model.ops.alloc1f(1))


def _normalise(ops: Ops, X: Floats3d) -> Tuple[Floats3d, Floats1d]:
    """Each layer to zero mean, unit variance over the doc's tokens and features (AllenNLP's layer norm)."""
    n = X.shape[1] * X.shape[2]
    if n == 0:
        return X, ops.xp.ones((X.shape[0],), dtype="f")
    mean: Any = ops.xp.reshape(X, (X.shape[0], -1)).mean(1)
    centred = X - mean[:, None, None]
    std = ops.xp.sqrt((centred.reshape(X.shape[0], -1) ** 2).mean(1) + EPS)
    return centred / std[:, None, None], std


def forward(model: Model[InT, OutT], Xs: InT, is_train: bool) -> Tuple[OutT, Callable]:
    ops = model.ops
    xp = ops.xp
    n_layers = model.get_dim("nL")
    s = model.get_param("s")
    weights: Any = ops.softmax(s)  # numpy/cupy broadcasting below, which Thinc's array types do not describe
    gamma = float(xp.exp(model.get_param("log_gamma"))[0])
    layer_norm = model.attrs["layer_norm"]
    inputs: List[Any] = []
    stds: List[Any] = []
    mixes: List[Any] = []
    Ys: OutT = []
    for X in Xs:
        if X.shape[0] != n_layers:
            raise ValueError(f"ScalarMix has {n_layers} layer weights but got input with {X.shape[0]} layers")
        Xn, std = _normalise(ops, X) if layer_norm else (X, None)
        mixed = xp.tensordot(weights, Xn, axes=1).astype("f")
        inputs.append(Xn)
        stds.append(std)
        mixes.append(mixed)
        Ys.append(gamma * mixed)

    def backprop(dYs: OutT) -> InT:
        d_mix = xp.zeros((n_layers,), dtype="f")
        d_gamma = 0.0
        dXs = []
        for Xn, std, mixed, dY_ in zip(inputs, stds, mixes, dYs):
            dY: Any = dY_
            d_gamma += float((mixed * dY).sum())
            d_mix += gamma * (Xn * dY[None]).reshape(n_layers, -1).sum(1)
            dXn = gamma * weights[:, None, None] * dY[None]
            if layer_norm and Xn.shape[1] * Xn.shape[2]:
                # d/dx of (x - mean) / std over each layer's (tokens x features)
                mean_d = dXn.reshape(n_layers, -1).mean(1)[:, None, None]
                mean_dy = (dXn * Xn).reshape(n_layers, -1).mean(1)[:, None, None]
                dXn = (dXn - mean_d - Xn * mean_dy) / std[:, None, None]
            dXs.append(dXn.astype("f"))
        # softmax backward: ds = w * (dw - <w, dw>)
        ds = weights * (d_mix - (weights * d_mix).sum())
        model.inc_grad("s", ds.astype("f"))
        model.inc_grad("log_gamma", xp.asarray([gamma * d_gamma], dtype="f"))
        return dXs

    return Ys, backprop
