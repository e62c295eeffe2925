"""`python -m services.notifications`: run the notifications service from environment settings."""

from services.notifications.bootstrap import SERVICE
from shared.runtime.server import main

main(SERVICE)
