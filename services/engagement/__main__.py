"""`python -m services.engagement`: run the engagement service from environment settings."""

from services.engagement.bootstrap import create_app
from shared.server import main

main("engagement", create_app)
