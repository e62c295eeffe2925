"""`python -m services.intake`: run the intake service from environment settings."""

from services.intake.bootstrap import create_app
from shared.runtime.server import main

main("intake", create_app)
