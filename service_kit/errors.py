"""Domain errors: raised by domain and service code, mapped to gRPC status in one interceptor."""

MAX_MESSAGE = 500


class DomainError(Exception):
    """Base of every error a client can cause. `field` names the offending request field;
    `code` is the name of the gRPC status code the error maps to."""

    code = "UNKNOWN"

    def __init__(self, message: str, *, field: str = "") -> None:
        # A message may quote what the client sent: cut short, it fits in the status metadata
        # (a few KiB), however long the input was.
        if len(message) > MAX_MESSAGE:
            message = message[:MAX_MESSAGE] + "\u2026"
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidArgument(DomainError):
    """The request itself is wrong (format, range, a reference that does not match)."""

    code = "INVALID_ARGUMENT"


class NotFound(DomainError):
    """A referenced object does not exist for this merchant."""

    code = "NOT_FOUND"


class AlreadyExists(DomainError):
    """The object (or a unique attribute of it) exists already."""

    code = "ALREADY_EXISTS"


class FailedPrecondition(DomainError):
    """The request is well formed but the current state refuses it."""

    code = "FAILED_PRECONDITION"


class PermissionDenied(DomainError):
    """The caller may not act on this object."""

    code = "PERMISSION_DENIED"


class Unauthenticated(DomainError):
    """The caller did not say who it is."""

    code = "UNAUTHENTICATED"


class Unavailable(DomainError):
    """A service this one depends on cannot be reached; retry later."""

    code = "UNAVAILABLE"
