"""Typed errors: one exception class per RPC status code (envelope.proto
StatusCode, gRPC's numbering), all subclasses of LoomError."""


class LoomError(Exception):
    """A call failed. code/status: the RPC status (e.g. 5, "NOT_FOUND");
    message, and when loomd sent a structured error: detail, hint,
    location ("file:line:col: field") and retryable."""

    code = 2
    status = "UNKNOWN"

    def __init__(self, message, detail="", hint="", location="", retryable=False):
        super().__init__(message)
        self.message = message
        self.detail = detail
        self.hint = hint
        self.location = location
        self.retryable = retryable

    def __str__(self):
        s = "%s: %s" % (self.status, self.message)
        if self.location:
            s = "%s (at %s)" % (s, self.location)
        if self.detail:
            s += "\n  detail: " + self.detail
        if self.hint:
            s += "\n  hint: " + self.hint
        return s


def _make(name, code, status, doc):
    return type(name, (LoomError,), {"code": code, "status": status, "__doc__": doc})


Cancelled = _make("Cancelled", 1, "CANCELLED", "The call was cancelled.")
Unknown = _make("Unknown", 2, "UNKNOWN", "An error with no better code.")
InvalidArgument = _make("InvalidArgument", 3, "INVALID_ARGUMENT",
                        "Malformed request or workflow.")
DeadlineExceeded = _make("DeadlineExceeded", 4, "DEADLINE_EXCEEDED",
                         "The deadline passed first.")
NotFound = _make("NotFound", 5, "NOT_FOUND", "No such run, worker or method.")
AlreadyExists = _make("AlreadyExists", 6, "ALREADY_EXISTS", "It exists already.")
PermissionDenied = _make("PermissionDenied", 7, "PERMISSION_DENIED",
                         "Authenticated but not allowed.")
ResourceExhausted = _make("ResourceExhausted", 8, "RESOURCE_EXHAUSTED",
                          "A size or rate limit was reached.")
FailedPrecondition = _make("FailedPrecondition", 9, "FAILED_PRECONDITION",
                           "The system is not in a state for this.")
Aborted = _make("Aborted", 10, "ABORTED", "A conflict.")
OutOfRange = _make("OutOfRange", 11, "OUT_OF_RANGE", "A value past its range.")
Unimplemented = _make("Unimplemented", 12, "UNIMPLEMENTED", "Not implemented by the server.")
Internal = _make("Internal", 13, "INTERNAL", "A bug in the server.")
Unavailable = _make("Unavailable", 14, "UNAVAILABLE", "Transient: retry later.")
DataLoss = _make("DataLoss", 15, "DATA_LOSS", "Unrecoverable data loss.")
Unauthenticated = _make("Unauthenticated", 16, "UNAUTHENTICATED",
                        "Missing or invalid token.")

BY_CODE = {c.code: c for c in (Cancelled, Unknown, InvalidArgument, DeadlineExceeded, NotFound,
                               AlreadyExists, PermissionDenied, ResourceExhausted,
                               FailedPrecondition, Aborted, OutOfRange, Unimplemented, Internal,
                               Unavailable, DataLoss, Unauthenticated)}


def error_for(code, message, error=None):
    """The exception for a status code; error: an envelope_pb2.Error or None."""
    cls = BY_CODE.get(code, Unknown)
    if error is not None and (error.message or error.detail or error.hint):
        return cls(error.message or message, error.detail, error.hint, error.location,
                   error.retryable)
    return cls(message)
