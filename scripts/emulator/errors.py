"""AWS-shaped errors the emulator raises: one exception class with an explicit code and HTTP status.

The bottom module of the emulator: it imports nothing of it, so every behaviour module and the
server can use it without importing each other. moto serializes a ServiceException in the service's
own protocol (query XML, EC2 XML, JSON); server.py makes the HTTP status the one given here.
"""

from __future__ import annotations

from moto.core.exceptions import ServiceException


class AwsError(ServiceException):
    """An error with an explicit code, serialized by moto in the service's protocol."""

    def __init__(self, code: str, message: str, status: int = 400):
        super().__init__(code, message)
        self.status = status


def validation_error(message: str) -> AwsError:
    return AwsError("ValidationError", message)
