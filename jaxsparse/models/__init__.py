"""Models as ``(init, apply)`` pairs over plain-pytree parameters."""

from jaxsparse.models import bert, convnet, mlp, sae, transformer, vae

__all__ = ["bert", "convnet", "mlp", "sae", "transformer", "vae"]
