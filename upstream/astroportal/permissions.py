"""The roles and the ACLs each one grants. Bootstrap writes them to the database."""

ACLS = [
    "System admin",  # everything, including other users' roles and tokens
    "Manage users",  # add and remove group members, change roles
    "Manage groups",  # create groups and their streams and filters
    "Manage sources",  # delete sources, edit any source's fields
    "Manage telescopes",  # create and edit telescopes and instruments
    "Upload data",  # sources, candidates, photometry
    "Classify",
    "Comment",
    "Annotate",
    "Post taxonomy",
    "Manage GCNs",  # post GCN notices (gravitational-wave / GRB events, their sky maps)
]

ROLES: dict[str, list[str]] = {
    "Super admin": list(ACLS),
    # A group role: its "Manage ..." ACLs count only in the groups the user administers (see access_rules.py).
    # Shared data (telescopes, instruments, streams) needs a sitewide role.
    "Group admin": [
        "Manage users",
        "Manage groups",
        "Manage sources",
        "Upload data",
        "Classify",
        "Comment",
        "Annotate",
        "Post taxonomy",
    ],
    "Full user": ["Upload data", "Classify", "Comment", "Annotate"],
    "View only": [],
}

SITEWIDE_GROUP = "Sitewide Group"
