"""VAE/SlowVAE losses: closed forms against Monte Carlo and scipy, a hand-worked pair, the official combination."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, stats

from jaxsparse import losses
from jaxsparse.losses import bernoulli_reconstruction, betavae_loss, laplace_cross_entropy, slowvae_loss

# jitted once per shape: op-by-op dispatch compiles every primitive and dominates these small tests on CPU
jit_slowvae = jax.jit(slowvae_loss)
jit_betavae = jax.jit(betavae_loss)
jit_laplace_ce = jax.jit(laplace_cross_entropy)
jit_bce = jax.jit(bernoulli_reconstruction, static_argnames="event_ndim")

CASES = [(0.0, 1.0), (0.7, 0.3), (-1.2, 0.05), (2.0, 1.5), (-0.3, 2.0), (0.01, 0.001), (-4.0, 0.5)]


def ce_laplace_by_hand(m, s, rate):
    phi = 0.5 * math.erfc(m / s / math.sqrt(2))  # Phi(-m / s)
    folded_mean = s * math.sqrt(2 / math.pi) * math.exp(-m * m / (2 * s * s)) + m * (1 - 2 * phi)  # E|z|
    return -math.log(rate / 2) + rate * folded_mean


@pytest.mark.parametrize("rate", [6.0, 1.0])
def test_laplace_cross_entropy_equals_monte_carlo_and_quadrature(rate):
    ours = np.asarray(jit_laplace_ce(jnp.array([m for m, _ in CASES]), jnp.array([s for _, s in CASES]),
                                            rate=rate))
    rng = np.random.default_rng(0)
    for (m, s), value in zip(CASES, ours):
        z = m + s * rng.standard_normal(10**6)
        neg_log_p = -math.log(rate / 2) + rate * np.abs(z)  # -log Laplace(z; 0, 1/rate)
        se = neg_log_p.std() / math.sqrt(z.size)
        assert abs(value - neg_log_p.mean()) <= 5 * se + 1e-5 * abs(value), (m, s, value, neg_log_p.mean(), se)
        quad, _ = integrate.quad(lambda t: -stats.laplace.logpdf(t, scale=1 / rate) * stats.norm.pdf(t, m, s),
                                 m - 12 * s, m + 12 * s, points=[0.0] if abs(m) < 12 * s else None, limit=200)
        assert value == pytest.approx(quad, rel=2e-6, abs=2e-6)
        assert value == pytest.approx(ce_laplace_by_hand(m, s, rate), rel=2e-6, abs=2e-6)


def test_gaussian_entropy_and_kl_against_scipy(rng):
    mean = rng.normal(size=(3, 4))
    logvar = rng.normal(size=(3, 4))
    entropy = np.asarray(jax.jit(losses.gaussian_entropy)(jnp.asarray(logvar, jnp.float32)))
    kl = np.asarray(jax.jit(losses.gaussian_kl)(jnp.asarray(mean, jnp.float32), jnp.asarray(logvar, jnp.float32)))
    for b in range(3):
        cov = np.diag(np.exp(logvar[b]))
        assert entropy[b] == pytest.approx(stats.multivariate_normal(mean[b], cov).entropy(), rel=1e-5)
        by_latent = [integrate.quad(lambda t, m=m, s=s: stats.norm.pdf(t, m, s)
                                    * (stats.norm.logpdf(t, m, s) - stats.norm.logpdf(t)), m - 12 * s, m + 12 * s)[0]
                     for m, s in zip(mean[b], np.exp(logvar[b] / 2))]
        assert kl[b] == pytest.approx(sum(by_latent), rel=1e-5, abs=1e-6)
    # the official form: cross-entropy to N(0, I) minus the entropy
    cross = np.sum(0.5 * (mean**2 + np.exp(logvar)) + np.log(np.sqrt(2 * np.pi)), axis=-1)
    np.testing.assert_allclose(kl, cross - entropy, rtol=1e-5, atol=1e-5)


def test_bernoulli_reconstruction_is_the_summed_binary_cross_entropy(rng):
    x = (rng.uniform(size=(5, 4, 4, 1)) > 0.5).astype(np.float32)
    x[0] = rng.uniform(size=(4, 4, 1))  # grey values are allowed
    logits = rng.normal(scale=3, size=x.shape).astype(np.float32)
    p = 1 / (1 + np.exp(-logits.astype(np.float64)))
    expected = -np.sum(x * np.log(p) + (1 - x) * np.log(1 - p), axis=(1, 2, 3))
    np.testing.assert_allclose(jit_bce(jnp.asarray(logits), jnp.asarray(x)), expected, rtol=1e-5)
    # stable at extreme logits: a confident wrong pixel costs |logit|, a confident right one ~0
    big = jnp.array([[[[100.0], [-100.0]]]])
    np.testing.assert_allclose(jit_bce(big, jnp.array([[[[0.0], [1.0]]]])), [200.0], rtol=1e-6)
    assert float(jit_bce(big, jnp.array([[[[1.0], [0.0]]]]))[0]) < 1e-30
    # flat signals: one event axis
    np.testing.assert_allclose(jit_bce(jnp.asarray(logits.reshape(5, 16)), jnp.asarray(x.reshape(5, 16)), event_ndim=1),
                               expected, rtol=1e-5)


def softplus(t):
    return math.log1p(math.exp(t))


def test_slowvae_loss_on_a_pair_worked_by_hand():
    # one pair of 2×2 images, 2 latents
    x0, x1 = [[1, 0], [0, 1]], [[1, 1], [0, 0]]
    l0, l1 = [[2, -1], [0, 3]], [[1, 1], [-2, 0]]
    mu0, mu1, lv0, lv1 = [0.5, -1.0], [0.2, -0.4], [0.0, -1.0], [-2.0, 0.5]
    beta, gamma, rate = 1.5, 10.0, 6.0

    recon = sum(softplus(l) - l * v for xs, ls in ((x0, l0), (x1, l1))
                for xr, lr in zip(xs, ls) for v, l in zip(xr, lr))  # both frames, summed
    kl0 = sum(0.5 * (m * m + math.exp(v) - v - 1) for m, v in zip(mu0, lv0))
    kl1 = sum(0.5 * (m * m + math.exp(v) - v - 1) for m, v in zip(mu1, lv1))
    h0 = sum(0.5 * (v + math.log(2 * math.pi * math.e)) for v in lv0)
    h1 = sum(0.5 * (v + math.log(2 * math.pi * math.e)) for v in lv1)
    ce = sum(ce_laplace_by_hand(a - b, math.exp(v / 2), rate) for a, b, v in zip(mu0, mu1, lv0)) + \
        sum(ce_laplace_by_hand(b - a, math.exp(v / 2), rate) for a, b, v in zip(mu0, mu1, lv1))
    expected = {"recon": recon, "kl": (kl0 + kl1) / 2, "transition": ce - (h0 + h1) / 2,
                "entropy": (h0 + h1) / 2, "cross_entropy_laplace": ce}
    loss_by_hand = recon + beta * (kl0 + kl1) / 2 + gamma * (ce - (h0 + h1) / 2)

    x = jnp.array([x0, x1], jnp.float32)[..., None]  # [2, 2, 2, 1]: one pair
    logits = jnp.array([l0, l1], jnp.float32)[..., None]
    mean, logvar = jnp.array([mu0, mu1]), jnp.array([lv0, lv1])
    loss, parts = jit_slowvae(logits, x, mean, logvar, beta=beta, gamma=gamma, rate=rate)
    assert float(loss) == pytest.approx(loss_by_hand, rel=1e-6)
    for k, v in expected.items():
        assert float(parts[k]) == pytest.approx(v, rel=1e-6, abs=1e-6), k
    # all-zero logits and a standard-normal posterior for both frames: every term in closed form
    zero_loss, zero_parts = jit_slowvae(jnp.zeros_like(x), x, jnp.zeros((2, 2)), jnp.zeros((2, 2)))
    transition = 2 * 2 * (-math.log(3) + 6 * math.sqrt(2 / math.pi)) - 2 * 0.5 * math.log(2 * math.pi * math.e)
    assert float(zero_parts["kl"]) == 0 and float(zero_parts["recon"]) == pytest.approx(8 * math.log(2))
    assert float(zero_loss) == pytest.approx(8 * math.log(2) + 10 * transition, rel=1e-6)


def official_numpy(frames, logits, mu, logvar, beta, gamma, rate):
    """bethgelab/slow_disentanglement scripts/solver.py, on an interleaved batch of 2B frames, in numpy."""
    b2 = frames.shape[0]
    recon_loss = np.sum(np.logaddexp(0, logits) - logits * frames) / b2
    ent = 0.5 * (logvar + np.log(2 * np.pi * np.e))
    cross_normal = 0.5 * (mu**2 + np.exp(logvar)) + np.log(np.sqrt(2 * np.pi))
    sigma = np.exp(logvar / 2)
    cdf = stats.norm.cdf

    def ce_lap(m, s):
        return -np.log(rate / 2) + rate * s * np.sqrt(2 / np.pi) * np.exp(-m**2 / (2 * s**2)) - rate * m * (
            1 - 2 * cdf(m / s))

    cross_lap = ce_lap(mu[::2] - mu[1::2], sigma[::2]) + ce_lap(mu[1::2] - mu[::2], sigma[1::2])
    h, cn, cl = (v.sum(1).mean(0) for v in (ent, cross_normal, cross_lap))
    return 2 * recon_loss + beta * (cn - h) + gamma * (cl - h), {
        "recon": 2 * recon_loss, "kl": cn - h, "transition": cl - h, "entropy": h, "cross_entropy_laplace": cl}


def random_pairs(rng, n_pairs=3, size=4, n=5):
    x = (rng.uniform(size=(n_pairs, 2, size, size, 1)) > 0.6).astype(np.float32)
    logits = rng.normal(scale=2, size=x.shape).astype(np.float32)
    mean = rng.normal(size=(n_pairs, 2, n)).astype(np.float32)
    logvar = rng.normal(scale=0.7, size=(n_pairs, 2, n)).astype(np.float32) - 1
    return x, logits, mean, logvar


@pytest.mark.parametrize("beta,gamma,rate", [(1.0, 10.0, 6.0), (8.0, 0.0, 1.0), (2.5, 3.0, 1.7)])
def test_slowvae_loss_is_the_official_combination(rng, beta, gamma, rate):
    x, logits, mean, logvar = random_pairs(rng)
    loss, parts = jit_slowvae(jnp.asarray(logits), jnp.asarray(x), jnp.asarray(mean), jnp.asarray(logvar),
                              beta=beta, gamma=gamma, rate=rate)
    inter = lambda a: a.reshape((-1,) + a.shape[2:]).astype(np.float64)  # [B, 2, ...] -> interleaved [2B, ...]
    ref, ref_parts = official_numpy(inter(x).transpose(0, 3, 1, 2), inter(logits).transpose(0, 3, 1, 2),
                                    inter(mean), inter(logvar), beta, gamma, rate)
    assert float(loss) == pytest.approx(ref, rel=2e-6)
    for k, v in ref_parts.items():
        assert float(parts[k]) == pytest.approx(v, rel=2e-6, abs=1e-5), k


def test_batch_mean_of_per_pair_losses_under_jit_and_vmap(rng):
    x, logits, mean, logvar = map(jnp.asarray, random_pairs(rng, n_pairs=4))
    loss, parts = jit_slowvae(logits, x, mean, logvar)
    per_pair, per_pair_parts = jax.jit(jax.vmap(slowvae_loss))(logits, x, mean, logvar)  # one pair at a time
    np.testing.assert_allclose(loss, per_pair.mean(), rtol=1e-6)
    for k in parts:
        np.testing.assert_allclose(parts[k], per_pair_parts[k].mean(), rtol=1e-5, atol=1e-6)
    # leading axes beyond one batch axis: [2, 2, 2, H, W, C]
    nested = jit_slowvae(*(a.reshape((2, 2) + a.shape[1:]) for a in (logits, x, mean, logvar)))[0]
    np.testing.assert_allclose(nested, loss, rtol=1e-6)
    # gradients, also at equal means in the two frames (m = 0 in the Laplace term)
    grad = jax.jit(jax.grad(lambda m, v: slowvae_loss(logits, x, m, v)[0], argnums=(0, 1)))
    same = jnp.broadcast_to(mean[:, :1], mean.shape)
    for m in (mean, same):
        assert all(bool(jnp.all(jnp.isfinite(g))) for g in grad(m, logvar))


def test_betavae_is_slowvae_without_the_transition_term(rng):
    x, logits, mean, logvar = map(jnp.asarray, random_pairs(rng))
    frames = lambda a, k: a.reshape((-1,) + a.shape[k:])  # [B, 2, ...] -> [2B, ...]
    for beta in (1.0, 8.0):
        slow, slow_parts = jit_slowvae(logits, x, mean, logvar, beta=beta, gamma=0.0)
        beta_vae, bv_parts = jit_betavae(frames(logits, 2), frames(x, 2), frames(mean, 2), frames(logvar, 2),
                                          beta=beta / 2)
        # the official baseline sums the reconstruction over the pair but averages the KL over frames
        np.testing.assert_allclose(slow, 2 * beta_vae, rtol=1e-6)
        np.testing.assert_allclose(slow_parts["recon"], 2 * bv_parts["recon"], rtol=1e-6)
        np.testing.assert_allclose(slow_parts["kl"], bv_parts["kl"], rtol=1e-6)
        # the transition term (and rate) no longer matter
        other, _ = jit_slowvae(logits, x, mean, logvar, beta=beta, gamma=0.0, rate=1.0)
        np.testing.assert_allclose(other, slow, rtol=1e-6)


def test_bad_arguments_name_the_argument(rng):
    x, logits, mean, logvar = map(jnp.asarray, random_pairs(rng))
    with pytest.raises(ValueError, match="`rate` must be a finite number > 0"):
        slowvae_loss(logits, x, mean, logvar, rate=0.0)
    with pytest.raises(ValueError, match="`rate`"):
        laplace_cross_entropy(mean, jnp.exp(logvar), rate=-1.0)
    with pytest.raises(ValueError, match="pairs must be `x`, `logits`: \\[..., 2, H, W, C\\]"):
        slowvae_loss(logits[:, :1], x[:, :1], mean[:, :1], logvar[:, :1])
    with pytest.raises(ValueError, match="`logvar` must have the shape of `mean`"):
        slowvae_loss(logits, x, mean, logvar[..., :2])
    with pytest.raises(ValueError, match="`x` must have the shape of `logits`"):
        bernoulli_reconstruction(logits, x[:, :, :2])
    with pytest.raises(TypeError, match="`x` must have a floating dtype"):
        bernoulli_reconstruction(logits, x.astype(jnp.int32))
    with pytest.raises(ValueError, match="`x` \\[..., H, W, C\\] and `mean` \\[..., n\\]"):
        betavae_loss(logits[:, 0], x[:, 0], mean[:2, 0], logvar[:2, 0])
