"""One way for every `spacy elmo` command to report a failure the user can fix: one line on stderr that
names the problem and the fix, exit code 1, no traceback (`--verbose` or SPACY_ELMO_VERBOSE=1 adds it).

    with friendly_errors(verbose):
        ...the command's work...

Known failures are the package's own error classes (any exception class defined in spacy_elmo), OSError
(missing files, permissions, a full disk, a file-size limit) and config errors (Thinc/confection). Anything
else is a bug and keeps its traceback.
"""
import errno
import os
import re
import sys
import traceback
from contextlib import contextmanager
from typing import Iterator, Optional

import typer

VERBOSE_ENV = "SPACY_ELMO_VERBOSE"
# Set by the `spacy elmo --verbose ...` group option; a command's own --verbose is passed to friendly_errors.
_group_verbose = False


def set_verbose(value: bool) -> None:
    global _group_verbose
    _group_verbose = bool(value)


def verbose_requested(verbose: Optional[bool] = None) -> bool:
    if verbose or _group_verbose:
        return True
    return os.environ.get(VERBOSE_ENV, "").strip().lower() not in ("", "0", "false", "no")


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _is_own_error(err: BaseException) -> bool:
    return any(cls.__module__.split(".")[0] == "spacy_elmo" for cls in type(err).__mro__)


def _is_config_error(err: BaseException) -> bool:
    return any(cls.__name__ in ("ConfigValidationError", "ConfectionError") for cls in type(err).__mro__)


# errno -> what to do about it (the problem itself is the OS's own words, err.strerror)
_OS_FIXES = {
    errno.ENOSPC: "free some space or write to another disk",
    errno.EDQUOT: "free some space or write to another disk",
    errno.EFBIG: "the file system's or this process's file-size limit (ulimit -f) was reached; raise the limit or "
                 "write to another disk",
    errno.EACCES: "check the path's permissions or choose another path",
    errno.EPERM: "check the path's permissions or choose another path",
    errno.EROFS: "choose a writable location",
    errno.ENOENT: "check the path",
    errno.ENOTDIR: "check the path: a part of it is a file",
    errno.EISDIR: "give a file name instead",
    errno.EMFILE: "raise the limit (ulimit -n) or close other programs",
}


def describe_os_error(err: OSError) -> str:
    """`err` as one line: the file, what happened (the OS's words) and what to do."""
    where = " ".join(str(f) for f in (err.filename, err.filename2) if f is not None)
    problem = err.strerror or str(err) or type(err).__name__
    text = f"{where}: {problem}" if where else problem
    fix = _OS_FIXES.get(err.errno or -1)
    return f"{text}; {fix}." if fix else f"{text}."


def describe_config_error(err: BaseException) -> str:
    parts = [getattr(err, "title", None) or "Config error"]
    for e in getattr(err, "errors", None) or []:
        loc = ".".join(str(p) for p in e.get("loc", []))
        parts.append(f"{loc}: {e.get('msg', '')}" if loc else str(e.get("msg", "")))
    desc = getattr(err, "desc", None)
    if desc:
        parts.append(str(desc))
    if len(parts) == 1:
        parts.append(str(err))
    return _one_line("; ".join(p for p in parts if p))


def describe(err: BaseException) -> Optional[str]:
    """The one-line message for a known failure, None for anything else (a bug: keep its traceback)."""
    if _is_config_error(err):
        return describe_config_error(err)
    if _is_own_error(err):
        return _one_line(str(err)) or type(err).__name__
    if isinstance(err, OSError):
        return _one_line(describe_os_error(err))
    return None


def report(message: str) -> None:
    print(f"error: {message}", file=sys.stderr, flush=True)


@contextmanager
def friendly_errors(verbose: Optional[bool] = None) -> Iterator[None]:
    """Known failures inside the block become one line on stderr and exit code 1 (or the error's own
    `exit_code`); KeyboardInterrupt exits 130. With verbose, the traceback is printed first."""
    try:
        yield
    except (typer.Exit, typer.Abort, SystemExit):
        raise
    except KeyboardInterrupt:
        if verbose_requested(verbose):
            traceback.print_exc()
        report("interrupted.")
        raise typer.Exit(130)
    except Exception as err:
        message = describe(err)
        if message is None:
            raise
        if verbose_requested(verbose):
            traceback.print_exc()
        report(message)
        raise typer.Exit(getattr(err, "exit_code", 1))


__all__ = ["friendly_errors", "describe", "describe_os_error", "report", "set_verbose",
           "verbose_requested", "VERBOSE_ENV"]
