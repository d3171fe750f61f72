"""The demo month's records, as the MSP's tools would publish them on the public topics.

An RMM (NinjaOne) reports each managed device count daily and backup storage used each night; a licence
portal reports Microsoft 365 seats weekly; the PSA (ConnectWise) sends technicians' time. A few records are
sent twice (duplicates), two are malformed, and the RMM reports backup storage before the catalog has that
service (unmapped until it is added midway). Every id is fixed, so publishing the month again is harmless.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID

from shared import topics


@dataclass(frozen=True)
class Outgoing:
    """One Kafka record to publish. ``half`` is 1 for the month's first fourteen days, else 2."""

    topic: str
    key: str
    value: dict[str, Any] | bytes
    half: int
    note: str = ""  # "duplicate", "malformed" or ""


@dataclass(frozen=True)
class Entry:
    """A PSA time entry: day of the month, start hour and minute, minutes worked."""

    entry_id: str
    company_ref: str
    service_ref: str
    user_ref: str
    day: int
    start: tuple[int, int]
    minutes: int
    notes: str
    billable: bool = True


def device_count(day: int) -> int:
    """Acme's managed devices, as the RMM counts them each morning: 40, then 41 from the 10th, 43 from the
    20th (a new surgery opened), 42 from the 25th (one laptop retired)."""
    if day >= 25:
        return 42
    if day >= 20:
        return 43
    return 41 if day >= 10 else 40


SEATS = {1: 24, 8: 25, 15: 27, 22: 26}  # Microsoft 365 seats, as the licence portal reports each week
BACKUP_GB = {1: 35, 2: 45}  # GB backed up each night, in the first and second half of the month

BIRCH = [  # time and materials; the 9.5 h and 10 h onsite days are over the 8 h approval rule
    Entry("cw-1001", "birch-law", "remote-support", "tech.jane", 2, (9, 0), 50, "Outlook profile rebuilt"),
    Entry("cw-1002", "birch-law", "remote-support", "tech.jane", 3, (14, 0), 30, "Printer mapping"),
    Entry("cw-1003", "birch-law", "onsite-engineer", "tech.omar", 4, (9, 0), 180, "New starter set-up"),
    Entry("cw-1004", "birch-law", "remote-support", "tech.jane", 5, (10, 0), 45, "VPN client update"),
    Entry("cw-1005", "birch-law", "remote-support", "tech.jane", 9, (9, 30), 90, "Case system upgrade"),
    Entry("cw-1006", "birch-law", "remote-support", "tech.jane", 10, (16, 0), 20, "Password reset"),
    Entry("cw-1007", "birch-law", "onsite-engineer", "tech.omar", 11, (13, 0), 240, "Switch replacement"),
    Entry("cw-1008", "birch-law", "remote-support", "tech.jane", 12, (11, 0), 75, "Scanner to email"),
    Entry("cw-1009", "birch-law", "onsite-engineer", "tech.omar", 14, (8, 0), 570, "Server migration, day 1"),
    Entry("cw-1010", "birch-law", "remote-support", "tech.jane", 16, (9, 0), 60, "Runbook", billable=False),
    Entry("cw-1011", "birch-law", "remote-support", "tech.jane", 17, (9, 0), 60, "Backup restore test"),
    Entry("cw-1012", "birch-law", "remote-support", "tech.jane", 19, (13, 0), 40, "Teams room issue"),
    Entry("cw-1013", "birch-law", "onsite-engineer", "tech.omar", 21, (8, 0), 600, "Server migration, day 2"),
    Entry("cw-1014", "birch-law", "remote-support", "tech.jane", 24, (15, 0), 15, "Mailbox permissions"),
    Entry("cw-1015", "birch-law", "remote-support", "tech.jane", 26, (9, 0), 120, "Firewall rule review"),
]

CEDAR = [  # the retainer: 10 hours a week, weeks from Sunday the 1st
    Entry("cw-2001", "cedar-logistics", "retainer-support", "tech.jane", 2, (9, 0), 120, "Warehouse scanners"),
    Entry("cw-2002", "cedar-logistics", "retainer-support", "tech.jane", 5, (9, 0), 240, "ERP client roll-out"),
    Entry("cw-2003", "cedar-logistics", "retainer-support", "tech.omar", 9, (9, 0), 240, "Depot Wi-Fi survey"),
    Entry("cw-2004", "cedar-logistics", "retainer-support", "tech.omar", 11, (9, 0), 300, "Depot Wi-Fi install"),
    Entry("cw-2005", "cedar-logistics", "retainer-support", "tech.jane", 13, (9, 0), 180, "Label printers"),
    Entry("cw-2006", "cedar-logistics", "retainer-support", "tech.jane", 16, (9, 0), 360, "Ransomware drill"),
    Entry("cw-2007", "cedar-logistics", "retainer-support", "tech.omar", 18, (9, 0), 420, "Firewall upgrade"),
    Entry("cw-2008", "cedar-logistics", "retainer-support", "tech.omar", 23, (9, 0), 480, "New depot fit-out"),
    Entry("cw-2009", "cedar-logistics", "retainer-support", "tech.jane", 26, (9, 0), 420, "Tachograph server"),
]


