"""Where one extension's registration stands: what its `registration` events carry.

Both engines' accounts keep one `RegistrationRecord` and report every change with the
`RegistrationState` that `update` returns.
"""

from dataclasses import dataclass, field
import time

from ...protocol.payloads import RegistrationState
from ...protocol.status import RegistrationStatus


@dataclass(slots=True)
class RegistrationRecord:
    """One extension's registration status, its last answer and its times."""

    account_id: str
    registrar: str  # the registrar URI, as the account sends REGISTER to it
    status: RegistrationStatus = RegistrationStatus.REGISTERING
    code: int | None = None  # the last answer's SIP code (None: none yet)
    reason: str = ""
    changed_at: float = field(default_factory=time.time)  # when the status changed
    last_success: float | None = None  # when a REGISTER last succeeded
    expires: int = 0  # the seconds the registrar granted (0: not registered)

    def update(
        self,
        status: RegistrationStatus,
        code: int | None,
        reason: str,
        expires: int,
    ) -> RegistrationState:
        """Take a new status and answer; return the state to report.

        ``changed_at`` moves only when the status itself changes (a refresh keeps it).
        """
        if status is not self.status:
            self.changed_at = time.time()
        self.status, self.code, self.reason, self.expires = (
            status,
            code,
            reason,
            expires,
        )
        return self.state()

    def state(self) -> RegistrationState:
        """Return where the registration stands."""
        return RegistrationState(
            account_id=self.account_id,
            status=self.status,
            code=self.code,
            reason=self.reason,
            changed_at=self.changed_at,
            last_success=self.last_success,
            expires=self.expires,
            registrar=self.registrar,
        )
