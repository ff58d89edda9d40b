"""Segments: rule trees over the single customer view, compiled to one SQL query (see services.py)."""
