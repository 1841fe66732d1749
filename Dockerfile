# One image for every doorbuster process in docker-compose.yml: the targets and Locust.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY harness ./harness
COPY targets ./targets
COPY model ./model
COPY locustfiles ./locustfiles
COPY scenarios ./scenarios
RUN pip install --no-cache-dir . && mkdir -p /data
ENV DOORBUSTER_STATE_DIR=/data PYTHONUNBUFFERED=1
