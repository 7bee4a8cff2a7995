"""Packaging beyond setup.cfg: the repository's ``experiments/`` folder installs as ``jaxsparse.experiments``.

So a plain (non-editable) ``pip install .`` ships the experiments without claiming the top-level name
``experiments`` in site-packages; the CLI finds them through the ``jaxsparse.experiments`` entry points
(setup.cfg), which other packages can use to register experiments of their own.
"""

from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["jaxsparse", "jaxsparse.*"])
    + ["jaxsparse.experiments"]
    + [f"jaxsparse.experiments.{p}" for p in find_packages("experiments")],
    package_dir={"jaxsparse.experiments": "experiments"},
)
