"""Scenarios: the schema (defaults are the spec's numbers) and the loader with one-line errors."""
