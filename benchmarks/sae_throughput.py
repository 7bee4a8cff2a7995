"""SAE training throughput (tokens/s): jaxsparse against SAELens's own training SAE and plain PyTorch.

Every side trains the same ReLU SAE, float32, on the same host batches ``x [B, d]`` (one chunk
``[steps, B, d]``, random Gaussian or ``--store`` batches from a ``jaxsparse.data.activations``
store, read before timing), from the same initial weights (jaxsparse's ``init_sae``, copied into
the torch models), with Adam (lr, betas 0.9/0.999, eps 1e-8), on the same machine and in the same
process. All ratios in one output are measured in that one run. Per step::

    jaxsparse   z = ReLU(x W + b)   x_hat = z D + c                     W [d, N], D [N, d]
                loss = mean_{b,m} (x - x_hat)^2 + lam * mean_{b,n} |z|   (jaxsparse.models.sae.sae_loss)
                optax.adam, then project_sae: D's rows scaled to unit norm
    - "engine scan": make_step(loss, adam, project=project_sae) inside scan_batches (lax.scan over the
      [steps, B, d] host chunk, one jitted call per chunk: what Task.feed training runs);
    - "jit step": the same jitted step called once per batch from a Python loop.
    PyTorch     the same maths with nn.Parameters: eager autograd, torch.optim.Adam (defaults), then
                D's rows renormalised under no_grad.
    SAELens     StandardTrainingSAE(StandardTrainingSAEConfig(apply_b_dec_to_input=False, ...)), whose
                training_forward_pass computes
                loss = mean_b sum_m (x - x_hat)^2 + c * mean_b sum_n |z_n| ||D_n||
                i.e. MSE summed over the d features (not averaged) and L1 weighted by the decoder row
                norms; SAELens does not renormalise D during training (the norm-weighted L1 stands in
                for it). With c = lam * d / N and unit rows this is exactly d x jaxsparse's loss (the
                output checks it at the initial weights); the matmul work (d, N, B) is identical.
    - "SAETrainer.step": SAELens's own training step as SAETrainer.fit runs it (the public seam
      ``SAETrainer.step(batch)``; no wandb, evals or checkpoints): forward pass + loss, backward,
      gradient-norm clipping to 1.0, torch Adam, constant LR scheduler, and its per-step
      dead-feature / firing-frequency bookkeeping over z [B, N];
    - "forward+Adam": only training_forward_pass + backward + torch Adam (no clipping, no
      bookkeeping): the least work SAELens's SAE does per step.

Held equal: d, N, B, float32, initial weights, batches (each side turns the same host arrays into
device arrays inside its timed loop), lr, Adam hyperparameters, the device (torch runs on CUDA only
when JAX's default backend is a GPU, otherwise both run on CPU), the cores (``--threads T`` pins the
process to T cores with sched_setaffinity before JAX's backend starts and sets
torch.set_num_threads(T); default: all cores the process may use. XLA's CPU thread pool follows the
affinity mask; the often-cited XLA_FLAGS ``--xla_cpu_multi_thread_eigen=false
intra_op_parallelism_threads=T`` was checked to leave XLA's pool unchanged on jax 0.10, so it is
not used), and full-float32 matmuls on GPU (JAX ``jax_default_matmul_precision=highest``, torch's
default of no TF32; ``--tf32`` allows TF32 on both). Neither torch side uses torch.compile (SAELens
does not). Each side is warmed up (compilation, a first chunk) before timing; a timed repeat runs
whole chunks of ``--steps`` steps until ``--min-time`` seconds have passed (synchronising after each
chunk); repeats are interleaved across sides so that background load hits all of them alike;
tokens/s = B * steps / seconds, the median of ``--repeats``. Memory: bytes of parameters +
optimiser state (the arrays themselves), and on GPU the peak device memory of each side through
its warm-up chunk (JAX ``memory_stats()["peak_bytes_in_use"]``, which cannot be reset, so one
figure for both jaxsparse rows; torch ``max_memory_allocated``).

CPU caveat: on a CPU shared with other busy processes, torch's OpenMP threads (libgomp, active
waiting) can make each torch step ~100x slower with more than one thread (seen on a loaded 2-core
machine: 1.4 ms -> 110 ms for a tiny step). Time on a quiet machine; ``--omp-passive`` sets
OMP_WAIT_POLICY=PASSIVE (a change from torch's default, shown in the header) and ``--threads 1``
avoids it too.

    pip install -e ".[bench]" && python benchmarks/sae_throughput.py            # d=384, N=8d and 32d, B=4096
    python benchmarks/sae_throughput.py --quick                                  # tiny, seconds
    python benchmarks/sae_throughput.py --expansions 8 --threads 1 --store acts/ # one size, one core, real data

Measured: see README
"""

