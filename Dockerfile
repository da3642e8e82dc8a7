# llm-proxy container image (docs/deploy/deployment.md).
#
# Online:      docker build -t llm-proxy .
# Air-gapped:  a wheelhouse in the build context, built with the base image's Python, and no network at all:
#              docker build --network none --build-arg BASE_IMAGE=local/base --build-arg WHEELHOUSE=wheels -t llm-proxy .
#
# Two stages: `build` turns the source into wheels and installs them into a virtualenv; the runtime stage copies
# only that virtualenv onto the same base, so no compiler, pip cache or wheel file reaches the final image.
# Both stages use BASE_IMAGE because the virtualenv points at the base's own interpreter.
#checkov:skip=CKV_DOCKER_7:BASE_IMAGE is a build argument; its default carries a version tag (python:3.12-slim)

ARG BASE_IMAGE=python:3.12-slim

FROM ${BASE_IMAGE} AS build
# WHEELHOUSE empty: dependencies come from the package index (PyPI, or the mirror PIP_INDEX_URL names; an empty
# PIP_INDEX_URL must not reach pip). A directory of the build context: dependencies and build requirements come
# from there only, and pip never touches the network.
ARG WHEELHOUSE=
ARG PIP_INDEX_URL=
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_ROOT_USER_ACTION=ignore
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
# The placeholder keeps this COPY valid when no wheelhouse is given (a COPY needs at least one source).
COPY ${WHEELHOUSE:-pyproject.toml} /wheelhouse/
RUN set -eu; \
    if [ -n "$WHEELHOUSE" ]; then export PIP_NO_INDEX=1 PIP_FIND_LINKS=/wheelhouse; \
    elif [ -z "$PIP_INDEX_URL" ]; then unset PIP_INDEX_URL; fi; \
    python3 -m venv /opt/pip; \
    /opt/pip/bin/pip wheel --wheel-dir /wheels /src; \
    python3 -m venv --without-pip /opt/llm-proxy; \
    /opt/pip/bin/pip --python /opt/llm-proxy/bin/python install --no-index --find-links /wheels llm-proxy

FROM ${BASE_IMAGE}
# A fixed numeric user: Kubernetes' runAsNonRoot can only verify a numeric USER.
RUN useradd --system --uid 10001 --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \
        llm-proxy
COPY --from=build /opt/llm-proxy /opt/llm-proxy
COPY config/demo.yaml /etc/llm-proxy/config.yaml
ENV PATH=/opt/llm-proxy/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
USER 10001:10001
EXPOSE 8080
# The image's own Python as the probe client: the base need not ship curl or wget.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["/opt/llm-proxy/bin/python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2)"]
# Exec form: the proxy is PID 1 and receives SIGTERM itself (it installs its own handler, drains, exits 0).
# The listen address is given here, not taken from the config, so EXPOSE, HEALTHCHECK and the probes agree
# whatever config is mounted at /etc/llm-proxy/config.yaml.
ENTRYPOINT ["/opt/llm-proxy/bin/llm-proxy"]
CMD ["--config", "/etc/llm-proxy/config.yaml", "--host", "0.0.0.0", "--port", "8080"]
