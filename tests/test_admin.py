"""The admin as staff use it: lists, edits with reasons, conflicts, history, revert, data quality, export."""

import pytest
from django.apps import apps
from django.contrib.auth.models import Group, User

from stats.models import Observation


@pytest.fixture
def texas(db):
    return Observation.objects.get(indicator__code="missing.cases", year=2021, quote__startswith="Texas", value=253)


def edit(client, obs, **fields):
    data = {
        "value_text": obs.value_text, "value": obs.value, "qualifier": obs.qualifier, "quote": obs.quote,
        "flag": obs.flag, "note": obs.note, "corrected_value": obs.corrected_value or "",
        "correction_reason": obs.correction_reason, "expected_version": obs.version, "reason": "",
        "restatements-TOTAL_FORMS": 0, "restatements-INITIAL_FORMS": 0,
    }  # fmt: skip
    data.update(fields)
    return client.post(f"/admin/stats/observation/{obs.id}/change/", data, follow=True)


@pytest.mark.parametrize(
    "url",
    ["/admin/", "/admin/stats/observation/", "/admin/stats/observation/?member=1", "/admin/stats/observation/?q=Texas",
     "/admin/stats/indicator/", "/admin/stats/source/", "/admin/stats/dimension/", "/admin/stats/member/",
     "/admin/stats/importrecord/", "/admin/stats/observation/data-quality/", "/admin/stats/observation/import/"],
)  # fmt: skip
def test_every_page_opens(client, editor, url):
    assert client.get(url).status_code == 200


def test_observations_are_listed_with_their_breakdown(client, editor, texas):
    page = client.get("/admin/stats/observation/", {"year": 2021, "q": "Texas"}).content.decode()
    assert "Case status: Active, State/territory: Texas" in page


def test_an_edit_needs_a_reason_and_is_recorded(client, editor, texas):
    response = edit(client, texas, corrected_value="254", correction_reason="erratum")
    assert "This field is required" in response.content.decode()
    texas.refresh_from_db()
    assert texas.corrected_value is None
    edit(client, texas, corrected_value="254", correction_reason="erratum", reason="NCMEC erratum of 2022")
    texas.refresh_from_db()
    assert (texas.corrected_value, texas.version) == (254, 2)
    event = apps.get_model("stats", "ObservationEvent").objects.filter(pgh_obj_id=texas.id).latest("pgh_id")
    assert event.pgh_context.metadata["reason"] == "NCMEC erratum of 2022"
    assert event.pgh_context.metadata["user"] == editor.id


def test_a_concurrent_edit_is_refused_with_a_conflict_message(client, editor, texas):
    stale = Observation.objects.get(id=texas.id)
    edit(client, texas, note="first", reason="first editor")
    response = edit(client, stale, note="second", reason="second editor")
    assert "changed by someone else" in response.content.decode()
    texas.refresh_from_db()
    assert texas.note == "first"


def test_history_is_shown_and_a_change_can_be_reverted(client, editor, texas):
    edit(client, texas, corrected_value="999", reason="wrong correction")
    page = client.get(f"/admin/stats/observation/{texas.id}/change/").content.decode()
    assert "wrong correction" in page
    assert "corrected value — → 999" in page
    first = apps.get_model("stats", "ObservationEvent").objects.filter(pgh_obj_id=texas.id).earliest("pgh_id")
    revert = f"/admin/stats/observation/{texas.id}/revert/{first.pgh_id}/"
    before = client.get(revert)
    assert before.context["changes"] == [
        ("corrected value", "999", "—"),
        ("correction reason", "wrong correction", "—"),
    ]
    assert '<td class="now">999</td><td class="then">—</td>' in before.content.decode()
    client.post(revert, {"reason": "undo the wrong correction"})
    texas.refresh_from_db()
    assert texas.corrected_value is None
    assert texas.version == 3


def test_the_history_button_shows_who_why_and_printed_values(client, editor, texas):
    edit(client, texas, value_text="315", reason="the report was reprinted")
    response = client.get(f"/admin/stats/observation/{texas.id}/history/")
    entries = response.context["entries"]
    assert [(e.what, e.user, e.reason) for e in entries][-1] == ("changed", "editor", "the report was reprinted")
    assert entries[-1].changes == [("value", "253", "315"), ("value as printed", "253", "315")]
    assert entries[0].what == "created"
    page = response.content.decode()
    assert "value as printed 253 → 315" in page
    assert "None" not in page
    assert "315.0000" not in page
    assert f"/admin/stats/observation/{texas.id}/revert/{entries[0].event_id}/" in page


