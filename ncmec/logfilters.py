"""Log filters: the same warning over and over is one line a minute.

Every 4xx answer makes Django log a WARNING ("Bad Request: /graphql"), so a client sending bad
requests in a loop could fill the log. Repeats of one warning within the interval are dropped
and counted; the next one that passes says how many were dropped. Errors always pass.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict

MAX_KEYS = 1000  # distinct warnings remembered (the oldest forgotten first)


class RepeatedWarnings(logging.Filter):
    """At most one record per interval for each distinct WARNING message."""

    def __init__(self, seconds: float = 60.0, clock=time.monotonic) -> None:
        super().__init__()
        self.seconds = seconds
        self.clock = clock
        self._seen: OrderedDict[tuple[str, str], list] = OrderedDict()  # key -> [last passed, dropped since]
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.WARNING:
            return True
        key = (record.name, record.getMessage()[:200])
        now = self.clock()
        with self._lock:
            seen = self._seen.get(key)
            if seen is not None and now - seen[0] < self.seconds:
                seen[1] += 1
                return False
            dropped = seen[1] if seen is not None else 0
            self._seen[key] = [now, 0]
            self._seen.move_to_end(key)
            while len(self._seen) > MAX_KEYS:
                self._seen.popitem(last=False)
        if dropped:
            record.msg, record.args = f"{record.getMessage()} ({dropped} more like it not logged)", None
        return True
