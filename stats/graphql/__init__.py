"""The GraphQL API: types, filters, queries, mutations and one schema (schema.py)."""
