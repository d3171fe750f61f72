"""Approval contracts (approvals.rules.v1 / requests.v1 / decisions.v1), and the docs every contract needs."""

from __future__ import annotations

import json
import types
from decimal import Decimal
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin

import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError

import shared.contracts as contracts
from shared.contracts import (
    SYSTEM_TIMEOUT,
    ApprovalDecision,
    ApprovalItemType,
    ApprovalOutcome,
    ApprovalPending,
    ApprovalRequest,
    ApprovalRule,
    ApprovalRuleSet,
)

TENANT = "0f8fad5b-d9cb-469f-a165-70867728950e"
OTHER_TENANT = "5a5b7f3e-2c1d-4e8f-9a0b-1c2d3e4f5a6b"
RULE: dict[str, Any] = {
    "rule_id": "d9428888-122b-41e5-a6e8-b6f1c9b3c2a1",
    "tenant_id": TENANT,
    "item_type": "time_entry",
    "threshold_field": "hours",
    "threshold": "8",
    "steps": [
        {
            "step": 1,
            "roles": ["billing_manager"],
            "timeout_hours": 48,
            "on_timeout": "escalate",
            "escalate_to_role": "owner",
        },
        {"step": 2, "roles": ["owner"]},
    ],
    "version": 3,
    "updated_at": "2025-01-15T12:00:00Z",
}
REQUEST: dict[str, Any] = {
    "request_id": "3b241101-e2bb-4255-8caf-4136c566a962",
    "tenant_id": TENANT,
    "item_type": "time_entry",
    "item_id": "cw-time-884213",
    "company_ref": "ACME-001",
    "requesting_service": "metering",
    "trigger_field": "hours",
    "trigger_value": "9.5",
    "summary": "9.5 h by tech.jane",
    "requested_at": "2025-01-31T10:31:00Z",
}
DECISION: dict[str, Any] = {
    "decision_id": "9c5b94b1-35ad-49bb-b118-8e8fc24abf80",
    "request_id": REQUEST["request_id"],
    "tenant_id": TENANT,
    "item_type": "time_entry",
    "item_id": "cw-time-884213",
    "outcome": "approved",
    "decided_by": "mgr.omar",
    "decided_at": "2025-02-01T08:15:00Z",
    "step": 2,
}


M = TypeVar("M", bound=BaseModel)


def parse(model: type[M], base: dict[str, Any], **changes: Any) -> M:
    payload = {k: v for k, v in {**base, **changes}.items() if v is not ...}
    return model.model_validate_json(json.dumps(payload))


def first_error(model: type[BaseModel], base: dict[str, Any], **changes: Any) -> Any:
    with pytest.raises(ValidationError) as exc:
        parse(model, base, **changes)
    return exc.value.errors()[0]


class TestApprovalRule:
    def test_accepts_a_two_step_rule_with_escalation(self) -> None:
        rule = parse(ApprovalRule, RULE)
        assert rule.item_type is ApprovalItemType.TIME_ENTRY
        assert rule.active is True
        assert [s.step for s in rule.steps] == [1, 2]
        assert rule.steps[1].timeout_hours is None

    @pytest.mark.parametrize(
        ("value", "active", "held"),
        [("8", True, False), ("8.01", True, True), ("7", True, False), ("100", False, False)],
    )
    def test_holds_only_values_strictly_above_an_active_threshold(self, value: str, active: bool, held: bool) -> None:
        assert parse(ApprovalRule, RULE, active=active).requires_approval(Decimal(value)) is held

    @pytest.mark.parametrize(
        ("changes", "loc"),
        [
            ({"rule_id": ...}, ("rule_id",)),
            ({"item_type": "expense"}, ("item_type",)),
            ({"threshold": 8}, ("threshold",)),
            ({"threshold": "-1"}, ("threshold",)),
            ({"currency": "usd"}, ("currency",)),
            ({"steps": []}, ("steps",)),
            ({"steps": [{"step": 1, "roles": []}]}, ("steps", 0, "roles")),
            ({"steps": [{"step": 1, "roles": ["a"], "on_timeout": "escalate"}]}, ("steps", 0)),
            ({"steps": [{"step": 1, "roles": ["a"], "on_timeout": "ignore"}]}, ("steps", 0, "on_timeout")),
            ({"version": 0}, ("version",)),
            ({"updated_at": "2025-01-15T12:00:00"}, ("updated_at",)),
        ],
        ids=lambda v: str(v)[:40],
    )
    def test_rejects_an_invalid_field_naming_it(self, changes: dict[str, Any], loc: tuple[Any, ...]) -> None:
        assert first_error(ApprovalRule, RULE, **changes)["loc"] == loc

    def test_rejects_steps_out_of_order(self) -> None:
        steps = [{"step": 2, "roles": ["a"]}, {"step": 1, "roles": ["b"]}]
        assert "numbered 1..2" in first_error(ApprovalRule, RULE, steps=steps)["msg"]

    def test_round_trips_json_keeping_the_threshold_string(self) -> None:
        rule = parse(ApprovalRule, RULE, threshold="500.00")
        text = rule.model_dump_json()
        assert json.loads(text)["threshold"] == "500.00"
        assert ApprovalRule.model_validate_json(text) == rule


