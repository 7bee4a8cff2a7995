"""SAELens interchange (:mod:`jaxsparse.models.saelens`): exact round trips, refusals, SAELens's own loader/saver."""

import json
import warnings

import jax.numpy as jnp
import numpy as np
import pytest

from jaxsparse.models import sae
from jaxsparse.models.encoders import make_encoder

save_file = pytest.importorskip("safetensors.numpy", reason="needs the [llm] extra").save_file
from jaxsparse.models.saelens import CFG_FILENAME, WEIGHTS_FILENAME, export_saelens, import_saelens  # noqa: E402

M, N, K = 16, 32, 5
ARCHITECTURES = ("sae", "topk", "jumprelu")


def random_params(rng, architecture, *, bias=True):
    """Random jaxsparse SAE parameters (float32) with non-zero biases and thresholds in [0.05, 0.5]."""
    w_dec = rng.normal(size=(N, M))
    enc = {"w": rng.normal(size=(M, N)) / np.sqrt(M)}
    if bias:
        enc["b"] = 0.3 * rng.normal(size=N)
    if architecture == "jumprelu":
        enc["log_theta"] = np.log(rng.uniform(0.05, 0.5, N))
    dec = {"w": w_dec / np.linalg.norm(w_dec, axis=1, keepdims=True), "b": rng.normal(size=M)}
    return {"encoder": {k: v.astype(np.float32) for k, v in enc.items()},
            "decoder": {k: v.astype(np.float32) for k, v in dec.items()}}


def jaxsparse_codes(params, architecture, x):
    """``(z, x_hat)`` of jaxsparse's own encoder and decoder."""
    z = make_encoder(architecture, k=K if architecture == "topk" else None).apply(params["encoder"], jnp.asarray(x))
    return np.asarray(z), np.asarray(sae.decode(params["decoder"], z))


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_round_trip_is_exact(tmp_path, rng, architecture):
    params = random_params(rng, architecture)
    k = K if architecture == "topk" else None
    out = export_saelens(tmp_path / "sae", params, architecture=architecture, k=k, hook_name="blocks.3.hook_resid_post",
                         model_name="gpt2", metadata={"note": "test"})
    cfg = json.loads((out / CFG_FILENAME).read_text())
    assert cfg["apply_b_dec_to_input"] is False and cfg["normalize_activations"] == "none"
    assert cfg["metadata"]["note"] == "test"
    assert sorted(p.name for p in out.iterdir()) == [CFG_FILENAME, WEIGHTS_FILENAME]

    back, arch, info = import_saelens(out)
    assert arch == architecture
    assert info == {"k": k, "hook_name": "blocks.3.hook_resid_post", "model_name": "gpt2", "d_in": M, "d_sae": N,
                    "dtype": "float32", "reshape_activations": "none", "cfg": cfg}
    assert back.keys() == params.keys() and back["encoder"].keys() == params["encoder"].keys()
    for tree in ("encoder", "decoder"):
        for name in ("w", "b"):
            assert back[tree][name].dtype == np.float32
            np.testing.assert_array_equal(back[tree][name], params[tree][name])
    if architecture == "jumprelu":  # exp then log: within one float32 rounding
        np.testing.assert_allclose(back["encoder"]["log_theta"], params["encoder"]["log_theta"], rtol=2e-7)
    x = rng.normal(size=(64, M)).astype(np.float32)
    for a, b in zip(jaxsparse_codes(back, arch, x), jaxsparse_codes(params, architecture, x)):
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_encoder_without_bias_exports_zero_bias(tmp_path, rng):
    params = random_params(rng, "sae", bias=False)
    back, _, _ = import_saelens(export_saelens(tmp_path, params, architecture="sae", dtype="float64"))
    assert back["encoder"]["w"].dtype == np.float64
    np.testing.assert_array_equal(back["encoder"]["b"], np.zeros(N))
    np.testing.assert_array_equal(back["encoder"]["w"], params["encoder"]["w"])


def test_export_refuses_to_overwrite(tmp_path, rng):
    first, second = random_params(rng, "sae"), random_params(rng, "sae")
    export_saelens(tmp_path, first, architecture="sae", model_name="first")
    with pytest.raises(FileExistsError, match=CFG_FILENAME):
        export_saelens(tmp_path, second, architecture="sae")
    (tmp_path / CFG_FILENAME).unlink()  # the weights alone also block
    with pytest.raises(FileExistsError, match=WEIGHTS_FILENAME):
        export_saelens(tmp_path, second, architecture="sae")
    np.testing.assert_array_equal(import_saelens(export_saelens(tmp_path, first, architecture="sae", overwrite=True)
                                                 )[0]["encoder"]["w"], first["encoder"]["w"])
    back, _, info = import_saelens(export_saelens(tmp_path, second, architecture="sae", overwrite=True,
                                                  model_name="second"))
    np.testing.assert_array_equal(back["decoder"]["w"], second["decoder"]["w"])
    assert info["model_name"] == "second" and sorted(p.name for p in tmp_path.iterdir()) == [CFG_FILENAME,
                                                                                            WEIGHTS_FILENAME]


