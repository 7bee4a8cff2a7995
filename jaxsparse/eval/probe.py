"""Linear-probe evaluation of frozen features: L2-regularised multinomial logistic regression.

The standard readout of self-supervised representations (e.g. DIET, Ibrahim et al. 2024; SimCLR, Chen
et al. 2020): freeze the backbone, standardise its features with the training set's mean and standard
deviation, fit a linear softmax classifier, report top-1 accuracy on held-out data. For standardised
features ``x_i [d]``, labels ``y_i`` in ``[0, K)``, weights ``W [d, K]`` and bias ``b [K]``::

    min_{W, b}  (1/n) sum_i -log softmax(x_i W + b)_{y_i}  +  (l2 / 2) ||W||_F^2

(the bias is not penalised). This is scikit-learn's ``LogisticRegression(C=1 / (n * l2))`` objective
(multinomial, lbfgs), which ``tests/test_eval_probe.py`` checks it against. It is solved with optax's
L-BFGS (zoom line search) from zero, in a ``lax.while_loop`` that stops when the gradient's max-norm is
below ``tol`` or after ``max_iter`` iterations. :func:`fit_logistic` is pure JAX (jit, vmap over runs);
:func:`linear_probe` is the host-side metric.

Example::

    scores = linear_probe(f_train, y_train, f_test, y_test)   # {"train_accuracy", "test_accuracy", "iterations"}
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree

from jaxsparse.eval._arrays import host_array, same_n_samples


class LogisticFit(NamedTuple):
    """A fitted probe: ``logits = ((x - mean) / scale) @ w + b``; ``iterations`` L-BFGS steps taken."""

    w: jax.Array
    b: jax.Array
    mean: jax.Array
    scale: jax.Array
    iterations: jax.Array


@functools.partial(jax.jit, static_argnames=("n_classes", "max_iter", "standardize"))
def fit_logistic(x: jax.Array, y: jax.Array, *, n_classes: int, l2: float | jax.Array = 1e-4, max_iter: int = 1000,
                 tol: float = 1e-6, standardize: bool = True) -> LogisticFit:
    """Fit the probe of the module docstring to ``x: [n, d]``, ``y: int [n]`` (pure JAX; vmaps over runs)."""
    x = jnp.asarray(x, jnp.float32)
    if standardize:
        mean = jnp.mean(x, axis=0)
        scale = jnp.maximum(jnp.std(x, axis=0), 1e-8)
    else:
        mean, scale = jnp.zeros(x.shape[1], x.dtype), jnp.ones(x.shape[1], x.dtype)
    xs = (x - mean) / scale
    onehot = jax.nn.one_hot(y, n_classes, dtype=x.dtype)

    def objective(p):
        logits = xs @ p["w"] + p["b"]
        nll = jnp.mean(jax.nn.logsumexp(logits, axis=-1) - jnp.sum(onehot * logits, axis=-1))
        return nll + 0.5 * l2 * jnp.sum(p["w"] ** 2)

    opt = optax.lbfgs()
    value_and_grad = optax.value_and_grad_from_state(objective)
    p0 = {"w": jnp.zeros((x.shape[1], n_classes), x.dtype), "b": jnp.zeros((n_classes,), x.dtype)}

    def step(carry):
        p, state, _, i = carry
        value, grad = value_and_grad(p, state=state)
        updates, state = opt.update(grad, state, p, value=value, grad=grad, value_fn=objective)
        gmax = jnp.max(jnp.abs(ravel_pytree(grad)[0]))
        return optax.apply_updates(p, updates), state, gmax, i + 1

    def not_done(carry):
        return (carry[2] > tol) & (carry[3] < max_iter)

    p, _, _, iterations = jax.lax.while_loop(not_done, step, (p0, opt.init(p0), jnp.array(jnp.inf, x.dtype),
                                                             jnp.array(0, jnp.int32)))
    return LogisticFit(p["w"], p["b"], mean, scale, iterations)


def predict(fit: LogisticFit, x: jax.Array) -> jax.Array:
    """Predicted classes ``int [n]`` of ``x: [n, d]``."""
    return jnp.argmax(((jnp.asarray(x, jnp.float32) - fit.mean) / fit.scale) @ fit.w + fit.b, axis=-1)


def _labels(name: str, y: Any) -> np.ndarray:
    host_array(name, y, ndim=1, allow_int=True)  # concrete, 1-D, not empty
    y = np.asarray(y)
    if not np.issubdtype(y.dtype, np.integer) or y.min() < 0:
        raise ValueError(f"`{name}` must be non-negative integer class labels, got dtype {y.dtype} and minimum {y.min()}")
    return y.astype(np.int32)


def linear_probe(train_features: Any, train_labels: Any, test_features: Any, test_labels: Any, *,
                 l2: float = 1e-4, max_iter: int = 1000, tol: float = 1e-6) -> dict[str, float]:
    """Top-1 accuracy of the module docstring's probe, fitted on the training features.

    Args:
      train_features, test_features: ``[n_train, d]`` and ``[n_test, d]`` frozen features.
      train_labels, test_labels: integer class labels ``[n_train]``, ``[n_test]`` (classes ``0 .. K-1``,
        ``K = 1 + max`` over both sets).
      l2: the penalty ``l2 > 0`` on ``W`` (scikit-learn ``C = 1 / (n_train * l2)``).
      max_iter, tol: L-BFGS iterations and the gradient max-norm at which it stops.
    Returns:
      ``{"train_accuracy", "test_accuracy", "iterations"}``.
    """
    f_tr = host_array("train_features", train_features, ndim=2)
    f_te = host_array("test_features", test_features, ndim=2)
    y_tr, y_te = _labels("train_labels", train_labels), _labels("test_labels", test_labels)
    same_n_samples("train_features", f_tr, "train_labels", y_tr)
    same_n_samples("test_features", f_te, "test_labels", y_te)
    if f_tr.shape[1] != f_te.shape[1]:
        raise ValueError(f"`test_features` must have the {f_tr.shape[1]} columns of `train_features`, got {f_te.shape[1]}")
    if not l2 > 0:
        raise ValueError(f"`l2` must be > 0, got {l2}")
    n_classes = int(max(y_tr.max(), y_te.max())) + 1
    fit = fit_logistic(f_tr, y_tr, n_classes=n_classes, l2=float(l2), max_iter=int(max_iter), tol=float(tol))
    return {"train_accuracy": float(np.mean(np.asarray(predict(fit, f_tr)) == y_tr)),
            "test_accuracy": float(np.mean(np.asarray(predict(fit, f_te)) == y_te)),
            "iterations": int(fit.iterations)}
