"""Stores: where contacts, templates and scheduled emails live (sqlite here, notion in production)."""
