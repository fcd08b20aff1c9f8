"""Submitting a payment proof, and reading settlements."""

from service_kit import pagination
from service_kit.errors import AlreadyExists, InvalidArgument, NotFound, Unavailable
from service_kit.ids import new_id
from settlement_svc.domain import formats
from settlement_svc.domain.model import CheckoutStatus, Payable, Settlement, SettlementStatus
from settlement_svc.service_layer.payables import one_payable, open_payable
from settlement_svc.service_layer.payout_wallets import payee
from settlement_svc.service_layer.unit_of_work import Settlements
from settlement_svc.service_layer.verification import verify


async def submit_settlement(
    settlements: Settlements,
    merchant_id: str,
    *,
    invoice_id: str,
    checkout_session_id: str,
    reference_hash: str,
    transaction_hash: str,
    payer_wallet_address: str,
    merchant_wallet_address: str,
) -> Settlement:
    """Records the proof as PENDING, then checks the chain once right away. The payee is the
    merchant's payout wallet on record; `merchant_wallet_address`, when given, is only checked
    against it."""
    one_payable(invoice_id, checkout_session_id)
    reference = formats.bytes32(reference_hash, "reference_hash")
    transaction = formats.bytes32(transaction_hash, "transaction_hash")
    payer = formats.wallet(payer_wallet_address, "payer_wallet_address")
    named = (
        formats.wallet(merchant_wallet_address, "merchant_wallet_address")
        if merchant_wallet_address
        else ""
    )
    await settlements.chain_check.require()
    payable = await open_payable(settlements, merchant_id, invoice_id, checkout_session_id)
    async with settlements.unit_of_work() as uow:
        merchant = await payee(uow, merchant_id)
    if named and named != merchant:
        raise InvalidArgument(
            "merchant_wallet_address is not the merchant's payout wallet on record",
            field="merchant_wallet_address",
        )
    if checkout_session_id:
        await _require_known(settlements, transaction, payable, payer)
    settlement = Settlement(
        id=new_id("stl"),
        merchant_id=merchant_id,
        invoice_id=invoice_id,
        checkout_session_id=checkout_session_id,
        user_id=payable.user_id,
        reference_hash=reference,
        transaction_hash=transaction,
        payer_wallet_address=payer,
        merchant_wallet_address=merchant,
        amount_due=payable.amount_due,
        status=SettlementStatus.PENDING,
        create_time=settlements.clock.now(),
    )
    async with settlements.unit_of_work() as uow:
        # The watcher may have found this transaction's payment first and made it a credit
        # (expired request, invoice paid already): the money is counted once, as that credit.
        await uow.watcher.hold_cursor(settlements.usdc.token)
        if await uow.credits.credit_transaction(merchant_id, transaction):
            raise AlreadyExists(
                "this transaction's payment is recorded already as the subscriber's credit",
                field="transaction_hash",
            )
        # Unique among this merchant's live settlements only: another merchant's proof of the
        # same public transaction neither blocks this one nor is revealed by the answer.
        conflict = await uow.settlements.add(settlement)
        if conflict == "transaction_hash":
            raise AlreadyExists(
                "this transaction already settles another payment", field="transaction_hash"
            )
        if conflict is not None:
            field = "invoice_id" if invoice_id else "checkout_session_id"
            raise AlreadyExists(
                f"{field} already has a pending or confirmed settlement", field=field
            )
        await uow.commit()
    recorded = await verify(settlements, [settlement])
    # Not recorded by this check: its chain read failed, or the verifier decided it first.
    return recorded.get(settlement.id) or await get_settlement(
        settlements, merchant_id, settlement.id
    )


async def _require_known(
    settlements: Settlements, transaction: str, payable: Payable, payer: str
) -> None:
    """A checkout proof comes from a public page: a made-up hash must not hold the session while
    it waits to expire, so the node must know the transaction (mined or in its mempool) already.
    A session waiting for a proof waits for that one."""
    if payable.status is CheckoutStatus.AWAITING_PAYMENT and (
        payable.transaction_hash.lower(),
        payable.payer_wallet_address.lower(),
    ) != (transaction, payer.lower()):
        raise InvalidArgument(
            "the checkout session was completed with another payment proof",
            field="transaction_hash",
        )
    try:
        known = await settlements.chain.known(transaction)
    except Exception as error:
        raise Unavailable(f"the chain cannot be reached: {type(error).__name__}") from None
    if not known:
        raise InvalidArgument(
            "the chain does not know this transaction; submit it once it is broadcast",
            field="transaction_hash",
        )


async def get_settlement(
    settlements: Settlements, merchant_id: str, settlement_id: str
) -> Settlement:
    async with settlements.unit_of_work() as uow:
        found = await uow.settlements.get(merchant_id, settlement_id)
    if found is None:
        raise NotFound(f"settlement {settlement_id} not found", field="id")
    return found


async def list_settlements(
    settlements: Settlements, merchant_id: str, invoice_id: str, size: int, token: str
) -> tuple[list[Settlement], str]:
    limit = pagination.page_size(size)
    async with settlements.unit_of_work() as uow:
        found = await uow.settlements.page(
            merchant_id, invoice_id or None, pagination.creation_position(token), limit + 1
        )
    return pagination.cut_page(found, limit, lambda s: (s.create_time, s.id))
