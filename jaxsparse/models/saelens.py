"""SAELens interchange: export jaxsparse SAEs to SAELens's on-disk format, import SAELens SAEs as parameters.

A SAELens (6.x) SAE is a directory with ``cfg.json`` and ``sae_weights.safetensors`` holding ``W_enc [M, N]``,
``b_enc [N]``, ``W_dec [N, M]``, ``b_dec [M]`` (and ``threshold [N]`` for JumpReLU), read by
``sae_lens.SAE.load_from_disk(path)``. For ``x [..., M]`` and ``N`` latents the two conventions are::

    jaxsparse:  z = f(x W + b)                                  x_hat = z D + c
    SAELens:    z = f(((x - a b_dec) W_enc + b_enc) * s)        x_hat = (z / s) W_dec + b_dec

with ``f`` = ReLU (``"sae"`` / SAELens ``"standard"``), ``TopK_k`` (ReLU of the ``k`` largest pre-activations,
``"topk"``) or JumpReLU ``u * H(u - theta)`` (``"jumprelu"``, jaxsparse ``theta = exp(log_theta)``, SAELens
``theta = threshold``); ``a = apply_b_dec_to_input`` (0 or 1); ``s = ||W_dec[i]||`` per latent when a TopK SAE has
``rescale_acts_by_decoder_norm``, else 1.

Export writes ``W_enc = W``, ``b_enc = b``, ``W_dec = D``, ``b_dec = c``, ``threshold = exp(log_theta)`` with
``a = 0``, no rescaling and ``normalize_activations = "none"``, so SAELens computes jaxsparse's function. Import
folds what jaxsparse has no place for into its weights (the same function, up to float rounding):

- input centring: ``b = b_enc - a * b_dec W_enc``;
- TopK decoder-norm rescaling: ``W = W_enc diag(s)``, ``b = b * s``, ``D = diag(1/s) W_dec`` (unit-norm rows);
- the JumpReLU threshold: ``log_theta = log(threshold)`` (needs ``threshold > 0``).

Example::

    export_saelens("out/l6", params, architecture="topk", k=32, hook_name="blocks.6.hook_resid_post")
    sae = sae_lens.SAE.load_from_disk("out/l6")                      # in PyTorch
    params, architecture, info = import_saelens("out/l6")            # back: make_encoder(architecture, k=info["k"])

Only numpy and ``safetensors`` are used here (no torch).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file, save

from jaxsparse._checks import positive_int

CFG_FILENAME = "cfg.json"
WEIGHTS_FILENAME = "sae_weights.safetensors"
ARCHITECTURES = {"sae": "standard", "topk": "topk", "jumprelu": "jumprelu"}
"""jaxsparse encoder name -> SAELens ``architecture``."""
DTYPES = ("float32", "float64", "float16")
"""Weight dtypes written and read (``safetensors.numpy`` has no bfloat16)."""
FORMAT_VERSION = "6.0.0"
"""``metadata.sae_lens_version`` written; SAELens reads configs from 6.0 on as they are (older ones are converted)."""

Params = dict[str, dict[str, np.ndarray]]


def export_saelens(path: str | os.PathLike, params: Mapping[str, Mapping[str, Any]], *, architecture: str,
                   k: int | None = None, hook_name: str = "", model_name: str = "", dtype: str = "float32",
                   overwrite: bool = False, metadata: Mapping[str, Any] | None = None) -> Path:
    """Write jaxsparse SAE ``params`` as a SAELens SAE directory ``path``; returns ``path``.

    Args:
      params: ``{"encoder": {"w": [M, N], "b": [N] (optional: zeros), "log_theta": [N] (jumprelu)},
        "decoder": {"w": [N, M], "b": [M]}}`` (NumPy or JAX arrays).
      architecture: the jaxsparse encoder, ``"sae"`` (SAELens ``"standard"``), ``"topk"`` or ``"jumprelu"``.
      k: the TopK ``k`` (``"topk"`` only).
      hook_name, model_name: where the SAE reads its activations (``cfg["metadata"]``).
      dtype: weight dtype on disk (``cfg["dtype"]``), one of :data:`DTYPES`.
      overwrite: replace an existing ``cfg.json`` / ``sae_weights.safetensors`` (else ``FileExistsError``).
      metadata: further JSON-serialisable ``cfg["metadata"]`` entries.

    Both files are written to temporary files and renamed; ``cfg.json`` comes last and is removed before the
    weights are replaced, so a crash leaves the old SAE, the new one, or a directory without ``cfg.json``
    (which no loader accepts), never a mix. Decoder rows are written as they are (unit-norm after training).
    """
    if architecture not in ARCHITECTURES:
        raise ValueError(f"`architecture` must be one of {tuple(ARCHITECTURES)}, got {architecture!r}")
    if (k is None) == (architecture == "topk"):
        raise ValueError(f"`k` is required for architecture 'topk' and only for it, got k={k!r} for {architecture!r}")
    if dtype not in DTYPES:
        raise ValueError(f"`dtype` must be one of {DTYPES}, got {dtype!r}")
    weights = _saelens_weights(params, architecture, np.dtype(dtype))
    d_sae, d_in = weights["W_dec"].shape
    meta = {"sae_lens_version": FORMAT_VERSION, "sae_lens_training_version": None,
            "hook_name": hook_name, "model_name": model_name}
    clash = sorted(meta.keys() & dict(metadata or {}).keys())
    if clash:
        raise ValueError(f"`metadata` must not set {clash}: they are set from the arguments")
    cfg = {"architecture": ARCHITECTURES[architecture], "d_in": d_in, "d_sae": d_sae, "dtype": dtype, "device": "cpu",
           "apply_b_dec_to_input": False, "normalize_activations": "none", "reshape_activations": "none",
           "metadata": {**meta, **dict(metadata or {})}}
    if architecture == "topk":
        cfg.update(k=positive_int("k", k, maximum=d_sae), rescale_acts_by_decoder_norm=False)
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    _write_sae(path, cfg, weights, overwrite=overwrite)
    return path


def import_saelens(path: str | os.PathLike) -> tuple[Params, str, dict[str, Any]]:
    """Read a SAELens SAE directory as ``(params, architecture, info)`` computing the same codes and reconstructions.

    ``params`` has :func:`export_saelens`'s layout (NumPy arrays in the file's dtype, usable as JAX parameters),
    ``architecture`` is the jaxsparse encoder name (``make_encoder(architecture, k=info["k"])`` rebuilds it), and
    ``info`` holds ``k`` (TopK, else ``None``), ``hook_name``, ``model_name``, ``d_in``, ``d_sae``, ``dtype``,
    ``reshape_activations`` (``"hook_z"``: feed heads flattened to ``[..., n_heads * d_head]``) and the ``cfg`` dict.

    Input centring, TopK decoder-norm rescaling and the JumpReLU threshold are folded as in the module docstring.
    Decoder rows that are not unit-norm are imported as they are: jaxsparse re-normalises them only during training
    (:func:`jaxsparse.models.sae.project_sae`). Configs of SAELens < 6 (flat, no ``metadata``) are read as SAELens
    reads them.

    Raises:
      ValueError naming the field or tensor for what jaxsparse cannot represent exactly: another architecture,
      ``normalize_activations`` other than ``"none"``, a JumpReLU ``threshold <= 0``, rescaling with a zero decoder
      row, unknown tensors, or bfloat16 weights (convert them first, e.g.
      ``SAE.load_from_disk(path, dtype="float32").save_model(new_path)``).
    """
    path = Path(path)
    if not (path / CFG_FILENAME).is_file():
        raise FileNotFoundError(f"`path` has no {CFG_FILENAME}: {path}")
    cfg = json.loads((path / CFG_FILENAME).read_text())
    fields = _function_fields(cfg)
    d_in, d_sae = (positive_int(name, cfg.get(name)) for name in ("d_in", "d_sae"))
    saelens_arch = fields["architecture"]
    inverse = {v: key for key, v in ARCHITECTURES.items()}
    if saelens_arch not in inverse:
        raise ValueError(f"cfg field `architecture` must be one of {tuple(inverse)}, got {saelens_arch!r}")
    if fields["normalize_activations"] != "none":
        raise ValueError(f"cfg field `normalize_activations` must be 'none' (fold the normalisation into the weights "
                         f"first), got {fields['normalize_activations']!r}")
    architecture = inverse[saelens_arch]
    if architecture == "topk" and fields["k"] is None:
        raise ValueError("cfg field `k` is required for architecture 'topk'")
    k = positive_int("k", fields["k"], maximum=d_sae) if architecture == "topk" else None
    w = _read_weights(path / WEIGHTS_FILENAME, architecture)
    shapes = {"W_enc": (d_in, d_sae), "b_enc": (d_sae,), "W_dec": (d_sae, d_in), "b_dec": (d_in,),
              "threshold": (d_sae,), "log_threshold": (d_sae,)}
    for name, shape in shapes.items():
        if name in w and w[name].shape != shape:
            raise ValueError(f"tensor `{name}` must have shape {shape} (d_in={d_in}, d_sae={d_sae}), "
                             f"got {w[name].shape}")
    dtype = w["W_enc"].dtype
    w_enc, b_enc, w_dec, b_dec = (w[name].astype(np.float64) for name in ("W_enc", "b_enc", "W_dec", "b_dec"))
    if fields["apply_b_dec_to_input"]:
        b_enc = b_enc - b_dec @ w_enc
    if architecture == "topk" and fields["rescale_acts_by_decoder_norm"]:
        norms = np.linalg.norm(w_dec, axis=-1)
        if not np.all(norms > 0):
            raise ValueError(f"cfg field `rescale_acts_by_decoder_norm` is true but `W_dec` rows "
                             f"{np.flatnonzero(norms <= 0)[:8].tolist()} are zero")
        w_enc, b_enc, w_dec = w_enc * norms, b_enc * norms, w_dec / norms[:, None]
    encoder = {"w": w_enc, "b": b_enc}
    if architecture == "jumprelu":
        encoder["log_theta"] = (np.log(_positive_threshold(w["threshold"].astype(np.float64))) if "threshold" in w
                                else w["log_threshold"].astype(np.float64))
    params = {"encoder": _cast(encoder, dtype), "decoder": _cast({"w": w_dec, "b": b_dec}, dtype)}
    meta = fields["metadata"]
    info = {"k": k, "hook_name": meta.get("hook_name"), "model_name": meta.get("model_name"), "d_in": d_in,
            "d_sae": d_sae, "dtype": dtype.name, "reshape_activations": fields["reshape_activations"], "cfg": cfg}
    return params, architecture, info


def _saelens_weights(params: Mapping[str, Mapping[str, Any]], architecture: str, dtype: np.dtype
                     ) -> dict[str, np.ndarray]:
    """SAELens's state dict ``{W_enc, b_enc, W_dec, b_dec(, threshold)}`` of jaxsparse ``params``, checked, cast."""
    enc_required = {"w", "log_theta"} if architecture == "jumprelu" else {"w"}
    enc = _subtree(params, "encoder", enc_required, optional=frozenset({"b"}))
    dec = _subtree(params, "decoder", {"w", "b"})
    if dec["w"].ndim != 2:
        raise ValueError(f"`params['decoder']['w']` must be [N, M], got shape {dec['w'].shape}")
    n, m = dec["w"].shape
    trees = {"encoder": enc, "decoder": dec}
    shapes = {("encoder", "w"): (m, n), ("encoder", "b"): (n,), ("encoder", "log_theta"): (n,), ("decoder", "b"): (m,)}
    for (tree, name), shape in shapes.items():
        if name in trees[tree] and trees[tree][name].shape != shape:
            raise ValueError(f"`params[{tree!r}][{name!r}]` must have shape {shape} (N={n}, M={m}), "
                             f"got {trees[tree][name].shape}")
    out = {"W_enc": enc["w"], "b_enc": enc.get("b", np.zeros(n)), "W_dec": dec["w"], "b_dec": dec["b"]}
    if architecture == "jumprelu":
        out["threshold"] = np.exp(enc["log_theta"])
    out = _cast(out, dtype)
    for name, value in out.items():
        if not np.all(np.isfinite(value)):
            raise ValueError(f"`params` give a non-finite SAELens `{name}` in {dtype.name}")
    if architecture == "jumprelu":
        _positive_threshold(out["threshold"])
    return out


