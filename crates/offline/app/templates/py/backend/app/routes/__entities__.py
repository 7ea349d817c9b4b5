"""The [[ entities ]] API: every route needs a signed-in user and sees only that user's [[ entities ]]."""

from typing import Annotated

from fastapi import APIRouter, Depends, Response

from app.auth import CurrentUser
from app.http import JsonBody, StoreDep, parse_id
from app.models import [[ Entity ]]
from app.services import [[ Entity ]]Service

router = APIRouter(prefix="/api/[[ entities ]]")


def _service(store: StoreDep) -> [[ Entity ]]Service:
    return [[ Entity ]]Service(store)


ServiceDep = Annotated[[ '[' ]][[ Entity ]]Service, Depends(_service)]


@router.get("")
def list_[[ entities ]](user: CurrentUser, service: ServiceDep) -> list[[ '[' ]][[ Entity ]]]:
    return service.list_items(user.id)


@router.post("", status_code=201)
def create_[[ entity ]](user: CurrentUser, service: ServiceDep, body: JsonBody = None) -> [[ Entity ]]:
    return service.create(user.id, body)


@router.get("/{item_id}")
def get_[[ entity ]](item_id: str, user: CurrentUser, service: ServiceDep) -> [[ Entity ]]:
    return service.get(user.id, parse_id(item_id))


@router.patch("/{item_id}")
def update_[[ entity ]](item_id: str, user: CurrentUser, service: ServiceDep, body: JsonBody = None) -> [[ Entity ]]:
    return service.update(user.id, parse_id(item_id), body)


@router.delete("/{item_id}", status_code=204)
def delete_[[ entity ]](item_id: str, user: CurrentUser, service: ServiceDep) -> Response:
    service.remove(user.id, parse_id(item_id))
    return Response(status_code=204)
