"""The desired-state builder's SQL: cheaper forms that give exactly the old values.

Each test compares the builder with an oracle written the old, direct way (the gate's rules
inline in every gated field; ``list_has_any`` for the free-mail test) over hand-picked rows."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import duckdb

from spokesync.desired import DESIRED_TABLE, build_desired, field_sql, gate_reason_sql
from spokesync.mapping import MappingSpec
from spokesync.quality import FREE_MAIL_DOMAINS, register_macros
from spokesync.warehouse import connect
from tests.engine.conftest import AS_OF, Warehouse

# (email, is it free mail?) — written by hand, including the edges of the suffix rule: a
# subdomain of a free domain counts, a 2-letter country label is kept with its parent, and a
# look-alike domain does not.
EMAILS = [
    ("ann@acme.io", False),
    ("bo@gmail.com", True),
    ("Bo@GMAIL.com ", True),
    ("x@a.gmail.com", True),
    ("y@YAHOO.co.uk", True),
    ("z@mail.yahoo.co.uk", True),
    ("q@xgmail.com", False),
    ("w@mail.gmx.de", False),  # the suffix rule takes mail.gmx.de: not in the list
    ("v@gmx.de", True),
    ("noatsign", False),
    ("@", False),
    ("a@b@gmail.com", True),
    (None, False),
]
OLD_IS_FREE_MAIL = (
    "list_has_any([email_domain(e)], [{free}]) OR "
    "list_has_any([regexp_extract(email_domain(e), '[^.]+\\.[^.]+(\\.[a-z]{{2}})?$')], [{free}])"
)


def test_is_free_mail_gives_the_hand_written_answers_and_the_old_macros() -> None:
    con = duckdb.connect()
    register_macros(con)
    free = ", ".join(f"'{d}'" for d in FREE_MAIL_DOMAINS)
    con.execute(f"CREATE MACRO old_is_free_mail(e) AS {OLD_IS_FREE_MAIL.format(free=free)}")
    con.execute("CREATE TABLE t (i INTEGER, e VARCHAR)")
    con.executemany("INSERT INTO t VALUES (?, ?)", [[i, e] for i, (e, _) in enumerate(EMAILS)])
    rows = con.execute("SELECT is_free_mail(e), old_is_free_mail(e) FROM t ORDER BY i").fetchall()
    assert [r[0] for r in rows] == [want for _, want in EMAILS]
    assert [r[0] for r in rows] == [r[1] for r in rows]


GATED = """
object_type: contacts
id: {property: email, column: email}
source:
  sql: SELECT *, email_domain(email) AS company_domain,
              CASE WHEN user_id <> 'U5' THEN 'Mid-Market' END AS segment FROM users
gates:
  enrichment:
    - {check: "NOT is_free_mail(email)", reason: free-mail address}
    - {check: "is_valid_domain(company_domain)", reason: company domain missing or invalid}
    - {check: "job_title IS NOT NULL", reason: no job title}
  roles:
    - {check: "role = 'admin'", reason: not an admin}
fields:
  - {property: firstname, type: string, column: first_name}
  - {property: jobtitle, type: string, column: job_title, gate: enrichment}
  - {property: spokesync_segment, type: enumeration, column: segment,
     options: [SMB, Mid-Market], gate: enrichment}
  - {property: spokesync_product_role, type: string, column: role, gate: roles}
"""


def _user(uid: str, email: str, title: str | None, role: str = "admin") -> dict:
    ts = dt.datetime(2026, 1, 10, tzinfo=dt.UTC)
    return {
        "user_id": uid, "account_id": "A0001", "email": email, "first_name": uid,
        "last_name": "X", "job_title": title, "role": role, "created_at": ts, "updated_at": ts,
    }  # fmt: skip


def test_gates_computed_once_give_the_values_of_the_rules_inline(
    wh: Warehouse, write_mapping: Callable[[str, str], MappingSpec]
) -> None:
    mapping = write_mapping("contacts", GATED)
    wh.write(
        "users",
        [
            _user("U1", "ann@acme.io", "CTO"),
            _user("U2", "bo@gmail.com", "CFO"),
            _user("U3", "cy@localhost", "CTO", role="member"),
            _user("U4", "di@acme.io", None),
            _user("U5", "ed@acme.io", "VP"),  # no segment: passes the gate, nothing to write
        ],
    )
    con = connect(wh.root)
    stats = build_desired(con, mapping, AS_OF)
    got = con.execute(
        f"SELECT external_id, jobtitle, spokesync_segment, spokesync_product_role, "
        f"__gate_enrichment, __gate_roles FROM {DESIRED_TABLE} ORDER BY 1"
    ).fetchall()
    assert got == [
        ("ann@acme.io", "CTO", "Mid-Market", "admin", None, None),
        ("bo@gmail.com", None, None, "admin", "free-mail address", None),
        ("cy@localhost", None, None, None, "company domain missing or invalid", "not an admin"),
        ("di@acme.io", None, None, "admin", "no job title", None),
        ("ed@acme.io", "VP", None, "admin", None, None),
    ]
    assert stats.gated == {"enrichment": 3, "roles": 1}
    # the oracle: each gated field and gate column with the rules inline, as before
    inline = ", ".join(
        [field_sql(mapping, f) for f in mapping.fields[1:]]
        + [gate_reason_sql(mapping, g) for g in mapping.gates]
    )
    oracle = con.execute(
        f"SELECT lower(email), {inline} FROM ({mapping.source.sql}) AS src ORDER BY 1"
    ).fetchall()
    assert got == oracle