class TestApprovalRuleSet:
    def test_carries_a_tenants_rules_keyed_by_tenant(self) -> None:
        discount = {**RULE, "rule_id": OTHER_TENANT, "item_type": "discount", "threshold_field": "percentage"}
        rule_set = parse(
            ApprovalRuleSet,
            {
                "tenant_id": TENANT,
                "rules": [RULE, discount],
                "version": 7,
                "occurred_at": "2025-01-15T12:00:00Z",
            },
        )
        assert rule_set.key() == TENANT
        assert [r.threshold_field for r in rule_set.active_rules(ApprovalItemType.DISCOUNT)] == ["percentage"]

    def test_rejects_a_rule_of_another_tenant(self) -> None:
        data = {
            "tenant_id": OTHER_TENANT,
            "rules": [RULE],
            "version": 1,
            "occurred_at": "2025-01-15T12:00:00Z",
        }
        assert "tenant_id" in first_error(ApprovalRuleSet, data)["msg"]


class TestApprovalRequest:
    def test_accepts_a_machine_originated_request(self) -> None:
        request = parse(ApprovalRequest, REQUEST)
        assert request.requested_by is None
        assert request.trigger_value == Decimal("9.5")
        assert request.details == {}

    def test_is_keyed_by_tenant_item_type_and_item(self) -> None:
        assert parse(ApprovalRequest, REQUEST).key() == f"{TENANT}:time_entry:cw-time-884213"

    @pytest.mark.parametrize(
        ("changes", "field"),
        [
            ({"request_id": "req-1"}, "request_id"),
            ({"item_id": ""}, "item_id"),
            ({"summary": ...}, "summary"),
            ({"requesting_service": ...}, "requesting_service"),
            ({"trigger_value": 9.5}, "trigger_value"),
            ({"item_type": "timesheet"}, "item_type"),
            ({"requested_at": "2025-01-31 10:31"}, "requested_at"),
        ],
        ids=lambda v: str(v)[:40],
    )
    def test_rejects_an_invalid_field_naming_it(self, changes: dict[str, Any], field: str) -> None:
        assert first_error(ApprovalRequest, REQUEST, **changes)["loc"] == (field,)

    def test_keeps_unknown_fields(self) -> None:
        assert parse(ApprovalRequest, REQUEST, priority="high").model_extra == {"priority": "high"}


