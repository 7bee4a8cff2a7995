"""Tables and figures of a run directory, from ``results.json`` and ``metrics.jsonl`` only."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from jaxsparse.train import rundir


def results_table(results: dict[str, Any]) -> str:
    """A markdown table ``metric | mean | std | min | max`` (one block per hyperparameter if a grid)."""
    blocks = [(f"all {results['n_runs']} runs", results)]
    if "by_hparam" in results:
        blocks += [(f"hparam {j} = {_hp(results['hparams'], j)}", r) for j, r in enumerate(results["by_hparam"])]
    lines = []
    for title, r in blocks:
        lines += [f"**{title}**", "", "| metric | mean | std | min | max |", "|---|---|---|---|---|"]
        lines += [
            f"| {k} | {r['mean'][k]:.4g} | {r['std'][k]:.2g} | {r['min'][k]:.4g} | {r['max'][k]:.4g} |" for k in r["mean"]
        ]
        lines.append("")
    return "\n".join(lines)


def _hp(hparams: Any, j: int) -> Any:
    return hparams[j] if isinstance(hparams, list) else {k: v[j] for k, v in hparams.items()}


def curves(rows: list[dict[str, Any]], metric: str) -> dict[int | None, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``{hparam: (steps [T], mean [T], std [T])}`` of ``metric`` over seeds from metrics rows."""
    out = {}
    for h in sorted({r.get("hparam") for r in rows}, key=lambda v: -1 if v is None else v):
        sel = [r for r in rows if r.get("hparam") == h and metric in r]
        steps = np.array(sorted({r["step"] for r in sel}))
        values = [[r[metric] for r in sel if r["step"] == s] for s in steps]
        out[h] = (steps, np.array([np.mean(v) for v in values]), np.array([np.std(v) for v in values]))
    return out


def loss_figure(rows: list[dict[str, Any]], path: str | os.PathLike, metric: str = "loss") -> None:
    """Plot ``metric`` vs step, mean over seeds with a ±1 std band, to ``path`` (png)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for h, (steps, mean, std) in curves(rows, metric).items():
        label = "mean over seeds" if h is None else f"hparam {h}"
        ax.plot(steps, mean, label=label)
        ax.fill_between(steps, mean - std, mean + std, alpha=0.25)
    ax.set_xlabel("step")
    ax.set_ylabel(metric)
    ax.set_yscale("log" if all(r[metric] > 0 for r in rows if metric in r) else "linear")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_report(run_dir: str | os.PathLike) -> str:
    """Write ``report.md`` and ``figures/loss.png`` of a finished run; return the report text."""
    run_dir = Path(run_dir)
    results = rundir.read_json(run_dir / rundir.RESULTS)
    rows = rundir.read_metrics(run_dir / rundir.METRICS)
    text = f"# {results.get('experiment', run_dir.name)}: {run_dir}\n\nFinal scores at step {results.get('step')}:\n\n"
    text += results_table(results)
    if rundir.is_writer():
        (run_dir / rundir.FIGURES).mkdir(exist_ok=True)
        if rows:
            loss_figure(rows, run_dir / rundir.FIGURES / "loss.png")
            text += "\n![loss](figures/loss.png)\n"
        (run_dir / "report.md").write_text(text)
    return text