from __future__ import annotations

import os

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # JAX and torch share one GPU in this process

import argparse
import statistics
import time
import traceback
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxsparse.models.sae import init_sae, project_sae, sae_loss
from jaxsparse.train.step import init_state, make_step, scan_batches

MB = 2**20


def on_gpu() -> bool:
    return jax.default_backend() in ("gpu", "cuda", "rocm")


def pin_threads(threads: int | None) -> int:
    """Restrict the process to ``threads`` cores (before JAX's backend starts); return the core count used."""
    try:
        allowed = sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        allowed = list(range(os.cpu_count() or 1))
    if threads is None or threads >= len(allowed):
        return len(allowed)
    if not hasattr(os, "sched_setaffinity"):
        raise SystemExit("--threads needs os.sched_setaffinity (Linux)")
    os.sched_setaffinity(0, allowed[:threads])
    return threads


def saelens_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("sae-lens")
    except PackageNotFoundError:
        return "not installed"


class Side:
    """One row of the table: ``chunk()`` trains ``steps`` steps on the host chunk and blocks until done."""

    def __init__(self, name: str, settings: str, chunk: Callable[[], None], state_bytes: int):
        self.name, self.settings, self.chunk, self.state_bytes = name, settings, chunk, state_bytes
        self.peak: int | None = None
        self.rates: list[float] = []
        self.steps: list[int] = []
        self.extra_bytes: Callable[[], int] = lambda: 0  # optimiser state created by the first step


def jax_sides(data: np.ndarray, n: int, lam: float, lr: float, seed: int) -> tuple[list[Side], float]:
    """The engine-scan and jit-step rows (separate states, same initial params); also the initial loss."""
    params = init_sae(jax.random.key(seed), data.shape[-1], n)
    opt = optax.adam(lr)
    step = make_step(lambda p, x, key: sae_loss(p, x, lam=lam), opt, project=project_sae)
    scan = jax.jit(scan_batches(step))
    holder = {"scan": init_state(jax.random.key(seed + 1), params, opt),
              "jit": init_state(jax.random.key(seed + 1), params, opt)}

    def scan_chunk():
        holder["scan"], metrics = scan(holder["scan"], data)  # the host chunk goes to the device per call
        jax.block_until_ready((holder["scan"], metrics))

    def jit_chunk():
        s = holder["jit"]
        for i in range(data.shape[0]):
            s, metrics = step(s, data[i])
        holder["jit"] = jax.block_until_ready(s)

    state = holder["scan"]
    nbytes = sum(x.nbytes for x in jax.tree.leaves((state.params, state.opt_state)))
    loss0 = float(sae_loss(params, jnp.asarray(data[0]), lam=lam)[0])
    common = "jax.jit, optax.adam, project_sae each step, f32"
    return [Side("jaxsparse engine scan", f"make_step + scan_batches, {data.shape[0]} steps per call; {common}",
                 scan_chunk, nbytes),
            Side("jaxsparse jit step", f"jitted make_step called per batch from Python; {common}", jit_chunk, nbytes)
            ], loss0


def torch_init(params_np: dict, torch, device):
    t = lambda a: torch.nn.Parameter(torch.tensor(np.asarray(a), device=device))  # noqa: E731
    return (t(params_np["encoder"]["w"]), t(params_np["encoder"]["b"]),
            t(params_np["decoder"]["w"]), t(params_np["decoder"]["b"]))


def tensor_bytes(tensors) -> int:
    return sum(v.numel() * v.element_size() for v in tensors if hasattr(v, "numel"))


def opt_bytes(opt) -> int:
    return tensor_bytes(v for st in opt.state.values() for v in st.values())


def torch_side(data: np.ndarray, params_np: dict, lam: float, lr: float, torch, device, sync) -> tuple[Side, float]:
    """Plain PyTorch: the same SAE, loss, Adam and decoder renormalisation; also its loss at the initial weights."""
    w_enc, b_enc, w_dec, b_dec = ps = torch_init(params_np, torch, device)
    opt = torch.optim.Adam(ps, lr=lr)

    def loss_fn(x):
        z = torch.relu(x @ w_enc + b_enc)
        x_hat = z @ w_dec + b_dec
        return torch.mean((x - x_hat) ** 2) + lam * torch.mean(torch.abs(z))

    def chunk():
        for i in range(data.shape[0]):
            x = torch.from_numpy(data[i]).to(device)
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(x)
            loss.backward()
            opt.step()
            with torch.no_grad():
                w_dec.div_(w_dec.norm(dim=-1, keepdim=True).clamp_min(1e-12))
        sync()

    with torch.no_grad():
        loss0 = float(loss_fn(torch.from_numpy(data[0]).to(device)))
    side = Side("PyTorch eager", "nn.Parameters, autograd, torch.optim.Adam (defaults), D rows renormalised, f32",
                chunk, tensor_bytes(ps))
    side.extra_bytes = lambda: opt_bytes(opt)
    return side, loss0


