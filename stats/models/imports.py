"""The record of every import: who, when, what file, what it did."""

from __future__ import annotations

from django.conf import settings
from django.db import models


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