def test_a_revert_of_another_observations_event_is_not_found(client, editor, texas):
    other = Observation.objects.exclude(id=texas.id).order_by("id").first()
    event = apps.get_model("stats", "ObservationEvent").objects.filter(pgh_obj_id=other.id).earliest("pgh_id")
    response = client.post(f"/admin/stats/observation/{texas.id}/revert/{event.pgh_id}/", {"reason": "x"})
    assert response.status_code == 404
    assert Observation.objects.get(id=texas.id).version == texas.version


def test_the_edit_form_asks_for_one_reason_which_is_also_the_corrections(client, editor, texas):
    page = client.get(f"/admin/stats/observation/{texas.id}/change/").content.decode()
    assert page.count('name="reason"') == 1
    assert 'name="correction_reason"' not in page
    edit(client, texas, corrected_value="254", reason="NCMEC erratum of 2022")
    texas.refresh_from_db()
    assert (texas.corrected_value, texas.correction_reason) == (254, "NCMEC erratum of 2022")
    edit(client, texas, corrected_value="", reason="the erratum was withdrawn")
    texas.refresh_from_db()
    assert (texas.corrected_value, texas.correction_reason) == (None, "")


def test_the_data_quality_page_lists_flags_and_explained_mismatches(client, editor):
    page = client.get("/admin/stats/observation/data-quality/").content.decode()
    assert "None: every mismatch carries a flag or a correction." in page
    assert "29,397,681 million" in page
    assert "Colorado" in page or "sum_mismatch" in page or "parts do not sum to total" in page


def test_export_is_by_natural_keys_and_safe_for_spreadsheets(client, editor, texas):
    Observation.objects.filter(id=texas.id).update(note="=HYPERLINK(evil)")
    response = client.get("/admin/stats/observation/export/csv/", {"year": "2021"})
    assert response["Content-Type"].startswith("text/csv")
    content = response.content.decode()
    header = content.splitlines()[0].split(",")
    assert {"source_document", "year", "indicator_code", "state", "case_status", "value_text"} <= set(header)
    assert "'=HYPERLINK(evil)" in content
    assert all(",2021," in line for line in content.splitlines()[1:] if line.startswith(tuple("0123456789")))


def test_a_viewer_reads_but_cannot_change_or_import(client, db, texas):
    viewer = User.objects.create_user("viewer", password="pw-for-tests-only", is_staff=True)
    viewer.groups.add(Group.objects.get(name="Viewer"))
    client.force_login(viewer)
    assert client.get(f"/admin/stats/observation/{texas.id}/change/").status_code == 200
    edit(client, texas, note="x", reason="y")
    assert Observation.objects.get(id=texas.id).note == texas.note
    assert Observation.objects.get(id=texas.id).version == 1
    assert client.get("/admin/stats/observation/import/").status_code == 403
    assert client.post(f"/admin/stats/observation/{texas.id}/revert/1/", {"reason": "x"}).status_code == 403


