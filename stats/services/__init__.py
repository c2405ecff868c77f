"""Writes shared by every entry point (admin, CLI, GraphQL, fixture loading).

Keyword-only functions named ``<entity>_<action>``, each running in one transaction.
"""
