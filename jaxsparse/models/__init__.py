"""Models as ``(init, apply)`` pairs over plain-pytree parameters."""

from jaxsparse.models import mlp, sae, transformer, vae

__all__ = ["mlp", "sae", "transformer", "vae"]
