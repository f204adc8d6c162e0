"""One extension of the built-in engine (see the ``registration`` package)."""

from .registration.account import BuiltinAccount

__all__ = ["BuiltinAccount"]
