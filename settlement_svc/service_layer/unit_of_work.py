"""Settlement's unit of work and the dependencies its use cases share."""

from dataclasses import dataclass
from typing import Self

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from service_kit.clock import Clock
from service_kit.database import UnitOfWork
from service_kit.outbox import Outbox
from settlement_svc.adapters.account_key import AccountKey
from settlement_svc.adapters.chain import Chain
from settlement_svc.adapters.collection_store import CollectionStore
from settlement_svc.adapters.credit_grant_store import CreditGrantStore
from settlement_svc.adapters.credit_store import CreditStore
from settlement_svc.adapters.invoicing_client import InvoicingClient
from settlement_svc.adapters.journal_store import JournalStore
from settlement_svc.adapters.mandate_contract import MandateContract
from settlement_svc.adapters.mandate_store import MandateStore
from settlement_svc.adapters.outgoing_transaction_store import OutgoingTransactionStore
from settlement_svc.adapters.payment_request_store import PaymentRequestStore
from settlement_svc.adapters.payout_wallet_store import PayoutWalletStore
from settlement_svc.adapters.relay_store import RelayStore
from settlement_svc.adapters.settlement_store import SettlementStore
from settlement_svc.adapters.tables import outbox
from settlement_svc.adapters.usdc import Usdc
from settlement_svc.adapters.watcher_store import WatcherStore
from settlement_svc.service_layer.chain_check import ChainCheck
from settlement_svc.settings import SettlementSettings

# Outbox topics: invoicing learns the outcome of a verification.
SETTLED = "invoicing.settled"
FAILED = "invoicing.settlement_failed"
# ... and of a collection attempt that failed (dunning).
COLLECTION_FAILED = "invoicing.collection_failed"
# ... and of a mandate the contract now holds, or no longer does (webhooks).
MANDATE_CHANGED = "invoicing.mandate_changed"
# ... and of a subscriber's credit balance (which invoices to spend credits on).
CREDIT_BALANCE = "invoicing.credit_balance"


class SettlementUnitOfWork(UnitOfWork):
    async def __aenter__(self) -> Self:
        await super().__aenter__()
        self.settlements = SettlementStore(self.session)
        self.journal = JournalStore(self.session)
        self.payout_wallets = PayoutWalletStore(self.session)
        self.payment_requests = PaymentRequestStore(self.session)
        self.outgoing = OutgoingTransactionStore(self.session)
        self.relays = RelayStore(self.session)
        self.watcher = WatcherStore(self.session)
        self.credits = CreditStore(self.session)
        self.credit_grants = CreditGrantStore(self.session)
        self.mandates = MandateStore(self.session)
        self.collections = CollectionStore(self.session)
        self.outbox = Outbox(outbox)
        return self


@dataclass(frozen=True)
class Settlements:
    """Everything a settlement use case needs, wired once in bootstrap.py."""

    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    clock: Clock
    settings: SettlementSettings
    chain: Chain
    # Whether `chain` is the configured chain: nothing is read from it before.
    chain_check: ChainCheck
    invoicing: InvoicingClient
    usdc: Usdc
    # The account that relays authorizations and pays their gas; None when not configured.
    relayer: AccountKey | None
    # Auto-pay: the mandate contract, and the account that relays mandates and collects under
    # them (None when not configured).
    mandates: MandateContract
    collector: AccountKey | None

    def unit_of_work(self) -> SettlementUnitOfWork:
        return SettlementUnitOfWork(self.sessions)

    def key_of(self, account: str) -> AccountKey | None:
        """The key of one of the platform's sending accounts, by its address."""
        keys = (self.relayer, self.collector)
        return next((k for k in keys if k is not None and k.address == account), None)