@pytest.mark.parametrize("kwargs, arg", [
    ({"architecture": "mlp"}, "architecture"),
    ({"architecture": "topk"}, "k"),
    ({"architecture": "sae", "k": 3}, "k"),
    ({"architecture": "topk", "k": N + 1}, "k"),
    ({"architecture": "sae", "dtype": "bfloat16"}, "dtype"),
    ({"architecture": "sae", "metadata": {"hook_name": "h"}}, "metadata"),
    ({"architecture": "jumprelu"}, r"params\['encoder'\]"),
])
def test_export_bad_arguments(tmp_path, rng, kwargs, arg):
    with pytest.raises(ValueError, match=f"`{arg}`"):
        export_saelens(tmp_path, random_params(rng, "sae"), **kwargs)
    assert not any(tmp_path.iterdir())


def test_export_bad_params(tmp_path, rng):
    params = random_params(rng, "sae")
    params["decoder"]["b"] = np.zeros(M + 1, np.float32)
    with pytest.raises(ValueError, match=r"params\['decoder'\]\['b'\]"):
        export_saelens(tmp_path, params, architecture="sae")
    with pytest.raises(TypeError, match="`params`"):
        export_saelens(tmp_path, [params], architecture="sae")


def write_saelens_dir(path, cfg, weights):
    """A SAELens-format directory written by hand (no sae_lens needed)."""
    path.mkdir(parents=True, exist_ok=True)
    (path / CFG_FILENAME).write_text(json.dumps(cfg))
    save_file({k: np.ascontiguousarray(v, np.float32) for k, v in weights.items()}, str(path / WEIGHTS_FILENAME))
    return path


def saelens_weights(rng, *, threshold=None):
    w = {"W_enc": rng.normal(size=(M, N)) / np.sqrt(M), "b_enc": 0.3 * rng.normal(size=N),
         "W_dec": rng.normal(size=(N, M)) * rng.uniform(0.5, 2.0, (N, 1)), "b_dec": rng.normal(size=M)}
    return w if threshold is None else {**w, "threshold": threshold}


def test_import_folds_b_dec_and_topk_rescaling(tmp_path, rng):
    """SAELens's TopK forward written out in NumPy, against jaxsparse on the imported parameters."""
    w = {k: v.astype(np.float32).astype(np.float64) for k, v in saelens_weights(rng).items()}
    cfg = {"architecture": "topk", "d_in": M, "d_sae": N, "dtype": "float32", "apply_b_dec_to_input": True,
           "normalize_activations": "none", "k": K, "rescale_acts_by_decoder_norm": True,
           "metadata": {"sae_lens_version": "6.54.12", "hook_name": "blocks.0.hook_resid_pre"}}
    params, arch, info = import_saelens(write_saelens_dir(tmp_path, cfg, w))
    assert (arch, info["k"], info["hook_name"]) == ("topk", K, "blocks.0.hook_resid_pre")
    np.testing.assert_allclose(np.linalg.norm(params["decoder"]["w"], axis=1), 1.0, rtol=1e-6)

    x = rng.normal(size=(64, M))
    s = np.linalg.norm(w["W_dec"], axis=1)
    u = ((x - w["b_dec"]) @ w["W_enc"] + w["b_enc"]) * s
    z_ref = np.where(u >= np.sort(u, axis=1)[:, -K:-K + 1], np.maximum(u, 0), 0)
    x_hat_ref = (z_ref / s) @ w["W_dec"] + w["b_dec"]
    z, x_hat = jaxsparse_codes(params, arch, x.astype(np.float32))
    np.testing.assert_allclose(z, z_ref, atol=1e-5)
    np.testing.assert_allclose(x_hat, x_hat_ref, atol=1e-5)


def test_import_reads_pre_6_configs(tmp_path, rng):
    cfg = {"d_in": M, "d_sae": N, "dtype": "float32", "hook_point": "blocks.1.hook_resid_pre", "model_name": "gpt2",
           "activation_fn_str": "topk", "activation_fn_kwargs": {"k": K}, "normalize_activations": False}
    weights = {**saelens_weights(rng), "scaling_factor": np.ones(N)}
    params, arch, info = import_saelens(write_saelens_dir(tmp_path, cfg, weights))
    assert (arch, info["k"], info["hook_name"], info["model_name"]) == ("topk", K, "blocks.1.hook_resid_pre", "gpt2")
    b_enc = weights["b_enc"] - weights["b_dec"] @ weights["W_enc"]  # pre-6 default apply_b_dec_to_input=True
    np.testing.assert_allclose(params["encoder"]["b"], b_enc, atol=1e-6)


