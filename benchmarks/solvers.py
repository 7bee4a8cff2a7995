"""Lasso and OMP speed against the peers a researcher would use instead (scikit-learn, SPAMS).

Problem (issue 3): 4096 signals x 64 features x 256 atoms, 8-sparse non-negative codes + 1 % noise,
lam = 0.05 for the per-sample objective 0.5 ||x - z D||^2 + lam ||z||_1. Each Lasso solver is timed
at the settings where it reaches the exact optimum within 1e-4 relative (sum over samples); the
optimum is the best of SPAMS's and scikit-learn's float64 solutions. Ratios are measured in the same
run: "vs SPAMS" = SPAMS time / our time (>= 1 means we are faster); "of matmul" = achieved FLOP/s
(analytic counts, jaxsparse.eval.flops) / FLOP/s of the same-shape matmul x D^T.

    pip install -e ".[test,bench]" && python benchmarks/solvers.py [--quick]
"""

from __future__ import annotations

import argparse
import warnings

import jax
import numpy as np

import jaxsparse as js
from jaxsparse.eval import flops
from timing import best_time


def objective(x, z, d, lam):
    z = np.asarray(z, np.float64)
    return 0.5 * np.sum((x - z @ d) ** 2, axis=1) + lam * np.abs(z).sum(axis=1)


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
    parser.add_argument("--quick", action="store_true", help="skip the slow scikit-learn peers")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", module="sklearn")  # ConvergenceWarning of the peers' defaults

    b, m, n, k, lam = args.batch, args.features, args.latents, args.k, args.lam
    x, _, d = js.data.sparse_coding_data(jax.random.key(0), b, n, m, k, noise=args.noise)
    x_np, d_np = np.asarray(x, np.float64), np.asarray(d, np.float64)
    x32, d32 = np.asarray(x), np.asarray(d)
    print(f"device: {jax.devices()[0].device_kind} ({jax.default_backend()}), jax {jax.__version__}")
    print(f"problem: {b} signals x {m} features x {n} atoms, {k}-sparse + {args.noise} noise, lam={lam}\n")

    try:
        import spams
    except ImportError:
        spams = None
        print("SPAMS not installed (pip install spams-bin): its rows are skipped")
    from sklearn.decomposition import sparse_encode
    from sklearn.linear_model import orthogonal_mp_gram

    # ---- reference optimum
    refs = []
    if spams is not None:
        z = spams.lasso(np.asfortranarray(x_np.T), D=np.asfortranarray(d_np.T), lambda1=lam, mode=2)
        refs.append(objective(x_np, np.asarray(z.todense()).T, d_np, lam))
    z = sparse_encode(x_np, d_np, algorithm="lasso_cd", alpha=lam, max_iter=10_000)
    refs.append(objective(x_np, z, d_np, lam))
    f_star = np.min(refs, axis=0).sum()

    def gap(z):
        return (objective(x_np, z, d_np, lam).sum() - f_star) / f_star

    rows = []  # (name, seconds, gap, flops per sample or None)

    def run_jax(name, fn, flops_per_sample=None):
        jitted = jax.jit(fn)
        z = jitted(d, x)
        rows.append((name, best_time(lambda: jitted(d, x).block_until_ready(), args.repeats), gap(z), flops_per_sample))

    matmul = jax.jit(lambda d, x: x @ d.T)
    t_matmul = best_time(lambda: matmul(d, x).block_until_ready(), args.repeats * 4)
    matmul_rate = 2 * m * n * b / t_matmul

    # ---- ours: FISTA at the fewest iterations reaching the tolerance
    for n_iter in range(10, 1001, 10):
        if gap(jax.jit(lambda d, x: js.solvers.fista(d, x, lam=lam, n_iter=n_iter))(d, x)) <= args.tol:
            break
    run_jax(f"jaxsparse fista ({n_iter} it)", lambda d, x: js.solvers.fista(d, x, lam=lam, n_iter=n_iter),
            flops("fista", n_latents=n, n_features=m, n_iter=n_iter))
    for s in (16, 32):
        run_jax(f"jaxsparse homotopy (max_active={s})", lambda d, x: js.solvers.homotopy(d, x, lam=lam, max_active=s))

    # ---- peers
    if spams is not None:
        # SPAMS gets owned Fortran arrays and its sparse output is made dense inside the timed call,
        # like ours. Its omp has been seen to return wrong codes now and then (check the "resid" column).
        xf, df = np.array(x32.T, order="F"), np.array(d32.T, order="F")
        z_holder = {}

        def spams_lasso():
            z_holder["z"] = spams.lasso(xf, D=df, lambda1=lam, mode=2, numThreads=-1).toarray().T

        t = best_time(spams_lasso, args.repeats)
        rows.append(("SPAMS lasso (LARS, float32)", t, gap(z_holder["z"]), None))
    if not args.quick:
        for algo in ("lasso_cd", "lasso_lars"):
            holder = {}

            def sk(algo=algo, holder=holder):
                holder["z"] = sparse_encode(x32, d32, algorithm=algo, alpha=lam)

            rows.append((f"sklearn sparse_encode {algo}", best_time(sk, 1), gap(holder["z"]), None))

    spams_lasso_time = next((t for name, t, _, _ in rows if name.startswith("SPAMS lasso")), None)
    print(f"{'Lasso solver':40s} {'time ms':>9s} {'rel gap':>9s} {'vs SPAMS':>9s} {'of matmul':>9s}")
    for name, t, g, fl in rows:
        ratio = f"{spams_lasso_time / t:9.2f}" if spams_lasso_time else f"{'-':>9s}"
        frac = f"{fl * b / t / matmul_rate:9.3f}" if fl else f"{'-':>9s}"
        print(f"{name:40s} {t * 1e3:9.1f} {g:9.1e} {ratio} {frac}")

    # ---- OMP, k atoms
    omp_rows = []
    ours = jax.jit(lambda d, x: js.solvers.omp(d, x, k=k))
    z_ours = np.asarray(ours(d, x))
    omp_rows.append((f"jaxsparse omp (k={k})", best_time(lambda: ours(d, x).block_until_ready(), args.repeats),
                     z_ours, flops("omp", n_latents=n, n_features=m, k=k)))
    gram, xy = d32 @ d32.T, x32 @ d32.T
    holder = {}

    def sk_omp():
        holder["z"] = orthogonal_mp_gram(gram, xy.T, n_nonzero_coefs=k).T

    omp_rows.append(("sklearn orthogonal_mp_gram", best_time(sk_omp, args.repeats), None, None))
    omp_rows[-1] = omp_rows[-1][:2] + (holder["z"], None)
    if spams is not None:
        xf, df = np.array(x32.T, order="F"), np.array(d32.T, order="F")

        def sp_omp():
            holder["s"] = spams.omp(xf, D=df, L=k, numThreads=-1).toarray().T

        t = best_time(sp_omp, args.repeats)
        omp_rows.append(("SPAMS omp", t, holder["s"], None))
    spams_omp_time = next((t for name, t, _, _ in omp_rows if name.startswith("SPAMS")), None)
    print(f"\n{'OMP solver':40s} {'time ms':>9s} {'resid':>9s} {'vs SPAMS':>9s} {'of matmul':>9s}")
    for name, t, z, fl in omp_rows:
        resid = np.mean(np.sum((x_np - np.asarray(z, np.float64) @ d_np) ** 2, 1))
        ratio = f"{spams_omp_time / t:9.2f}" if spams_omp_time else f"{'-':>9s}"
        frac = f"{fl * b / t / matmul_rate:9.3f}" if fl else f"{'-':>9s}"
        print(f"{name:40s} {t * 1e3:9.1f} {resid:9.2e} {ratio} {frac}")
    resid_ours = np.mean(np.sum((x_np - z_ours.astype(np.float64) @ d_np) ** 2, 1))
    for name, _, z, _ in omp_rows[1:]:
        resid = np.mean(np.sum((x_np - np.asarray(z, np.float64) @ d_np) ** 2, 1))
        if resid > 1.5 * resid_ours:
            print(f"WARNING: {name} returned wrong codes in this run (residual {resid:.2e} vs {resid_ours:.2e})")
    print(f"\nmatmul x D^T: {t_matmul * 1e3:.2f} ms ({matmul_rate / 1e9:.1f} GFLOP/s)")


if __name__ == "__main__":
    main()
