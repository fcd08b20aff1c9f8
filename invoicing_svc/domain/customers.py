"""Customers: the merchant's subscribers as checkout recorded them, and what an email gives
access to."""

from dataclasses import dataclass
from datetime import datetime

from invoicing_svc.domain.model import Subscription, SubscriptionStatus


@dataclass(frozen=True)
class Customer:
    id: str
    email: str
    name: str
    # The payer wallet of the customer's latest paid checkout; "" before any.
    wallet_address: str
    create_time: datetime


@dataclass(frozen=True)
class CustomerAccess:
    customers: tuple[Customer, ...]
    # The customers' subscriptions that give access now.
    subscriptions: tuple[Subscription, ...]

    @property
    def has_access(self) -> bool:
        return bool(self.subscriptions)


def gives_access(subscription: Subscription) -> bool:
    """Access lasts while the subscription is ACTIVE: a PAST_DUE one has an invoice overdue,
    a CANCELED one ended."""
    return subscription.status is SubscriptionStatus.ACTIVE
