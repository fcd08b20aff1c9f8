from metering_svc.adapters.tables import SCHEMA, Base
from metering_svc.settings import MeteringSettings
from service_kit.migrations import run_migrations

run_migrations(Base.metadata, SCHEMA, MeteringSettings().database_url)
