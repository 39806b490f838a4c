# regauth server image: `docker compose up` builds it.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin regauth

FROM debian:bookworm-slim
RUN useradd --system --home /var/lib/regauth --create-home regauth
COPY --from=build /src/target/release/regauth /usr/local/bin/regauth
USER regauth
WORKDIR /var/lib/regauth
ENV REGAUTH_LISTEN=0.0.0.0:5001 \
    REGAUTH_KEYS_DIR=/var/lib/regauth/keys
EXPOSE 5001
ENTRYPOINT ["regauth"]
CMD ["serve"]
