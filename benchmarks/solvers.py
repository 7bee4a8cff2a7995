"""Lasso and OMP speed against the peers a researcher would use instead (scikit-learn, SPAMS).

Problem (issue 3): 4096 signals x 64 features x 256 atoms, 8-sparse non-negative codes + 1 % noise,
lam = 0.05 for the per-sample objective 0.5 ||x - z D||^2 + lam ||z||_1. Each Lasso solver is timed
at the settings where it reaches the exact optimum within 1e-4 relative (sum over samples); the
optimum is the best of SPAMS's and scikit-learn's float64 solutions (SPAMS's alone with
``--no-sklearn``). Our objectives are evaluated on the default device in float32 at ``highest``
matmul precision (per-sample rounding ~1e-6 relative, far under the tolerance); SPAMS's sparse
outputs in float64 on the host. FISTA's iteration count is searched by doubling from 10 (then one
bisection step), up to ``--max-iter``. Ratios are measured in the same run: "vs SPAMS" = SPAMS time
/ our time (>= 1 means we are faster); "of matmul" = achieved FLOP/s (analytic counts,
jaxsparse.eval.flops) / FLOP/s of the same-shape matmul x D^T; "mem MB" = the compiled program's
temporary + output buffers (XLA's ``memory_analysis``; inputs excluded). SPAMS is timed returning its
native sparse matrix (no densify charged to it), with ``numThreads=-1`` (all cores), without an
untimed warm-up call (it compiles nothing; the float64 reference call has started its threads). SPAMS
runs in a child process of its own (``spams_worker.py``), restarted until its float32 ``omp`` returns
right codes (it does not in some processes); our solvers and SPAMS are timed in rounds, each round
calling every row once (ours here, SPAMS's in the child, timed there), and each row keeps its best
round, so the machine's drift falls on both alike. An OMP row whose mean residual exceeds 1.5x ours is
flagged WRONG CODES, and "vs SPAMS" uses the fastest SPAMS row with valid output.

    pip install -e ".[test,bench]" && python benchmarks/solvers.py [--quick] [--devices 2] [--threads 4]
    python benchmarks/solvers.py --batch 65536 --features 768 --latents 16384 --no-sklearn --repeats 1   # SAE scale (GPU)
"""

from __future__ import annotations

import argparse
import warnings

from timing import best_of_rounds, best_time, devices_from_argv  # noqa: I001  (before JAX: it sets XLA_FLAGS)

devices_from_argv()  # --devices N on CPU needs N XLA devices, set before JAX starts

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import jaxsparse as js  # noqa: E402
from jaxsparse.eval import flops  # noqa: E402
from spams_worker import SpamsWorker  # noqa: E402


