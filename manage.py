#!/usr/bin/env python
"""Django's command-line utility, with configuration errors shown as messages, not tracebacks."""

import os
import sys


def main() -> None:
    if sys.argv[1:] == ["localdb", "status"]:
        # Loading the settings starts the embedded database (local mode): report without them.
        from ncmec.localdb import status

        print(status())
        return
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ncmec.settings")
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    from ncmec.localdb import LocalDatabaseError

    try:
        execute_from_command_line(sys.argv)
    except (ImproperlyConfigured, LocalDatabaseError) as exc:
        sys.stderr.write(f"error: {exc}\n")
        sys.exit(2)


if __name__ == "__main__":
    main()
