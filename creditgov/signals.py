"""Whether this process was told to stop (SIGTERM), for code that cannot see the signal.

The CLI's handler sets `SIGNALLED` and raises KeyboardInterrupt; a library may swallow
that interrupt in its own bookkeeping and fail with an error of its own, and the job
(`stages.interrupt_behind`) still knows the run was interrupted, not broken. Imports only
the standard library, so the handler can use it at any moment.
"""

from __future__ import annotations

import threading

__all__ = ["SIGNALLED"]

SIGNALLED = threading.Event()
