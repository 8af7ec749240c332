"""Test-wide settings, applied before any test module imports the code location."""

import os

# Tests that write dates by hand use 2026; partitions run from there to yesterday, so tests
# with sample data ending yesterday (the default) fit too.
os.environ.setdefault("SPOKESYNC_PARTITIONS_START", "2026-01-01")
