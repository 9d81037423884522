"""The service's exceptions: one root, translated to HTTP problems at the API boundary.

AccessdError
├── NotFound                  404  a record does not exist
├── Conflict                  409  a unique identifier is taken, or a record is in use
├── InvalidInput              422  a value breaks a domain rule (validity too long, …)
├── LifecycleRefused          409  the lifecycle or separation of duties refuses an action
├── PreconditionRequired      428  an update came without If-Match
├── PreconditionFailed        412  an update was based on a stale version (lost update)
├── AuthenticationFailed      401  no, unknown or expired bearer token; bad password
├── TooManyAttempts           429  logins from this account or address are held back
├── PermissionDenied          403  the operator's roles do not allow the action
├── DeviceUnavailable         503  no gateway for the device, or the device is offline
│   └── NoMqttPanel, PanelOffline  (also CommandFailed, accessd/gateway/service.py)
├── DeviceTimeout             504  the device did not answer in time
│   └── CommandTimedOut            (also CommandFailed)
├── CommandFailed                  a door command failed: one of the three above
└── AclError                  422  the MQTT broker files cannot be made (accessd/gateway/acl.py)
"""

from __future__ import annotations

from typing import Any


class AccessdError(Exception):
    status = 500
    title = "Internal error"
    code = "internal"

    def __init__(self, detail: str, *, code: str | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code
        self.extra = extra


class NotFound(AccessdError):
    status = 404
    title = "Not found"
    code = "not_found"


class Conflict(AccessdError):
    status = 409
    title = "Conflict"
    code = "conflict"


class InvalidInput(AccessdError):
    status = 422
    title = "Invalid input"
    code = "invalid_input"


class LifecycleRefused(AccessdError):
    status = 409
    title = "Lifecycle action refused"
    code = "lifecycle_refused"


class PreconditionRequired(AccessdError):
    status = 428
    title = "Precondition required"
    code = "if_match_required"


class PreconditionFailed(AccessdError):
    status = 412
    title = "Precondition failed"
    code = "stale_version"


class AuthenticationFailed(AccessdError):
    status = 401
    title = "Authentication required"
    code = "unauthenticated"


class TooManyAttempts(AccessdError):
    """Refused before any password is checked; ``retry_after`` whole seconds (Retry-After)."""

    status = 429
    title = "Too many attempts"
    code = "too_many_attempts"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class PermissionDenied(AccessdError):
    status = 403
    title = "Forbidden"
    code = "forbidden"


class DeviceUnavailable(AccessdError):
    status = 503
    title = "Device unavailable"
    code = "device_unavailable"


class DeviceTimeout(AccessdError):
    status = 504
    title = "Device did not answer"
    code = "device_timeout"
