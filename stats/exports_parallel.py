"""The whole facts table read by several connections at once, written out in order.

PostgreSQL formats the CSV (most of an export's time) in one backend per connection, so on a
machine with several cores the pieces of a large export are read side by side. Every reader
imports the snapshot of the transaction that counted the rows (``SET TRANSACTION SNAPSHOT``, as
``pg_dump --jobs`` does), so the pieces together are exactly one consistent table. Reader ``r``
reads pieces ``r``, ``r + readers``, ...; each piece goes to a temporary file (kept in memory up to
CHUNK_BYTES), and at most one finished piece per reader waits to be written, so memory and disk
stay bounded whatever the table's size.
"""

from __future__ import annotations

import queue
import tempfile
import threading
from collections.abc import Iterator

import psycopg
from psycopg import sql

from ncmec import direct

WAIT_S = 0.5  # how often a blocked reader checks whether the export was abandoned


def read_in_parallel(queries: list[tuple[str, list]], snapshot: str, *, readers: int) -> Iterator[bytes]:
    """The CSV of each query (a piece), in order, read by ``readers`` connections in ``snapshot``."""
    from stats.exports import CHUNK_BYTES, copy_chunks

    stop = threading.Event()
    finished: list[queue.Queue] = [queue.Queue(maxsize=1) for _ in range(readers)]
    kwargs = {**direct.connection_kwargs("ncmec-export"), "autocommit": False}

    def read(reader: int) -> None:
        try:
            with psycopg.connect(**kwargs) as conn, conn.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                cursor.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(snapshot)))
                for number in range(reader, len(queries), readers):
                    piece = tempfile.SpooledTemporaryFile(max_size=CHUNK_BYTES)  # noqa: SIM115 (the writer closes it)
                    for chunk in copy_chunks(cursor, *queries[number]):
                        if stop.is_set():
                            piece.close()
                            return
                        piece.write(chunk)
                    piece.seek(0)
                    if not _hand_over(finished[reader], piece, stop):
                        piece.close()
                        return
        except BaseException as exc:  # given to the writer, which raises it
            _hand_over(finished[reader], exc, stop)

    threads = [threading.Thread(target=read, args=(r,), name=f"export-reader-{r}", daemon=True) for r in range(readers)]
    for thread in threads:
        thread.start()
    try:
        for number in range(len(queries)):
            piece = finished[number % readers].get()
            if isinstance(piece, BaseException):
                raise piece
            with piece:
                while chunk := piece.read(CHUNK_BYTES):
                    yield chunk
    finally:
        stop.set()  # the download finished, failed or was abandoned: readers stop at their next chunk
        for reader in finished:
            while not reader.empty():
                left = reader.get_nowait()
                if not isinstance(left, BaseException):
                    left.close()
        for thread in threads:
            thread.join()


def _hand_over(finished: queue.Queue, item, stop: threading.Event) -> bool:
    """Put ``item`` for the writer, waiting while its earlier piece is still unread; False once stopped."""
    while not stop.is_set():
        try:
            finished.put(item, timeout=WAIT_S)
            return True
        except queue.Full:
            continue
    return False
