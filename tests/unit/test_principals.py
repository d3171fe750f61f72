"""Whether a verified token still speaks for its user (shared/principals.judge, pure; issue 17). The same
rules end to end, against catalog and every service: tests/integration/test_token_standing.py."""

from __future__ import annotations

import uuid

from shared.auth import Principal
from shared.contracts.catalog import Role
from shared.principals import Standing, judge


class TestTheJudgement:
    """shared/principals.judge, pure: what decides whether a token still stands."""

    who = Principal(user_id=uuid.uuid4(), tenant_id=uuid.uuid4(), role=Role.CLIENT_CONTACT, company_id=uuid.uuid4())

    def test_a_user_not_heard_of_yet_keeps_the_tokens_word(self) -> None:
        assert judge(self.who, None) is None

    def test_the_same_role_client_and_activity_stand(self) -> None:
        assert judge(self.who, Standing("client_contact", self.who.company_id, True)) is None

    def test_a_contact_moved_to_another_client_is_refused(self) -> None:
        reason = judge(self.who, Standing("client_contact", uuid.uuid4(), True))
        assert reason == "the token's user belongs to another client since it was issued: exchange the API key again"

    def test_a_promotion_needs_a_new_token_too(self) -> None:
        assert judge(self.who, Standing("admin", self.who.company_id, True)) is not None

    def test_a_deactivated_user_is_refused_whatever_the_role(self) -> None:
        reason = judge(self.who, Standing("client_contact", self.who.company_id, False))
        assert reason == "the token's user has been deactivated or removed since it was issued"
