"""`python -m services.engagement`: run the engagement service from environment settings."""

from services.engagement.bootstrap import SERVICE
from shared.runtime.server import main

main(SERVICE)
