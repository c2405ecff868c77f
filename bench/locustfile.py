"""Locust users for `bench.load`: readers sending dashboard queries, one editor correcting figures.

Configured by environment variables (bench.load sets them):
LOAD_QUERIES (a JSON file: a list of GraphQL documents), LOAD_EDITOR and LOAD_PASSWORD (the
editor's login; no editor when unset), LOAD_OBSERVATIONS (ids the editor corrects, comma-separated)
and LOAD_CORRECTIONS (a file where each applied correction is appended as "id value version").
For `bench --topology`: LOAD_HOSTS (base URLs the readers spread over; else --host), LOAD_CHECK
(a file where readers append what the check query answered, "version id=value ...", to find stale
reads afterwards) and LOAD_HITS (a file for the readers' X-Cache hit and miss counts).
"""

from __future__ import annotations

import json
import os
import random
import re
from collections import Counter

from locust import constant, events, task
from locust.contrib.fasthttp import FastHttpUser

QUERIES = json.loads(open(os.environ["LOAD_QUERIES"]).read())  # noqa: SIM115
HOSTS = [h for h in os.environ.get("LOAD_HOSTS", "").split(",") if h]
CHECK = '{ dataVersion observations(filter: {indicators: ["missing.cases"], allSources: true}, limit: 10000) '
CHECK += "{ items { id correctedValue } } }"
WATCHED = {i for i in os.environ.get("LOAD_OBSERVATIONS", "").split(",") if i}
CACHE = Counter()


@events.test_stop.add_listener
def _write_hits(**_) -> None:
    if os.environ.get("LOAD_HITS"):
        with open(os.environ["LOAD_HITS"], "w") as out:
            json.dump(dict(CACHE), out)


CORRECT = """mutation($id: ID!, $value: Decimal!) {
  correctObservation(id: $id, value: $value, reason: "load test") {
    ... on Observation { correctedValue }
    ... on OperationInfo { messages { message } }
  }
}"""


def graphql(client, body: dict, name: str, headers: dict | None = None, host: str = "") -> dict | None:
    """POST a GraphQL request; any HTTP error or GraphQL error counts as a failure."""
    with client.post(
        host + "/graphql", json=body, headers={"Accept": "application/json", **(headers or {})}, name=name,
        catch_response=True,
    ) as response:  # fmt: skip
        if response.status_code != 200:
            response.failure(f"HTTP {response.status_code}: {response.text[:200]}")
            return None
        data = response.json()
        if data.get("errors"):
            response.failure(f"GraphQL errors: {data['errors']}")
            return None
        response.success()
        CACHE[response.headers.get("X-Cache") or "none"] += 1
        return data["data"]


class Reader(FastHttpUser):
    """A dashboard: the same handful of read queries, again and again."""

    weight = 50
    wait_time = constant(0)

    @task
    def read(self) -> None:
        host = random.choice(HOSTS) if HOSTS else ""
        index = random.randrange(len(QUERIES) + bool(os.environ.get("LOAD_CHECK")))
        if index == len(QUERIES):
            self.check(host)
        else:
            graphql(self.client, {"query": QUERIES[index]}, name=f"read {index}", host=host)

    def check(self, host: str) -> None:
        """The corrected figures with the data version the answer claims, kept for the stale-read check."""
        data = graphql(self.client, {"query": CHECK}, name="check", host=host)
        if data:
            seen = " ".join(
                f"{i['id']}={i['correctedValue']}" for i in data["observations"]["items"] if i["id"] in WATCHED
            )
            with open(os.environ["LOAD_CHECK"], "a") as log:
                log.write(f"{data['dataVersion']} {seen}\n")


class Editor(FastHttpUser):
    """A data editor logged in to the admin who corrects a figure every second or so."""

    fixed_count = 1 if os.environ.get("LOAD_EDITOR") else 0
    wait_time = constant(1)

    def on_start(self) -> None:
        page = self.client.get("/admin/login/", name="login page").text
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
        self.client.post(
            "/admin/login/",
            data={"username": os.environ["LOAD_EDITOR"], "password": os.environ["LOAD_PASSWORD"],
                  "csrfmiddlewaretoken": token, "next": "/admin/"},
            name="log in",
        )  # fmt: skip
        self.csrf = next(c.value for c in self.client.cookiejar if c.name == "csrftoken")  # rotated at login
        self.ids = [int(i) for i in os.environ["LOAD_OBSERVATIONS"].split(",")]

    @task
    def correct(self) -> None:
        observation, value = random.choice(self.ids), str(random.randrange(1_000_000))
        data = graphql(
            self.client,
            {"query": CORRECT, "variables": {"id": observation, "value": value}},
            name="correct",
            headers={"X-CSRFToken": self.csrf},
        )
        if data and data["correctObservation"].get("correctedValue") == value:
            # The only writer: the version now on the primary is the one this correction made.
            version = graphql(
                self.client, {"query": "{ dataVersion }"}, name="version", headers={"X-CSRFToken": self.csrf}
            )
            with open(os.environ["LOAD_CORRECTIONS"], "a") as log:
                log.write(f"{observation} {value} {version['dataVersion'] if version else '?'}\n")
