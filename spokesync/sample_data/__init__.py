"""Deterministic sample landing data: what a real stack lands, with planted mess (see generator)."""
