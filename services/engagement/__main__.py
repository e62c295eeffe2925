"""`python -m services.engagement`: run the engagement service from environment settings."""

from services.engagement.bootstrap import create_app
from shared.runtime.server import main

main("engagement", create_app)
