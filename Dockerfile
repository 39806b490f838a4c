# regauth server image: `docker compose up` builds it. The binary is the release one of
# scripts/release.sh (statically linked); the image is Debian's minimal base with CA
# certificates. The build context has no .git: name the commit for `regauth --version` with
#   docker build --build-arg GIT_COMMIT=$(git rev-parse --short=12 HEAD) .
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
ARG GIT_COMMIT=unknown
RUN GIT_COMMIT="$GIT_COMMIT" bash scripts/release.sh --binary

# bookworm-slim, not scratch: the static glibc binary loads glibc's NSS modules of this very
# glibc (2.36) to resolve host names such as compose's `postgres`.
FROM debian:bookworm-slim
# CA certificates: SMTP over TLS (expiry notices) verifies its server against them.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
# The volumes' mount points exist in the image, owned by regauth: a new named volume takes
# the ownership of the directory it is mounted over, so regauth can write its first signing
# key and its CI secret key. (A directory the image lacks would be created root-owned.)
RUN useradd --system --home /var/lib/regauth --create-home regauth \
    && mkdir -p /var/lib/regauth/keys /var/lib/regauth/ci \
    && chown -R regauth:regauth /var/lib/regauth \
    && chmod 0700 /var/lib/regauth/ci
COPY --from=build /src/dist/regauth /usr/local/bin/regauth
USER regauth
WORKDIR /var/lib/regauth
ENV REGAUTH_LISTEN=0.0.0.0:5001 \
    REGAUTH_KEYS_DIR=/var/lib/regauth/keys \
    REGAUTH_CI_SECRET_KEY_FILE=/var/lib/regauth/ci/ci-secret.aes256
VOLUME ["/var/lib/regauth/keys", "/var/lib/regauth/ci"]
EXPOSE 5001
ENTRYPOINT ["regauth"]
CMD ["serve"]
