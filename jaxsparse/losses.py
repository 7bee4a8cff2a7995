"""Training objectives as pure functions of arrays.

``reconstruction_l1`` is the one reconstruction + sparsity loss of paper 1 (O'Neill, Gumran &
Klindt, ICML 2025), used by SAEs, encoders with a frozen or learned decoder, and sparse coding::

    L = mean_{b,m} (x - x_hat)^2 + lam * mean_{b,n} |z|                                   (1)

Both terms are means, so the loss does not scale with the batch size. With ``x_hat = z D``, (1) is
``2 / (B M)`` times the sum over samples of the Lasso objective ``0.5 ||x - z D||^2 + lam_lasso
||z||_1`` with ``lam_lasso = lam * M / (2 N)`` (:func:`lasso_lam`): the one conversion between this
loss's ``lam`` and the solvers'.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxsparse._checks import is_concrete


def reconstruction_l1(x: jax.Array, x_hat: jax.Array, z: jax.Array, lam: jax.Array | float, *,
                      l0_threshold: float = 0.0, latent_axis: int = -1) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Objective (1) for signals ``x [B, M]``, reconstructions ``x_hat [B, M]`` and codes ``z [B, N]``
    (or all three transposed, ``[M, B]`` and ``[N, B]``, with ``latent_axis=0``: the means do not
    depend on the layout).

    Returns:
      ``(loss, {"mse": mean (x - x_hat)^2, "l1": mean |z|, "l0": mean over samples of the number
      of latents with |z| > l0_threshold})``.

    Example::

        loss, aux = reconstruction_l1(x, z @ d, z, lam=0.01)
    """
    mse = jnp.mean((x - x_hat) ** 2)
    l1 = jnp.mean(jnp.abs(z))
    active = jnp.abs(z) > l0_threshold
    if latent_axis % z.ndim == z.ndim - 1:
        l0 = jnp.mean(jnp.sum(active, axis=-1).astype(x.dtype))
    else:  # a sum over a major axis is slow on CPU; one sum over every entry is not
        l0 = jnp.sum(active).astype(x.dtype) / (z.size // z.shape[latent_axis])
    return mse + lam * l1, {"mse": mse, "l1": l1, "l0": l0}


def lasso_lam(lam: float, n_latents: int, n_features: int) -> float:
    """The per-sample Lasso weight equivalent to objective (1): ``lam * M / (2 N)``.

    The solvers' ``lam`` (``0.5 ||x - z D||^2 + lam ||z||_1`` per sample) maps to scikit-learn's
    ``Lasso(alpha=lam / M)`` and to SPAMS's ``lambda1 = lam`` (``mode=2``).
    """
    return lam * n_features / (2 * n_latents)


# --- VAE and SlowVAE (paper 6: Klindt et al., ICLR 2021) ----------------------------------------------
#
# The building blocks reduce over the event axes of one example (the pixels of an image, the latents of a
# code) and keep every leading axis as a batch axis; ``slowvae_loss`` and ``betavae_loss`` average over the
# batch axes, as the official code's ``.div(batch_size)`` and ``.mean(0)`` do.


def _check_same_shape(name_a: str, a, name_b: str, b, *, min_ndim: int) -> tuple[jax.Array, jax.Array]:
    for name, v in ((name_a, a), (name_b, b)):
        if not hasattr(v, "dtype") or not hasattr(v, "shape"):
            raise TypeError(f"`{name}` must be an array, got {type(v).__name__}")
        if not jnp.issubdtype(v.dtype, jnp.floating):
            raise TypeError(f"`{name}` must have a floating dtype, got {v.dtype}")
        if v.ndim < min_ndim:
            raise ValueError(f"`{name}` must have at least {min_ndim} dimension(s), got shape {tuple(v.shape)}")
    if a.shape != b.shape:
        raise ValueError(f"`{name_b}` must have the shape of `{name_a}` {tuple(a.shape)}, got {tuple(b.shape)}")
    return jnp.asarray(a), jnp.asarray(b)


def _positive_scalar(name: str, value: Any) -> Any:
    """Validate a (possibly traced) finite scalar > 0 such as ``rate`` or ``temperature``."""
    if isinstance(value, bool):
        raise TypeError(f"`{name}` must be a positive real number, got bool")
    if is_concrete(value):
        v = np.asarray(value)
        if v.ndim != 0 or not np.issubdtype(v.dtype, np.number) or not np.isfinite(v) or v <= 0:
            raise ValueError(f"`{name}` must be a finite number > 0, got {value!r}")
    return value


def bernoulli_reconstruction(logits: jax.Array, x: jax.Array, *, event_ndim: int = 3) -> jax.Array:
    """``-log p(x | z)`` of a Bernoulli decoder with ``logits``, summed over the pixels of each image.

    For ``x`` in ``[0, 1]`` (the binary cross-entropy also accepts grey values)::

        BCE(l, x) = sum_pixels  softplus(l) - l x  = sum_pixels  -[x log sigmoid(l) + (1 - x) log(1 - sigmoid(l))]

    computed stably from the logits (PyTorch's ``binary_cross_entropy_with_logits``).

    Args:
      logits: ``[..., H, W, C]`` decoder logits.
      x: images of the same shape.
      event_ndim: how many trailing axes make one example (3 for ``H, W, C``).

    Returns:
      ``[...]``: one value per image. Its mean over the batch is the official ``reconstruction_loss``
      (``F.binary_cross_entropy_with_logits(x_recon, x, size_average=False).div(batch_size)``).

    Example::

        bernoulli_reconstruction(decode(params, z), x).mean()
    """
    logits, x = _check_same_shape("logits", logits, "x", x, min_ndim=event_ndim)
    per_pixel = jax.nn.softplus(logits) - logits * x
    return jnp.sum(per_pixel, axis=tuple(range(-event_ndim, 0)))


def gaussian_entropy(logvar: jax.Array) -> jax.Array:
    """Entropy of ``N(mean, diag(exp(logvar)))``, summed over the last (latent) axis.

    ``H = sum_i 0.5 (logvar_i + log(2 pi e))`` (the official ``compute_ent_normal``, summed over latents).
    Returns ``[...]`` for ``logvar: [..., n]``.
    """
    logvar = jnp.asarray(logvar)
    return jnp.sum(0.5 * (logvar + jnp.log(2 * jnp.pi * jnp.e)), axis=-1)


def gaussian_kl(mean: jax.Array, logvar: jax.Array) -> jax.Array:
    """``KL(N(mean, diag(exp(logvar))) || N(0, I))``, summed over the last (latent) axis.

    ``KL = sum_i 0.5 (mean_i^2 + exp(logvar_i) - logvar_i - 1)``; the official code forms it as the
    cross-entropy ``0.5 (mean^2 + exp(logvar)) + log sqrt(2 pi)`` minus the entropy
    (:func:`gaussian_entropy`), which is the same number.

    Returns ``[...]`` for ``mean, logvar: [..., n]``.
    """
    mean, logvar = _check_same_shape("mean", mean, "logvar", logvar, min_ndim=1)
    return 0.5 * jnp.sum(mean**2 + jnp.exp(logvar) - logvar - 1.0, axis=-1)


def laplace_cross_entropy(mean: jax.Array, std: jax.Array, *, rate: jax.Array | float) -> jax.Array:
    """Cross-entropy of ``N(m, s^2)`` under the zero-mean Laplace ``p(z) = (rate / 2) exp(-rate |z|)``, per latent.

    ``CE_L(m, s) = E_{z ~ N(m, s^2)}[-log p(z)] = -log(rate / 2) + rate E|z|`` with the folded-normal mean
    ``E|z| = s sqrt(2 / pi) exp(-m^2 / (2 s^2)) + m (1 - 2 Phi(-m / s))``; ``1 - 2 Phi(-t) = erf(t / sqrt 2)``
    is used for the last factor. This is the official ``compute_cross_ent_laplace`` (which writes
    ``- rate m (1 - 2 Phi(m / s))``, the same number). SlowVAE evaluates it at ``m = mu_t - mu_{t-1}``:
    the cross-entropy of one frame's posterior under the Laplace transition prior centred on the other
    frame's posterior mean.

    Args:
      mean: ``m``, any shape.
      std: ``s > 0``, the shape of ``mean``.
      rate: ``rate > 0`` (``lambda``; the official default is 6).

    Returns:
      Elementwise ``CE_L``, the shape of ``mean`` (sum over the latent axis for a factorised prior).

    Example::

        laplace_cross_entropy(mu1 - mu0, jnp.exp(0.5 * logvar1), rate=6.0).sum(-1)
    """
    mean, std = _check_same_shape("mean", mean, "std", std, min_ndim=0)
    rate = _positive_scalar("rate", rate)
    folded = std * jnp.sqrt(2.0 / jnp.pi) * jnp.exp(-(mean**2) / (2.0 * std**2)) + mean * jax.scipy.special.erf(
        mean / (jnp.sqrt(2.0) * std))
    return -jnp.log(rate / 2.0) + rate * folded


def _check_pairs(logits, x, mean, logvar):
    logits, x = _check_same_shape("logits", logits, "x", x, min_ndim=4)
    mean, logvar = _check_same_shape("mean", mean, "logvar", logvar, min_ndim=2)
    if x.shape[-4] != 2 or mean.shape[-2] != 2 or x.shape[:-4] != mean.shape[:-2]:
        raise ValueError(
            "pairs must be `x`, `logits`: [..., 2, H, W, C] and `mean`, `logvar`: [..., 2, n_latents] with the same "
            f"leading axes (axis -4 / -2: frame t-1, frame t), got `x` {tuple(x.shape)} and `mean` {tuple(mean.shape)}")
    return logits, x, mean, logvar


def slowvae_loss(logits: jax.Array, x: jax.Array, mean: jax.Array, logvar: jax.Array, *,
                 beta: jax.Array | float = 1.0, gamma: jax.Array | float = 10.0,
                 rate: jax.Array | float = 6.0) -> tuple[jax.Array, dict[str, jax.Array]]:
    """The SlowVAE objective for pairs ``(x_{t-1}, x_t)``, exactly as the official code combines it.

    Symbols: ``x`` the pair of frames, ``logits`` their decoded (sampled) latents, ``(mu_0, logvar_0)`` and
    ``(mu_1, logvar_1)`` the posteriors of frames ``t-1`` and ``t``, ``s_j = exp(logvar_j / 2)``, ``lambda = rate``.
    Per pair::

        recon      = BCE(x_0) + BCE(x_1)                                       (both frames, summed)
        kl         = (KL(q_0 || N(0,I)) + KL(q_1 || N(0,I))) / 2              (mean over the two frames)
        transition = sum_i CE_L(mu_0 - mu_1, s_0) + sum_i CE_L(mu_1 - mu_0, s_1) - (H(q_0) + H(q_1)) / 2
        loss       = recon + beta * kl + gamma * transition

    averaged over all leading (batch) axes. In the official code (bethgelab/slow_disentanglement,
    ``scripts/solver.py``: ``Solver.train``, ``reconstruction_loss``, ``compute_cross_ent_combined``,
    ``compute_cross_ent_laplace``, ``compute_cross_ent_normal``, ``compute_ent_normal``) a batch of
    ``B`` pairs is ``2B`` interleaved frames (``x[::2]`` = ``t-1``, ``x[1::2]`` = ``t``) and::

        vae_loss = 2 * recon_loss + beta * (H(Q;P_N) - H(Q)) + gamma * (H(Q;P_L) - H(Q))

    with ``recon_loss`` the summed BCE divided by ``2B`` (so ``2 * recon_loss`` is the per-pair sum
    above), ``H(Q;P_N)`` and ``H(Q)`` summed over latents and averaged over all ``2B`` frames, and
    ``H(Q;P_L)`` the two Laplace cross-entropies summed over latents and averaged over the ``B`` pairs.
    Quirks reproduced here, not corrected:

    - the KL to ``N(0, I)`` covers both frames but is a per-frame mean, while the reconstruction is a
      per-pair sum: the effective prior weight per frame is ``beta / 2``. The β-VAE baseline (official
      ``--betavae``: this loss with ``gamma = 0``, ``beta = 8``) is therefore a standard β-VAE with
      ``beta = 4`` at twice the loss scale (:func:`betavae_loss`);
    - the transition term subtracts the *mean* entropy of the two frames from the *sum* of the two
      cross-entropies: it is ``KL(q_0 || L(mu_1)) + KL(q_1 || L(mu_0)) + (H(q_0) + H(q_1)) / 2``, not
      the sum of the two KLs (the leftover ``gamma/2`` entropy pushes posterior variances down);
    - the Laplace prior is centred on the other frame's posterior *mean* (no sample), both directions;
      the rate is fixed (not learned).

    Args:
      logits: ``[..., 2, H, W, C]`` decoder logits of both frames (axis -4: ``t-1``, ``t``).
      x: ``[..., 2, H, W, C]`` the frames, in ``[0, 1]``.
      mean: ``[..., 2, n]`` posterior means.
      logvar: ``[..., 2, n]`` posterior log-variances.
      beta: weight of the KL to ``N(0, I)`` (official default 1).
      gamma: weight of the Laplace transition term (official default 10; 0 gives the β-VAE).
      rate: Laplace rate ``lambda`` (official default 6).

    Returns:
      ``(loss, parts)``: the scalar loss and ``{"recon", "kl", "transition", "entropy",
      "cross_entropy_laplace"}`` with ``loss = recon + beta * kl + gamma * transition``; ``entropy``
      is the official ``H(Q)`` (per frame), ``cross_entropy_laplace`` the official ``H(Q;P_L)``
      (per pair, both directions).

    Example::

        mean, logvar = encode(params, x)                # x: [B, 2, 64, 64, 1]
        logits = decode(params, sample_posterior(key, mean, logvar))
        loss, parts = slowvae_loss(logits, x, mean, logvar)
    """
    logits, x, mean, logvar = _check_pairs(logits, x, mean, logvar)
    rate = _positive_scalar("rate", rate)
    recon = jnp.sum(bernoulli_reconstruction(logits, x), axis=-1)  # [...]: both frames
    kl = jnp.mean(gaussian_kl(mean, logvar), axis=-1)
    entropy = jnp.mean(gaussian_entropy(logvar), axis=-1)
    std = jnp.exp(0.5 * logvar)
    mu0, mu1 = mean[..., 0, :], mean[..., 1, :]
    ce = (jnp.sum(laplace_cross_entropy(mu0 - mu1, std[..., 0, :], rate=rate), axis=-1)
          + jnp.sum(laplace_cross_entropy(mu1 - mu0, std[..., 1, :], rate=rate), axis=-1))
    parts = {"recon": jnp.mean(recon), "kl": jnp.mean(kl), "transition": jnp.mean(ce - entropy),
             "entropy": jnp.mean(entropy), "cross_entropy_laplace": jnp.mean(ce)}
    loss = parts["recon"] + beta * parts["kl"] + gamma * parts["transition"]
    return loss, parts


def betavae_loss(logits: jax.Array, x: jax.Array, mean: jax.Array, logvar: jax.Array, *,
                 beta: jax.Array | float = 1.0) -> tuple[jax.Array, dict[str, jax.Array]]:
    """The β-VAE objective (Higgins et al., ICLR 2017) per image: ``BCE(x) + beta KL(q || N(0, I))``, batch mean.

    Args:
      logits, x: ``[..., H, W, C]``; mean, logvar: ``[..., n]`` with the same leading axes.

    Returns:
      ``(loss, {"recon": mean BCE, "kl": mean KL})``.

    On pairs, the official SlowVAE code's β-VAE baseline (:func:`slowvae_loss` with ``gamma = 0``)
    is twice this loss at half its ``beta``: ``slowvae_loss(..., beta=b, gamma=0) ==
    2 * betavae_loss(<the 2B frames>, beta=b / 2)``. The paper's β-VAE (``beta = 8`` in the official
    runs) is this loss with ``beta = 4``, up to the factor 2 that Adam nearly ignores.
    """
    logits, x = _check_same_shape("logits", logits, "x", x, min_ndim=3)
    mean, logvar = _check_same_shape("mean", mean, "logvar", logvar, min_ndim=1)
    if x.shape[:-3] != mean.shape[:-1]:
        raise ValueError(f"`x` [..., H, W, C] and `mean` [..., n] must have the same leading axes, got "
                         f"{tuple(x.shape)} and {tuple(mean.shape)}")
    recon = jnp.mean(bernoulli_reconstruction(logits, x))
    kl = jnp.mean(gaussian_kl(mean, logvar))
    return recon + beta * kl, {"recon": recon, "kl": kl}


# --- Classification heads and contrastive objectives (papers 2 and 3) ----------------------------------
#
# Paper 2 (Reizinger et al., ICLR 2025, "Cross-entropy is all you need to invert the data generating
# process") trains an encoder with a bias-free linear head and softmax cross-entropy: one row per
# training sample (parametric instance discrimination) or per class (supervised). Paper 3 (Ibrahim,
# Klindt & Balestriero 2024, DIET) is instance discrimination with label smoothing. Both are
# :func:`linear_head_cross_entropy`; :func:`info_nce` is the contrastive reference.


def _check_features(name: str, x: Any, ndim: int = 2) -> jax.Array:
    if not hasattr(x, "dtype") or not hasattr(x, "shape"):
        raise TypeError(f"`{name}` must be an array, got {type(x).__name__}")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(f"`{name}` must have a floating dtype, got {x.dtype}")
    if x.ndim != ndim:
        raise ValueError(f"`{name}` must have {ndim} dimensions, got shape {tuple(x.shape)}")
    return jnp.asarray(x)


def _unit(x: jax.Array, eps: float = 1e-12) -> jax.Array:
    """``x / max(||x||, eps)`` along the last axis, with a finite gradient at ``x = 0`` (``jnp.linalg.norm``'s
    is NaN there: an all-black augmented view gives an exactly zero projection)."""
    return x * jax.lax.rsqrt(jnp.maximum(jnp.sum(x * x, axis=-1, keepdims=True), eps * eps))


def linear_head_cross_entropy(features: jax.Array, head: jax.Array, labels: jax.Array, *,
                              normalize: bool = False, temperature: jax.Array | float = 1.0,
                              label_smoothing: jax.Array | float = 0.0) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Softmax cross-entropy of a bias-free linear head ``W`` on features ``f``, batch mean.

    Symbols: ``f = features [B, d]``, ``W = head [K, d]`` (one row per class: a training sample's
    index for instance discrimination and DIET, a cluster or class for supervised learning),
    ``y = labels [B]``, ``tau = temperature``, ``eps = label_smoothing``::

        logits = f W^T / tau               (normalize: f and the rows of W scaled to unit norm first)
        q      = (1 - eps) onehot(y) + eps / K
        loss   = mean_b  - sum_k q_bk log softmax(logits_b)_k

    With ``eps = 0`` this is the plain cross-entropy of paper 2 (Reizinger et al., ICLR 2025; the
    normalised head with a temperature is their cosine-similarity variant, which makes the learned
    map orthogonal up to scale); with ``eps = 0.8`` and ``y`` the datum index it is DIET (Ibrahim,
    Klindt & Balestriero 2024). It equals ``optax.softmax_cross_entropy(logits,
    optax.smooth_labels(onehot(y), eps))`` averaged over the batch.

    Args:
      features: ``[B, d]`` encoder outputs.
      head: ``[K, d]`` head weights.
      labels: ``[B]`` integer class indices in ``[0, K)``.
      normalize: score cosines instead of inner products.
      temperature: ``tau > 0``.
      label_smoothing: ``eps`` in ``[0, 1)``.

    Returns:
      ``(loss, {"accuracy": share of samples whose largest logit is their label})``.

    Example::

        loss, aux = linear_head_cross_entropy(encode(params, x), params["head"], idx)  # instance discrimination
    """
    features = _check_features("features", features)
    head = _check_features("head", head)
    labels = jnp.asarray(labels)
    if not jnp.issubdtype(labels.dtype, jnp.integer) or labels.shape != features.shape[:1]:
        raise ValueError(f"`labels` must be integer class indices of shape [{features.shape[0]}] (one per row of "
                         f"`features`), got dtype {labels.dtype} and shape {tuple(labels.shape)}")
    if head.shape[1] != features.shape[1]:
        raise ValueError(f"`head` must be [n_classes, {features.shape[1]}] (the feature width of `features`), "
                         f"got {tuple(head.shape)}")
    temperature = _positive_scalar("temperature", temperature)
    if is_concrete(label_smoothing) and not 0.0 <= float(np.asarray(label_smoothing)) < 1.0:
        raise ValueError(f"`label_smoothing` must be in [0, 1), got {label_smoothing!r}")
    if normalize:
        features, head = _unit(features), _unit(head)
    logits = features @ head.T / temperature
    logp = jax.nn.log_softmax(logits, axis=-1)
    nll = -jnp.take_along_axis(logp, labels[:, None], axis=-1)[:, 0]
    loss = jnp.mean((1.0 - label_smoothing) * nll - label_smoothing * jnp.mean(logp, axis=-1))
    accuracy = jnp.mean((jnp.argmax(logits, axis=-1) == labels).astype(features.dtype))
    return loss, {"accuracy": accuracy}


def info_nce(anchors: jax.Array, positives: jax.Array, *, temperature: jax.Array | float = 1.0,
             normalize: bool = True, symmetric: bool = False) -> tuple[jax.Array, dict[str, jax.Array]]:
    """InfoNCE (van den Oord et al. 2018) with the other positives of the batch as negatives.

    Symbols: ``a = anchors [B, d]``, ``p = positives [B, d]`` (row ``b`` of ``p`` is the positive of
    row ``b`` of ``a``), ``tau = temperature``::

        s_bc = a_b . p_c / tau             (normalize: a and p scaled to unit norm first)
        loss = mean_b  - log( exp(s_bb) / sum_c exp(s_bc) )

    ``symmetric`` averages this with the same loss from ``p`` to ``a`` (CLIP's form). This is the
    contrastive loss of Zimmermann et al. (ICML 2021, cl-ica) with the dot-product critic, the
    reference of paper 2; SimCLR's NT-Xent also uses the other views of the anchor's own branch as
    negatives.

    Returns:
      ``(loss, {"accuracy": share of anchors whose most similar candidate is their positive})``.

    Example::

        loss, aux = info_nce(encode(params, x), encode(params, x_positive), temperature=0.1)
    """
    anchors = _check_features("anchors", anchors)
    positives = _check_features("positives", positives)
    if anchors.shape != positives.shape:
        raise ValueError(f"`positives` must have the shape of `anchors` {tuple(anchors.shape)}, "
                         f"got {tuple(positives.shape)}")
    temperature = _positive_scalar("temperature", temperature)
    if normalize:
        anchors, positives = _unit(anchors), _unit(positives)
    logits = anchors @ positives.T / temperature
    diag = jnp.diagonal(logits)
    loss = jnp.mean(jax.nn.logsumexp(logits, axis=1) - diag)
    if symmetric:
        loss = 0.5 * (loss + jnp.mean(jax.nn.logsumexp(logits, axis=0) - diag))
    accuracy = jnp.mean((jnp.argmax(logits, axis=1) == jnp.arange(logits.shape[0])).astype(logits.dtype))
    return loss, {"accuracy": accuracy}


def byol_loss(predictions: jax.Array, targets: jax.Array) -> tuple[jax.Array, dict[str, jax.Array]]:
    """BYOL's regression of the online prediction onto the target network's projection (Grill et al. 2020).

    Symbols: ``q = predictions [B, d]`` (online network, then predictor), ``z = targets [B, d]`` (the
    EMA target network's projection of the other view; no gradient flows into it)::

        loss = mean_b || q_b / ||q_b|| - z_b / ||z_b|| ||^2 = mean_b (2 - 2 cos(q_b, z_b))

    Symmetrise by adding the loss with the views swapped. The target network's update
    ``xi <- tau xi + (1 - tau) theta`` is the caller's (e.g. a ``project`` step after each update).

    Returns:
      ``(loss, {"cosine": mean_b cos(q_b, z_b)})``.
    """
    predictions = _check_features("predictions", predictions)
    targets = _check_features("targets", targets)
    if predictions.shape != targets.shape:
        raise ValueError(f"`targets` must have the shape of `predictions` {tuple(predictions.shape)}, "
                         f"got {tuple(targets.shape)}")
    cos = jnp.sum(_unit(predictions) * _unit(jax.lax.stop_gradient(targets)), axis=-1)
    return jnp.mean(2.0 - 2.0 * cos), {"cosine": jnp.mean(cos)}
