from service_kit.migrations import run_migrations
from settlement_svc.adapters.tables import SCHEMA, Base
from settlement_svc.settings import SettlementSettings

run_migrations(Base.metadata, SCHEMA, SettlementSettings().database_url)
