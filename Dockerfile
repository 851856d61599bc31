# One image for the api, worker and migrate services (see docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

COPY pyproject.toml constraints.txt README.md ./
COPY hookrelay ./hookrelay
COPY sql ./sql
COPY schemas ./schemas
RUN pip install --no-cache-dir -c constraints.txt . \
    && useradd --system --no-create-home hookrelay

USER hookrelay
EXPOSE 8080
ENTRYPOINT ["hookrelay"]
CMD ["api", "--host", "0.0.0.0", "--port", "8080"]