@pytest.mark.parametrize("change, match", [
    ({"normalize_activations": "layer_norm"}, "`normalize_activations`.*'layer_norm'"),
    ({"architecture": "gated"}, "`architecture`.*'gated'"),
    ({"architecture": "topk"}, "`k`"),
    ({"d_sae": N + 1}, "`W_enc`"),
])
def test_import_rejects_what_jaxsparse_cannot_represent(tmp_path, rng, change, match):
    cfg = {"architecture": "standard", "d_in": M, "d_sae": N, "metadata": {"sae_lens_version": "6.0.0"}, **change}
    with pytest.raises(ValueError, match=match):
        import_saelens(write_saelens_dir(tmp_path, cfg, saelens_weights(rng)))


def test_import_rejects_bad_jumprelu_thresholds_and_bfloat16(tmp_path, rng):
    cfg = {"architecture": "jumprelu", "d_in": M, "d_sae": N, "metadata": {"sae_lens_version": "6.0.0"}}
    threshold = np.where(np.arange(N) == 3, 0.0, 1.0)
    with pytest.raises(ValueError, match=r"`threshold` must be > 0.*\[3\]"):
        import_saelens(write_saelens_dir(tmp_path / "a", cfg, saelens_weights(rng, threshold=threshold)))
    with pytest.raises(ValueError, match="`threshold`"):
        import_saelens(write_saelens_dir(tmp_path / "b", cfg, saelens_weights(rng)))
    header = json.dumps({"W_enc": {"dtype": "BF16", "shape": [2], "data_offsets": [0, 4]}}).encode()
    (tmp_path / "b" / WEIGHTS_FILENAME).write_bytes(len(header).to_bytes(8, "little") + header + bytes(4))
    with pytest.raises(ValueError, match="`W_enc` has dtype BF16"):
        import_saelens(tmp_path / "b")


# --- against SAELens itself -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sae_lens():
    with warnings.catch_warnings():  # transformer_lens deprecations on import
        warnings.simplefilter("ignore", DeprecationWarning)
        return pytest.importorskip("sae_lens")


def saelens_outputs(model, x, z):
    """SAELens's ``encode(x)`` and ``decode(z)`` as NumPy."""
    torch = pytest.importorskip("torch")
    with torch.no_grad():
        return model.encode(torch.tensor(x)).numpy(), model.decode(torch.tensor(z)).numpy()


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_saelens_loads_jaxsparse_export(tmp_path, rng, sae_lens, architecture):
    params = random_params(rng, architecture)
    path = export_saelens(tmp_path, params, architecture=architecture, k=K if architecture == "topk" else None,
                          hook_name="blocks.3.hook_resid_post", model_name="gpt2")
    model = sae_lens.SAE.load_from_disk(path)
    assert model.cfg.architecture() == {"sae": "standard"}.get(architecture, architecture)
    assert model.cfg.metadata.hook_name == "blocks.3.hook_resid_post"
    x = rng.normal(size=(64, M)).astype(np.float32)
    z, x_hat = jaxsparse_codes(params, architecture, x)
    assert 0 < np.count_nonzero(z) < z.size
    z_sl, x_hat_sl = saelens_outputs(model, x, z)
    np.testing.assert_allclose(z_sl, z, rtol=0, atol=1e-5)
    np.testing.assert_allclose(x_hat_sl, x_hat, rtol=0, atol=1e-5)


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_jaxsparse_imports_saelens_save(tmp_path, rng, sae_lens, architecture):
    config_class, model_class = {"sae": (sae_lens.StandardSAEConfig, sae_lens.StandardSAE),
                                 "topk": (sae_lens.TopKSAEConfig, sae_lens.TopKSAE),
                                 "jumprelu": (sae_lens.JumpReLUSAEConfig, sae_lens.JumpReLUSAE)}[architecture]
    extra = {"k": K, "rescale_acts_by_decoder_norm": True} if architecture == "topk" else {}
    cfg = config_class(d_in=M, d_sae=N, apply_b_dec_to_input=True, **extra)
    cfg.metadata.hook_name = "blocks.2.hook_resid_post"
    model = model_class(cfg)
    weights = saelens_weights(rng, threshold=rng.uniform(0.05, 0.5, N) if architecture == "jumprelu" else None)
    torch = pytest.importorskip("torch")
    model.load_state_dict({k: torch.from_numpy(v.astype(np.float32)) for k, v in weights.items()})
    model.save_model(tmp_path)

    params, arch, info = import_saelens(tmp_path)
    assert (arch, info["k"], info["hook_name"]) == (architecture, extra.get("k"), "blocks.2.hook_resid_post")
    x = rng.normal(size=(64, M)).astype(np.float32)
    z, x_hat = jaxsparse_codes(params, arch, x)
    assert 0 < np.count_nonzero(z) < z.size
    z_sl, x_hat_sl = saelens_outputs(model, x, z)
    np.testing.assert_allclose(z_sl, z, rtol=0, atol=1e-5)
    np.testing.assert_allclose(x_hat_sl, x_hat, rtol=0, atol=1e-5)
