"""The shapes the backend reads and writes, in the wire format (snake_case), as the database
and the frontend name them."""

from dataclasses import dataclass
from datetime import [% for field in fields if field.kind == "date" %][% if loop.first %]date, [% endif %][% endfor %]datetime
from typing import TypedDict


@dataclass
class User:
    id: int
    email: str


@dataclass
class UserRecord(User):
    """A user as stored: the password hash never leaves the backend."""

    password_hash: str


@dataclass
class Session:
    """What register and login answer."""

    token: str
    user: User


@dataclass
class [[ Entity ]]:
    """Extra fields are optional: None (null) when unset."""

    id: int
    title: str
    completed: bool
[% for field in fields %]
    [[ field.name ]]: [% if field.kind == "integer" %]int[% elif field.kind == "boolean" %]bool[% elif field.kind == "date" %]date[% else %]str[% endif %] | None
[% endfor %]
    created_at: datetime


@dataclass
class New[[ Entity ]]:
    """A validated create request."""

    title: str
    completed: bool = False
[% for field in fields %]
    [[ field.name ]]: [% if field.kind == "integer" %]int[% elif field.kind == "boolean" %]bool[% elif field.kind == "date" %]date[% else %]str[% endif %] | None = None
[% endfor %]


class [[ Entity ]]Changes(TypedDict, total=False):
    """A validated update request: only the fields to change."""

    title: str
    completed: bool
[% for field in fields %]
    [[ field.name ]]: [% if field.kind == "integer" %]int[% elif field.kind == "boolean" %]bool[% elif field.kind == "date" %]date[% else %]str[% endif %] | None
[% endfor %]
