"""Settlement outcomes that reach merchants through invoicing's webhooks."""

from typing import Any

from invoicing_svc.service_layer.unit_of_work import Invoicing
from service_kit.idempotency import RequestKey


async def report_settlement_failure(
    invoicing: Invoicing, merchant_id: str, settlement: dict[str, Any], request: RequestKey
) -> None:
    """Sends the settlement.failed webhook once per settlement, however often it is reported."""
    now = invoicing.clock.now()
    async with invoicing.unit_of_work() as uow:
        if await uow.idempotency.first_answer(uow.session, merchant_id, request) is not None:
            return
        await uow.emit(merchant_id, "settlement.failed", settlement, now)
        await uow.idempotency.remember(uow.session, merchant_id, request, request.request_id)
        await uow.commit()
