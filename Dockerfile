# One image for every ecomrisk process; docker-compose.yml chooses the command of each service.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies in their own layer: a code change does not reinstall them.
COPY pyproject.toml ./
RUN for pkg in config contract producer workers dash_app store cli harness bench api; do mkdir "$pkg" && touch "$pkg/__init__.py"; done \
    && pip install . \
    && pip uninstall --yes ecomrisk \
    && rm -rf config contract producer workers dash_app store cli harness bench api build ./*.egg-info

COPY config ./config
COPY contract ./contract
COPY producer ./producer
COPY workers ./workers
COPY dash_app ./dash_app
COPY store ./store
COPY cli ./cli
COPY harness ./harness
COPY bench ./bench
COPY api ./api
RUN pip install --no-deps . && rm -rf build ./*.egg-info

# Not root; /data is created here so that a fresh named volume takes its owner.
RUN useradd --create-home --uid 10001 ecomrisk && mkdir /data && chown ecomrisk:ecomrisk /data
USER ecomrisk
ENV ECOMRISK_DATA_DIR=/data
EXPOSE 8050 5555 8000

CMD ["ecomrisk", "--help"]
