# Redis for the local setup: the host's redis-server and its libraries
# (copied into the build context by up.sh), FROM scratch. AOF with
# appendfsync always; data in the /data volume; a numeric non-root user.
FROM scratch
COPY rootfs/ /
COPY --chown=65534:65534 data/ /data/
VOLUME ["/data"]
USER 65534:65534
EXPOSE 6379
ENTRYPOINT ["/usr/bin/redis-server"]
CMD ["--bind", "0.0.0.0", "--port", "6379", "--protected-mode", "no", "--dir", "/data", "--appendonly", "yes", "--appendfsync", "always", "--save", ""]
