"""Making photos for tests the way people do: upload as a member, fill the rights bundle, publish."""

from __future__ import annotations

import io
from datetime import datetime
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import select

from archive import workflow
from archive.models import Licence, PeopleShown, Photo, Place, User, db
from tests.conftest import jpeg_bytes


def upload(client: FlaskClient, files: list[tuple[bytes, str]], **form: str) -> Any:
    data: dict[str, Any] = {"photos": [(io.BytesIO(b), n) for b, n in files], **form}
    return client.post("/upload", data=data, content_type="multipart/form-data",
                       headers={"Accept": "application/json"})


def upload_one(client: FlaskClient, color: tuple[int, int, int] = (200, 30, 30), **form: str) -> int:
    response = upload(client, [(jpeg_bytes(color), "bruecke.jpg")], **form)
    assert response.status_code == 201, response.get_data(as_text=True)
    return int(response.get_json()["results"][0]["photo_id"])


def a_place(name: str = "Konrad-Adenauer-Brücke", city: str = "Ludwigshafen am Rhein") -> Place:
    place = db.session.scalar(select(Place).where(Place.name == name, Place.city == city))
    if place is None:
        place = Place(name=name, city=city, lat=49.4836, lon=8.4516)
        db.session.add(place)
        db.session.commit()
    return place


def complete_bundle(photo_id: int, actor: User, **overrides: Any) -> Photo:
    """Everything the publication gate asks for, with no identifiable people."""
    values: dict[str, Any] = dict(
        title="Die Brücke über den Rhein", caption="Abendlicht über der Konrad-Adenauer-Brücke",
        alt_text="Eine Stahlbrücke über einen breiten Fluss im Abendlicht", credit="Anna Beispiel",
        licence=Licence.CC_BY, people=PeopleShown.NONE, minors=False, place_id=a_place().id,
        taken_at=datetime(2024, 6, 1, 19, 30))
    values.update(overrides)
    photo = db.session.get(Photo, photo_id)
    return workflow.update_photo(db.session, photo, workflow.RightsChange(**values), actor)


def publish(photo_id: int, curator: User) -> Photo:
    photo = db.session.get(Photo, photo_id)
    return workflow.transition(db.session, photo, "publish", curator)
