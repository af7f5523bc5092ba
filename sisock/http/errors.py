"""The errors a request can end in, each with the HTTP status it is answered with."""
from __future__ import annotations

from autobahn.wamp.exception import ApplicationError
from twisted.internet import defer


class RequestError(Exception):
    """Base: ``status`` is the HTTP status; the message becomes ``{"error": message}``."""

    status = 500


class BadRequest(RequestError, ValueError):
    """The request is malformed; the message says what is wrong."""

    status = 400


class Unauthorized(RequestError):
    """No credentials, or wrong ones (the answer carries ``WWW-Authenticate``)."""

    status = 401


class NotFound(RequestError):
    """No such endpoint."""

    status = 404


class TimedOut(RequestError):
    """The client did not send its whole request in time."""

    status = 408


class TooLarge(RequestError):
    """The request, or the answer it asks for, is over a limit; the message names it and how to raise it."""

    status = 413


class UnsupportedType(RequestError):
    """The body is not declared ``application/json``."""

    status = 415


class WrongHost(RequestError):
    """The ``Host`` header names none of ``HTTP_PUBLIC_NAMES``."""

    status = 421


class NodeFailed(RequestError):
    """A data node timed out or failed; the message names it."""

    status = 502


class NotConnected(RequestError):
    """sisock-http is not joined to the WAMP router right now."""

    status = 503


def describe(error: BaseException) -> str:
    """One readable line for a WAMP, timeout or other error."""
    if isinstance(error, (defer.TimeoutError, defer.CancelledError, TimeoutError)):
        return "no answer in time"
    if isinstance(error, ApplicationError):
        return f"{error.error}: {error.args[0] if error.args else ''}".rstrip(": ")
    return str(error) or type(error).__name__
