# regauth server image: `docker compose up` builds it.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin regauth

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
COPY --from=build /src/target/release/regauth /usr/local/bin/regauth
USER regauth
WORKDIR /var/lib/regauth
ENV REGAUTH_LISTEN=0.0.0.0:5001 \
    REGAUTH_KEYS_DIR=/var/lib/regauth/keys \
    REGAUTH_CI_SECRET_KEY_FILE=/var/lib/regauth/ci/ci-secret.aes256
VOLUME ["/var/lib/regauth/keys", "/var/lib/regauth/ci"]
EXPOSE 5001
ENTRYPOINT ["regauth"]
CMD ["serve"]
