from invoicing_svc.adapters.tables import SCHEMA, Base
from invoicing_svc.settings import InvoicingSettings
from service_kit.migrations import run_migrations

run_migrations(Base.metadata, SCHEMA, InvoicingSettings().database_url)
