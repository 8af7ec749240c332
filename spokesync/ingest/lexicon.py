"""The text forms the contract accepts, shared by the DuckDB checks (:mod:`spokesync.ingest.rules`)
and the pandas/pandera reference (:mod:`spokesync.ingest.validate`, :mod:`spokesync.ingest.schemas`).

Plain constants only: importing this module costs nothing, so the fast path's worker processes
never import pandas or pandera for them.
"""

from __future__ import annotations

from spokesync.ingest.contract import DECIMAL_PRECISION, DECIMAL_SCALE

# Every character Python's str.isspace() calls whitespace (incl. no-break and ideographic
# spaces), plus the zero-width space and the byte-order mark that exports leave behind.
UNICODE_WHITESPACE = "\u0009\u000a\u000b\u000c\u000d\u001c\u001d\u001e\u001f\u0020\u0085\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000\u200b\ufeff"  # == every c with c.isspace(), + U+200B, U+FEFF (tests/ingest/test_contract.py)

# The whole text a value of each type may be (RE2 and Python ``re`` read them the same).
INT_TEXT = r"\s*[+-]?[0-9]+(\.0*)?\s*"
INT_DIGITS = DECIMAL_PRECISION - DECIMAL_SCALE
DECIMAL_TEXT = rf"\s*[+-]?([0-9]{{1,{INT_DIGITS}}}(\.[0-9]{{0,{DECIMAL_SCALE}}})?|\.[0-9]{{1,{DECIMAL_SCALE}}})\s*"
NON_FINITE_TEXT = r"[+-]?(inf|infinity|nan)"
DATE_TEXT = r"\s*[0-9]{4}-[0-9]{2}-[0-9]{2}\s*"
TIMESTAMP_TEXT = r"\s*[0-9]{4}-[0-9]{2}-[0-9]{2}([T ].*)?"

# The name of the email check (pandera's custom check and the SQL rule report it alike).
VALID_EMAIL = "valid_email"
