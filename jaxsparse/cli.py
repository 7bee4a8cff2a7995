"""The ``jaxsparse`` command: list, run, resume, eval and report experiments.

::

    jaxsparse list                                        # experiments and their defaults
    jaxsparse run sae-synthetic --seeds 8 --out runs/sae-synthetic/demo --set optim.lr=3e-3
    jaxsparse resume runs/sae-synthetic/demo              # continue a killed run bit-identically
    jaxsparse eval runs/sae-synthetic/demo                # re-score every kept checkpoint
    jaxsparse report runs/sae-synthetic/demo              # tables + figures from results.json

Multi-host: add ``--coordinator HOST:PORT --num-processes N --process-id I`` (or
``--distributed`` to auto-detect SLURM/TPU/MPI clusters) and start the same command on every host.

On CPU the commands add LLVM options to ``XLA_FLAGS`` that let XLA vectorise elementwise loops over
arrays 12-40 wide, such as the ``[B, 16]`` activations of paper 1's models (the main job's table
was bit for bit the same, in 4 min 5 s instead of 5 min 7 s; :mod:`jaxsparse.cpu_codegen`); an
``XLA_FLAGS`` that sets ``--xla_backend_extra_options`` itself is left alone.

Compiled programs are kept between runs in ``~/.cache/jaxsparse/xla`` (``JAXSPARSE_COMPILE_CACHE=DIR``
or ``off``; :func:`compile_cache`), so a second run, a resume or an eval skips compilation.

The CLI has no per-experiment code: experiments are found in the registry (the
``jaxsparse.experiments`` entry points register them). Heavy imports happen inside the commands. Errors of the
project's own kinds (bad config, bad run directory, diverged training, unreadable checkpoint) print
one line and exit 1; anything else is a bug and shows its traceback (``--debug`` shows it always).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
from typing import Sequence

from jaxsparse.cpu_codegen import set_cpu_codegen_flags


PRESETS = ("paper", "smoke")
"""Names of the preset-config functions an experiment's module may define (``paper()``: the paper's
grid and budget; ``smoke()``: a seconds-long version for tests)."""


COMPILE_CACHE_ENV = "JAXSPARSE_COMPILE_CACHE"
"""Where the commands keep compiled XLA programs between runs: a directory, or ``off``."""


def compile_cache() -> str | None:
    """Turn on JAX's persistent compilation cache for this command and the worker processes it starts.

    A second run of an experiment (or a resume, an eval) loads its compiled programs instead of
    compiling them again: the same executables, so the same numbers. Directory:
    ``$JAXSPARSE_COMPILE_CACHE``, else ``$XDG_CACHE_HOME/jaxsparse/xla`` (``~/.cache/jaxsparse/xla``);
    ``JAXSPARSE_COMPILE_CACHE=off`` turns it off, and a ``JAX_COMPILATION_CACHE_DIR`` of your own is
    left as it is. The directory is not size-capped (JAX's eviction, ``JAX_COMPILATION_CACHE_MAX_SIZE``,
    raced between concurrent processes in this project's tests; set it yourself if you want one);
    delete it at any time to reclaim the space. Set through environment variables so
    that spawned workers inherit it; must run before JAX compiles anything. Returns the directory in
    use, or ``None``.
    """
    own = os.environ.get("JAX_COMPILATION_CACHE_DIR")
    if own:
        return own
    setting = os.environ.get(COMPILE_CACHE_ENV)
    if setting is not None and setting.strip().lower() in ("", "0", "off", "no", "false", "none"):
        return None
    path = setting or os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "jaxsparse", "xla")
    # the engine's programs (init, chunks, scoring, solvers) take 0.1-6 s each to compile on CPU
    min_seconds = os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.1")
    os.environ["JAX_COMPILATION_CACHE_DIR"] = path
    if "jax" in sys.modules:  # imported already (the env is read at import): set this process's config too
        import jax

        jax.config.update("jax_compilation_cache_dir", path)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", float(min_seconds))
    return path


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="jaxsparse", description=__doc__.split("\n\n")[0])
    p.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    sub = p.add_subparsers(dest="command", required=True)

    sub.add_parser("list", help="experiments and their default configs")

    dist = argparse.ArgumentParser(add_help=False)
    g = dist.add_argument_group("multi-host (jax.distributed)")
    g.add_argument("--distributed", action="store_true", help="call jax.distributed.initialize() (auto-detect cluster)")
    g.add_argument("--coordinator", metavar="HOST:PORT", help="coordinator address (process 0's host)")
    g.add_argument("--num-processes", type=int, metavar="N")
    g.add_argument("--process-id", type=int, metavar="I")

    run = sub.add_parser("run", parents=[dist], help="train an experiment (all seeds as one vmapped program)")
    run.add_argument("name", help="experiment name (see `jaxsparse list`)")
    run.add_argument("--preset", help=f"start from one of the experiment's preset configs {PRESETS} instead of its "
                                      "defaults (e.g. `paper`: the paper's grid and budget); --set applies on top")
    run.add_argument("--seeds", type=int, help="number of seeds (sets train.seeds)")
    run.add_argument("--out", help="run directory (default runs/<name>/<timestamp>)")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="FIELD=VALUE",
                     help="override a config field, e.g. --set model.lam=0.03 (repeatable)")
    run.add_argument("--overwrite", action="store_true",
                     help="replace the engine's files of an existing run of the same experiment (other files are kept)")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.add_argument("--jobs", type=int, metavar="N", help="methods trained at once, each in its own process "
                     "(default: 2 on a CPU with 2+ cores, else 1; see jaxsparse.train.fit)")
    run.add_argument("--threads", type=int, metavar="N", help="on CPU, host threads a sweep's seeds train in, each "
                     "running a part of them (default: the cores a process may use; 1: one program; sets "
                     "$JAXSPARSE_SWEEP_THREADS; see jaxsparse.train.build_sweep)")

    resume = sub.add_parser("resume", parents=[dist], help="continue a run from its latest good checkpoint")
    resume.add_argument("run_dir")
    resume.add_argument("--set", dest="overrides", action="append", default=[], metavar="FIELD=VALUE",
                        help="expected config changes; resuming refuses any difference from the saved config")
    resume.add_argument("--no-progress", action="store_true")
    resume.add_argument("--jobs", type=int, metavar="N", help="methods trained at once (as for run)")
    resume.add_argument("--threads", type=int, metavar="N", help="host threads per CPU sweep (as for run)")

    ev = sub.add_parser("eval", parents=[dist], help="re-score checkpoints with jaxsparse.eval; writes eval.json")
    ev.add_argument("run_dir")
    ev.add_argument("--step", type=int, action="append", help="only this checkpoint step (repeatable)")

    rep = sub.add_parser("report", help="tables + figures from results.json; writes report.md and figures/")
    rep.add_argument("run_dir")
    return p


def _init_distributed(args: argparse.Namespace) -> None:
    if not (args.distributed or args.coordinator):
        return
    import jax

    if args.coordinator:
        if args.num_processes is None or args.process_id is None:
            from jaxsparse.train import ConfigError

            raise ConfigError("--coordinator needs --num-processes and --process-id")
        jax.distributed.initialize(args.coordinator, num_processes=args.num_processes, process_id=args.process_id)
    else:
        jax.distributed.initialize()


def _quiet_orbax() -> None:
    import logging

    from absl import logging as absl_logging

    absl_logging.set_verbosity(absl_logging.ERROR)
    logging.getLogger("absl").setLevel(logging.ERROR)


def cmd_list(args: argparse.Namespace) -> int:
    from jaxsparse import train

    for name in train.names():
        exp = train.get(name)
        print(f"{name}: {exp.doc}")
        for key, value in train.config.flatten(exp.config_cls()).items():
            print(f"    {key} = {json.dumps(value)}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from jaxsparse import train

    exp = train.get(args.name)
    overrides = list(args.overrides)
    if args.seeds is not None:
        overrides.append(f"train.seeds={args.seeds}")
    config = train.override(_preset(exp, args.preset) if args.preset else exp.config_cls(), overrides)
    out = args.out or f"runs/{exp.name}/{datetime.datetime.now().strftime('%Y%m%d-%H%M%S')}"
    _threads(args)
    results = train.fit(exp, config, out, overwrite=args.overwrite, progress=not args.no_progress, jobs=_jobs(args))
    _print_summary(out, results)
    return 0


def _threads(args: argparse.Namespace) -> None:
    """``--threads N``: ``$JAXSPARSE_SWEEP_THREADS`` for this process and its workers."""
    from jaxsparse.train import ConfigError
    from jaxsparse.train.sweep import THREADS_ENV

    if args.threads is not None:
        if args.threads < 1:
            raise ConfigError(f"--threads must be >= 1, got {args.threads}")
        os.environ[THREADS_ENV] = str(args.threads)


def _jobs(args: argparse.Namespace) -> int:
    from jaxsparse.train import ConfigError, default_jobs

    if args.jobs is None:
        return default_jobs()
    if args.jobs < 1:
        raise ConfigError(f"--jobs must be >= 1, got {args.jobs}")
    return args.jobs


def _preset(exp, name: str):
    """The config returned by the preset function ``name`` of ``exp``'s module."""
    import importlib

    from jaxsparse.train import ConfigError

    module = importlib.import_module(exp.module)
    have = [p for p in PRESETS if callable(getattr(module, p, None))]
    if name not in have:
        raise ConfigError(f"--preset must be one of {have} for {exp.name!r} (presets of {exp.module}), got {name!r}")
    config = getattr(module, name)()
    if not isinstance(config, exp.config_cls):
        raise ConfigError(f"preset {name!r} of {exp.module} returned {type(config).__name__}, not {exp.config_cls.__name__}")
    return config


def cmd_resume(args: argparse.Namespace) -> int:
    from jaxsparse import train

    exp, saved = train.load_config(args.run_dir)
    config = train.override(saved, args.overrides) if args.overrides else None
    _threads(args)
    results = train.fit(exp, config, args.run_dir, resume=True, progress=not args.no_progress, jobs=_jobs(args))
    _print_summary(args.run_dir, results)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from jaxsparse import train
    from jaxsparse.train.report import results_table

    out = train.evaluate(args.run_dir, args.step)
    for method, scored in (out["methods"].items() if "methods" in out else [(None, out)]):
        for step, results in scored.items():
            print(f"{method + ', ' if method else ''}checkpoint {step}:\n{results_table(results)}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from jaxsparse.train.report import write_report

    print(write_report(args.run_dir))
    return 0


def _print_summary(run_dir: str, results: dict) -> None:
    import jax

    where = f"{jax.device_count()} devices, {jax.process_count()} processes"
    if "mean" not in results:  # an experiment whose analysis reports per method only
        names = [e.get("method", "?") for e in results.get("methods", [])]
        print(f"{run_dir}: methods {', '.join(names)} on {where}; tables in {run_dir}/results.md")
        return
    means = ", ".join(f"{k}={v:.4g}" for k, v in results["mean"].items())
    print(f"{run_dir}: {results['n_runs']} runs on {where}; mean {means}")


COMMANDS = {"list": cmd_list, "run": cmd_run, "resume": cmd_resume, "eval": cmd_eval, "report": cmd_report}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``jaxsparse`` console script; returns the exit status."""
    args = _parser().parse_args(argv)
    if args.command != "list":
        set_cpu_codegen_flags()  # before JAX's first computation (jaxsparse.cpu_codegen)
        compile_cache()
    from jaxsparse.train import CheckpointError, ConfigError, RunDirError, TrainingDiverged

    try:
        if "distributed" in args:
            _init_distributed(args)
        _quiet_orbax()
        return COMMANDS[args.command](args)
    except (ConfigError, RunDirError, TrainingDiverged, CheckpointError) as e:  # the project's own errors only
        if args.debug:
            raise
        print(f"jaxsparse {args.command}: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
