"""The composition root: every service of a process on one database, built in one place.

The web app builds one ``Services`` per process when it starts; each CLI command builds one for
its run. Services that need a secret take it only when first used, so a command that never
touches members' data never needs the master key, and one that never signs needs no coalition
key.
"""

from __future__ import annotations

from functools import cached_property

from clearhouse.config import Settings
from clearhouse.crypto.ed25519 import CoalitionKey
from clearhouse.services.batches import Batches
from clearhouse.services.clearing import Clearing
from clearhouse.services.contracts import ContractBook
from clearhouse.services.database import Database
from clearhouse.services.expiry import Expiry, Reminders
from clearhouse.services.holds import Holds
from clearhouse.services.members import Members
from clearhouse.services.posting import Ledger
from clearhouse.services.webhooks import Webhooks


class Services:
    """The services of one process: one contract cache shared by everything that posts."""

    def __init__(
        self,
        settings: Settings,
        database: Database,
        *,
        coalition_key: CoalitionKey | None = None,
        master_key: bytes | None = None,
    ) -> None:
        self.settings = settings
        self.database = database
        self._coalition_key = coalition_key
        self._master_key = master_key
        self.contracts = ContractBook(database)
        self.ledger = Ledger(database, self.contracts, settings.timezone.key, settings.expiry)
        self.batches = Batches(database, self.contracts, settings.timezone.key, settings.expiry)
        self.holds = Holds(database, self.contracts, self.ledger)
        self.expiry = Expiry(
            database,
            self.holds,
            settings.timezone.key,
            Reminders(
                database, self.contracts, settings.timezone.key, settings.expiry.reminder_days
            ),
        )

    @cached_property
    def members(self) -> Members:
        """Members' data, under the master key (``SettingsError`` when none is configured)."""
        key = self._master_key or self.settings.require_master_key()
        return Members(self.database, self.contracts, key)

    @cached_property
    def webhooks(self) -> Webhooks:
        """Partners' webhook endpoints (their HMAC secrets under the master key)."""
        key = self._master_key or self.settings.require_master_key()
        return Webhooks(self.database, key, sandbox=self.settings.sandbox)

    @cached_property
    def clearing(self) -> Clearing:
        """Closing and settling, signed with the coalition key given at construction."""
        if self._coalition_key is None:
            raise RuntimeError("clearing needs the coalition key: pass coalition_key")
        return Clearing(
            self.database,
            zone=self.settings.timezone,
            key=self._coalition_key,
            coalition=self.settings.coalition_name,
        )
