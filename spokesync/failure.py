"""What went wrong, for a person: the one place that turns an exception into a message and an
exit code (the CLI's top level and the runner's per-mapping stop both use it).

Errors a user causes or can fix — a refused token, missing scopes, the daily budget, a state DB
another process holds, a disk that is full or read-only, a bad mapping or setting, missing
landing files — become one line naming the file, variable or scope and what to do, with their
own :class:`~spokesync.exit_codes.ExitCode`. Anything else is a bug: ``FAILED``, and the CLI
points at ``--debug`` for the traceback.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass

import duckdb

from spokesync.exit_codes import ExitCode
from spokesync.hubspot.errors import (
    DailyLimitReached,
    HubSpotAuthError,
    HubSpotConfigError,
    HubSpotError,
    RetriesExhausted,
)
from spokesync.hubspot.properties import PropertyMismatchError
from spokesync.hubspot.push import PushAborted
from spokesync.mapping.loader import MappingError
from spokesync.settings import SettingsError
from spokesync.settings import token_variable as settings_token_variable
from spokesync.state.connection import StateStoreBusy, StateStoreUnwritable
from spokesync.warehouse import WarehouseEmpty

STORAGE_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM, errno.EDQUOT}


@dataclass(frozen=True, slots=True)
class Failure:
    """An exception as a person should see it."""

    code: ExitCode
    message: str
    expected: bool  # a user-fixable error (no traceback unless --debug)
    status: int | None = None  # HubSpot's HTTP status, when HubSpot answered


SUMMARY_ATTRIBUTE = "sync_summary"
"""An exception that stopped a sync run carries the run's summary of the mappings done before
it under this attribute (see :func:`attach_summary`), so the CLI prints what was done."""


def attach_summary(exc: BaseException, summary: object) -> None:
    setattr(exc, SUMMARY_ATTRIBUTE, summary)


def attached_summary(exc: BaseException) -> object | None:
    return getattr(exc, SUMMARY_ATTRIBUTE, None)


def token_variable(env: str | None) -> str:
    """The variable(s) that hold the token in ``env`` (prod reads only its own)."""
    if env is None:
        return "HUBSPOT_ACCESS_TOKEN_<ENV>"
    own = settings_token_variable(env)
    return own if env == "prod" else f"{own} (or HUBSPOT_ACCESS_TOKEN, for the local sandbox)"


def explain(exc: BaseException, *, env: str | None = None) -> Failure:
    """The :class:`Failure` for ``exc``; ``env`` names the token variable in auth messages."""
    status = exc.error.status_code if isinstance(exc, HubSpotError) and exc.error else None
    if isinstance(exc, HubSpotAuthError) or (isinstance(exc, PushAborted) and status in (401, 403)):
        if status == 403:
            return Failure(ExitCode.AUTH, str(exc), True, status)
        return Failure(
            ExitCode.AUTH,
            f"{exc}. Set {token_variable(env)} to a valid private-app token or service key "
            "of this portal, then run again",
            True,
            status,
        )
    if isinstance(exc, PushAborted):  # HubSpot rejects the request for every record alike
        return Failure(ExitCode.USAGE, str(exc), True, status)
    if isinstance(exc, DailyLimitReached):
        return Failure(
            ExitCode.DAILY_BUDGET,
            f"{exc}. What was not sent goes on the next run after the daily reset (or raise "
            "--daily-budget if it was set lower than the portal's limit)",
            True,
        )
    if isinstance(exc, PropertyMismatchError | HubSpotConfigError):
        return Failure(ExitCode.USAGE, str(exc), True)
    if isinstance(exc, RetriesExhausted) and exc.unreachable:
        return Failure(
            ExitCode.FAILED,
            f"{exc}. No connection to HubSpot could be made: check HUBSPOT_BASE_URL_<ENV> or "
            "HUBSPOT_BASE_URL (the sandbox's address in dev/test) and the network (proxy, firewall), then run again",
            True,
        )
    if isinstance(exc, RetriesExhausted):
        return Failure(
            ExitCode.FAILED,
            f"{exc}. HubSpot kept failing; check https://status.hubspot.com and run again",
            True,
        )
    if isinstance(exc, HubSpotError):
        return Failure(ExitCode.FAILED, str(exc), True)
    if isinstance(exc, StateStoreBusy):
        return Failure(
            ExitCode.BUSY,
            f"{exc}. Wait for the other spokesync process (a sync, replay or Dagster run) to "
            "finish, then run again",
            True,
        )
    if isinstance(exc, StateStoreUnwritable):
        return Failure(ExitCode.STORAGE, str(exc), True)
    if isinstance(exc, MappingError | SettingsError | WarehouseEmpty):
        return Failure(ExitCode.USAGE, str(exc), True)
    if isinstance(exc, FileNotFoundError):
        reason = exc.strerror or "no such file or folder"
        if reason == os.strerror(errno.ENOENT):  # the OS's own words: add what to check
            reason = (
                "no such file or folder. Check the path (SPOKESYNC_HOME, SPOKESYNC_LANDING, "
                "--mapping) or create the landing files first (spokesync sample-data)"
            )
        return Failure(ExitCode.USAGE, f"{exc.filename or exc}: {reason}", True)
    if isinstance(exc, OSError) and exc.errno in STORAGE_ERRNOS:
        return Failure(ExitCode.STORAGE, storage_message(exc), True)
    if isinstance(exc, duckdb.IOException):
        return Failure(ExitCode.STORAGE, f"DuckDB cannot read or write a file: {exc}", True)
    return Failure(ExitCode.FAILED, f"unexpected error: {type(exc).__name__}: {exc}", False)


def storage_message(exc: OSError) -> str:
    where = exc.filename or "a file under SPOKESYNC_HOME"
    if exc.errno == errno.ENOSPC or exc.errno == errno.EDQUOT:
        what = "the disk is full"
        todo = "free space on that disk, or set SPOKESYNC_HOME to a folder on another disk"
    elif exc.errno == errno.EROFS:
        what = "the file system is read-only"
        todo = "set SPOKESYNC_HOME to a writable folder"
    else:
        what = "permission denied"
        todo = "make it writable for this user, or set SPOKESYNC_HOME to a writable folder"
    return f"cannot write {where}: {what}. {todo[0].upper()}{todo[1:]}, then run again"
