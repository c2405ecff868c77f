"""The public, read-only explorer served at ``/``: server-rendered pages over ``stats.reads``."""
