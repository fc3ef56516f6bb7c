"""Signature banks: the store (a Protocol and its SQLite implementation) and the
import/export formats."""