def _at(month: date, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime.fromisoformat(f"{month.replace(day=day).isoformat()}T{hour:02d}:{minute:02d}:00+00:00")


def _half(day: int) -> int:
    return 1 if day <= 14 else 2


def month_records(tenant_id: UUID, month: date, days: int) -> list[Outgoing]:
    """Everything the tools send for the month starting ``month`` (``days`` long), in publishing order."""
    t = str(tenant_id)
    out: list[Outgoing] = []

    def usage(source: str, ref: str, code: str, event_id: str, qty: str, at: datetime, kind: str, unit: str) -> None:
        record = {
            "event_id": event_id,
            "source": source,
            "tenant_id": t,
            "company_ref": ref,
            "service_ref": code,
            "kind": kind,
            "quantity": qty,
            "unit": unit,
            "occurred_at": at.isoformat(),
        }
        out.append(Outgoing(topics.USAGE.name, f"{t}:{ref}", record, _half(at.day)))

    for day in range(1, days + 1):
        usage(
            "ninjaone",
            "NINJA-ACME",
            "rmm-device",
            f"ninja-dev-{day:02d}",
            str(device_count(day)),
            _at(month, day, 6),
            "snapshot",
            "device",
        )
        usage(
            "ninjaone",
            "NINJA-ACME",
            "backup-storage",
            f"ninja-bkp-{day:02d}",
            str(BACKUP_GB[_half(day)]),
            _at(month, day, 23),
            "delta",
            "GB",
        )
        if day in SEATS:
            usage(
                "m365-portal",
                "acme-dental",
                "m365-seat",
                f"m365-seats-{day:02d}",
                str(SEATS[day]),
                _at(month, day, 7),
                "snapshot",
                "seat",
            )
    for entry in BIRCH + CEDAR:
        out.append(
            Outgoing(
                topics.TIME_ENTRIES.name, f"{t}:{entry.company_ref}", time_entry(t, month, entry), _half(entry.day)
            )
        )
    out.sort(key=lambda o: _when(o.value))
    # The RMM's agent retried two mornings, the PSA re-sent an entry after a timeout: same ids, same content.
    repeats = [o for o in out if _id(o.value) in {"ninja-dev-03", "ninja-dev-04", "cw-1004"}]
    out += [Outgoing(o.topic, o.key, o.value, o.half, "duplicate") for o in repeats]
    # A buggy script sends a count as a JSON number; a PSA export has an entry that ends before it starts.
    bad_usage = {
        "event_id": "script-dev-07",
        "source": "legacy-script",
        "tenant_id": t,
        "company_ref": "acme-dental",
        "service_ref": "rmm-device",
        "quantity": 41,
        "occurred_at": _at(month, 7, 6).isoformat(),
    }
    out.append(Outgoing(topics.USAGE.name, f"{t}:acme-dental", json.dumps(bad_usage).encode(), 1, "malformed"))
    bad_entry = time_entry(t, month, Entry("cw-1099", "birch-law", "remote-support", "tech.jane", 20, (17, 0), 30, "x"))
    bad_entry["end_time"] = _at(month, 20, 16).isoformat()
    out.append(Outgoing(topics.TIME_ENTRIES.name, f"{t}:birch-law", bad_entry, 2, "malformed"))
    return out


def time_entry(tenant: str, month: date, entry: Entry) -> dict[str, Any]:
    start = _at(month, entry.day, *entry.start)
    return {
        "entry_id": entry.entry_id,
        "source": "connectwise",
        "tenant_id": tenant,
        "company_ref": entry.company_ref,
        "service_ref": entry.service_ref,
        "user_ref": entry.user_ref,
        "ticket_ref": f"T-{entry.entry_id[3:]}",
        "start_time": start.isoformat(),
        "end_time": (start + timedelta(minutes=entry.minutes)).isoformat(),
        "billable": entry.billable,
        "notes": entry.notes,
    }


def _when(value: dict[str, Any] | bytes) -> str:
    assert isinstance(value, dict)
    return str(value.get("occurred_at") or value.get("start_time"))


def _id(value: dict[str, Any] | bytes) -> str:
    assert isinstance(value, dict)
    return str(value.get("event_id") or value.get("entry_id"))
