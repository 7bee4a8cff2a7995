"""Models as ``(init, apply)`` pairs over plain-pytree parameters."""

from jaxsparse.models import sae

__all__ = ["sae"]
