"""python -m gateway"""

import uvicorn

from gateway.app import create_app
from gateway.settings import GatewaySettings
from service_kit.logging import configure_logging

if __name__ == "__main__":
    settings = GatewaySettings()
    configure_logging(settings.log_level)
    uvicorn.run(create_app(), host=settings.http_host, port=settings.http_port, log_config=None)
