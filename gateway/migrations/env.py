from gateway.settings import GatewaySettings
from gateway.tables import SCHEMA, Base
from service_kit.migrations import run_migrations

run_migrations(Base.metadata, SCHEMA, GatewaySettings().database_url)