def _subtree(params: Mapping[str, Mapping[str, Any]], tree: str, required: set[str],
             optional: frozenset[str] = frozenset()) -> dict[str, np.ndarray]:
    if not isinstance(params, Mapping) or not isinstance(params.get(tree), Mapping):
        raise TypeError(f"`params` must be a dict with dicts 'encoder' and 'decoder', got {type(params).__name__}")
    keys = set(params[tree])
    if not required <= keys <= required | optional:
        raise ValueError(f"`params[{tree!r}]` must have keys {sorted(required)} (optional {sorted(optional)}), "
                         f"got {sorted(keys)}")
    return {name: np.asarray(value, np.float64) for name, value in params[tree].items()}


def _cast(arrays: dict[str, np.ndarray], dtype: np.dtype) -> dict[str, np.ndarray]:
    return {name: np.ascontiguousarray(value, dtype) for name, value in arrays.items()}


def _positive_threshold(threshold: np.ndarray) -> np.ndarray:
    if not np.all(threshold > 0):
        bad = np.flatnonzero(~(threshold > 0))
        raise ValueError(f"JumpReLU `threshold` must be > 0 (jaxsparse's theta = exp(log_theta)); latents "
                         f"{bad[:8].tolist()} ({bad.size} in all) have {threshold[bad[:8]].tolist()}")
    return threshold