def objective_host(x, z, d, lam):
    """Per-sample objective in float64 on the host; ``z`` dense ``[B, N]`` or scipy sparse ``[N, B]``."""
    if hasattr(z, "tocsc"):  # SPAMS's sparse [N, B]
        z = z.T.tocsr().astype(np.float64)
        recon, l1 = np.asarray(z @ d), np.asarray(abs(z).sum(axis=1)).ravel()
    else:
        z = np.asarray(z, np.float64)
        recon, l1 = z @ d, np.abs(z).sum(axis=1)
    return 0.5 * np.sum((x - recon) ** 2, axis=1) + lam * l1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--features", type=int, default=64)
    parser.add_argument("--latents", type=int, default=256)
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument("--noise", type=float, default=0.01)
    parser.add_argument("--lam", type=float, default=0.05)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--tol", type=float, default=1e-4)
    parser.add_argument("--max-iter", type=int, default=1280, help="most FISTA iterations searched")
    parser.add_argument("--max-active", type=int, nargs="+", default=[16, 32], help="homotopy slot counts")
    parser.add_argument("--precision", default="highest", choices=["default", "high", "highest"],
                        help="JAX matmul precision of our solvers (GPU: 'default' allows TF32)")
    parser.add_argument("--quick", action="store_true", help="skip the slow scikit-learn Lasso peers")
    parser.add_argument("--no-sklearn", action="store_true",
                        help="no scikit-learn at all (reference = SPAMS float64 only; for large sizes)")
    parser.add_argument("--no-fista", action="store_true", help="skip FISTA (its iteration search is slow at SAE scale)")
    parser.add_argument("--devices", type=int, default=1,
                        help="also time homotopy and OMP with the batch split over this many devices "
                             "(js.solvers.over_devices; on CPU XLA is given as many, e.g. one per core)")
    parser.add_argument("--threads", type=int, default=0,
                        help="also time homotopy and OMP in this many blocks solved side by side from host threads "
                             "on one device (js.solvers.over_threads; 0: not)")
    parser.add_argument("--spams-tries", type=int, default=5,
                        help="SPAMS processes to try for one whose float32 omp is right (0: one, unchecked)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", module="sklearn")  # ConvergenceWarning of the peers' defaults

    b, m, n, k, lam = args.batch, args.features, args.latents, args.k, args.lam
    x, _, d = js.data.sparse_coding_data(jax.random.key(0), b, n, m, k, noise=args.noise)
    x_np, d_np = np.asarray(x, np.float64), np.asarray(d, np.float64)
    x32, d32 = np.asarray(x), np.asarray(d)
    if not 1 <= args.devices <= jax.device_count():
        parser.error(f"--devices must be between 1 and the {jax.device_count()} devices JAX sees, got {args.devices}")
    print(f"device: {jax.devices()[0].device_kind} ({jax.default_backend()}), jax {jax.__version__}, "
          f"our matmul precision: {args.precision}")
    print(f"problem: {b} signals x {m} features x {n} atoms, {k}-sparse + {args.noise} noise, lam={lam}\n")

    try:
        spams = SpamsWorker(x32, d32, lam=lam, k=k, tries=args.spams_tries)
        verdict = {True: "right", False: "WRONG in every one (its rows are flagged)", None: "not checked"}
        print(f"SPAMS in a child process: {max(spams.tried, 1)} started, float32 omp {verdict[spams.valid]}")
    except ImportError:
        spams = None
        print("SPAMS not installed (pip install spams-bin): its rows are skipped")
    if spams is None and args.no_sklearn:
        raise SystemExit("--no-sklearn needs SPAMS for the reference optimum")

    # ---- reference optimum (float64 peers)
    refs = []
    if spams is not None:
        refs.append(objective_host(x_np, spams.call("lasso float64")[1], d_np, lam))
    if not args.no_sklearn:
        from sklearn.decomposition import sparse_encode

        refs.append(objective_host(x_np, sparse_encode(x_np, d_np, algorithm="lasso_cd", alpha=lam, max_iter=10_000),
                                   d_np, lam))
    f_star = np.min(refs, axis=0).sum()
    print(f"  reference optimum: {f_star:.6e}", flush=True)

    @jax.jit
    def terms_device(z):  # per-sample ||x - z D||^2 and ||z||_1
        with jax.default_matmul_precision("highest"):
            return jnp.sum((x - z @ d) ** 2, axis=1), jnp.abs(z).sum(axis=1)

    def objective_device(z):
        sq, l1 = terms_device(jnp.asarray(z, jnp.float32))
        return 0.5 * np.asarray(sq, np.float64) + lam * np.asarray(l1, np.float64)

    def gap(z):
        f = objective_host(x_np, z, d_np, lam) if hasattr(z, "tocsc") else objective_device(z)
        return (f.sum() - f_star) / f_star

    def compiled(fn):
        def with_precision(d, x):
            with jax.default_matmul_precision(args.precision):
                return fn(d, x)

        exe = jax.jit(with_precision).lower(d, x).compile()
        mem = exe.memory_analysis()
        mb = (mem.temp_size_in_bytes + mem.output_size_in_bytes) / 2**20 if mem is not None else float("nan")
        return exe, mb

    class Rows(list):  # (name, seconds, gap or residual, flops per sample or None, MB or None)
        def append(self, row):  # each row is printed when measured, so a run cut short keeps its numbers
            print(f"  measured: {row[0]}: {row[1] * 1e3:.1f} ms, {row[2]:.2e}", flush=True)
            super().append(row)

    def ours(fn):  # a timer (seconds of one call, warmed) and the codes of the compiled fn
        exe, mb = compiled(fn)
        z = exe(d, x)
        exe(d, x).block_until_ready()
        return lambda: best_time(lambda: exe(d, x).block_until_ready(), 1, warmup=False), z, mb

    def ours_threaded(solver, **kwargs):  # over_threads runs outside jit: timed as the public call
        split = js.solvers.over_threads(solver, blocks=args.threads)

        def call():
            with jax.default_matmul_precision(args.precision):
                return jax.block_until_ready(split(d, x, **kwargs))

        z = call()
        return lambda: best_time(call, 1, warmup=False), z, None

    def spams_timer(name, holder):
        def timer():
            t, holder["z"] = spams.call(name)
            return t
        return timer

    rows = Rows()

    matmul, _ = compiled(lambda d, x: x @ d.T)
    t_matmul = best_time(lambda: matmul(d, x).block_until_ready(), args.repeats * 4)
    matmul_rate = 2 * m * n * b / t_matmul

    # ---- ours: FISTA at the fewest iterations reaching the tolerance (doubling, then one bisection step)
    def fista_gap(n_iter):
        exe, _ = compiled(lambda d, x: js.solvers.fista(d, x, lam=lam, n_iter=n_iter))
        return gap(exe(d, x))

    lasso = {}
    if not args.no_fista:
        n_iter, g = 10, fista_gap(10)
        while g > args.tol and 2 * n_iter <= args.max_iter:
            n_iter *= 2
            g = fista_gap(n_iter)
        if g <= args.tol and n_iter > 10 and fista_gap(3 * n_iter // 4) <= args.tol:
            n_iter = 3 * n_iter // 4
        suffix = "" if g <= args.tol else f", tol not reached by {args.max_iter}"
        lasso[f"jaxsparse fista ({n_iter} it{suffix})"] = (
            ours(lambda d, x: js.solvers.fista(d, x, lam=lam, n_iter=n_iter)), flops("fista", n_latents=n, n_features=m,
                                                                                      n_iter=n_iter))
    split = js.solvers.over_devices(js.solvers.homotopy, devices=jax.devices()[:args.devices])
    for s in args.max_active:
        lasso[f"jaxsparse homotopy (max_active={s})"] = (
            ours(lambda d, x, s=s: js.solvers.homotopy(d, x, lam=lam, max_active=s)), None)
        if args.devices > 1:
            lasso[f"jaxsparse homotopy (max_active={s}, {args.devices} devices)"] = (
                ours(lambda d, x, s=s: split(d, x, lam=lam, max_active=s)), None)
        if args.threads > 1:
            lasso[f"jaxsparse homotopy (max_active={s}, {args.threads} threads)"] = (
                ours_threaded(js.solvers.homotopy, lam=lam, max_active=s), None)
    timers = {name: timer for name, ((timer, _, _), _) in lasso.items()}
    spams_lasso = {}
    if spams is not None:
        timers["SPAMS lasso (LARS, float32)"] = spams_timer("lasso float32", spams_lasso)
    best = best_of_rounds(timers, args.repeats)
    for name, ((_, z, mb), fl) in lasso.items():
        rows.append((name, best[name], gap(z), fl, mb))
    if spams is not None:
        rows.append(("SPAMS lasso (LARS, float32)", best["SPAMS lasso (LARS, float32)"], gap(spams_lasso["z"]), None,
                     None))

    # ---- peers
    if not (args.quick or args.no_sklearn):
        from sklearn.decomposition import sparse_encode

        for algo in ("lasso_cd", "lasso_lars"):
            holder = {}

            def sk(algo=algo, holder=holder):
                holder["z"] = sparse_encode(x32, d32, algorithm=algo, alpha=lam)

            rows.append((f"sklearn sparse_encode {algo}", best_time(sk, 1), gap(holder["z"]), None, None))

    def table(title, rows, third, valid=lambda row: True):
        """``vs SPAMS`` against the fastest SPAMS row whose output is valid."""
        ref = min((t for row in rows if row[0].startswith("SPAMS") and valid(row) for t in [row[1]]), default=None)
        print(f"{title:44s} {'time ms':>9s} {third:>9s} {'vs SPAMS':>9s} {'of matmul':>9s} {'mem MB':>8s}")
        for row in rows:
            name, t, g, fl, mb = row
            ratio = f"{ref / t:9.2f}" if ref else f"{'-':>9s}"
            frac = f"{fl * b / t / matmul_rate:9.3f}" if fl else f"{'-':>9s}"
            mem = f"{mb:8.0f}" if mb is not None else f"{'-':>8s}"
            print(f"{name:44s} {t * 1e3:9.1f} {g:9.1e} {ratio} {frac} {mem}" + ("" if valid(row) else "  WRONG CODES"))

    table("Lasso solver", rows, "rel gap")

    # ---- OMP, k atoms
    def resid(z):  # mean ||x - z D||^2
        if hasattr(z, "tocsc"):
            return float(np.mean(2 * (objective_host(x_np, z, d_np, 0.0))))
        return float(np.mean(np.asarray(terms_device(jnp.asarray(z, jnp.float32))[0], np.float64)))

    omp_rows = Rows()
    omp_timer, z_ours, mb = ours(lambda d, x: js.solvers.omp(d, x, k=k))
    timers = {"ours": omp_timer}
    if args.devices > 1:
        split_omp = js.solvers.over_devices(js.solvers.omp, devices=jax.devices()[:args.devices])
        omp_split_timer, z_split, mb_split = ours(lambda d, x: split_omp(d, x, k=k))
        timers["ours split"] = omp_split_timer
    if args.threads > 1:
        omp_threads_timer, z_threads, _ = ours_threaded(js.solvers.omp, k=k)
        timers["ours threads"] = omp_threads_timer
    spams_omp = {dtype: {} for dtype in ("float32", "float64")}
    if spams is not None:
        for dtype, holder in spams_omp.items():
            timers[dtype] = spams_timer(f"omp {dtype}", holder)
    best = best_of_rounds(timers, args.repeats)
    omp_rows.append((f"jaxsparse omp (k={k})", best["ours"], resid(z_ours), flops("omp", n_latents=n, n_features=m,
                                                                                      k=k), mb))
    if args.devices > 1:
        omp_rows.append((f"jaxsparse omp (k={k}, {args.devices} devices)", best["ours split"], resid(z_split),
                         flops("omp", n_latents=n, n_features=m, k=k), mb_split))
    if args.threads > 1:
        omp_rows.append((f"jaxsparse omp (k={k}, {args.threads} threads)", best["ours threads"], resid(z_threads),
                         flops("omp", n_latents=n, n_features=m, k=k), None))
    holder = {}
    if not args.no_sklearn:
        from sklearn.linear_model import orthogonal_mp_gram

        gram, xy = d32 @ d32.T, x32 @ d32.T

        def sk_omp():
            holder["z"] = orthogonal_mp_gram(gram, xy.T, n_nonzero_coefs=k).T

        omp_rows.append(("sklearn orthogonal_mp_gram", best_time(sk_omp, args.repeats), resid(holder["z"]), None, None))
    if spams is not None:  # float64 too: SPAMS's float32 omp may be wrong (spams_worker.py)
        for dtype, holder in spams_omp.items():
            omp_rows.append((f"SPAMS omp ({dtype})", best[dtype], resid(holder["z"]), None, None))
        spams.close()
    print()
    table("OMP solver", omp_rows, "resid", valid=lambda row: row[2] <= 1.5 * omp_rows[0][2])  # vs ours
    print(f"\nmatmul x D^T: {t_matmul * 1e3:.2f} ms ({matmul_rate / 1e9:.1f} GFLOP/s at precision {args.precision})")
    stats = jax.devices()[0].memory_stats() or {}
    if "peak_bytes_in_use" in stats:
        print(f"device peak memory in use (whole run): {stats['peak_bytes_in_use'] / 2**30:.2f} GiB")


if __name__ == "__main__":
    main()
