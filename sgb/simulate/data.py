"""Word lists and reference values for ``sgb simulate``: invented names, places and organisations.

Nothing here describes a real person. Names are common first and family names combined at
random; streets are invented; phone numbers come from Ofcom's range reserved for drama
(020 7946 0000 to 0999); e-mail addresses use the reserved ``example.org`` domain; every
organisation name the simulator invents ends in "(synthetic)".
"""

from __future__ import annotations

from datetime import UTC, date, datetime

#: The organisations onboarded in ``deploy/topics.yaml``, so that simulated events are delivered.
DEFAULT_LA_CODES = ("202", "203", "213")
DEFAULT_SCHOOLS = ("100000", "100001", "100002")
DEFAULT_GP_PRACTICES = ("F83004", "F83019", "E87024")
DEFAULT_POLICE_FORCE = "metropolitan"

#: Where the simulated period starts and the day ages are counted on, unless told otherwise:
#: fixed, so that a seed alone makes the output repeatable.
DEFAULT_START = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
DEFAULT_TODAY = DEFAULT_START.date()

EVENT_AGENCY = {
    "EMERGENCY_ATTENDANCE": "HEALTH",
    "HEALTH_SAFEGUARDING_CONCERN": "HEALTH",
    "WAS_NOT_BROUGHT": "HEALTH",
    "DOMESTIC_ABUSE_INCIDENT": "POLICE",
    "MISSING_EPISODE": "POLICE",
    "EXPLOITATION_CONCERN": "POLICE",
    "SCHOOL_SAFEGUARDING_CONCERN": "EDUCATION",
    "ATTENDANCE_ALERT": "EDUCATION",
    "CHILD_MISSING_EDUCATION": "EDUCATION",
    "REFERRAL_OUTCOME": "LOCAL_AUTHORITY",
    "CHILD_PROTECTION_PLAN": "LOCAL_AUTHORITY",
    "LOOKED_AFTER_STATUS": "LOCAL_AUTHORITY",
    "FAMILY_HELP_CASE": "LOCAL_AUTHORITY",
    "STRATEGY_DISCUSSION": "LOCAL_AUTHORITY",
}
EVENT_TYPES = tuple(EVENT_AGENCY)

#: Relative volumes when no mix is given: everyday concerns and attendances far outnumber
#: plans, care episodes and strategy discussions.
DEFAULT_MIX = {
    "EMERGENCY_ATTENDANCE": 14.0,
    "HEALTH_SAFEGUARDING_CONCERN": 7.0,
    "WAS_NOT_BROUGHT": 6.0,
    "DOMESTIC_ABUSE_INCIDENT": 12.0,
    "MISSING_EPISODE": 7.0,
    "EXPLOITATION_CONCERN": 3.0,
    "SCHOOL_SAFEGUARDING_CONCERN": 14.0,
    "ATTENDANCE_ALERT": 12.0,
    "CHILD_MISSING_EDUCATION": 2.0,
    "REFERRAL_OUTCOME": 9.0,
    "CHILD_PROTECTION_PLAN": 4.0,
    "LOOKED_AFTER_STATUS": 3.0,
    "FAMILY_HELP_CASE": 5.0,
    "STRATEGY_DISCUSSION": 3.0,
}

#: Risk weights (SIGNIFICANT_HARM, NEEDS_SUPPORT, INFORMATION) for types whose risk is not
#: decided by their details.
RISK_WEIGHTS = {
    "EMERGENCY_ATTENDANCE": (5, 25, 70),
    "HEALTH_SAFEGUARDING_CONCERN": (15, 70, 15),
    "WAS_NOT_BROUGHT": (5, 75, 20),
    "DOMESTIC_ABUSE_INCIDENT": (15, 65, 20),
    "MISSING_EPISODE": (15, 55, 30),
    "EXPLOITATION_CONCERN": (30, 65, 5),
    "SCHOOL_SAFEGUARDING_CONCERN": (10, 60, 30),
    "ATTENDANCE_ALERT": (3, 67, 30),
    "CHILD_MISSING_EDUCATION": (10, 70, 20),
    "FAMILY_HELP_CASE": (0, 80, 20),
    "STRATEGY_DISCUSSION": (85, 15, 0),
}
RISKS = ("SIGNIFICANT_HARM", "NEEDS_SUPPORT", "INFORMATION")

