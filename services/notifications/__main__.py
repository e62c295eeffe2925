"""`python -m services.notifications`: run the notifications service from environment settings."""

from services.notifications.bootstrap import create_app
from shared.runtime.server import main

main("notifications", create_app)
