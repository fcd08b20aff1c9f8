"""The watcher's reading of the token's logs (pure): pairing each AuthorizationUsed with its
Transfer, and judging the payment against the request its nonce names."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from settlement_svc.domain.chain_logs import (
    AUTHORIZATION_USED_TOPIC,
    TRANSFER_TOPIC,
    CreditReason,
    Known,
    Outcome,
    UsedAuthorization,
    judge,
    used_authorizations,
)
from settlement_svc.domain.model import TokenTransfer
from settlement_svc.domain.payment_requests import PaymentRequest

TOKEN = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
PAYER = "0x70997970c51812dc3A010C7D01b50e20D3dC79C8"
OTHER_PAYER = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
PAYEE = "0x90F79bf6EB2c4f870365E785982E1f101E93b906"
STRANGER = "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65"
NONCE = "0x" + "ab" * 32
OTHER_NONCE = "0x" + "cd" * 32
TX_1, TX_2 = "0x" + "01" * 32, "0x" + "02" * 32
BLOCK_HASH = "0x" + "bb" * 32
ISSUED = datetime(2026, 11, 26, 10, 30, tzinfo=UTC)


def _topic(address: str) -> str:
    return "0x" + "00" * 12 + address[2:].lower()


def used_log(
    authorizer: str, nonce: str, tx: str = TX_1, index: int = 0, block: int = 7
) -> dict[str, Any]:
    return {
        "address": TOKEN.lower(),
        "topics": [AUTHORIZATION_USED_TOPIC, _topic(authorizer), nonce],
        "data": "0x",
        "blockNumber": hex(block),
        "blockHash": BLOCK_HASH,
        "transactionHash": tx,
        "logIndex": hex(index),
    }


def transfer_log(
    sender: str, receiver: str, value: int, tx: str = TX_1, index: int = 1, block: int = 7
) -> dict[str, Any]:
    return {
        "address": TOKEN.lower(),
        "topics": [TRANSFER_TOPIC, _topic(sender), _topic(receiver)],
        "data": "0x" + value.to_bytes(32, "big").hex(),
        "blockNumber": hex(block),
        "blockHash": BLOCK_HASH,
        "transactionHash": tx,
        "logIndex": hex(index),
    }


def payment(value: int = 500_000, receiver: str = PAYEE, token: str = TOKEN) -> UsedAuthorization:
    return UsedAuthorization(
        transaction_hash=TX_1,
        log_index=1,
        block_number=7,
        block_hash=BLOCK_HASH,
        authorizer=PAYER,
        nonce=NONCE,
        transfer=TokenTransfer(token=token, sender=PAYER, receiver=receiver, value=value),
    )


def request(amount: str = "0.5") -> PaymentRequest:
    return PaymentRequest(
        reference_hash=NONCE,
        merchant_id="mer_1",
        invoice_id="in_1",
        checkout_session_id="",
        user_id="usr_1",
        amount=Decimal(amount),
        payee=PAYEE,
        token=TOKEN,
        chain_id=31337,
        create_time=ISSUED,
        expire_time=ISSUED + timedelta(days=7),
    )


def test_an_authorization_is_paired_with_the_transfer_that_follows_it() -> None:
    logs = [used_log(PAYER, NONCE, index=4), transfer_log(PAYER, PAYEE, 500_000, index=5)]
    assert used_authorizations(logs) == [
        UsedAuthorization(
            transaction_hash=TX_1,
            log_index=5,
            block_number=7,
            block_hash=BLOCK_HASH,
            authorizer=PAYER,
            nonce=NONCE,
            transfer=TokenTransfer(TOKEN, PAYER, PAYEE, 500_000),
        )
    ]


def test_plain_transfers_and_transfers_before_or_in_other_transactions_are_not_paired() -> None:
    logs = [
        transfer_log(PAYER, PAYEE, 1, index=0),  # before the authorization
        used_log(PAYER, NONCE, index=1),
        transfer_log(OTHER_PAYER, PAYEE, 2, index=2),  # another sender
        transfer_log(PAYER, PAYEE, 3, tx=TX_2, index=3),  # another transaction
        transfer_log(PAYER, STRANGER, 4, index=4),  # its own transfer
        transfer_log(PAYER, PAYEE, 5, index=5),  # a plain transfer after it
    ]
    found = used_authorizations(logs)
    assert [(p.log_index, p.transfer.receiver, p.transfer.value) for p in found] == [
        (4, STRANGER, 4)
    ]


def test_two_authorizations_in_one_transaction_each_take_their_own_transfer() -> None:
    # In the node's order whatever order they come in; a removed log is not a payment.
    logs = [
        transfer_log(OTHER_PAYER, PAYEE, 700_000, index=3),
        used_log(OTHER_PAYER, OTHER_NONCE, index=2),
        transfer_log(PAYER, PAYEE, 500_000, index=1),
        used_log(PAYER, NONCE, index=0),
        {**used_log(PAYER, "0x" + "ee" * 32, tx=TX_2, index=0, block=8), "removed": True},
        {**transfer_log(PAYER, PAYEE, 9, tx=TX_2, index=1, block=8), "removed": True},
    ]
    found = used_authorizations(logs)
    assert [(p.authorizer, p.nonce, p.transfer.value, p.log_index) for p in found] == [
        (PAYER, NONCE, 500_000, 1),
        (OTHER_PAYER, OTHER_NONCE, 700_000, 3),
    ]


def test_an_authorization_without_its_transfer_is_no_payment() -> None:
    assert used_authorizations([used_log(PAYER, NONCE)]) == []


AT = ISSUED + timedelta(hours=1)


def test_a_payment_of_the_amount_to_the_payee_in_time_settles() -> None:
    assert judge(payment(500_000), request(), AT, Known()) == (Outcome.SETTLE, None)
    assert judge(payment(500_001), request(), AT, Known()) == (Outcome.SETTLE, None)


def test_what_is_not_our_merchants_money_is_ignored() -> None:
    assert judge(payment(), None, AT, Known()) == (Outcome.IGNORE, None)
    assert judge(payment(receiver=STRANGER), request(), AT, Known()) == (Outcome.IGNORE, None)
    assert judge(payment(token=STRANGER), request(), AT, Known()) == (Outcome.IGNORE, None)
    assert judge(payment(0), request(), AT, Known()) == (Outcome.IGNORE, None)


def test_a_payment_that_cannot_settle_its_request_is_credited_with_the_reason() -> None:
    expiry = request().expire_time
    assert judge(payment(499_999), request(), AT, Known()) == (
        Outcome.CREDIT,
        CreditReason.SHORT_AMOUNT,
    )
    assert judge(payment(), request(), expiry, Known()) == (Outcome.CREDIT, CreditReason.EXPIRED)
    assert judge(payment(), request(), expiry - timedelta(seconds=1), Known()) == (
        Outcome.SETTLE,
        None,
    )
    assert judge(payment(), request(), AT, Known(payable_settled=True)) == (
        Outcome.CREDIT,
        CreditReason.ALREADY_PAID,
    )
    assert judge(payment(), request(), AT, Known(payable_voided=True)) == (
        Outcome.CREDIT,
        CreditReason.VOIDED,
    )
    # Paid already and expired: the payable's payment is the reason the merchant needs.
    assert judge(payment(), request(), expiry, Known(payable_settled=True)) == (
        Outcome.CREDIT,
        CreditReason.ALREADY_PAID,
    )


def test_a_payment_in_a_transaction_that_already_settles_is_never_counted_twice() -> None:
    # Our relay's settlement (or a submitted proof) of this transaction counts this payer's
    # transfers already; another payer's transfer in it is not counted there.
    assert judge(payment(), request(), AT, Known(transaction_payer=PAYER.lower())) == (
        Outcome.RECORDED,
        None,
    )
    assert judge(payment(), request(), request().expire_time, Known(transaction_payer=PAYER)) == (
        Outcome.RECORDED,
        None,
    )
    assert judge(payment(), request(), AT, Known(transaction_payer=OTHER_PAYER)) == (
        Outcome.CREDIT,
        CreditReason.TRANSACTION_USED,
    )