GIRLS = (
    "Amelia",
    "Olivia",
    "Isla",
    "Ava",
    "Freya",
    "Lily",
    "Sophia",
    "Grace",
    "Maya",
    "Zara",
    "Aisha",
    "Chloe",
    "Ella",
    "Priya",
    "Hannah",
    "Ruby",
    "Fatima",
    "Nia",
    "Poppy",
    "Evie",
)
BOYS = (
    "Oliver",
    "Noah",
    "Leo",
    "Arthur",
    "Theo",
    "Jack",
    "Harry",
    "Muhammad",
    "Yusuf",
    "Kofi",
    "Ethan",
    "Oscar",
    "Alfie",
    "Reuben",
    "Samuel",
    "Aarav",
    "Daniel",
    "Jayden",
    "Luca",
    "Finley",
)
WOMEN = (
    "Sarah",
    "Emma",
    "Laura",
    "Amina",
    "Claire",
    "Rachel",
    "Joanne",
    "Nadia",
    "Kerry",
    "Gemma",
    "Shanice",
    "Helen",
    "Yetunde",
    "Agnieszka",
    "Louise",
)
MEN = (
    "David",
    "Mark",
    "Ahmed",
    "Daniel",
    "Lee",
    "Paul",
    "Marcus",
    "Tomasz",
    "Chris",
    "Jamal",
    "Gary",
    "Imran",
    "Kwame",
    "Stuart",
    "Ryan",
)
FAMILY_NAMES = (
    "Smith",
    "Jones",
    "Taylor",
    "Brown",
    "Williams",
    "Wilson",
    "Johnson",
    "Davies",
    "Patel",
    "Khan",
    "Robinson",
    "Wright",
    "Thompson",
    "Evans",
    "Walker",
    "White",
    "Roberts",
    "Green",
    "Hall",
    "Ahmed",
    "Okafor",
    "Mensah",
    "Nowak",
    "Ali",
    "Clarke",
    "Hughes",
    "Begum",
    "Murphy",
)

#: DfE/NHS ethnicity category codes (REFU: refused; NOBT: not obtained).
ETHNICITIES = (
    "WBRI",
    "WBRI",
    "WBRI",
    "WOTH",
    "WIRI",
    "MWBC",
    "MWBA",
    "MOTH",
    "AIND",
    "APKN",
    "ABAN",
    "BAFR",
    "BCRB",
    "CHNE",
    "OOTH",
    "REFU",
    "NOBT",
)

#: Invented street names.
STREETS = (
    "Larkspur Road",
    "Quillon Street",
    "Brackendale Mews",
    "Marrowby Close",
    "Thistlecombe Way",
    "Fennick Lane",
    "Alderbrook Terrace",
    "Wrenfield Gardens",
    "Copperbeech Row",
    "Hollowmere Place",
    "Saltinge Road",
    "Pellow Court",
    "Ivybridge Walk",
    "Kestrelgate Avenue",
    "Ormsby Yard",
    "Tansley Crescent",
    "Bramblewick Street",
    "Netherby Rise",
)
REFUGE_LINES = ("Safe accommodation (synthetic)", "Refuge address held by PPU (synthetic)")

#: Outward postcodes in each default authority's area; other authorities get their name as town.
POSTCODE_AREAS = {
    "202": ("London", ("NW1", "NW3", "NW5", "WC1H", "WC1N")),
    "203": ("London", ("SE3", "SE7", "SE10", "SE18", "SE9")),
    "213": ("London", ("W2", "W9", "NW8", "SW1V", "W1H")),
}
FALLBACK_OUTWARD = ("AB1", "AB2", "AB3")
#: Letters used in the inward part of a postcode (never C, I, K, M, O or V).
INWARD_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"

