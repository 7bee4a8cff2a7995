"""Models as ``(init, apply)`` pairs over plain-pytree parameters."""

from jaxsparse.models import sae, vae

__all__ = ["sae", "vae"]
