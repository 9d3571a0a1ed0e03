# One image for every precache process; compose picks the command.
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends build-essential cmake \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY . .
# llama.cpp for AVX2-class x86-64, not the build host: a native build on a virtualised Sapphire/Granite
# Rapids host turns on ggml's AMX kernels, which segfault there (see scripts/bootstrap.sh).
RUN CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON" \
    pip install --no-cache-dir ".[llama,demo]"
ENV PRECACHE_VAR_DIR=/var/lib/precache
EXPOSE 8000 5555
CMD ["precache", "web"]
