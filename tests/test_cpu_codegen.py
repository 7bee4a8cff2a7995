"""``jaxsparse.cpu_codegen``: which environments get the LLVM options, and an SAE loss they leave bit for bit alone."""

import os
import subprocess
import sys

import numpy as np
import pytest

from jaxsparse.cpu_codegen import LLVM_OPTIONS, OPT_OUT_ENV, set_cpu_codegen_flags

OPTION = "--xla_backend_extra_options=" + ",".join(LLVM_OPTIONS)


def test_added_on_cpu_after_the_users_flags():
    env = {"JAX_PLATFORMS": "cpu", "XLA_FLAGS": "--xla_force_host_platform_device_count=8"}
    assert set_cpu_codegen_flags(env)
    assert env["XLA_FLAGS"] == f"--xla_force_host_platform_device_count=8 {OPTION}"
    assert not set_cpu_codegen_flags(env)  # once only
    assert env["XLA_FLAGS"].count("xla_backend_extra_options") == 1

    env = {"JAX_PLATFORMS": "cpu"}
    assert set_cpu_codegen_flags(env) and env["XLA_FLAGS"] == OPTION


@pytest.mark.parametrize("env", [
    {"JAX_PLATFORMS": "cpu", "XLA_FLAGS": "--xla_backend_extra_options=xla_cpu_disable_loop_unrolling"},
    {"JAX_PLATFORMS": "cpu", "JAXSPARSE_CPU_CODEGEN": "off"},
    {"JAX_PLATFORMS": "cuda"},
    {"JAX_PLATFORMS": "tpu,cpu", "XLA_FLAGS": "--xla_dump_to=/tmp/x"},
])  # fmt: skip
def test_left_alone(env):
    """The user's own LLVM options win, the opt-out is heard, a process that may run on an accelerator gets none."""
    before = dict(env)
    assert not set_cpu_codegen_flags(env)
    assert env == before


def test_default_environment_is_os_environ(monkeypatch):
    monkeypatch.setenv("JAX_PLATFORMS", "cpu")
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    assert set_cpu_codegen_flags()
    assert os.environ["XLA_FLAGS"] == OPTION


_PROGRAM = """
import sys, jax, jax.numpy as jnp, numpy as np
from jaxsparse.losses import reconstruction_l1
k = jax.random.split(jax.random.key(0), 3)
x = jax.random.normal(k[0], (256, 8))
params = {"w": jax.random.normal(k[1], (8, 16)), "d": jax.random.normal(k[2], (16, 24)) / 4}
def loss(p):
    z = jax.nn.relu(x @ p["w"])
    return reconstruction_l1(jnp.tile(x, (1, 3)), z @ p["d"], z, 0.01)
(value, aux), grads = jax.jit(jax.value_and_grad(loss, has_aux=True))(params)
leaves = [value, *aux.values(), *jax.tree.leaves(grads)]
sys.stdout.buffer.write(b"".join(np.asarray(a, np.float32).tobytes() for a in leaves))
"""


def test_same_bits_with_and_without_the_options():
    """A loss and its gradient over [B, 16] and [B, 24] arrays (the widths the options vectorise)."""
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    env.pop("XLA_FLAGS", None)
    env.pop(OPT_OUT_ENV, None)
    plain = subprocess.run([sys.executable, "-c", _PROGRAM], env=env, capture_output=True, check=True).stdout
    set_cpu_codegen_flags(env)
    assert OPTION in env["XLA_FLAGS"]
    tuned = subprocess.run([sys.executable, "-c", _PROGRAM], env=env, capture_output=True, check=True).stdout
    assert len(plain) > 100 and np.array_equal(np.frombuffer(plain, np.uint8), np.frombuffer(tuned, np.uint8))