class TestApprovalDecision:
    def test_accepts_a_final_decision_on_the_requests_key(self) -> None:
        decision = parse(ApprovalDecision, DECISION)
        assert decision.outcome is ApprovalOutcome.APPROVED
        assert decision.final is True
        assert decision.key() == parse(ApprovalRequest, REQUEST).key()

    def test_accepts_a_timeout_decided_by_the_system(self) -> None:
        decision = parse(ApprovalDecision, DECISION, outcome="rejected", decided_by=SYSTEM_TIMEOUT, step=1)
        assert decision.decided_by == "system:timeout"

    @pytest.mark.parametrize(
        ("changes", "field"),
        [
            ({"outcome": "pending"}, "outcome"),
            ({"decided_by": ""}, "decided_by"),
            ({"step": 0}, "step"),
            ({"request_id": ...}, "request_id"),
            ({"decided_at": "2025-02-01T08:15:00"}, "decided_at"),
        ],
        ids=lambda v: str(v)[:40],
    )
    def test_rejects_an_invalid_field_naming_it(self, changes: dict[str, Any], field: str) -> None:
        assert first_error(ApprovalDecision, DECISION, **changes)["loc"] == (field,)


class TestApprovalPending:
    NOTICE: dict[str, Any] = {
        "notice_id": "7d444840-9dc0-11d1-b245-5ffdce74fad2",
        "request_id": "3b241101-e2bb-4255-8caf-4136c566a962",
        "tenant_id": TENANT,
        "item_type": "time_entry",
        "item_id": "cw-time-884213",
        "reason": "requested",
        "step": 1,
        "of_steps": 2,
        "roles": ["billing_manager"],
        "summary": "9.5 h by tech.jane",
        "due_at": None,
        "occurred_at": "2025-01-31T10:31:00Z",
    }

    def test_is_keyed_like_the_request_it_announces(self) -> None:
        notice = parse(ApprovalPending, self.NOTICE)
        assert notice.key() == parse(ApprovalRequest, REQUEST).key()

    @pytest.mark.parametrize(
        ("changes", "field"),
        [({"roles": []}, "roles"), ({"reason": "bored"}, "reason"), ({"step": 0}, "step")],
        ids=lambda v: str(v)[:40],
    )
    def test_rejects_an_invalid_field_naming_it(self, changes: dict[str, Any], field: str) -> None:
        assert first_error(ApprovalPending, self.NOTICE, **changes)["loc"] == (field,)


def _nested_models(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if get_origin(annotation) in (Annotated, Union, types.UnionType, list, dict) or get_args(annotation):
        return [m for arg in get_args(annotation) for m in _nested_models(arg)]
    return []


def _all_contract_models() -> list[type[BaseModel]]:
    seen: dict[type[BaseModel], None] = {}
    todo = [
        obj
        for name in contracts.__all__
        if isinstance(obj := getattr(contracts, name), type) and issubclass(obj, BaseModel)
    ]
    while todo:
        model = todo.pop()
        if model not in seen:
            seen[model] = None
            todo.extend(m for f in model.model_fields.values() for m in _nested_models(f.annotation))
    return list(seen)


ALL_FIELDS = [
    pytest.param(model, name, id=f"{model.__name__}.{name}")
    for model in _all_contract_models()
    for name in model.model_fields
]


class TestEveryContractField:
    """The generated AsyncAPI documents show a description and an example for every field."""

    def test_covers_the_nested_models_too(self) -> None:
        names = {m.__name__ for m in _all_contract_models()}
        assert {"InvoiceLine", "TaxLine", "Customer", "ApprovalStep", "FxConversion"} <= names

    @pytest.mark.parametrize(("model", "name"), ALL_FIELDS)
    def test_has_a_description_and_valid_json_examples(self, model: type[BaseModel], name: str) -> None:
        field = model.model_fields[name]
        assert field.description, f"{model.__name__}.{name} has no description"
        assert field.examples, f"{model.__name__}.{name} has no example"
        annotation: Any = Annotated[field.annotation, *field.metadata] if field.metadata else field.annotation
        adapter: TypeAdapter[Any] = TypeAdapter(annotation)
        for example in field.examples:
            adapter.validate_json(json.dumps(example))

    @pytest.mark.parametrize("model", _all_contract_models(), ids=lambda m: m.__name__)
    def test_renders_a_json_schema_with_decimals_as_strings(self, model: type[BaseModel]) -> None:
        schema = json.dumps(model.model_json_schema())
        assert '"type": "number"' not in schema
