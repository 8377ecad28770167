"""Runs the scim2-tester and scim-sanity conformance checks against a running SCIM endpoint.

Usage: python conformance.py --base-url http://127.0.0.1:PORT/scim/v2 [--report FILE]
with the tenant's bearer token in the SCIM_TOKEN environment variable.

scim2-tester: every check whose status is SUCCESS, COMPLIANT or ACCEPTABLE
passes. ERROR, CRITICAL and DEVIATION fail, unless the result matches an entry
of EXCLUDED, which says why that check does not apply.

scim-sanity (its `probe`, strict mode, run in-process so the token never
appears on a command line): `pass` passes, `fail` and `error` fail, unless
the result matches an entry of SANITY_DEVIATIONS, a known deviation of the
checker from the RFCs with the section that shows it; `warn` and `skip` are
listed and not counted.

The last line printed is `conformance: N passed, N failed, N skipped` (known
deviations and exclusions count as skipped, and are printed with their reason)
and the exit status is 1 when anything failed.
"""

import argparse
import json
import os
import sys

import httpx2
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status
from scim2_tester import check_server
from scim_sanity.probe.runner import run_probe_api

PASSING = {Status.SUCCESS, Status.COMPLIANT, Status.ACCEPTABLE}

def _dump(value):
    """A check's value as plain data (pydantic models dumped, lists walked)."""
    if isinstance(value, list):
        return [_dump(item) for item in value]
    if hasattr(value, "model_dump"):
        return value.model_dump()
    return value


def _without_display(members):
    return [
        {key: item for key, item in member.items() if key != "display"}
        if isinstance(member, dict)
        else member
        for member in members or []
    ]


def members_differ_only_by_display(result):
    """True when the patched and returned `members` are equal once the read-only,
    server-filled `display` sub-attribute is set aside."""
    data = result.data if isinstance(result.data, dict) else {}
    if data.get("urn") != "members":
        return False
    actual = data.get("actual", data.get("modify_actual"))
    expected = _dump(data.get("expected"))
    actual = _dump(actual)
    return (
        isinstance(expected, list)
        and isinstance(actual, list)
        and _without_display(expected) == _without_display(actual)
    )


def reason_mentions(text):
    return lambda result: text in (result.reason or "")


# Checks that do not apply to this server, each with a precise match and the
# reason. Every other non-passing result fails the run. Keep this list short
# and every reason true.
EXCLUDED = [
    (
        "check_remove_attribute",
        reason_mentions("attribute 'active'"),
        "by the identity.v1 contract `active` is always set (absent means true), so removing "
        "it restores true instead of leaving it unassigned",
    ),
    (
        "check_add_attribute",
        members_differ_only_by_display,
        "the returned members carry `display`, a read-only name the server fills in; "
        "scim2-tester compares them verbatim with what it sent",
    ),
    (
        "check_replace_attribute",
        members_differ_only_by_display,
        "the returned members carry `display`, a read-only name the server fills in; "
        "scim2-tester compares them verbatim with what it sent",
    ),
]


# scim-sanity checks that contradict the RFCs, each as (check name, text that
# must appear in its message, the RFC text that the server follows instead).
# The check still runs and is printed as KNOWN with this reason.
GROUP_PATCH_204 = (
    "RFC 7644 §3.5.2: on success the server \"either MUST return a 200 OK response code "
    "and the entire resource ... or MAY return HTTP status code 204 (No Content)\"; a group "
    "PATCH answers 204 (no member list echoed on every change, as Entra ID advises) and 200 "
    "with the resource when attributes/excludedAttributes ask for it"
)
SANITY_DEVIATIONS = [
    ("PATCH /Groups/{id}", "got 204", GROUP_PATCH_204),
    ("PATCH /Groups/{id} remove members", "got 204", GROUP_PATCH_204),
    (
        "PATCH /Groups/{id} add member",
        "got 400",
        "the checker adds the member \"fake-member-id\", which names no user; a member's "
        "value is the id of a resource of the service provider (RFC 7643 §4.2), and a value "
        "the resource schema does not allow is answered 400 invalidValue (RFC 7644 §3.12); "
        "accepting it would store a membership of nobody",
    ),
]


class SanityResult:
    """A scim-sanity result in the shape the report and the listing use."""

    def __init__(self, raw):
        self.title = raw.get("name", "")
        self.status = raw.get("status", "")
        self.reason = raw.get("message", "")
        self.phase = raw.get("phase", "")
        self.resource_type = None

    def label(self):
        return f"[scim-sanity] {self.title}"


