# trustgate's container image: both binaries, static (CGO_ENABLED=0,
# -trimpath), the CA bundle, nothing else; a numeric non-root user.
# Build it with scripts/image, which builds the binaries on the host and
# puts them under .build/image/ before running `docker build .` (nothing is
# pulled: no registry is needed, not even for a Go image).
FROM scratch
# scripts/image removes the earlier builds this label marks once a new one
# took their tag (dangling images).
LABEL io.trustgate.built-by=scripts/image
COPY .build/image/rootfs/ /
# The AMD certificate disk cache (cert_cache_dir's default under
# XDG_CACHE_HOME): a volume, so that the root filesystem can be read-only.
COPY --chown=65532:65532 .build/image/cache/ /var/cache/trustgate/
ENV XDG_CACHE_HOME=/var/cache
VOLUME ["/var/cache/trustgate"]
# state_dir's default under XDG_STATE_HOME: what a replica must not forget
# across its restarts (docs/gatekeeper.md); a volume too.
COPY --chown=65532:65532 .build/image/state/ /var/lib/trustgate/
ENV XDG_STATE_HOME=/var/lib
VOLUME ["/var/lib/trustgate"]
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/trustgate"]
CMD ["serve", "--listen", "0.0.0.0:8080"]