SCHOOL_NAMES = {
    "100000": "Larkspur All-Through School (synthetic)",
    "100001": "Hollowmere Academy (synthetic)",
    "100002": "St Aldric's CE School (synthetic)",
}
GP_NAMES = {
    "F83004": "Brackendale Medical Centre (synthetic)",
    "F83019": "Riverside Surgery (synthetic)",
    "E87024": "Pellow Court Practice (synthetic)",
}
#: Invented acute trusts with one emergency site each: (trust code, trust name, site code, site name).
TRUSTS = (
    ("RZ1", "Northbridge Hospitals NHS Trust (synthetic)", "RZ101", "Northbridge Hospital (synthetic)"),
    ("RZ2", "Saltinge Health NHS Trust (synthetic)", "RZ201", "Saltinge General Hospital (synthetic)"),
    (
        "RZ3",
        "Wrenfield University Hospitals (synthetic)",
        "RZ301",
        "Wrenfield Children's Hospital (synthetic)",
    ),
)
PROVIDER_CODES = ("RZ1", "RZ2", "RZ3", "RZ4")

SPECIALTIES = (
    "Paediatrics",
    "Community paediatrics",
    "Audiology",
    "Orthoptics",
    "Dental",
    "Speech and language therapy",
    "Immunisation",
    "Health visiting review",
)
ATTENDANCE_REASONS = (
    ("Head injury", "Fall from height", "UNINTENTIONAL"),
    ("Arm injury", "Fall on outstretched hand", "UNINTENTIONAL"),
    ("Scald", "Hot liquid", "UNINTENTIONAL"),
    ("Wound to hand", "Sharp object", "UNINTENTIONAL"),
    ("Facial bruising", "Struck by person", "ASSAULT"),
    ("Overdose of medication", "Ingestion of medication", "SELF_INFLICTED"),
    ("Laceration to forearm", "Sharp object", "SELF_INFLICTED"),
    ("Swallowed object", "Ingestion of foreign body", "UNCERTAIN"),
    ("Breathing difficulty", None, None),
    ("Fever", None, None),
    ("Abdominal pain", None, None),
    ("Alcohol intoxication", None, "UNCERTAIN"),
)
OFFENCES = (
    "Common assault",
    "Assault occasioning actual bodily harm",
    "Criminal damage",
    "Controlling or coercive behaviour",
    "Harassment",
    "Threats to kill",
    "Breach of non-molestation order",
)
PROTECTIVE_MEASURES = (
    "Domestic Violence Protection Notice issued",
    "Bail with condition not to contact the victim",
    "Referred to the MARAC",
    "Safety planning with the victim",
    None,
)
SERVICES = {
    "GP": "General practice",
    "HEALTH_VISITOR": "Health visiting",
    "SCHOOL_NURSE": "School nursing",
    "MIDWIFE": "Maternity",
    "EMERGENCY_CARE_CLINICIAN": "Emergency department",
    "PAEDIATRICIAN": "Paediatrics",
    "MENTAL_HEALTH_PRACTITIONER": "Children and young people's mental health service",
    "SEXUAL_HEALTH_PRACTITIONER": "Sexual health clinic",
    "DENTIST": "Community dental service",
    "HEALTH_SAFEGUARDING_PROFESSIONAL": "Named nurse for safeguarding",
    "OTHER": "Community health",
}
LOCATIONS_OF_CONCERN = (
    "A stairwell on a housing estate (synthetic)",
    "A takeaway near the station (synthetic)",
    "A car park behind a retail park (synthetic)",
    "A coastal town outside the area (synthetic)",
    "A short-let flat (synthetic)",
)
OPERATIONS = (
    "Operation Kestrel (synthetic)",
    "Operation Tansley (synthetic)",
    "Operation Netherby (synthetic)",
)
PLACEMENT_TYPES = (
    "Foster placement with relative or friend",
    "Placement with other foster carer",
    "Children's home",
    "Placed with parents",
    "Semi-independent living accommodation",
)
LAC_ENDED_REASONS = (
    "Returned home to live with parents",
    "Special guardianship order made",
    "Moved into independent living",
    "Adopted",
    "Residence order granted to relative",
)
CARE_LEGAL_STATUSES = ("C2", "C2", "V2", "V2", "V2", "L1", "E1", "J2")

PERSON_RELATIONSHIPS_MOTHER = ("mother", "mother", "mother", "grandmother", "aunt")
PERSON_RELATIONSHIPS_PARTNER = ("father", "father", "stepfather", "mother's partner")


def academic_year(on: date) -> str:
    """The English academic year a date falls in, for example ``2026/27`` for 2 November 2026."""
    first = on.year if on.month >= 9 else on.year - 1
    return f"{first}/{(first + 1) % 100:02d}"
