"""The portal the sandbox starts with: object types, default properties, pipelines, owners and
HubSpot-defined association types (reference §1.6, §2.1, §3.2, §6)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

EPOCH_ISO = "2024-01-01T00:00:00.000Z"  # createdAt of everything HubSpot-defined


@dataclass(frozen=True, slots=True)
class Option:
    label: str
    value: str
    display_order: int = 0
    hidden: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "value": self.value,
            "displayOrder": self.display_order,
            "hidden": self.hidden,
        }


@dataclass(slots=True)
class PropertyDef:
    """One property of one object type, HubSpot-defined or created through the API."""

    name: str
    label: str
    type: str  # string | number | date | datetime | enumeration | bool | phone_number
    field_type: str
    group_name: str
    description: str = ""
    options: list[Option] = field(default_factory=list)
    has_unique_value: bool = False
    hubspot_defined: bool = True
    read_only_value: bool = False
    display_order: int = -1
    hidden: bool = False
    form_field: bool = False
    created_at: str = EPOCH_ISO
    updated_at: str = EPOCH_ISO
    archived: bool = False

    def to_json(self) -> dict[str, Any]:
        """The ``Property`` shape of the properties API."""
        body: dict[str, Any] = {
            "name": self.name,
            "label": self.label,
            "type": self.type,
            "fieldType": self.field_type,
            "description": self.description,
            "groupName": self.group_name,
            "options": [o.to_json() for o in self.options],
            "displayOrder": self.display_order,
            "calculated": False,
            "externalOptions": False,
            "hasUniqueValue": self.has_unique_value,
            "hidden": self.hidden,
            "hubspotDefined": self.hubspot_defined,
            "modificationMetadata": {
                "archivable": not self.hubspot_defined,
                "readOnlyDefinition": self.hubspot_defined,
                "readOnlyValue": self.read_only_value,
            },
            "formField": self.form_field,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
            "archived": self.archived,
        }
        return body

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> PropertyDef:
        return cls(
            name=d["name"],
            label=d.get("label", d["name"]),
            type=d["type"],
            field_type=d["fieldType"],
            group_name=d.get("groupName", ""),
            description=d.get("description") or "",
            options=[
                Option(o["label"], o["value"], int(o.get("displayOrder", i)), bool(o.get("hidden")))
                for i, o in enumerate(d.get("options") or [])
            ],
            has_unique_value=bool(d.get("hasUniqueValue")),
            hubspot_defined=bool(d.get("hubspotDefined")),
            read_only_value=bool((d.get("modificationMetadata") or {}).get("readOnlyValue")),
            display_order=int(d.get("displayOrder", -1)),
            hidden=bool(d.get("hidden")),
            form_field=bool(d.get("formField")),
            created_at=d.get("createdAt", EPOCH_ISO),
            updated_at=d.get("updatedAt", EPOCH_ISO),
            archived=bool(d.get("archived")),
        )


@dataclass(slots=True)
class ObjectTypeDef:
    """An object type: ``0-N`` standard ones here, ``2-N`` custom ones from schemas."""

    type_id: str
    name: str  # plural API name, e.g. "contacts"
    singular: str  # e.g. "contact"
    label_singular: str
    label_plural: str
    read_scopes: list[str]
    write_scopes: list[str]
    created_property: str = "createdate"
    modified_property: str = "hs_lastmodifieddate"
    required: list[str] = field(default_factory=list)
    default_properties: list[str] = field(default_factory=list)
    fully_qualified_name: str | None = None
    primary_display_property: str | None = None
    schema: dict[str, Any] | None = None  # the custom object schema as created

    @property
    def upper(self) -> str:
        """The name HubSpot uses in messages: CONTACT, COMPANY, …"""
        return self.singular.upper()

    @property
    def system_properties(self) -> tuple[str, ...]:
        return (self.created_property, self.modified_property, "hs_object_id")


def _opts(*values: str | tuple[str, str]) -> list[Option]:
    out = []
    for i, v in enumerate(values):
        label, value = (v[1], v[0]) if isinstance(v, tuple) else (v.replace("_", " ").title(), v)
        out.append(Option(label, value, i))
    return out


def _p(name: str, label: str, type_: str, field_type: str, group: str, **kw: Any) -> PropertyDef:
    return PropertyDef(name, label, type_, field_type, group, **kw)


LIFECYCLE = _opts(
    ("subscriber", "Subscriber"),
    ("lead", "Lead"),
    ("marketingqualifiedlead", "Marketing Qualified Lead"),
    ("salesqualifiedlead", "Sales Qualified Lead"),
    ("opportunity", "Opportunity"),
    ("customer", "Customer"),
    ("evangelist", "Evangelist"),
    ("other", "Other"),
)

INDUSTRIES = _opts(
    "ACCOUNTING",
    "AIRLINES_AVIATION",
    "AUTOMOTIVE",
    "BANKING",
    "BIOTECHNOLOGY",
    "BROADCAST_MEDIA",
    "BUILDING_MATERIALS",
    "CHEMICALS",
    "COMPUTER_HARDWARE",
    "COMPUTER_NETWORK_SECURITY",
    "COMPUTER_NETWORKING",
    "COMPUTER_SOFTWARE",
    "CONSTRUCTION",
    "CONSUMER_ELECTRONICS",
    "CONSUMER_GOODS",
    "CONSUMER_SERVICES",
    "E_LEARNING",
    "EDUCATION_MANAGEMENT",
    "ENTERTAINMENT",
    "FINANCIAL_SERVICES",
    "FOOD_BEVERAGES",
    "GOVERNMENT_ADMINISTRATION",
    "HEALTH_WELLNESS_AND_FITNESS",
    "HOSPITAL_HEALTH_CARE",
    "HOSPITALITY",
    "INFORMATION_TECHNOLOGY_AND_SERVICES",
    "INSURANCE",
    "INTERNET",
    "LEGAL_SERVICES",
    "LOGISTICS_AND_SUPPLY_CHAIN",
    "MANAGEMENT_CONSULTING",
    "MARKETING_AND_ADVERTISING",
    "MEDICAL_DEVICES",
    "NONPROFIT_ORGANIZATION_MANAGEMENT",
    "PHARMACEUTICALS",
    "REAL_ESTATE",
    "RETAIL",
    "TELECOMMUNICATIONS",
    "TRANSPORTATION_TRUCKING_RAILROAD",
    "UTILITIES",
    "VENTURE_CAPITAL_PRIVATE_EQUITY",
    "WHOLESALE",
)

# The portal's currencies (company currency first), as account-info's companyCurrency and
# additionalCurrencies would list them.
PORTAL_CURRENCIES = ("USD", "EUR", "GBP", "CAD", "AUD", "JPY", "CHF", "SEK", "NOK", "DKK")

OWNERS: list[dict[str, Any]] = [
    {"id": "75000001", "email": "ava.owner@example.com", "firstName": "Ava", "lastName": "Owner"},
    {"id": "75000002", "email": "ben.seller@example.com", "firstName": "Ben", "lastName": "Seller"},
    {
        "id": "75000003",
        "email": "cleo.support@example.com",
        "firstName": "Cleo",
        "lastName": "Support",
    },
    # Three of the sample company's four account owners are HubSpot users (the fourth,
    # kim.ortiz@, is not: the routing workflow sends her accounts to the fallback owner).
    {
        "id": "75000004",
        "email": "alex.morgan@spokesync-demo.com",
        "firstName": "Alex",
        "lastName": "Morgan",
    },
    {
        "id": "75000005",
        "email": "sam.lee@spokesync-demo.com",
        "firstName": "Sam",
        "lastName": "Lee",
    },
    {
        "id": "75000006",
        "email": "jo.baker@spokesync-demo.com",
        "firstName": "Jo",
        "lastName": "Baker",
    },
]

# pipelines per object type name: [(id, label, [(stage id, label, metadata)])]
PIPELINES: dict[str, list[tuple[str, str, list[tuple[str, str, dict[str, str]]]]]] = {
    "deals": [
        (
            "default",
            "Sales Pipeline",
            [
                (
                    "appointmentscheduled",
                    "Appointment Scheduled",
                    {"isClosed": "false", "probability": "0.2"},
                ),
                ("qualifiedtobuy", "Qualified To Buy", {"isClosed": "false", "probability": "0.4"}),
                (
                    "presentationscheduled",
                    "Presentation Scheduled",
                    {"isClosed": "false", "probability": "0.6"},
                ),
                (
                    "decisionmakerboughtin",
                    "Decision Maker Bought-In",
                    {"isClosed": "false", "probability": "0.8"},
                ),
                ("contractsent", "Contract Sent", {"isClosed": "false", "probability": "0.9"}),
                ("closedwon", "Closed Won", {"isClosed": "true", "probability": "1.0"}),
                ("closedlost", "Closed Lost", {"isClosed": "true", "probability": "0.0"}),
            ],
        ),
        (
            "renewals",
            "Renewals Pipeline",
            [
                ("renewal_open", "Renewal Open", {"isClosed": "false", "probability": "0.5"}),
                ("renewal_won", "Renewed", {"isClosed": "true", "probability": "1.0"}),
                ("renewal_lost", "Churned", {"isClosed": "true", "probability": "0.0"}),
            ],
        ),
    ],
    "tickets": [
        (
            "0",
            "Support Pipeline",
            [
                ("1", "New", {"ticketState": "OPEN"}),
                ("2", "Waiting on contact", {"ticketState": "OPEN"}),
                ("3", "Waiting on us", {"ticketState": "OPEN"}),
                ("4", "Closed", {"ticketState": "CLOSED"}),
            ],
        ),
    ],
}


def pipelines_json(object_name: str) -> list[dict[str, Any]]:
    """The pipelines API ``results`` for ``deals`` or ``tickets``."""
    out = []
    for p_order, (pid, label, stages) in enumerate(PIPELINES.get(object_name, [])):
        out.append(
            {
                "id": pid,
                "label": label,
                "displayOrder": p_order,
                "createdAt": EPOCH_ISO,
                "updatedAt": EPOCH_ISO,
                "archived": False,
                "stages": [
                    {
                        "id": sid,
                        "label": slabel,
                        "displayOrder": s_order,
                        "metadata": meta,
                        "createdAt": EPOCH_ISO,
                        "updatedAt": EPOCH_ISO,
                        "archived": False,
                        "writePermissions": "CRM_PERMISSIONS_ENFORCEMENT",
                    }
                    for s_order, (sid, slabel, meta) in enumerate(stages)
                ],
            }
        )
    return out


def owners_json() -> list[dict[str, Any]]:
    return [
        {
            **o,
            "type": "PERSON",
            "userId": int(o["id"]) - 75000000 + 9100000,
            "userIdIncludingInactive": int(o["id"]) - 75000000 + 9100000,
            "createdAt": EPOCH_ISO,
            "updatedAt": EPOCH_ISO,
            "archived": False,
            "teams": [],
        }
        for o in OWNERS
    ]


def _owner_options() -> list[Option]:
    return [Option(f"{o['firstName']} {o['lastName']}", o["id"], i) for i, o in enumerate(OWNERS)]


def _system(created: str, modified: str, group: str) -> list[PropertyDef]:
    ro = {"read_only_value": True}
    return [
        _p(created, "Create Date", "datetime", "date", group, **ro),
        _p(modified, "Last Modified Date", "datetime", "date", group, **ro),
        _p("hs_object_id", "Record ID", "number", "number", group, **ro),
    ]


def _merge_properties(obj: str, group: str) -> list[PropertyDef]:
    """Values HubSpot maintains on merges: ``;``-separated, read-only, searchable with EQ on one
    member (multi-value enumerations, reference §12.3)."""
    ro = {"read_only_value": True}
    merged = _p("hs_merged_object_ids", "Merged record IDs", "enumeration", "checkbox", group, **ro)
    extra = {
        "0-1": [("hs_additional_emails", "Additional email addresses")],
        "0-2": [("hs_additional_domains", "Additional Domains")],
    }.get(obj, [])
    return [merged, *[_p(n, label, "enumeration", "checkbox", group, **ro) for n, label in extra]]


def _owner(group: str) -> PropertyDef:
    return _p("hubspot_owner_id", "Owner", "enumeration", "select", group, options=_owner_options())


def _default_properties() -> dict[str, list[PropertyDef]]:
    ci, co = "contactinformation", "companyinformation"
    di, ti, ta = "dealinformation", "ticketinformation", "task"
    txt = ("string", "text")
    return {
        "0-1": [
            _p("email", "Email", "string", "text", ci),
            _p("firstname", "First Name", *txt, ci),
            _p("lastname", "Last Name", *txt, ci),
            _p("jobtitle", "Job Title", *txt, ci),
            _p("phone", "Phone Number", "string", "phonenumber", ci),
            _p("mobilephone", "Mobile Phone Number", "string", "phonenumber", ci),
            _p("company", "Company Name", *txt, ci),
            _p("website", "Website URL", *txt, ci),
            _p("address", "Street Address", *txt, ci),
            _p("city", "City", *txt, ci),
            _p("state", "State/Region", *txt, ci),
            _p("zip", "Postal Code", *txt, ci),
            _p("country", "Country/Region", *txt, ci),
            _p("lifecyclestage", "Lifecycle Stage", "enumeration", "radio", ci, options=LIFECYCLE),
            _p(
                "hs_lead_status",
                "Lead Status",
                "enumeration",
                "radio",
                ci,
                options=_opts(
                    "NEW",
                    "OPEN",
                    "IN_PROGRESS",
                    "OPEN_DEAL",
                    "UNQUALIFIED",
                    "ATTEMPTED_TO_CONTACT",
                    "CONNECTED",
                    "BAD_TIMING",
                ),
            ),
            _owner(ci),
            *_merge_properties("0-1", ci),
            *_system("createdate", "lastmodifieddate", ci),
        ],
        "0-2": [
            _p("name", "Company name", *txt, co),
            _p("domain", "Company Domain Name", *txt, co),
            _p("industry", "Industry", "enumeration", "select", co, options=INDUSTRIES),
            _p(
                "type",
                "Type",
                "enumeration",
                "select",
                co,
                options=_opts("PROSPECT", "PARTNER", "RESELLER", "VENDOR", "OTHER"),
            ),
            _p("phone", "Phone Number", "string", "phonenumber", co),
            _p("website", "Website URL", *txt, co),
            _p("address", "Street Address", *txt, co),
            _p("city", "City", *txt, co),
            _p("state", "State/Region", *txt, co),
            _p("zip", "Postal Code", *txt, co),
            _p("country", "Country/Region", *txt, co),
            _p("numberofemployees", "Number of Employees", "number", "number", co),
            _p("annualrevenue", "Annual Revenue", "number", "number", co),
            _p("lifecyclestage", "Lifecycle Stage", "enumeration", "radio", co, options=LIFECYCLE),
            _p("description", "Description", "string", "textarea", co),
            _owner(co),
            *_merge_properties("0-2", co),
            *_system("createdate", "hs_lastmodifieddate", co),
        ],
        "0-3": [
            _p("dealname", "Deal Name", *txt, di),
            _p("amount", "Amount", "number", "number", di),
            # Multi-currency portal: the deal's currency is its own property (options = the
            # portal's currencies); `amount` carries none.
            _p(
                "deal_currency_code",
                "Currency",
                "enumeration",
                "select",
                di,
                options=_opts(*PORTAL_CURRENCIES),
            ),
            _p("pipeline", "Pipeline", "enumeration", "select", di),
            _p("dealstage", "Deal Stage", "enumeration", "radio", di),
            _p("closedate", "Close Date", "datetime", "date", di),
            _p(
                "dealtype",
                "Deal Type",
                "enumeration",
                "radio",
                di,
                options=_opts(
                    ("newbusiness", "New Business"), ("existingbusiness", "Existing Business")
                ),
            ),
            _p(
                "hs_priority",
                "Priority",
                "enumeration",
                "select",
                di,
                options=_opts(("low", "Low"), ("medium", "Medium"), ("high", "High")),
            ),
            _p("description", "Deal Description", "string", "textarea", di),
            _owner(di),
            *_merge_properties("0-3", di),
            *_system("createdate", "hs_lastmodifieddate", di),
        ],
        "0-5": [
            _p("subject", "Ticket name", *txt, ti),
            _p("content", "Ticket description", "string", "textarea", ti),
            _p("hs_pipeline", "Pipeline", "enumeration", "select", ti),
            _p("hs_pipeline_stage", "Ticket status", "enumeration", "select", ti),
            _p(
                "hs_ticket_priority",
                "Priority",
                "enumeration",
                "select",
                ti,
                options=_opts("LOW", "MEDIUM", "HIGH", "URGENT"),
            ),
            _p(
                "hs_ticket_category",
                "Category",
                "enumeration",
                "checkbox",
                ti,
                options=_opts(
                    "PRODUCT_ISSUE", "BILLING_ISSUE", "FEATURE_REQUEST", "GENERAL_INQUIRY"
                ),
            ),
            _owner(ti),
            *_merge_properties("0-5", ti),
            *_system("createdate", "hs_lastmodifieddate", ti),
        ],
        "0-27": [
            _p("hs_timestamp", "Due date", "datetime", "date", ta),
            _p("hs_task_subject", "Task Title", *txt, ta),
            _p("hs_task_body", "Notes", "string", "html", ta),
            _p(
                "hs_task_status",
                "Task Status",
                "enumeration",
                "select",
                ta,
                options=_opts("NOT_STARTED", "IN_PROGRESS", "WAITING", "COMPLETED", "DEFERRED"),
            ),
            _p(
                "hs_task_priority",
                "Priority",
                "enumeration",
                "select",
                ta,
                options=_opts("NONE", "LOW", "MEDIUM", "HIGH"),
            ),
            _p(
                "hs_task_type",
                "Task Type",
                "enumeration",
                "select",
                ta,
                options=_opts("EMAIL", "CALL", "TODO"),
            ),
            _owner(ta),
            *_system("hs_createdate", "hs_lastmodifieddate", ta),
        ],
    }


def _scopes(obj: str) -> tuple[list[str], list[str]]:
    return (
        [f"crm.objects.{obj}.read", f"crm.objects.{obj}.sensitive.read.v2"],
        [f"crm.objects.{obj}.write", f"crm.objects.{obj}.sensitive.write.v2"],
    )


def default_object_types() -> list[ObjectTypeDef]:
    c_r, c_w = _scopes("contacts")
    return [
        ObjectTypeDef(
            "0-1",
            "contacts",
            "contact",
            "Contact",
            "Contacts",
            c_r,
            c_w,
            modified_property="lastmodifieddate",
            default_properties=[
                "createdate",
                "email",
                "firstname",
                "hs_object_id",
                "lastmodifieddate",
                "lastname",
            ],
            primary_display_property="email",
        ),
        ObjectTypeDef(
            "0-2",
            "companies",
            "company",
            "Company",
            "Companies",
            *_scopes("companies"),
            default_properties=[
                "name",
                "domain",
                "createdate",
                "hs_lastmodifieddate",
                "hs_object_id",
            ],
            primary_display_property="name",
        ),
        ObjectTypeDef(
            "0-3",
            "deals",
            "deal",
            "Deal",
            "Deals",
            *_scopes("deals"),
            required=["dealname", "dealstage", "pipeline"],
            default_properties=[
                "dealname",
                "amount",
                "closedate",
                "pipeline",
                "dealstage",
                "createdate",
                "hs_lastmodifieddate",
                "hs_object_id",
            ],
            primary_display_property="dealname",
        ),
        ObjectTypeDef(
            "0-5",
            "tickets",
            "ticket",
            "Ticket",
            "Tickets",
            ["tickets"],
            ["tickets"],
            required=["subject", "hs_pipeline", "hs_pipeline_stage"],
            default_properties=[
                "content",
                "hs_pipeline",
                "hs_pipeline_stage",
                "hs_ticket_category",
                "hs_ticket_priority",
                "subject",
                "createdate",
                "hs_lastmodifieddate",
                "hs_object_id",
            ],
            primary_display_property="subject",
        ),
        ObjectTypeDef(
            "0-27",
            "tasks",
            "task",
            "Task",
            "Tasks",
            c_r,
            ["crm.objects.contacts.write"],
            created_property="hs_createdate",
            required=["hs_timestamp"],
            default_properties=["hs_createdate", "hs_lastmodifieddate", "hs_object_id"],
            primary_display_property="hs_task_subject",
        ),
    ]


DEFAULT_PROPERTIES = _default_properties()

# property groups per object type id: (name, label)
DEFAULT_GROUPS: dict[str, list[tuple[str, str]]] = {
    "0-1": [("contactinformation", "Contact information")],
    "0-2": [("companyinformation", "Company information")],
    "0-3": [("dealinformation", "Deal information")],
    "0-5": [("ticketinformation", "Ticket information")],
    "0-27": [("task", "Task information")],
}


@dataclass(frozen=True, slots=True)
class AssociationType:
    """One directional association type between two object types."""

    from_type: str
    to_type: str
    type_id: int
    category: str  # HUBSPOT_DEFINED | USER_DEFINED
    label: str | None  # None for the unlabeled default
    inverse_id: int

    def to_json(self) -> dict[str, Any]:
        return {"category": self.category, "typeId": self.type_id, "label": self.label}


# (from, to, unlabeled id, inverse unlabeled id, [(labeled id, inverse id, label, inverse label)])
_HUBSPOT_DEFINED: list[tuple[str, str, int, int, list[tuple[int, int, str, str]]]] = [
    ("0-1", "0-2", 279, 280, [(1, 2, "Primary", "Primary")]),
    ("0-3", "0-2", 341, 342, [(5, 6, "Primary", "Primary")]),
    ("0-5", "0-2", 339, 340, [(26, 25, "Primary", "Primary")]),
    ("0-1", "0-3", 4, 3, []),
    ("0-1", "0-5", 15, 16, []),
    ("0-3", "0-5", 27, 28, []),
    ("0-1", "0-1", 449, 449, []),
    ("0-2", "0-2", 450, 450, [(13, 14, "Parent Company", "Child Company")]),
    ("0-27", "0-1", 204, 203, []),
    ("0-27", "0-2", 192, 191, []),
    ("0-27", "0-3", 216, 215, []),
    ("0-27", "0-5", 230, 229, []),
]


def default_association_types() -> list[AssociationType]:
    out: list[AssociationType] = []
    for a, b, uid, inv, labeled in _HUBSPOT_DEFINED:
        out.append(AssociationType(a, b, uid, "HUBSPOT_DEFINED", None, inv))
        if a != b or uid != inv:
            out.append(AssociationType(b, a, inv, "HUBSPOT_DEFINED", None, uid))
        for lid, linv, label, inv_label in labeled:
            out.append(AssociationType(a, b, lid, "HUBSPOT_DEFINED", label, linv))
            out.append(AssociationType(b, a, linv, "HUBSPOT_DEFINED", inv_label, lid))
    return out
