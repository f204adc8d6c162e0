"""Wake the polling thread out of `libHandleEvents` when work arrives.

The polling thread waits in pjlib's ioqueue (`libHandleEvents(POLL_MSEC)`) and only
then looks at its inbox, so a request from Home Assistant (an `answer`, say) waited up
to `POLL_MSEC`. Whoever puts work in the inbox also sends a CRLF keep-alive datagram
to the worker's own UDP SIP port from a loopback socket: the ioqueue wakes at once,
and pjsip drops the datagram (it is shorter than any SIP message; RFC 5626 keep-alive).
"""

import contextlib
import logging
import socket
import threading

_LOGGER = logging.getLogger(__name__)

KEEPALIVE = b"\r\n"
_ANY_ADDRESSES = frozenset({"", "0.0.0.0"})  # noqa: S104 - compared, not bound


class PollWaker:
    """Sends one small datagram to the worker's UDP SIP port, from any thread."""

    def __init__(self) -> None:
        """Do nothing until `arm` names the port."""
        self._socket: socket.socket | None = None
        self._target: tuple[str, int] | None = None
        self._lock = threading.Lock()

    def arm(self, bind_host: str, port: int) -> None:
        """Wake by sending to ``port`` on ``bind_host`` (loopback for any address)."""
        if bind_host == "::":
            host = "::1"
        elif bind_host in _ANY_ADDRESSES:
            host = "127.0.0.1"
        else:
            host = bind_host
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        try:
            sock = socket.socket(family, socket.SOCK_DGRAM)
            sock.setblocking(False)
        except OSError as err:
            _LOGGER.info("No wake-up socket (polling only): %s", err)
            return
        with self._lock:
            self.close_locked()
            self._socket, self._target = sock, (host, port)

    def wake(self) -> None:
        """Make the polling thread's `libHandleEvents` return now (never raises)."""
        with self._lock:
            sock, target = self._socket, self._target
            if sock is None or target is None:
                return
            # A full buffer means a wake-up is already on its way.
            with contextlib.suppress(OSError):
                sock.sendto(KEEPALIVE, target)

    def close(self) -> None:
        """Stop waking (teardown)."""
        with self._lock:
            self.close_locked()

    def close_locked(self) -> None:
        """Close the socket; the caller holds the lock."""
        if self._socket is not None:
            self._socket.close()
        self._socket = self._target = None
