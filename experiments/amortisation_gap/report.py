"""Tables and figures of the amortisation-gap experiment, from its results entries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from jaxsparse.train import rundir

HEADLINE = (("unknown", "SAE"), ("unknown", "SAE+ITO: Adam-"), ("unknown", "SC: Adam-"), ("unknown", "MLP-256"), ("unknown", "DL: homotopy"),
            ("known_d", "SAE"), ("known_d", "true D + Adam-"), ("known_d", "true D + homotopy"))


def _find(entries: list[dict], regime: str, prefix: str) -> dict | None:
    return next((e for e in entries if e["regime"] == regime and e["label"].startswith(prefix)), None)


def headline(entries: list[dict[str, Any]], seeds: list[int]) -> dict[str, Any]:
    """The key numbers the CLI prints (and ``jaxsparse report`` tabulates), as one
    :func:`~jaxsparse.train.rundir.summarize` of per-seed rows ``{"<method>/<metric>": value}``."""
    rows = [{"seed": seed} for seed in seeds]
    for regime, prefix in HEADLINE:
        e = _find(entries, regime, prefix)
        if e is not None:
            for k in ("mcc", "dictionary_mcc"):
                if k in e["mean"]:
                    for row, run in zip(rows, e["per_seed"]):
                        row[f"{e['method']}/{k}"] = run[k]
    return rundir.summarize(rows)


FRONTIER = (("known_d", "true D + ", ("true D + ",)), ("unknown", "SC: ", ("SC: ",)), ("unknown", "DL: ", ("DL: ",)),
            ("unknown", "SAE+ITO: ", ("SAE+ITO: ", "SAE+FISTA")))


def frontier(entries: list[dict[str, Any]], tol: float = 0.01) -> list[dict[str, Any]]:
    """Per dictionary: the cheapest solver whose mean latent MCC is within ``tol`` of (or above) the
    paper's Adam code fit on the same dictionary, and its inference-FLOPs ratio to Adam."""
    out = []
    for regime, adam_prefix, prefixes in FRONTIER:
        adam = next((e for e in entries if e["regime"] == regime and e["label"].startswith(adam_prefix + "Adam")), None)
        if adam is None:
            continue
        cands = [e for e in entries if e["regime"] == regime and e["family"] != "adam" and e["inference_flops"]
                 and e["label"].startswith(prefixes)]
        ok = sorted((e for e in cands if e["mean"]["mcc"] >= adam["mean"]["mcc"] - tol),
                    key=lambda e: e["inference_flops"])
        best = max(cands, key=lambda e: e["mean"]["mcc"], default=None)
        row = {"regime": regime, "dictionary": adam_prefix.rstrip(": +"), "adam": adam["label"],
               "adam_mcc": adam["mean"]["mcc"], "adam_flops": adam["inference_flops"],
               "best_solver": best and best["label"], "best_solver_mcc": best and best["mean"]["mcc"]}
        if ok:
            row.update(cheapest_match=ok[0]["label"], cheapest_match_mcc=ok[0]["mean"]["mcc"],
                       cheapest_match_flops=ok[0]["inference_flops"],
                       flops_ratio=adam["inference_flops"] / ok[0]["inference_flops"])
        out.append(row)
    return out


def frontier_table(rows: list[dict[str, Any]]) -> str:
    """Markdown: Adam's MCC and FLOPs vs the cheapest matching solver."""
    head = ("| dictionary | Adam (paper) MCC | Adam FLOPs | cheapest solver within 0.01 | its MCC | its FLOPs "
            "| FLOPs ratio | best solver (MCC) |\n|---|---|---|---|---|---|---|---|")
    lines = [f"| {r['regime']}: {r['dictionary']} | {r['adam_mcc']:.3f} | {r['adam_flops']:.3g} | "
             f"{r.get('cheapest_match', 'none')} | {r.get('cheapest_match_mcc', float('nan')):.3f} | "
             f"{r.get('cheapest_match_flops', float('nan')):.3g} | {r.get('flops_ratio', float('nan')):.0f}x | "
             f"{r['best_solver']} ({r['best_solver_mcc'] or float('nan'):.3f}) |" for r in rows]
    return "\n".join([head, *lines])


def _fmt_flops(v: int | None) -> str:
    return "–" if v is None else (f"{v:.3g}" if v else "0")


