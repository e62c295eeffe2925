# One image for all three Rapport services; RAPPORT_SERVICE picks which one runs:
#   docker run -e RAPPORT_SERVICE=intake ... rapport
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

COPY pyproject.toml ./
COPY shared ./shared
COPY services ./services
COPY rapport ./rapport
# The package without extras: no embedded servers (the `embedded` extra), no test tools.
RUN pip install . \
    && useradd --system --create-home --uid 10001 rapport

USER rapport

# Listen on every interface of the container, not only its loopback (the default outside Docker).
ENV RAPPORT_HOST=0.0.0.0

EXPOSE 8001 8002 8003

# exec: the service is PID 1 and receives SIGTERM from `docker stop` itself.
CMD ["sh", "-c", "exec python -m \"services.${RAPPORT_SERVICE:?set RAPPORT_SERVICE to intake, engagement or notifications}\""]
