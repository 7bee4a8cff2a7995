"""Text corpora that exist offline: the docstrings of installed Python packages, or the user's own files.

A document is one paragraph (text between blank lines) with its whitespace collapsed to single
spaces, kept if it has at least ``min_chars`` characters and cut to ``max_chars``; exact duplicates
are dropped (the first is kept). Docstrings are read with :mod:`ast` from the packages' source files,
in sorted path order, without importing anything, so the corpus is a pure function of the installed
versions (recorded by :func:`describe`).

Example::

    docs = docstring_corpus(("numpy",), max_docs=2000)
    print(describe(("numpy",)), len(docs), docs[0][:60])
"""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import os
import platform
import re
import warnings
from pathlib import Path
from typing import Iterable, Sequence

from jaxsparse._checks import positive_int

_SPACE = re.compile(r"\s+")
_PARAGRAPH = re.compile(r"\n\s*\n")


def paragraphs(text: str, *, min_chars: int = 80, max_chars: int = 1000) -> list[str]:
    """The paragraphs of ``text`` (split at blank lines, whitespace collapsed) with at least ``min_chars``
    characters, each cut to ``max_chars``."""
    out = []
    for p in _PARAGRAPH.split(text):
        p = _SPACE.sub(" ", p).strip()
        if len(p) >= min_chars:
            out.append(p[:max_chars])
    return out


def _package_files(package: str) -> list[Path]:
    spec = importlib.util.find_spec(package)
    if spec is None:
        raise ValueError(f"`packages`: {package!r} is not installed")
    roots = list(spec.submodule_search_locations or []) or [os.path.dirname(spec.origin or "")]
    files = sorted({p for root in roots for p in Path(root).rglob("*.py")})
    return files if spec.submodule_search_locations else [Path(spec.origin)]


def _docstrings(path: Path) -> Iterable[str]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # invalid escape sequences in old sources
            tree = ast.parse(path.read_text(encoding="utf-8", errors="replace"))
    except (SyntaxError, ValueError):
        return
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            doc = ast.get_docstring(node, clean=True)
            if doc:
                yield doc


def _dedupe(docs: Iterable[str], max_docs: int | None) -> list[str]:
    seen, out = set(), []
    for d in docs:
        if d not in seen:
            seen.add(d)
            out.append(d)
            if max_docs is not None and len(out) >= max_docs:
                break
    return out


def docstring_corpus(packages: Sequence[str] = ("numpy", "scipy", "sklearn"), *, min_chars: int = 80,
                     max_chars: int = 1000, max_docs: int | None = None) -> list[str]:
    """Paragraphs of the docstrings of the installed ``packages`` (see the module docstring).

    Args:
      packages: importable package names, read in this order.
      min_chars, max_chars: shortest paragraph kept, and the length a paragraph is cut to.
      max_docs: stop after this many documents (``None``: all).
    """
    if isinstance(packages, str) or not packages:
        raise ValueError(f"`packages` must be a non-empty sequence of package names, got {packages!r}")
    min_chars, max_chars = positive_int("min_chars", min_chars), positive_int("max_chars", max_chars)
    if max_docs is not None:
        max_docs = positive_int("max_docs", max_docs)

    def gen():
        for package in packages:
            for path in _package_files(package):
                for doc in _docstrings(path):
                    yield from paragraphs(doc, min_chars=min_chars, max_chars=max_chars)

    return _dedupe(gen(), max_docs)


def text_files(paths: Sequence[str | os.PathLike], *, min_chars: int = 80, max_chars: int = 1000,
               max_docs: int | None = None) -> list[str]:
    """Paragraphs of the user's own UTF-8 text files, in the order given (see the module docstring)."""
    if isinstance(paths, (str, os.PathLike)) or not paths:
        raise ValueError(f"`paths` must be a non-empty sequence of file paths, got {paths!r}")
    for p in paths:
        if not Path(p).is_file():
            raise FileNotFoundError(f"`paths`: {p} is not a file")
    if max_docs is not None:
        max_docs = positive_int("max_docs", max_docs)
    docs = (q for p in paths for q in paragraphs(Path(p).read_text(encoding="utf-8"), min_chars=min_chars,
                                                   max_chars=max_chars))
    return _dedupe(docs, max_docs)


def describe(packages: Sequence[str]) -> str:
    """``"docstrings of numpy 2.1.3, scipy 1.14.1"``: the packages and their installed versions."""
    def version(p: str) -> str:
        try:
            return importlib.metadata.version({"sklearn": "scikit-learn"}.get(p, p))
        except importlib.metadata.PackageNotFoundError:  # the standard library
            return f"(Python {platform.python_version()})"

    return "docstrings of " + ", ".join(f"{p} {version(p)}" for p in packages)
