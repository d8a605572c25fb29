"""Parse errors: one hierarchy, one mapping to HTTP.

Every failure a client can see is a ``ParseError`` carrying the Parse ``code`` the SDKs switch on
and the HTTP status Parse Server would answer with. Services raise these (never HTTP errors);
``to_response_body`` / ``http_status`` are the only translation to the wire.

    ParseError(code, message)                  400 unless stated
    ├── InternalError            1             500
    ├── ServiceUnavailable       1             503  (+ Retry-After: database or audit log down)
    ├── ObjectNotFound         101             404  (also: "exists but you may not see it")
    ├── InvalidQuery           102
    ├── InvalidClassName       103
    ├── InvalidKeyName         105
    ├── InvalidPointer         106
    ├── InvalidJSON            107
    ├── IncorrectType          111
    ├── PushMisconfigured      115             (push is not configured)
    ├── OperationForbidden     119             (CLP denial, server-owned field)
    ├── InvalidACL             123
    ├── InvalidInstallationId  132             (_Installation: several match a deviceToken)
    ├── InstallationIdMissing  135             (_Installation: no id field, or no deviceType)
    ├── InvalidInstallationChange 136          (installationId / deviceType never change)
    ├── DuplicateValue         137
    ├── ScriptFailed           141
    ├── ValidationFailed       142
    ├── DuplicateRequest       159
    ├── RequestLimitExceeded   155             429
    ├── UsernameMissing        200
    ├── PasswordMissing        201
    ├── UsernameTaken          202
    ├── EmailTaken             203
    ├── EmailMissing           204
    ├── SessionMissing         206
    ├── AccountAlreadyLinked   208             (authData another account already uses)
    ├── InvalidEmail           125
    ├── InvalidRoleName        139
    ├── OtherCause              -1             (Parse's MFA adapter uses it)
    ├── InvalidSessionToken    209
    ├── UnsupportedService     252
    ├── InvalidSchemaOperation 255
    ├── InvalidFileName        122             (bad or missing file name, extension vs content)
    ├── FileSaveError          130             (type not allowed, content mismatch, empty file)
    ├── FileDeleteError        153             (DELETE /files of a file that is not stored)
    ├── RequestTooLarge        107             413
    ├── RequestTimeout         124             408  (body not in by its deadline, or abandoned)
    └── Unauthorized           (no code)       403  body {"error": "unauthorized"} as Parse does
"""

from __future__ import annotations

from typing import Any, ClassVar


class ParseError(Exception):
    """A failure with a Parse error code; the message is safe to show to the caller."""

    code: ClassVar[int] = 1
    http_status: ClassVar[int] = 400
    default_message: ClassVar[str] = "Internal server error."

    # An audit entry for the refusal itself (a failed link or single sign-on): ``record``'s
    # keyword arguments, written after the request's rollback in a transaction of its own.
    rollback_audit: dict[str, Any] | None = None

    def __init__(self, message: str | None = None) -> None:
        self.message = message or self.default_message
        super().__init__(self.message)

    def body(self) -> dict[str, Any]:
        return {"code": self.code, "error": self.message}


class InternalError(ParseError):
    code, http_status = 1, 500


class ObjectNotFound(ParseError):
    code, http_status, default_message = 101, 404, "Object not found."


class InvalidQuery(ParseError):
    code, default_message = 102, "Invalid query."


class InvalidClassName(ParseError):
    code, default_message = 103, "Invalid class name."


class InvalidKeyName(ParseError):
    code, default_message = 105, "Invalid key name."


class InvalidPointer(ParseError):
    code, default_message = 106, "Invalid pointer."


class InvalidJSON(ParseError):
    code, default_message = 107, "Invalid JSON."


class IncorrectType(ParseError):
    code, default_message = 111, "Incorrect type."


class OperationForbidden(ParseError):
    code, default_message = 119, "Permission denied."


class InvalidACL(ParseError):
    code, default_message = 123, "Invalid ACL."


class DuplicateValue(ParseError):
    code = 137
    default_message = "A duplicate value for a field with unique values was provided"


class ScriptFailed(ParseError):
    code, default_message = 141, "Script failed."


class ValidationFailed(ParseError):
    code, default_message = 142, "Validation failed."


class DuplicateRequest(ParseError):
    code, default_message = 159, "Duplicate request"


class InvalidEmail(ParseError):
    code, default_message = 125, "Email address format is invalid."


class InvalidRoleName(ParseError):
    code, default_message = 139, "Invalid role name."


class RequestLimitExceeded(ParseError):
    code, http_status, default_message = 155, 429, "Too many requests."


class UsernameMissing(ParseError):
    code, default_message = 200, "bad or missing username"


class PasswordMissing(ParseError):
    code, default_message = 201, "password is required"


class UsernameTaken(ParseError):
    code, default_message = 202, "Account already exists for this username."


class EmailTaken(ParseError):
    code, default_message = 203, "Account already exists for this email address."


class EmailMissing(ParseError):
    code, default_message = 204, "you must provide an email"


class ServiceUnavailable(ParseError):
    """The database (or the audit log, without which nothing may be disclosed) cannot be used
    right now; the client should retry after ``retry_after`` seconds."""

    code, http_status = 1, 503
    default_message = "The service is temporarily unavailable; retry shortly."
    retry_after: ClassVar[int] = 2


class SessionMissing(ParseError):
    code, default_message = 206, "Session token required."


class AccountAlreadyLinked(ParseError):
    code, default_message = 208, "this auth is already used"


class OtherCause(ParseError):
    code, default_message = -1, "Request failed."


class InvalidSessionToken(ParseError):
    code, default_message = 209, "Invalid session token"


class UnsupportedService(ParseError):
    code, default_message = 252, "This authentication method is unsupported."


class WebhookError(ParseError):
    code, default_message = 143, "Webhook error."


class PushMisconfigured(ParseError):
    code, default_message = 115, "Missing push configuration"


class InstallationIdMissing(ParseError):
    """135, as Parse Server's RestWrite: no id names the installation, or no deviceType."""

    code, default_message = 135, "deviceType must be specified in this operation"


class InvalidInstallationId(ParseError):
    code, default_message = 132, "Invalid installation id."


class InvalidInstallationChange(ParseError):
    code, default_message = 136, "This field may not be changed in this operation."


class InvalidSchemaOperation(ParseError):
    code, default_message = 255, "Invalid schema operation."


class InvalidFileName(ParseError):
    code, default_message = 122, "Filename contains invalid characters."


class FileSaveError(ParseError):
    code, default_message = 130, "Could not store file."


class FileDeleteError(ParseError):
    code, default_message = 153, "Could not delete file."


class RequestTooLarge(ParseError):
    code, http_status, default_message = 107, 413, "Request body too large."


class RequestTimeout(ParseError):
    code, http_status, default_message = 124, 408, "Request body not received in time."


class Unauthorized(ParseError):
    """Bad application id or client key: Parse answers a bare ``{"error": ...}`` with 403."""

    code, http_status, default_message = 0, 403, "unauthorized"

    def body(self) -> dict[str, Any]:
        return {"error": self.message}


def error_body(exc: BaseException) -> tuple[int, dict[str, Any]]:
    """The (HTTP status, JSON body) for any exception; unknown ones never leak their text."""
    if isinstance(exc, ParseError):
        return exc.http_status, exc.body()
    return 500, {"code": 1, "error": "Internal server error."}
