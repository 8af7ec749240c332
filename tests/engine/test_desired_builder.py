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


# The shipped contacts mapping before the email's domain and free-mail test were computed once
# per user in its source (``people``, ``free_mail``): the same text with the old pieces back.
_OLD_CONTACTS_PIECES = [
    (
        """    ),
    people AS (  -- each email's domain once: the join, the column and the free-mail test read it
      SELECT *, email_domain(email) AS company_domain FROM users
      WHERE CAST(created_at AS DATE) <= $as_of
    )
    SELECT u.user_id, u.account_id, u.email, u.first_name, u.last_name, u.job_title, u.role,
           u.updated_at, a.last_active_at, u.company_domain,
           is_free_mail_domain(u.company_domain) AS free_mail, fm.*
    FROM people u
    LEFT JOIN activity a USING (user_id)
    LEFT JOIN firmo fm ON fm.firmo_domain = u.company_domain
""",
        """    )
    SELECT u.user_id, u.account_id, u.email, u.first_name, u.last_name, u.job_title, u.role,
           u.updated_at, a.last_active_at, email_domain(u.email) AS company_domain, fm.*
    FROM users u
    LEFT JOIN activity a USING (user_id)
    LEFT JOIN firmo fm ON fm.firmo_domain = email_domain(u.email)
    WHERE CAST(u.created_at AS DATE) <= $as_of
""",
    ),
    ('{check: "NOT free_mail",', '{check: "NOT is_free_mail(email)",'),
    ('when: "NOT free_mail AND', 'when: "NOT is_free_mail(email) AND'),
]


def test_the_contacts_mapping_tests_each_email_once_with_the_old_values(
    wh: Warehouse, write_mapping: Callable[[str, str], MappingSpec]
) -> None:
    """Free mail (subdomains, case, spaces), no '@', an invalid or unknown domain, a NULL
    email, a user created after the day, two users with one email: the desired and rejected
    tables, gate and event columns are those of the mapping's old shape, row for row."""
    from spokesync.sync.runner import DEFAULT_MAPPINGS_DIR

    text = (DEFAULT_MAPPINGS_DIR / "contacts.yaml").read_text()
    old_text = text
    for new, old in _OLD_CONTACTS_PIECES:
        assert text.count(new) == 1
        old_text = old_text.replace(new, old)
    ts = dt.datetime(2026, 1, 10, tzinfo=dt.UTC)
    emails = [e for e, _ in EMAILS] + ["Ann@Acme.io", "x@localhost", "y@unknown.org", "z@acme.io"]
    users = [
        _user(f"U{i}", e, "CTO" if i % 3 else None, role="admin" if i % 2 else "member")  # type: ignore[arg-type]
        for i, e in enumerate(emails)
    ]
    users[-1]["created_at"] = dt.datetime(2026, 2, 1, tzinfo=dt.UTC)  # after the day
    wh.write("users", users)
    wh.write(
        "firmographics",
        [
            {"domain": d, "company_name": d, "industry_label": label, "employees": n,
             "hq_country": c, "updated_at": ts}
            for d, label, n, c in [
                ("acme.io", "SaaS", 120, "US"),
                ("gmail.com", "Software", 90_000, "US"),
                ("localhost", "Retail", 5, None),
                ("a.gmail.com", "telco", None, "DE"),
            ]
        ],
    )  # fmt: skip
    wh.write(
        "product_usage",
        [
            {"event_id": "E1", "account_id": "A0001", "user_id": "U1", "event_type": "login",
             "occurred_at": ts, "quantity": 1}
        ],
        day=AS_OF.isoformat(),
    )  # fmt: skip
    new_spec = write_mapping("contacts", text)
    old_spec = write_mapping("contacts_old", old_text)
    tables = []
    for spec in (new_spec, old_spec):
        con = connect(wh.root)
        stats = build_desired(con, spec, AS_OF)
        desired = con.execute(f"SELECT * FROM {DESIRED_TABLE} ORDER BY external_id").fetchall()
        rejected = con.execute("SELECT * FROM desired_rejected ORDER BY ALL").fetchall()
        tables.append((desired, rejected, stats.gated, stats.gate_samples, stats.records))
        con.close()
    assert tables[0] == tables[1]
    desired, _, gated, _, records = tables[0]
    # by hand: 17 users, z@acme.io created after the day, the NULL email rejected, Ann@Acme.io
    # and bo@GMAIL.com duplicates of ann@… and bo@…: 13 contacts, one of them enriched
    assert records == len(desired) == 13
    assert gated == {"lead_enrichment": 12}
    free, invalid, unknown = (
        "free-mail address (not a business email)",
        "email domain missing or invalid",
        "the enrichment provider does not know the domain",
    )
    con = connect(wh.root)
    build_desired(con, new_spec, AS_OF)
    reasons = dict(
        con.execute(f"SELECT external_id, __gate_lead_enrichment FROM {DESIRED_TABLE}").fetchall()
    )
    con.close()
    assert reasons == {
        "@": invalid,
        "a@b@gmail.com": free,
        "ann@acme.io": None,
        "bo@gmail.com": free,
        "noatsign": invalid,
        "q@xgmail.com": unknown,
        "v@gmx.de": free,
        "w@mail.gmx.de": unknown,
        "x@a.gmail.com": free,
        "x@localhost": invalid,
        "y@unknown.org": unknown,
        "y@yahoo.co.uk": free,
        "z@mail.yahoo.co.uk": free,
    }
