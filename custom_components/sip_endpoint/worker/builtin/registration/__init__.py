"""Registration of the built-in engine's extensions (RFC 3261 10), with liveness.

``BuiltinAccount`` (account.py) is one extension; ``AccountHost`` (host.py) is what it
needs from the stack. The other modules are its parts: where requests go
(target.py), the requests (requests.py), reading a registrar's answer (bindings.py)
and the timings (timing.py).
"""

from .account import BuiltinAccount
from .host import AccountHost, NoAnswer

__all__ = ["AccountHost", "BuiltinAccount", "NoAnswer"]