def test_anonymous_users_are_sent_to_the_login_page(client, db):
    response = client.get("/admin/stats/observation/import/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def write_urls() -> list[tuple[str, dict]]:
    """Every admin URL that writes: add, change and delete of each registered model, import, revert."""
    from django.contrib import admin

    urls = []
    for model in admin.site._registry:
        base = f"/admin/{model._meta.app_label}/{model._meta.model_name}"
        obj = model.objects.order_by("pk").first()
        urls.append((f"{base}/add/", {}))
        if obj is not None:
            urls += [(f"{base}/{obj.pk}/change/", {}), (f"{base}/{obj.pk}/delete/", {"post": "yes"})]
    obs = Observation.objects.order_by("pk").first()
    urls += [("/admin/stats/observation/import/", {"shape": "long"}), (f"/admin/stats/observation/{obs.pk}/revert/1/",
             {"reason": "x"})]  # fmt: skip
    return urls


def everything() -> tuple:
    from stats.models import DataVersion

    return DataVersion.stamp(), User.objects.count(), Group.objects.count(), User.objects.filter(is_staff=True).count()


@pytest.mark.parametrize("who", ["anonymous", "viewer"])
def test_no_admin_write_url_changes_anything_for_anonymous_users_or_viewers(client, db, who):
    if who == "viewer":
        viewer = User.objects.create_user("viewer", password="pw-for-tests-only", is_staff=True)
        viewer.groups.add(Group.objects.get(name="Viewer"))
        client.force_login(viewer)
    before = everything()
    for url, data in write_urls():
        response = client.post(url, data)
        if who == "anonymous":
            assert response.status_code == 302, url
            assert "/admin/login/" in response["Location"], url
        else:
            assert response.status_code == 403, url
    assert everything() == before


def inline(prefix: str, rows: list[dict], initial: int = 0) -> dict:
    data = {f"{prefix}-TOTAL_FORMS": len(rows), f"{prefix}-INITIAL_FORMS": initial}
    for i, row in enumerate(rows):
        data.update({f"{prefix}-{i}-{k}": v for k, v in row.items()})
    return data


def test_a_member_created_in_the_admin_has_its_spellings_so_imports_find_it(client, editor):
    from stats.lookups import CatalogLookup
    from stats.models import Dimension, Member

    state = Dimension.objects.get(code="state")
    response = client.post("/admin/stats/member/add/", {
        "dimension": state.id, "code": "XX", "label": "Freedonia", "order": 99,
        **inline("aliases", [{"alias": "Fredonia"}]),
    })  # fmt: skip
    assert response.status_code == 302
    member = Member.objects.get(dimension=state, code="XX")
    lookup = CatalogLookup.load()
    assert {lookup.member("state", s) for s in ("Freedonia", "XX", "fredonia")} == {member}
    assert sorted(member.aliases.values_list("alias", flat=True)) == ["Fredonia", "Freedonia", "XX"]

    renamed = client.post(f"/admin/stats/member/{member.id}/change/", {
        "label": "Freedonia (Republic of)", "order": 99,
        **inline("aliases", [{"id": a.id, "member": member.id, "alias": a.alias} for a in member.aliases.all()],
                 initial=3),
    })  # fmt: skip
    assert renamed.status_code == 302
    lookup = CatalogLookup.load()
    assert lookup.member("state", "Freedonia (Republic of)") == member
    assert lookup.member("state", "Fredonia") == member
    assert ("state", "freedonia") not in lookup.spellings  # the old label no longer reads as it


def test_a_spelling_of_another_member_is_refused_with_a_message(client, editor):
    from stats.models import Dimension, Member

    state = Dimension.objects.get(code="state")
    before = Member.objects.count()
    response = client.post("/admin/stats/member/add/", {
        "dimension": state.id, "code": "NV2", "label": "Nevada", "order": 1, **inline("aliases", []),
    })  # fmt: skip
    assert response.status_code == 200
    assert "Spellings used by another member: &quot;Nevada&quot; (already NV)" in response.content.decode()
    assert Member.objects.count() == before


def test_members_added_on_the_dimension_page_get_their_spellings(client, editor):
    from stats.lookups import CatalogLookup
    from stats.models import Dimension

    response = client.post("/admin/stats/dimension/add/", {
        "code": "region", "name": "Region", "description": "", "order": 50,
        **inline("members", [{"code": "west", "label": "The West", "order": 0}]),
    })  # fmt: skip
    assert response.status_code == 302
    region = Dimension.objects.get(code="region")
    assert CatalogLookup.load().member("region", "the west").code == "west"
    assert client.get(f"/admin/stats/dimension/{region.id}/change/").status_code == 200


def test_sources_and_indicators_are_created_and_their_keys_then_fixed(client, editor):
    from stats.models import Indicator, Source, Topic

    topic = Topic.objects.first()
    assert client.post("/admin/stats/source/add/", {
        "slug": "impact-2025", "title": "Our 2025 Impact", "kind": "impact_report", "edition": 2025,
        "publisher": "NCMEC", "document": "impact-2025.pdf", "url": "https://www.missingkids.org/",
    }).status_code == 302  # fmt: skip
    assert client.post("/admin/stats/indicator/add/", {
        "code": "missing.new_thing", "name": "A new count", "unit": "count", "topic": topic.id, "order": 0,
    }).status_code == 302  # fmt: skip
    assert Source.objects.get(slug="impact-2025").edition == 2025
    source = Source.objects.get(slug="impact-2025")
    page = client.get(f"/admin/stats/source/{source.id}/change/").content.decode()
    assert 'name="slug"' not in page  # the key is fixed once created
    assert Indicator.objects.get(code="missing.new_thing").topic == topic