def sanity_deviation(result):
    for title, needle, reason in SANITY_DEVIATIONS:
        if result.title == title and needle in (result.reason or ""):
            return reason
    return None


def run_sanity(base_url, token):
    """scim-sanity's probe; a crash of the checker is one failed check."""
    try:
        outcome = run_probe_api(base_url, token=token, strict=True, timeout=30)
    except Exception as exc:  # noqa: BLE001 - any crash must fail the run visibly
        return [SanityResult({"name": "scim-sanity probe", "status": "error", "message": repr(exc)})]
    return [SanityResult(raw) for raw in outcome.get("results", [])]


def exclusion_reason(result):
    for title, matches, reason in EXCLUDED:
        if result.title == title and matches(result):
            return reason
    return None


def label(result):
    if isinstance(result, SanityResult):
        return result.label()
    scope = f"[{result.resource_type}] " if result.resource_type else ""
    return f"{scope}{result.title}"


def shorten(value, limit=600):
    text = value if isinstance(value, str) else repr(value)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", required=True, help="SCIM base URL, e.g. http://127.0.0.1:8080/scim/v2")
    parser.add_argument("--report", help="write every result as JSON to this file")
    args = parser.parse_args()
    token = os.environ.get("SCIM_TOKEN", "")
    if not token:
        print("error: SCIM_TOKEN is not set", file=sys.stderr)
        return 2

    http = httpx2.Client(
        base_url=args.base_url,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    results = check_server(SyncSCIMClient(http))
    sanity_results = run_sanity(args.base_url, token)

    passed, failed, skipped, excluded, deviations = [], [], [], [], []
    for result in results:
        if result.status == Status.SKIPPED:
            skipped.append(result)
        elif result.status in PASSING:
            passed.append(result)
        elif (reason := exclusion_reason(result)) is not None:
            excluded.append((result, reason))
        else:
            failed.append(result)
    for result in sanity_results:
        if result.status in ("skip", "warn"):
            skipped.append(result)
        elif result.status == "pass":
            passed.append(result)
        elif (reason := sanity_deviation(result)) is not None:
            deviations.append((result, reason))
        else:
            failed.append(result)

    if not any(r.resource_type == "User" for r in results):
        failed_note = "no User checks ran: the discovery endpoints did not describe a User resource"
    else:
        failed_note = None

    for result in passed:
        print(f"PASS  {label(result)}: {shorten(result.reason or '')}")
    for result in failed:
        status = result.status if isinstance(result, SanityResult) else result.status.name
        print(f"FAIL  {label(result)} ({status}): {shorten(result.reason or '')}")
        if getattr(result, "data", None) is not None:
            print(f"      data: {shorten(result.data)}")
    if failed_note:
        print(f"FAIL  {failed_note}")

    if skipped or excluded or deviations:
        print("\nNot run or not counted:")
        for result in skipped:
            if isinstance(result, SanityResult) and result.status == "warn":
                print(f"WARN  {label(result)}: {shorten(result.reason or '')}")
            else:
                print(f"SKIP  {label(result)}: {shorten(result.reason or 'skipped by the checker')}")
        for result, reason in excluded:
            print(f"EXCL  {label(result)} ({result.status.name}): {reason}")
        for result, reason in deviations:
            print(f"KNOWN {label(result)} ({result.status}: {shorten(result.reason or '')}): {reason}")

    if args.report:
        with open(args.report, "w", encoding="utf-8") as report:
            json.dump(
                [
                    {
                        "checker": "scim2-tester",
                        "title": r.title,
                        "resource_type": r.resource_type,
                        "status": r.status.name,
                        "reason": r.reason,
                        "data": shorten(r.data, 4000) if r.data is not None else None,
                    }
                    for r in results
                ]
                + [
                    {
                        "checker": "scim-sanity",
                        "title": r.title,
                        "phase": r.phase,
                        "status": r.status,
                        "reason": r.reason,
                        "known_deviation": sanity_deviation(r),
                    }
                    for r in sanity_results
                ],
                report,
                indent=2,
            )

    failures = len(failed) + (1 if failed_note else 0)
    print(
        f"\nconformance: {len(passed)} passed, {failures} failed, "
        f"{len(skipped) + len(excluded) + len(deviations)} skipped"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
