"""Closed forms: amortisation-gap bounds (``amortisation``) and exact lazy/rich learning dynamics (``rich_lazy``)."""

from jaxsparse.theory import rich_lazy  # noqa: F401
