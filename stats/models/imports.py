"""The record of every import: who, when, what file, what it did."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class ImportRecord(models.Model):
    """One import attempt (admin, command line, fixture load), kept whether it succeeded or not."""

    class Shape(models.TextChoices):
        LONG = "long", "long (one observation per row)"
        TABLE = "table", "table (as printed)"
        REPORTS = "reports", "published reports (fixtures)"

    class Status(models.TextChoices):
        COMMITTED = "committed", "committed"
        DRY_RUN = "dry_run", "preview only"
        FAILED = "failed", "failed (nothing written)"
        REVERTED = "reverted", "reverted (undone as a whole)"

    created_at = models.DateTimeField(auto_now_add=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    channel = models.CharField(max_length=20, help_text="admin, cli, graphql or fixtures.")
    file_name = models.CharField(max_length=300, blank=True)
    checksum = models.CharField(max_length=64, blank=True, help_text="SHA-256 of the file.")
    shape = models.CharField(max_length=10, choices=Shape.choices)
    status = models.CharField(max_length=10, choices=Status.choices)
    rows = models.PositiveIntegerField(default=0)
    new = models.PositiveIntegerField(default=0)
    changed = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    reason = models.TextField(blank=True, help_text="Why the import was made.")
    options = models.JSONField(default=dict, blank=True, help_text="Indicator, year, source... of a table import.")
    errors = models.JSONField(default=list, blank=True, help_text="The errors of a failed import.")

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.get_shape_display()} import of {self.file_name or 'data'} ({self.status})"


class ImportPreviewQuerySet(models.QuerySet):
    def expired(self) -> ImportPreviewQuerySet:
        return self.filter(created_at__lt=timezone.now() - ImportPreview.LIFETIME)

    def for_confirm(self, *, preview_id: int, checksum: str, user) -> ImportPreviewQuerySet:
        """The one preview this user's confirm may read: by its id and its file's checksum, not expired."""
        live = self.exclude(created_at__lt=timezone.now() - ImportPreview.LIFETIME)
        return live.filter(id=preview_id, checksum=checksum, user=user)


class ImportPreview(models.Model):
    """An uploaded file between its preview and its confirm, kept in the database (not on a web
    process's disk) so that any server process can confirm it; deleted once confirmed or after a day.

    The file's bytes are in ImportPreviewPart rows of at most PART_BYTES each, written and read one
    part at a time: a web process never holds a whole upload in memory.
    """

    LIFETIME = timedelta(days=1)

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    checksum = models.CharField(max_length=64, help_text="SHA-256 of the file.")
    file_name = models.CharField(max_length=300)
    size = models.BigIntegerField(default=0, help_text="The file's size in bytes (at most IMPORT_MAX_BYTES).")
    shape = models.CharField(max_length=10, choices=ImportRecord.Shape.choices)
    options = models.JSONField(default=dict, blank=True, help_text="Indicator, year, source... of a table import.")
    reason = models.TextField(blank=True, help_text="Why the import is made.")

    objects = ImportPreviewQuerySet.as_manager()

    class Meta:
        constraints = [
            models.CheckConstraint(
                name="import_preview_checksum_sha256", condition=Q(checksum__regex=r"^[0-9a-f]{64}$")
            )
        ]

    def __str__(self) -> str:
        return f"preview of {self.file_name} ({self.created_at:%Y-%m-%d %H:%M})"


class ImportPreviewPart(models.Model):
    """One piece of a preview's file, in order (stats.services.observations.previews writes and reads them)."""

    PART_BYTES = 1024 * 1024

    preview = models.ForeignKey(ImportPreview, on_delete=models.CASCADE, related_name="parts")
    number = models.PositiveIntegerField(help_text="The part's place in the file, from 0.")
    data = models.BinaryField(help_text="At most PART_BYTES of the file.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["preview", "number"], name="import_preview_part_once")]

    def __str__(self) -> str:
        return f"part {self.number} of {self.preview}"
