"""Data shapes of the __entity__ application."""

from datetime import datetime

from pydantic import BaseModel, Field


class User(BaseModel):
    id: int
    email: str
    created_at: datetime


class __Entity__(BaseModel):
    id: int
    owner_id: int
    title: str
    details: str = ""
    done: bool = False
    created_at: datetime


class New__Entity__(BaseModel):
    title: str = Field(min_length=1, max_length=200)
    details: str = ""


class __Entity__Update(BaseModel):
    title: str | None = Field(default=None, min_length=1, max_length=200)
    details: str | None = None
    done: bool | None = None
