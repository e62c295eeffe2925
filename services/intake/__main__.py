"""`python -m services.intake`: run the intake service from environment settings."""

from services.intake.bootstrap import SERVICE
from shared.runtime.server import main

main(SERVICE)
