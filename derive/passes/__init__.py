"""Transformation passes over SymPy expressions, one pass per module."""
