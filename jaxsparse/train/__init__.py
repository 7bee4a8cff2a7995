"""The training engine: train states, jitted steps, ``lax.scan`` loops, vmapped/sharded sweeps,
orbax run directories, restore/resume and the experiment registry.

From a notebook::

    config, state = jaxsparse.train.restore("runs/sae-synthetic/demo")   # stacked over seeds
"""

from jaxsparse.train.config import ConfigError, TrainConfig, diff, from_dict, override, to_dict
from jaxsparse.train.engine import (
    ConfigMismatch,
    Trained,
    TrainingDiverged,
    as_completed,
    default_jobs,
    evaluate,
    fit,
    load_config,
    methods,
    restore,
    restore_run,
    score,
)
from jaxsparse.train.registry import Experiment, get, names, register
from jaxsparse.train.rundir import RunDirError, read_metrics
from jaxsparse.train.checkpoint import CheckpointError
from jaxsparse.train.step import TrainState, init_state, make_step, scan_batches, scan_steps
from jaxsparse.train.sweep import Task, auto_seed_batch, build_sweep, init_run, init_sweep, seed_mesh, sweep_chunk

__all__ = [
    "CheckpointError",
    "ConfigError",
    "ConfigMismatch",
    "Experiment",
    "RunDirError",
    "Task",
    "TrainConfig",
    "Trained",
    "TrainState",
    "TrainingDiverged",
    "as_completed",
    "auto_seed_batch",
    "build_sweep",
    "default_jobs",
    "diff",
    "evaluate",
    "fit",
    "from_dict",
    "get",
    "init_run",
    "init_state",
    "init_sweep",
    "load_config",
    "make_step",
    "methods",
    "names",
    "override",
    "read_metrics",
    "register",
    "restore",
    "restore_run",
    "scan_batches",
    "scan_steps",
    "score",
    "seed_mesh",
    "sweep_chunk",
    "to_dict",
]
