"""Tables and figures of a run directory, from ``results.json`` and ``metrics.jsonl`` only.

The same code reports every experiment: the top-level summary (``mean``, ``std`` with
``std_ddof``, ``min``, ``max``), a hyperparameter grid (``by_hparam``) and, for several-method runs,
one row per entry of ``methods``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from jaxsparse.train import rundir


def results_table(results: dict[str, Any]) -> str:
    """Markdown tables: ``metric | mean | std | min | max`` of the summary, if there is one (one
    block per hyperparameter if a grid), then a ``method | metric ...`` table (mean ± std) if ``methods``."""
    ddof = results.get("std_ddof", 1)
    blocks = [(f"all {results['n_runs']} runs", results)] if "mean" in results else []
    if "by_hparam" in results:
        blocks += [(f"hparam {j} = {_hp(results['hparams'], j)}", r) for j, r in enumerate(results["by_hparam"])]
    lines = []
    for title, r in blocks:
        lines += [f"**{title}**", "", f"| metric | mean | std (ddof={ddof}) | min | max |", "|---|---|---|---|---|"]
        lines += [
            f"| {k} | {r['mean'][k]:.4g} | {r['std'][k]:.2g} | {r['min'][k]:.4g} | {r['max'][k]:.4g} |" for k in r["mean"]
        ]
        lines.append("")
    if results.get("methods"):
        lines.append(methods_table(results["methods"], ddof))
    return "\n".join(lines)


def methods_table(entries: list[dict[str, Any]], ddof: int = 1) -> str:
    """One row per method: ``mean ± std`` over seeds of every metric some method reports."""
    names = list(dict.fromkeys(k for e in entries for k in e.get("mean", {}) if not k.startswith("train_")))
    lines = [f"**methods** (mean ± std over seeds, ddof={ddof})", "", "| method | " + " | ".join(names) + " |",
             "|---" * (len(names) + 1) + "|"]
    for e in entries:
        cells = [f"{e['mean'][k]:.4g} ± {e['std'][k]:.2g}" if k in e.get("mean", {}) else "–" for k in names]
        lines.append(f"| {e.get('method', '?')} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _hp(hparams: Any, j: int) -> Any:
    return hparams[j] if isinstance(hparams, list) else {k: v[j] for k, v in hparams.items()}


def curves(rows: list[dict[str, Any]], metric: str) -> dict[int | None, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``{hparam: (steps [T], mean [T], std [T])}`` of ``metric`` over seeds from metrics rows
    (``std`` with ddof=0: the spread of the seeds at each step)."""
    out = {}
    for h in sorted({r.get("hparam") for r in rows}, key=lambda v: -1 if v is None else v):
        sel = [r for r in rows if r.get("hparam") == h and metric in r]
        steps = np.array(sorted({r["step"] for r in sel}))
        values = [[r[metric] for r in sel if r["step"] == s] for s in steps]
        out[h] = (steps, np.array([np.mean(v) for v in values]), np.array([np.std(v) for v in values]))
    return out


def loss_figure(runs: dict[str, list[dict[str, Any]]], path: str | os.PathLike, metric: str = "loss") -> None:
    """Plot ``metric`` vs step (mean over seeds, ±1 std band), one panel per entry of ``runs``
    (``{title: metrics rows}``), to ``path`` (png)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(runs)
    cols = min(n, 4)
    rows_ = -(-n // cols)
    fig, axes = plt.subplots(rows_, cols, figsize=(4.5 * cols, 3.2 * rows_), squeeze=False)
    for ax, (title, rows) in zip(axes.ravel(), runs.items()):
        for h, (steps, mean, std) in curves(rows, metric).items():
            ax.plot(steps, mean, marker="o" if len(steps) < 3 else None,
                    label="mean over seeds" if h is None else f"hparam {h}")
            ax.fill_between(steps, mean - std, mean + std, alpha=0.25)
        ax.set_xlabel("step")
        ax.set_ylabel(metric)
        ax.set_yscale("log" if all(r[metric] > 0 for r in rows if metric in r) else "linear")
        if title:
            ax.set_title(title, fontsize=9)
        if any(h is not None for h in curves(rows, metric)):
            ax.legend(fontsize=7)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    # fixed margins: tight_layout measured every tick label again, 0.7 of the 1.9 s of a 12-panel figure
    fig.subplots_adjust(left=1.15 / (4.5 * cols), right=1 - 0.15 / (4.5 * cols), bottom=0.5 / (3.2 * rows_),
                        top=1 - 0.35 / (3.2 * rows_), wspace=0.42, hspace=0.5)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _metrics_by_run(run_dir: Path) -> dict[str, list[dict[str, Any]]]:
    """``{title: rows}`` of the run's ``metrics.jsonl`` and those of its methods."""
    out = {}
    top = rundir.read_metrics(run_dir / rundir.METRICS)
    if top:
        out[""] = top
    methods_dir = run_dir / rundir.METHODS
    if methods_dir.is_dir():
        for path in sorted(methods_dir.rglob(rundir.METRICS)):
            rows = rundir.read_metrics(path)
            if rows:
                out[str(path.parent.relative_to(methods_dir))] = rows
    return out


def write_report(run_dir: str | os.PathLike) -> str:
    """Write ``report.md`` and ``figures/loss.png`` of a finished run (holding its lock); return the text.

    Raises :class:`~jaxsparse.train.rundir.RunDirError` (and writes nothing) when the run has no
    readable ``results.json`` or is being written by another process.
    """
    run_dir = Path(run_dir)
    rundir.read_header(run_dir)
    with rundir.lock(run_dir):
        if not (run_dir / rundir.RESULTS).is_file():
            raise rundir.RunDirError(
                f"{run_dir / rundir.RESULTS} does not exist: the run has not finished (`jaxsparse resume {run_dir}`)")
        return report_locked(run_dir, rundir.read_json(run_dir / rundir.RESULTS))


def draw_loss_figure(run_dir: str | os.PathLike) -> bool:
    """Draw ``figures/loss.png`` of a run from its metrics (and its methods'); ``False`` if it has none."""
    run_dir = Path(run_dir)
    runs = _metrics_by_run(run_dir)
    if runs:
        (run_dir / rundir.FIGURES).mkdir(exist_ok=True)
        loss_figure(runs, run_dir / rundir.FIGURES / "loss.png")
    return bool(runs)


def report_locked(run_dir: Path, results: dict[str, Any] | None = None, *, loss_drawn: bool = False) -> str:
    """:func:`write_report` for a caller that already holds the run's lock (the trainer); with
    ``loss_drawn`` the loss figure is already up to date (drawn by a worker while the analysis ran)."""
    results = rundir.read_json(run_dir / rundir.RESULTS) if results is None else results
    text = f"# {results.get('experiment', run_dir.name)}: {run_dir}\n\nFinal scores:\n\n"
    text += results_table(results)
    if rundir.is_writer():
        (run_dir / rundir.FIGURES).mkdir(exist_ok=True)
        if loss_drawn or draw_loss_figure(run_dir):
            text += "\n![loss](figures/loss.png)\n"
        (run_dir / rundir.REPORT).write_text(text)
    return text
