# hubsoak's image: built with the Rust toolchain, run from a small distroless base as a
# non-root user. rustls needs no OpenSSL; the binary carries its CA roots.
#   docker build -t hubsoak:0.1.0 .
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src src
# config/hubsoak.toml is compiled in as the built-in defaults, config/notebooks/ as the
# demo's notebooks.
COPY config config
RUN cargo build --release --locked && strip target/release/hubsoak

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/hubsoak /usr/local/bin/hubsoak
USER 65532:65532
EXPOSE 9095
ENTRYPOINT ["/usr/local/bin/hubsoak"]
CMD ["soak", "--config", "/etc/hubsoak/hubsoak.toml"]
