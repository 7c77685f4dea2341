"""Whether this process was told to stop (SIGTERM), for code that cannot see the signal.

The CLI's handler sets `SIGNALLED` and raises KeyboardInterrupt; a library may swallow
that interrupt in its own bookkeeping and fail with an error of its own, and the job
(`interrupt_behind`) still knows the run was interrupted, not broken. Imports only the
standard library, so the handler can use it at any moment.
"""

from __future__ import annotations

import threading

__all__ = ["SIGNALLED", "interrupt_behind"]

SIGNALLED = threading.Event()


def interrupt_behind(err: BaseException) -> BaseException | None:
    """The KeyboardInterrupt / SystemExit behind `err`, if it is or was raised handling one.

    SIGTERM becomes a KeyboardInterrupt wherever Python happens to be; landing inside a
    library's own bookkeeping (Optuna telling the storage a trial's result) it resurfaces
    as that library's error — an UnboundLocalError or AssertionError — with the interrupt
    as its `__context__`, or with no trace of it at all when the library swallowed the
    interrupt and then failed its own assertion. The run was still interrupted, not
    broken: `SIGNALLED` says so when the chain of exceptions does not.
    """
    if SIGNALLED.is_set() and not isinstance(err, KeyboardInterrupt | SystemExit):
        behind = _interrupt_in_chain(err)
        return behind if behind is not None else KeyboardInterrupt("signal")
    return _interrupt_in_chain(err)


def _interrupt_in_chain(err: BaseException) -> BaseException | None:
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        if isinstance(current, KeyboardInterrupt | SystemExit):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None
