# One image for every precache process; compose picks the command.
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends build-essential cmake \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY . .
RUN pip install --no-cache-dir ".[llama,demo]"
ENV PRECACHE_VAR_DIR=/var/lib/precache
EXPOSE 8000 5555
CMD ["precache", "web"]