def saelens_sae(data: np.ndarray, params_np: dict, lam: float, torch, device):
    """A StandardTrainingSAE with jaxsparse's initial weights and the L1 coefficient equivalent to ``lam``."""
    from sae_lens.saes.standard_sae import StandardTrainingSAE, StandardTrainingSAEConfig

    d, n = data.shape[-1], params_np["encoder"]["w"].shape[1]
    cfg = StandardTrainingSAEConfig(d_in=d, d_sae=n, dtype="float32", device=str(device), apply_b_dec_to_input=False,
                                    l1_coefficient=lam * d / n, decoder_init_norm=None)
    sae = StandardTrainingSAE(cfg)
    with torch.no_grad():
        for p, a in zip((sae.W_enc, sae.b_enc, sae.W_dec, sae.b_dec), torch_init(params_np, torch, device)):
            if p.shape != a.shape:
                raise ValueError(f"SAELens parameter shape {tuple(p.shape)} != jaxsparse's {tuple(a.shape)}")
            p.copy_(a)
    return sae.to(device), cfg.l1_coefficient


def saelens_settings(coef: float) -> str:
    return f"StandardTrainingSAE, l1_coefficient=lam*d/N={coef:.3g}, no D renormalisation (SAELens has none), f32"


def saelens_trainer_side(data: np.ndarray, params_np: dict, lam: float, lr: float, torch, device, sync) -> Side:
    """SAELens's own training step, ``SAETrainer.step``, as ``SAETrainer.fit`` runs it (no wandb/evals/checkpoints)."""
    from sae_lens.config import SAETrainerConfig
    from sae_lens.training.sae_trainer import SAETrainer

    sae, coef = saelens_sae(data, params_np, lam, torch, device)
    b = data.shape[1]
    cfg = SAETrainerConfig(total_training_samples=b * 10**9, train_batch_size_samples=b, lr=lr,
                           lr_end=lr / 10, device=str(device))  # lr_end: the runner config's default (unused)
    trainer = SAETrainer(cfg=cfg, sae=sae, data_provider=iter(()))

    def chunk():
        for i in range(data.shape[0]):  # SAETrainer.fit's loop body, minus logging and checkpoints
            trainer.maybe_reset_sparsity()
            trainer.step(torch.from_numpy(data[i]))  # moves the batch to the SAE's device
            trainer.n_training_steps += 1
        sync()

    side = Side("SAELens SAETrainer.step",
                f"{saelens_settings(coef)}; grad-norm clip 1.0, torch Adam, firing/dead-feature stats", chunk,
                tensor_bytes(sae.parameters()) + tensor_bytes([trainer.act_freq_scores,
                                                               trainer.n_forward_passes_since_fired]))
    side.extra_bytes = lambda: opt_bytes(trainer.optimizer)
    return side


def saelens_bare_side(data: np.ndarray, params_np: dict, lam: float, lr: float, torch, device, sync
                      ) -> tuple[Side, float]:
    """SAELens's training_forward_pass + backward + torch Adam only; also its loss at the initial weights."""
    from sae_lens.saes.sae import TrainStepInput

    sae, coef = saelens_sae(data, params_np, lam, torch, device)
    opt = torch.optim.Adam(sae.parameters(), lr=lr)
    done = {"steps": 0}

    def forward(x):
        return sae.training_forward_pass(TrainStepInput(sae_in=x, coefficients={"l1": coef}, dead_neuron_mask=None,
                                                        n_training_steps=done["steps"], is_logging_step=False))

    def chunk():
        for i in range(data.shape[0]):
            out = forward(torch.from_numpy(data[i]).to(device))
            out.loss.backward()
            opt.step()
            opt.zero_grad()
            done["steps"] += 1
        sync()

    with torch.no_grad():
        loss0 = float(forward(torch.from_numpy(data[0]).to(device)).loss)
    side = Side("SAELens forward+Adam", f"{saelens_settings(coef)}; training_forward_pass, backward, torch Adam only",
                chunk, tensor_bytes(sae.parameters()))
    side.extra_bytes = lambda: opt_bytes(opt)
    return side, loss0


