"""Losses and penalties shared by the notebooks (all in nats).

Per-sample terms return shape (batch,); the penalties are Keras regularizers with
`get_config`, so models that use them save and load as `.keras` files.
"""
from __future__ import annotations

import keras
from keras import ops

from . import checks

__all__ = ["gaussian_kl", "bce_sum", "bce_sum_from_logits", "bce_mean_from_logits",
           "L1Activity", "KLSparsity", "weight_decay", "NonNegativity"]


def _check_weight(name, value):
    return checks.non_negative(name, value, " It weights a penalty; use 0 to switch it off.")


def gaussian_kl(z_mean, z_log_var):
    """KL(N(z_mean, exp(z_log_var)) || N(0, I)) summed over latent dims; shape (batch,)."""
    z_mean, z_log_var = ops.convert_to_tensor(z_mean), ops.convert_to_tensor(z_log_var)
    return -0.5 * ops.sum(1.0 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var), axis=-1)


def bce_sum(x, x_prob, eps=1e-7):
    """Binary cross-entropy summed over pixels, from probabilities; x: (batch, 784) -> (batch,).

    Equals mean BCE x `original_dim`. Probabilities are clipped to [eps, 1 - eps] as Keras does.
    """
    x, p = ops.convert_to_tensor(x), ops.clip(ops.convert_to_tensor(x_prob), eps, 1.0 - eps)
    return -ops.sum(x * ops.log(p) + (1.0 - x) * ops.log(1.0 - p), axis=-1)


def bce_sum_from_logits(x, logits):
    """Binary cross-entropy summed over pixels, from logits (stable, no clipping); (batch,)."""
    # softplus(l) - x * l  ==  -[x log s(l) + (1 - x) log(1 - s(l))]
    x, logits = ops.convert_to_tensor(x), ops.convert_to_tensor(logits)
    return ops.sum(ops.softplus(logits) - x * logits, axis=-1)


def bce_mean_from_logits(x, logits):
    """Binary cross-entropy averaged over pixels, from logits; shape (batch,)."""
    x, logits = ops.convert_to_tensor(x), ops.convert_to_tensor(logits)
    return ops.mean(ops.softplus(logits) - x * logits, axis=-1)


@keras.saving.register_keras_serializable(package="aae")
class L1Activity(keras.regularizers.Regularizer):
    """L1 activity penalty: `lam` x sum over units of |h|, averaged over the batch."""

    def __init__(self, lam=1e-7):
        self.lam = _check_weight("lam", lam)

    def __call__(self, h):
        return self.lam * ops.mean(ops.sum(ops.abs(h), axis=-1))

    def get_config(self):
        return {"lam": self.lam}


@keras.saving.register_keras_serializable(package="aae")
class KLSparsity(keras.regularizers.Regularizer):
    """Bernoulli-KL sparsity: `beta` x KL(p || rho_hat_j), rho_hat_j = batch mean of unit j.

    Activations must lie in [0, 1] (sigmoid units). `reduction` is "sum" over hidden units
    (the textbook form) or "mean" (sharper reconstructions, weaker pressure).
    """

    def __init__(self, p=0.05, beta=3.0, reduction="sum", eps=1e-6):
        self.p = checks.fraction("p", p, " It is the target mean activation; typical values "
                                 "are 0.01 to 0.1.")
        self.beta = _check_weight("beta", beta)
        self.reduction = checks.one_of("reduction", reduction, ("sum", "mean"))
        self.eps = float(eps)

    def __call__(self, h):
        rho = ops.clip(ops.mean(h, axis=0), self.eps, 1.0 - self.eps)
        p = self.p
        kl = p * ops.log(p / rho) + (1.0 - p) * ops.log((1.0 - p) / (1.0 - rho))
        reduce = ops.sum if self.reduction == "sum" else ops.mean
        return self.beta * reduce(kl)

    def get_config(self):
        return {"p": self.p, "beta": self.beta, "reduction": self.reduction, "eps": self.eps}


def weight_decay(l2):
    """L2 weight decay `l2` x sum(w^2) as a Keras kernel regularizer (None when l2 == 0)."""
    l2 = _check_weight("weight decay l2", l2)
    return keras.regularizers.L2(l2) if l2 > 0 else None


@keras.saving.register_keras_serializable(package="aae")
class NonNegativity(keras.regularizers.Regularizer):
    """Nonnegativity penalty on weights (NCAE, Hosseini-Asl et al. 2016): `alpha` / 2 x the sum
    of the squares of the negative weights, sum(min(w, 0)^2). Positive weights cost nothing; the
    negative ones are pulled towards 0, so a unit's receptive field becomes an additive part."""

    def __init__(self, alpha=0.003):
        self.alpha = _check_weight("alpha", alpha)

    def __call__(self, w):
        return 0.5 * self.alpha * ops.sum(ops.square(ops.minimum(w, 0.0)))

    def get_config(self):
        return {"alpha": self.alpha}
