"""Uploaded files waiting for their confirm: stored and read back in parts, never whole in memory.

A web process holds one part (ImportPreviewPart.PART_BYTES) at a time: the upload is read from
Django's uploaded file (on disk once over FILE_UPLOAD_MAX_MEMORY_SIZE) and the stored file is read
back into a temporary file, which the import reads as it goes (XLSX needs a file it can seek in).
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

from django.core.files import File
from django.db import transaction

from stats.models import ImportPreview, ImportPreviewPart


def preview_store(*, upload: File, user, file_name: str, shape: str, options: dict, reason: str) -> ImportPreview:
    """Keep ``upload`` for its confirm: its checksum first (one pass), then its parts (a second)."""
    digest = hashlib.sha256()
    for piece in upload.chunks(ImportPreviewPart.PART_BYTES):
        digest.update(piece)
    with transaction.atomic():
        preview = ImportPreview.objects.create(
            user=user, checksum=digest.hexdigest(), file_name=file_name, size=upload.size or 0,
            shape=shape, options=options, reason=reason,
        )  # fmt: skip
        for number, piece in enumerate(_parts(upload)):
            ImportPreviewPart.objects.create(preview=preview, number=number, data=piece)
    return preview


def _parts(upload: File) -> Iterator[bytes]:
    """The file in pieces of exactly PART_BYTES (the last one shorter), whatever sizes the upload reads in."""
    pending = bytearray()
    for piece in upload.chunks(ImportPreviewPart.PART_BYTES):
        pending += piece
        while len(pending) >= ImportPreviewPart.PART_BYTES:
            yield bytes(pending[: ImportPreviewPart.PART_BYTES])
            del pending[: ImportPreviewPart.PART_BYTES]
    if pending:
        yield bytes(pending)


@contextmanager
def preview_file(preview: ImportPreview) -> Iterator[IO[bytes]]:
    """The stored file as a temporary file at its start, filled one part (one query) at a time."""
    with tempfile.TemporaryFile() as handle:
        numbers = preview.parts.order_by("number").values_list("number", flat=True)
        for number in list(numbers):
            handle.write(preview.parts.filter(number=number).values_list("data", flat=True).get())
        handle.seek(0)
        yield handle
