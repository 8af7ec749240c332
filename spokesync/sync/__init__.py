"""The sync run: ingest what is new, build desired state, diff, push (or plan, in shadow mode)."""
