"""Spec for tenant secrets at rest (issue 17, item 9): sealed with rotatable keys, never stored in plaintext."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from services.notification.adapters.secrets_box import PREFIX, NotConfigured, SecretBox, Undecryptable

OLD, NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()


class TestSealing:
    def test_a_sealed_secret_is_not_the_secret_and_opens_to_it(self) -> None:
        box = SecretBox(OLD)
        sealed = box.seal("smtp-p4ssw0rd")
        assert sealed is not None
        assert sealed.startswith(PREFIX)
        assert "smtp-p4ssw0rd" not in sealed
        assert box.open(sealed) == "smtp-p4ssw0rd"

    def test_none_stays_none(self) -> None:
        assert (SecretBox(OLD).seal(None), SecretBox(OLD).open(None)) == (None, None)

    def test_without_keys_nothing_new_can_be_stored(self) -> None:
        with pytest.raises(NotConfigured, match="SECRETS_KEYS"):
            SecretBox("").seal("x")

    def test_a_secret_stored_before_encryption_is_read_as_it_is(self) -> None:
        assert SecretBox(OLD).open("whsec_legacy_plaintext") == "whsec_legacy_plaintext"


class TestRotation:
    def test_a_new_key_first_still_opens_what_the_old_one_sealed_and_seals_with_the_new(self) -> None:
        sealed_old = SecretBox(OLD).seal("token")
        rotated = SecretBox(f"{NEW},{OLD}")
        assert rotated.open(sealed_old) == "token"
        assert SecretBox(NEW).open(rotated.seal("token")) == "token"

    def test_removing_a_key_too_early_is_a_clear_error(self) -> None:
        sealed_old = SecretBox(OLD).seal("token")
        with pytest.raises(Undecryptable, match="no key of SECRETS_KEYS"):
            SecretBox(NEW).open(sealed_old)