def _function_fields(cfg: dict[str, Any]) -> dict[str, Any]:
    """The cfg fields that decide the SAE's function, with SAELens's defaults; SAELens < 6 flat configs converted
    as ``sae_lens.loading.pretrained_sae_loaders.handle_pre_6_0_config`` does."""
    if not isinstance(cfg, dict):
        raise ValueError(f"{CFG_FILENAME} must hold a JSON object, got {type(cfg).__name__}")
    fields = {"architecture": cfg.get("architecture", "standard"), "k": cfg.get("k"),
              "apply_b_dec_to_input": cfg.get("apply_b_dec_to_input", True),
              "normalize_activations": cfg.get("normalize_activations", "none"),
              "reshape_activations": cfg.get("reshape_activations", "none"),
              "rescale_acts_by_decoder_norm": cfg.get("rescale_acts_by_decoder_norm", False),
              "metadata": cfg.get("metadata")}
    if fields["metadata"] is not None:
        return fields
    fields["metadata"] = {"hook_name": cfg.get("hook_name", cfg.get("hook_point")), "model_name": cfg.get("model_name")}
    activation = cfg.get("activation_fn", cfg.get("activation_fn_str", "relu"))
    if activation == "topk":
        fields.update(architecture="topk", k=(cfg.get("activation_fn_kwargs") or {}).get("k"))
    elif activation != "relu":
        raise ValueError(f"cfg field `activation_fn` must be 'relu' or 'topk', got {activation!r}")
    norm = fields["normalize_activations"]
    fields["normalize_activations"] = {False: "none", None: "none", True: "expected_average_only_in"}.get(norm, norm)
    return fields


