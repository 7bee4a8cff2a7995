"""Shared test set-up: seeded, strict, CPU-only, and a helper to run code on 8 fake devices."""

import os
import subprocess
import sys
import tempfile
import textwrap

os.environ.setdefault("JAX_PLATFORMS", "cpu")
# One persistent compilation cache for the test session, its xdist workers and their subprocesses
# (resume, multi-process and CLI tests compile the same programs again): a cached executable is the
# same program, so bitwise comparisons are unaffected.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", os.path.join(tempfile.gettempdir(), "jaxsparse-tests-jax-cache"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.1")
# No size cap: JAX's eviction (JAX_COMPILATION_CACHE_MAX_SIZE) races between concurrent xdist workers
# (one deletes an entry's access-time file while another updates it), and warnings are errors here.

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture
def rng():
    """A seeded NumPy generator for reference computations."""
    return np.random.default_rng(0)


def run_on_fake_devices(code: str, n_devices: int = 8, timeout: float = 300.0) -> str:
    """Run ``code`` in a fresh Python with ``n_devices`` fake CPU devices; return its stdout.

    Sharding tests need the device count fixed before JAX starts, hence the subprocess.
    """
    env = dict(os.environ)
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={n_devices}"
    env["JAX_PLATFORMS"] = "cpu"
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env, capture_output=True, text=True, timeout=timeout,
    )
    if out.returncode != 0:
        raise AssertionError(f"subprocess failed:\n{out.stdout}\n{out.stderr}")
    return out.stdout