def _pm(e: dict, k: str) -> str:
    return f"{e['mean'][k]:.3f} ± {e['std'][k]:.3f}" if k in e["mean"] else "–"


def table(entries: list[dict[str, Any]]) -> str:
    """A markdown table: one row per (regime, method), mean ± std over seeds (ddof=1); wall times of
    all seeds together, steady state, compilation apart."""
    head = ("| regime | method | latent MCC | dict MCC | FVU | L0 | inference FLOPs/sample | training FLOPs "
            "| train s | infer s | compile s |\n|---|---|---|---|---|---|---|---|---|---|---|")
    rows = [f"| {e['regime']} | {e['label']} | {_pm(e, 'mcc')} | {_pm(e, 'dictionary_mcc')} | {e['mean']['fvu']:.2e} "
            f"| {e['mean']['l0']:.2f} | {_fmt_flops(e['inference_flops'])} | {_fmt_flops(e['training_flops'])} "
            f"| {e['timing']['train_s']:.1f} | {e['timing']['infer_s']:.3f} | {e['timing']['compile_s']:.1f} |"
            for e in entries]
    return "\n".join([head, *rows])


def figures(out_dir: Path, entries: list[dict[str, Any]], n_test: int, *, skip: tuple[str, ...] = ()) -> list[Path]:
    """Per regime (but those in ``skip``): :func:`regime_figures`."""
    return [path for regime in dict.fromkeys(e["regime"] for e in entries) if regime not in skip
            for path in regime_figures(out_dir, regime, entries, n_test)]


def regime_figures(out_dir: Path, regime: str, entries: list[dict[str, Any]], n_test: int) -> list[Path]:
    """``regime``'s latent MCC vs inference FLOPs, and vs training + inference FLOPs (error bars: std)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    rows = [e for e in entries if e["regime"] == regime and e["inference_flops"]]
    for total in (False, True):
        fig, ax = plt.subplots(figsize=(8, 5))
        style = 0
        for family in dict.fromkeys(e["family"] for e in rows):
            fam = [e for e in rows if e["family"] == family]
            groups = dict.fromkeys(e["label"].split("FISTA-")[0] for e in fam)
            for group in groups:
                g = [e for e in fam if e["label"].startswith(group)]
                xs = np.array([e["inference_flops"] * (n_test if total else 1) + (e["training_flops"] if total else 0)
                               for e in g], float)
                ys = np.array([e["mean"]["mcc"] for e in g])
                err = np.array([e["std"]["mcc"] for e in g])
                order = np.argsort(xs)
                label = group + "FISTA" if family.startswith("fista") else ", ".join(e["label"] for e in g)
                ax.errorbar(xs[order], ys[order], yerr=err[order], marker="osD^v<>p*hX"[style % 11], capsize=3,
                            color=plt.cm.tab20(style % 20), linestyle="-" if len(g) > 1 else "none", label=label)
                style += 1
        ax.set_xscale("log")
        ax.set_xlabel("training + inference FLOPs (test set)" if total else "inference FLOPs per sample")
        ax.set_ylabel("latent MCC (test)")
        ax.set_title(f"{regime}: latent MCC vs {'total' if total else 'inference'} compute")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6, loc="center left", bbox_to_anchor=(1.01, 0.5))
        fig.tight_layout()
        path = out_dir / f"{regime}_mcc_vs_{'total' if total else 'inference'}_flops.png"
        fig.savefig(path, dpi=120)
        plt.close(fig)
        paths.append(path)
    return paths


def write(out_dir: str | Path, results: dict[str, Any], *, drawn: tuple[str, ...] = ()) -> str:
    """Write ``results.md`` and ``figures/`` (but the figures of the regimes in ``drawn``, drawn
    already by :func:`regime_figures`); return the table."""
    out_dir = Path(out_dir)
    text = table(results["methods"]) + "\n\nCompute frontier (inference FLOPs per sample):\n\n" + frontier_table(
        results.get("frontier", []))
    n_test = results.get("n_test", 1024)
    figures(out_dir / "figures", results["methods"], n_test, skip=drawn)
    (out_dir / "results.md").write_text(
        f"# amortisation-gap\n\nseeds {results['seeds']}, {results['devices']}; mean ± std over seeds (ddof=1)\n\n{text}\n")
    return text