def _read_weights(file: Path, architecture: str) -> dict[str, np.ndarray]:
    """The tensors of ``file`` for ``architecture``; an all-ones SAELens < 6 ``scaling_factor`` is dropped."""
    if not file.is_file():
        raise FileNotFoundError(f"`path` has no {file.name}: {file.parent}")
    with safe_open(file, framework="np") as f:
        for name in f.keys():
            stored = f.get_slice(name).get_dtype()
            if stored not in ("F16", "F32", "F64"):
                raise ValueError(f"tensor `{name}` has dtype {stored}; only float16/32/64 can be read without torch")
    w = load_file(file)
    if "scaling_factor" in w and np.all(w["scaling_factor"] == 1):
        del w["scaling_factor"]
    required = {"W_enc", "b_enc", "W_dec", "b_dec"}
    thresholds = {"threshold", "log_threshold"} & w.keys() if architecture == "jumprelu" else set()
    if architecture == "jumprelu" and len(thresholds) != 1:
        raise ValueError(f"a JumpReLU SAE needs one tensor `threshold` (or `log_threshold`), got {sorted(w)}")
    if w.keys() != required | thresholds:
        raise ValueError(f"{file.name} must hold tensors {sorted(required | thresholds)}, got {sorted(w)}")
    return w


def _write_sae(directory: Path, cfg: dict[str, Any], weights: dict[str, np.ndarray], *, overwrite: bool) -> None:
    """Write the weights, then ``cfg.json``, each through a temporary file and a rename."""
    cfg_path, weights_path = directory / CFG_FILENAME, directory / WEIGHTS_FILENAME
    for target in (cfg_path, weights_path):
        if target.exists() and not overwrite:
            raise FileExistsError(f"{target} exists (pass overwrite=True to replace it)")
    blobs = {weights_path: save(weights), cfg_path: (json.dumps(cfg, indent=2) + "\n").encode()}
    tmps = {target: target.with_name(f".{target.name}.tmp") for target in blobs}
    try:
        for target, blob in blobs.items():
            _write_synced(tmps[target], blob)
        cfg_path.unlink(missing_ok=True)  # no cfg.json beside half-replaced weights
        for target in blobs:
            os.replace(tmps[target], target)
    finally:
        for tmp in tmps.values():
            tmp.unlink(missing_ok=True)


def _write_synced(file: Path, blob: bytes) -> None:
    with open(file, "wb") as f:
        f.write(blob)
        f.flush()
        os.fsync(f.fileno())
