"""Relaying a subscriber's signed EIP-3009 authorization: the platform pays the gas.

Everything that can be checked is checked before anything is signed: the format, that it pays
exactly the payable's live payment request (nonce = its reference hash, payee, amount, validity
window, the payer's signature), then on chain that the nonce is unused, the payer holds the
amount and the call would not revert. Then one database transaction stores the signed
transaction, the PENDING settlement it will confirm and the relay (unique per payer and nonce),
and only after that commits is the transaction sent. The verifier confirms the settlement.
"""

import structlog

from service_kit.errors import AlreadyExists, FailedPrecondition, InvalidArgument, Unavailable
from service_kit.ids import new_id
from settlement_svc.adapters.chain import ChainError
from settlement_svc.adapters.relay_store import Relay
from settlement_svc.adapters.usdc import transfer_with_authorization
from settlement_svc.domain import authorizations
from settlement_svc.domain.authorizations import Authorization, TokenDomain
from settlement_svc.domain.model import Settlement, SettlementOrigin, SettlementStatus
from settlement_svc.domain.payment_requests import PaymentRequest, PaymentRequestStatus
from settlement_svc.service_layer import transactions
from settlement_svc.service_layer.payables import one_payable, open_payable
from settlement_svc.service_layer.payment_requests import payment_request
from settlement_svc.service_layer.settlements import get_settlement
from settlement_svc.service_layer.unit_of_work import Settlements

log = structlog.get_logger()


def token_domain(settlements: Settlements) -> TokenDomain:
    config = settlements.settings
    return TokenDomain(
        config.usdc_eip712_name, config.usdc_eip712_version, config.chain_id, settlements.usdc.token
    )


async def relay_authorization(
    settlements: Settlements,
    merchant_id: str,
    invoice_id: str,
    checkout_session_id: str,
    authorization: Authorization,
) -> Settlement:
    """The PENDING settlement of the relayed transaction; the same one for a repeated relay."""
    one_payable(invoice_id, checkout_session_id)
    key = settlements.relayer
    if key is None:
        raise FailedPrecondition(
            "the relay is not configured (SETTLEMENT_RELAYER_PRIVATE_KEY); pay with a wallet "
            "that sends the transaction itself",
            field="authorization",
        )
    async with settlements.unit_of_work() as uow:
        earlier = await uow.relays.find(authorization.payer, authorization.nonce)
    if earlier is not None and earlier.merchant_id == merchant_id:
        return await get_settlement(settlements, merchant_id, earlier.settlement_id)
    await settlements.chain_check.require()
    view = await payment_request(settlements, merchant_id, invoice_id, checkout_session_id)
    if view.status is not PaymentRequestStatus.OPEN:
        raise FailedPrecondition(
            f"the payment request is {view.status}: nothing to pay",
            field="invoice_id" if invoice_id else "checkout_session_id",
        )
    # The request outlives a void: the payable itself must still be open.
    await open_payable(settlements, merchant_id, invoice_id, checkout_session_id)
    request = view.request
    data = transfer_with_authorization(authorization)
    try:
        latest = await settlements.chain.block("latest")
        assert latest is not None
        authorizations.check_pays(
            authorization, request, token_domain(settlements), latest.timestamp
        )
        authorizations.check_payer(
            authorization,
            nonce_used=await settlements.usdc.authorization_used(
                authorization.payer, authorization.nonce
            ),
            balance=await settlements.usdc.balance_of(authorization.payer),
        )
        gas = await transactions.quote(settlements, key, request.token, data)
    except (InvalidArgument, FailedPrecondition):
        raise
    except ChainError as error:  # the node answered: the call would revert
        raise FailedPrecondition(
            f"the token refuses this authorization: {error}", field="authorization"
        ) from None
    except Exception as error:
        raise Unavailable(f"the chain cannot be reached: {error}") from None
    return await _record_and_send(settlements, request, authorization, data, gas)


async def _record_and_send(
    settlements: Settlements,
    request: PaymentRequest,
    authorization: Authorization,
    data: bytes,
    gas: transactions.GasQuote,
) -> Settlement:
    key = settlements.relayer
    assert key is not None
    async with settlements.unit_of_work() as uow:
        outgoing = await transactions.sign_next(settlements, uow, key, request.token, data, gas)
        now = settlements.clock.now()
        settlement = Settlement(
            id=new_id("stl"),
            merchant_id=request.merchant_id,
            invoice_id=request.invoice_id,
            checkout_session_id=request.checkout_session_id,
            user_id=request.user_id,
            reference_hash=request.reference_hash,
            transaction_hash=outgoing.transaction_hash,
            payer_wallet_address=authorization.payer,
            merchant_wallet_address=request.payee,
            amount_due=request.amount,
            status=SettlementStatus.PENDING,
            create_time=now,
            origin=SettlementOrigin.RELAY,
        )
        if await uow.settlements.add(settlement) is not None:
            field = "invoice_id" if request.invoice_id else "checkout_session_id"
            raise AlreadyExists(
                f"{field} already has a pending or confirmed settlement", field=field
            )
        relay = Relay(
            id=new_id("rly"),
            merchant_id=request.merchant_id,
            reference_hash=request.reference_hash,
            payer=authorization.payer,
            settlement_id=settlement.id,
            outgoing_transaction_id=outgoing.id,
            create_time=now,
        )
        if not await uow.relays.add(relay):
            # Relayed meanwhile by a concurrent call: answer its settlement, send nothing.
            await uow.session.rollback()
            earlier = await uow.relays.find(authorization.payer, authorization.nonce)
            assert earlier is not None
            return await get_settlement(settlements, request.merchant_id, earlier.settlement_id)
        await uow.commit()
    log.info("relay.submitted", settlement=settlement.id, transaction=outgoing.transaction_hash)
    await transactions.send(settlements, outgoing)
    return settlement