def bench_size(args, data: np.ndarray, n: int, torch, device, sync) -> None:
    d, b, steps = data.shape[-1], data.shape[1], data.shape[0]
    print(f"\n== d={d}, N={n} (expansion {n / d:g}), B={b} tokens/step, {steps} steps per chunk, lam={args.lam}, "
          f"lr={args.lr} ==")
    jax_dev = jax.devices()[0]
    jax_gpu = on_gpu() and bool(jax_dev.memory_stats())
    torch_gpu = device.type == "cuda"

    base = jax_dev.memory_stats()["bytes_in_use"] if jax_gpu else 0
    sides, loss_jax = jax_sides(data, n, args.lam, args.lr, args.seed)
    for s in sides:
        s.chunk()  # warm-up: compilation and a first chunk
    if jax_gpu:
        for s in sides:  # JAX's peak cannot be reset: one figure for both jaxsparse rows
            s.peak = jax_dev.memory_stats()["peak_bytes_in_use"] - base
    losses = {"jaxsparse": loss_jax}
    params_np = jax.tree.map(np.asarray, init_sae(jax.random.key(args.seed), d, n))

    def add_torch(make):
        if torch_gpu:
            sync()
            before = torch.cuda.memory_allocated()
        made = make(data, params_np, args.lam, args.lr, torch, device, sync)
        side = made[0] if isinstance(made, tuple) else made
        if torch_gpu:
            torch.cuda.reset_peak_memory_stats()
        side.chunk()  # warm-up: first steps (allocations, Adam state)
        if torch_gpu:
            side.peak = torch.cuda.max_memory_allocated() - before
        side.state_bytes += side.extra_bytes()
        sides.append(side)
        return made

    losses["PyTorch"] = add_torch(torch_side)[1]
    if not args.no_saelens:
        try:
            add_torch(saelens_trainer_side)
            losses["SAELens / d"] = add_torch(saelens_bare_side)[1] / d
        except Exception as e:  # say why, and keep the PyTorch row as the peer
            where = traceback.extract_tb(e.__traceback__)[-1]
            print(f"SAELens rows skipped: {type(e).__name__}: {e} (at {where.filename}:{where.lineno}); "
                  "the PyTorch row is the peer")

    for _ in range(args.repeats):  # interleaved: each repeat times every side once
        for s in sides:
            n_steps, t0 = 0, time.perf_counter()
            while True:  # whole chunks until --min-time has passed
                s.chunk()
                n_steps += steps
                elapsed = time.perf_counter() - t0
                if elapsed >= args.min_time:
                    break
            s.rates.append(b * n_steps / elapsed)
            s.steps.append(n_steps)

    rate = {s.name: statistics.median(s.rates) for s in sides}
    scan, jit = rate["jaxsparse engine scan"], rate["jaxsparse jit step"]
    print(f"{'side':26s} {'tokens/s':>10s} {'ms/step':>9s} {'scan/this':>9s} {'jit/this':>9s} "
          f"{'state MB':>9s} {'peak MB':>8s}")
    unstable = False
    for s in sides:
        r = rate[s.name]
        peak = f"{s.peak / MB:8.1f}" if s.peak is not None else f"{'-':>8s}"
        flag = "*" if max(s.rates) > 1.5 * min(s.rates) else ""
        unstable |= bool(flag)
        print(f"{s.name + flag:26s} {r:10.0f} {b / r * 1e3:9.2f} {scan / r:9.2f} {jit / r:9.2f} "
              f"{s.state_bytes / MB:9.1f} {peak}")
        counts = f"{min(s.steps)}" if min(s.steps) == max(s.steps) else f"{min(s.steps)}-{max(s.steps)}"
        print(f"{'':4s}{s.settings}; median of {len(s.rates)} repeats of {counts} steps "
              f"(>= {args.min_time:g} s), range {min(s.rates):.0f}-{max(s.rates):.0f} tokens/s")
    print("scan/this, jit/this: jaxsparse's tokens/s (engine scan, jit step) over the row's; > 1 = jaxsparse faster. "
          "state MB: parameters + optimiser state (+ SAELens's per-feature stats)")
    if unstable:
        print("* repeats differ by more than 1.5x: the machine was busy; rerun on a quiet one (see --omp-passive)")
    if jax_gpu or torch_gpu:
        print("peak MB: device memory above what was in use before the side was built, through its warm-up chunk "
              "(the two jaxsparse rows share one JAX figure: JAX's peak cannot be reset)")
    else:
        print("peak MB: only measured on GPU")
    print("loss at the initial weights on batch 0 (equal-maths check; SAELens's loss is d x jaxsparse's): "
          + ", ".join(f"{k} {v:.6f}" for k, v in losses.items()))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--d", type=int, default=None, help="activation width (default 384, or the store's)")
    p.add_argument("--expansions", type=float, nargs="+", default=[8, 32], help="N = expansion * d")
    p.add_argument("--batch", type=int, default=4096, help="tokens per step B")
    p.add_argument("--steps", type=int, default=10, help="steps per chunk (the engine's scan length)")
    p.add_argument("--min-time", type=float, default=3.0, help="seconds per timed repeat (whole chunks)")
    p.add_argument("--repeats", type=int, default=3, help="timed repeats per side (the median is reported)")
    p.add_argument("--lam", type=float, default=0.05)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="cores for both JAX and torch (default: all allowed)")
    p.add_argument("--store", default=None, help="activation store directory (default: Gaussian activations)")
    p.add_argument("--tf32", action="store_true", help="allow TF32 matmuls on GPU on both sides")
    p.add_argument("--no-saelens", action="store_true", help="skip the SAELens rows")
    p.add_argument("--omp-passive", action="store_true",
                   help="OMP_WAIT_POLICY=PASSIVE for torch (for shared, oversubscribed CPUs; see the docstring)")
    p.add_argument("--quick", action="store_true",
                   help="d=64 (or the store's), N=4d, B=256, 5 steps, 0.2 s repeats: seconds")
    args = p.parse_args()
    if args.quick:
        args.expansions, args.batch, args.steps, args.min_time = [4], 256, 5, 0.2
        if args.store is None:
            args.d = 64

    threads = pin_threads(args.threads)  # before JAX's backend starts: its CPU pool follows the affinity
    if args.omp_passive:
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"  # read when torch's OpenMP runtime loads, so before `import torch`
    import torch

    torch.set_num_threads(threads)
    jax.config.update("jax_default_matmul_precision", "tensorfloat32" if args.tf32 else "highest")
    torch.backends.cuda.matmul.allow_tf32 = args.tf32
    torch.backends.cudnn.allow_tf32 = args.tf32
    # torch runs where JAX runs: a GPU for both, or the CPU for both
    jax_gpu = on_gpu()
    device = torch.device("cuda" if jax_gpu and torch.cuda.is_available() else "cpu")
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    placement = ""
    if jax_gpu and device.type == "cpu":
        placement = (" WARNING: JAX is on GPU but torch has no CUDA: the torch rows run on CPU, the ratios are not "
                     "like for like")
    elif not jax_gpu and torch.cuda.is_available():
        placement = (" (torch sees a GPU but JAX has no GPU backend: both sides run on CPU; install jax[cuda] to "
                     "compare on GPU)")

    if args.store:
        from jaxsparse.data.activations import ActivationStore

        store = ActivationStore(args.store)
        if args.d is not None and args.d != store.d:
            raise SystemExit(f"--d {args.d} does not match the store's d={store.d}")
        args.d = store.d
        data = store.batches(jax.random.key(args.seed), 0, args.steps, args.batch)
        source = f"store {args.store} ({store.manifest.get('model')}, layer {store.manifest.get('layer')}, " \
                 f"{store.n} tokens), batches 0..{args.steps - 1}"
    else:
        args.d = args.d or 384
        data = np.random.default_rng(args.seed).standard_normal((args.steps, args.batch, args.d), np.float32)
        source = "random Gaussian"
    data = np.ascontiguousarray(data, np.float32)

    jd = jax.devices()[0]
    tdev = torch.cuda.get_device_name() if device.type == "cuda" else "cpu"
    print(f"device: jax {jd.device_kind} ({jax.default_backend()}), torch {tdev}{placement}; cores: {threads} of "
          f"{os.cpu_count()} (affinity; torch threads {torch.get_num_threads()}, XLA's CPU pool follows the "
          f"affinity; OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}); "
          f"matmuls {'TF32' if args.tf32 else 'full f32'}")
    print(f"versions: jax {jax.__version__}, optax {optax.__version__}, torch {torch.__version__}, "
          f"sae-lens {saelens_version()}, numpy {np.__version__}")
    print(f"activations: {source}; one [{args.steps}, {args.batch}, {args.d}] f32 host chunk, the same for every "
          "side, re-fed for every chunk")
    for e in args.expansions:
        bench_size(args, data, int(round(e * args.d)), torch, device, sync)


if __name__ == "__main__":
    main()
