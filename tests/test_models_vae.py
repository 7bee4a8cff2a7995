"""The SlowVAE / β-VAE conv net: the official architecture (against PyTorch), shapes, jit/vmap, init, FLOPs."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsparse.losses import slowvae_loss
from jaxsparse.models import vae
from jaxsparse.models.vae import _conv_transpose_s2, _dense_to_map

N = 10


def conv(c_in, c_out, k=4):
    return k * k * c_in * c_out + c_out


def test_parameter_count_is_the_papers_architecture():
    # BetaVAE_H (Higgins et al. 2017) as built by bethgelab/slow_disentanglement, 64×64×1, 10 latents
    encoder = conv(1, 32) + conv(32, 32) + conv(32, 64) + conv(64, 64) + conv(64, 256) + (256 * 20 + 20)
    decoder = (10 * 256 + 256) + conv(256, 64) + conv(64, 64) + conv(64, 32) + conv(32, 32) + conv(32, 1)
    assert (encoder, decoder) == (382_932, 380_353)
    # 32×32: the 32 -> 32 layer of each half dropped
    sizes = {64: encoder + decoder, 32: encoder + decoder - 2 * conv(32, 32)}
    for size, count in sizes.items():
        shapes = jax.eval_shape(lambda k: vae.init(k, image_size=size), jax.random.key(0))
        assert sum(int(np.prod(s.shape)) for s in jax.tree.leaves(shapes)) == count == vae.n_params(image_size=size)
    assert sizes == {64: 763_285, 32: 730_453}


@pytest.mark.parametrize("size", [64, 32])
def test_shapes_and_leading_axes(size):
    shapes = jax.eval_shape(lambda k: vae.init(k, image_size=size), jax.random.key(0))
    params = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)
    assert vae.image_shape(params) == (size, size, 1) and vae.n_latents_of(params) == N
    for lead in [(), (3,), (4, 2)]:
        x = jax.ShapeDtypeStruct(lead + (size, size, 1), jnp.float32)
        mean, logvar = jax.eval_shape(vae.encode, params, x)
        assert mean.shape == logvar.shape == lead + (N,) and mean.dtype == jnp.float32
        logits = jax.eval_shape(vae.decode, params, mean)
        assert logits.shape == lead + (size, size, 1) and logits.dtype == jnp.float32


def test_jit_vmap_over_seeds_and_finite_gradients(rng):
    keys = jax.random.split(jax.random.key(0), 2)
    stacked = jax.vmap(lambda k: vae.init(k, image_size=32))(keys)
    x = jnp.asarray(rng.uniform(size=(3, 2, 32, 32, 1)) > 0.8, jnp.float32)

    def loss(params, key):
        mean, logvar = vae.encode(params, x)
        logits = vae.decode(params, vae.sample_posterior(key, mean, logvar))
        return slowvae_loss(logits, x, mean, logvar)[0]

    # a vmapped seed is the same net as one built and run alone
    one = vae.init(keys[1], image_size=32)
    for a, b in zip(jax.tree.leaves(one), jax.tree.leaves(stacked)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b)[1])
    values = jax.jit(jax.vmap(loss))(stacked, keys)
    assert values.shape == (2,) and bool(jnp.all(jnp.isfinite(values))) and values[0] != values[1]
    # gradients (one seed: a vmapped gradient compiles for ~20 s on CPU, as XLA makes the convolutions grouped)
    lowered = jax.jit(jax.value_and_grad(loss)).lower(one, keys[1])
    # every convolution, gradients included, is NHWC x HWIO -> NHWC: XLA's CPU backend runs others 10-40x
    # slower inside a loop body (lax.scan over training steps), see models.conv.conv2d
    labels = set(re.findall(r"dim_numbers = (\[[^\]]*\]x\[[^\]]*\]->\[[^\]]*\])", lowered.as_text()))
    assert labels == {"[b, 0, 1, f]x[0, 1, i, o]->[b, 0, 1, f]"}, labels
    value, grads = lowered.compile()(one, keys[1])
    np.testing.assert_allclose(value, values[1], rtol=1e-5)
    for g in jax.tree.leaves(grads):
        assert np.all(np.isfinite(np.asarray(g)))
    assert all(np.abs(np.asarray(g)).sum() > 0 for g in jax.tree.leaves(grads))


def test_init_is_the_official_kaiming_init_and_torch_default_for_transposed_convs():
    params = jax.tree.map(np.asarray, vae.init(jax.random.key(0), image_size=32))
    for name, p in params["encoder"].items():
        fan_in = int(np.prod(p["w"].shape[:-1]))
        assert np.std(p["w"]) == pytest.approx(np.sqrt(2 / fan_in), rel=0.1 if p["w"].size < 1000 else 0.03), name
        assert not np.any(p["b"])
    assert not np.any(params["decoder"]["dense"]["b"])
    assert np.std(params["decoder"]["dense"]["w"]) == pytest.approx(np.sqrt(2 / N), rel=0.05)
    for i in range(4):
        p = params["decoder"][f"deconv_{i}"]
        bound = 1 / np.sqrt(16 * p["w"].shape[-1])  # fan_in of a ConvTranspose2d weight: C_out * k * k
        assert 0.95 * bound < np.abs(p["w"]).max() <= bound and np.abs(p["b"]).max() <= bound


def test_transposed_convolutions_match_their_definition(rng):
    # PyTorch ConvTranspose2d(4, stride=2, padding=1): out[2i - 1 + s, 2j - 1 + t] += in[i, j] W[s, t]
    h = rng.normal(size=(1, 5, 5, 2)).astype(np.float32)
    p = {"w": rng.normal(size=(4, 4, 2, 3)).astype(np.float32), "b": rng.normal(size=3).astype(np.float32)}
    full = np.zeros((1, 12, 12, 3))
    for i in range(5):
        for j in range(5):
            full[0, 2 * i:2 * i + 4, 2 * j:2 * j + 4] += np.einsum("c,stco->sto", h[0, i, j], p["w"])
    expected = full[:, 1:11, 1:11] + p["b"]
    np.testing.assert_allclose(_conv_transpose_s2(p, jnp.asarray(h)), expected, rtol=1e-5, atol=1e-5)
    # ConvTranspose2d(4) of a 1×1 map: out[s, t] = in W[s, t]
    z = rng.normal(size=(2, 2)).astype(np.float32)
    np.testing.assert_allclose(_dense_to_map(p, jnp.asarray(z)), np.einsum("bc,stco->bsto", z, p["w"]) + p["b"],
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("size", [64, 32])
def test_matches_the_official_pytorch_network(size):
    """The official ``BetaVAE_H`` (its 32×32 variant without the 32 -> 32 layers), weights copied across."""
    torch = pytest.importorskip("torch")
    nn = torch.nn
    widths = (32, 32, 64, 64) if size == 64 else (32, 64, 64)
    layers, c = [], 1
    for w in widths:
        layers += [nn.Conv2d(c, w, 4, 2, 1), nn.ReLU()]
        c = w
    encoder = nn.Sequential(*layers, nn.Conv2d(c, 256, 4, 1), nn.ReLU(), nn.Flatten(), nn.Linear(256, 2 * N))
    layers = [nn.Linear(N, 256), nn.Unflatten(1, (256, 1, 1)), nn.ReLU(), nn.ConvTranspose2d(256, widths[-1], 4)]
    rev = widths[::-1]
    for c_in, c_out in zip(rev, rev[1:] + (1,)):
        layers += [nn.ReLU(), nn.ConvTranspose2d(c_in, c_out, 4, 2, 1)]
    decoder = nn.Sequential(*layers)

    def t2j(m):
        w = m.weight.detach().numpy()
        w = w.transpose(2, 3, 0, 1) if isinstance(m, nn.ConvTranspose2d) else (
            w.transpose(2, 3, 1, 0) if w.ndim == 4 else w.T)
        return {"w": jnp.asarray(w), "b": jnp.asarray(m.bias.detach().numpy())}

    convs = [m for m in encoder if isinstance(m, nn.Conv2d)]
    params = {"encoder": {f"conv_{i}": t2j(m) for i, m in enumerate(convs)},
              "decoder": {f"deconv_{i}": t2j(m) for i, m in enumerate(
                  m for m in decoder if isinstance(m, nn.ConvTranspose2d))}}
    params["encoder"]["dense"] = t2j(encoder[-1])
    params["decoder"]["dense"] = t2j(decoder[0])
    x = np.random.default_rng(0).uniform(size=(2, 1, size, size)).astype(np.float32)
    z = np.random.default_rng(1).normal(size=(2, N)).astype(np.float32)
    with torch.no_grad():
        out = encoder(torch.tensor(x)).numpy()
        logits = decoder(torch.tensor(z)).numpy().transpose(0, 2, 3, 1)
    mean, logvar = jax.jit(vae.encode)(params, x.transpose(0, 2, 3, 1))
    np.testing.assert_allclose(mean, out[:, :N], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(logvar, out[:, N:], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(jax.jit(vae.decode)(params, z), logits, rtol=1e-4, atol=1e-5)


def test_flops_hand_count_and_xla():
    # 32×32×1, 10 latents. Convs 4×4 stride 2 pad 1 from S² touch (2S - 2)² taps per channel pair.
    encoder = 2 * (62**2 * 1 * 32 + 30**2 * 32 * 64 + 14**2 * 64 * 64 + 16 * 64 * 256 + 256 * 20)
    decoder = 2 * (10 * 256 + 16 * 256 * 64 + 14**2 * 64 * 64 + 30**2 * 64 * 32 + 62**2 * 32 * 1)
    assert vae.vae_flops(image_size=32) == encoder + decoder == 12_140_032
    assert vae.vae_flops(image_size=64) == 29_425_152
    params = vae.init(jax.random.key(0), image_size=32)
    x = jnp.ones((8, 32, 32, 1))
    cost = jax.jit(lambda p, x: vae.decode(p, vae.encode(p, x)[0])).lower(params, x).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    # XLA also counts biases and ReLUs (0.5% here)
    assert cost["flops"] / 8 == pytest.approx(vae.vae_flops(image_size=32), rel=0.01)


def test_bad_arguments_name_the_argument():
    shapes = jax.eval_shape(lambda k: vae.init(k, image_size=32), jax.random.key(0))
    params = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)
    with pytest.raises(ValueError, match="`x` must have shape \\[..., 32, 32, 1\\]"):
        vae.encode(params, jnp.zeros((2, 64, 64, 1)))
    with pytest.raises(ValueError, match="`x`"):
        vae.encode(params, jnp.zeros((2, 1, 32, 32)))  # NCHW
    with pytest.raises(TypeError, match="`x` must have a floating dtype"):
        vae.encode(params, jnp.zeros((2, 32, 32, 1), jnp.uint8))
    with pytest.raises(ValueError, match="`z` must have shape \\[..., n_latents=10\\]"):
        vae.decode(params, jnp.zeros((2, 3)))
    with pytest.raises(TypeError, match="`z`"):
        vae.decode(params, jnp.zeros((2, 10), jnp.int32))
    with pytest.raises(ValueError, match="`image_size` must be one of \\(32, 64\\)"):
        vae.init(jax.random.key(0), image_size=48)
    with pytest.raises(ValueError, match="`n_latents`"):
        vae.init(jax.random.key(0), n_latents=0)
    with pytest.raises(TypeError, match="`channels`"):
        vae.init(jax.random.key(0), channels=1.0)
