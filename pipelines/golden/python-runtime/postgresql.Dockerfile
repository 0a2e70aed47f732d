# Golden PostgreSQL, distroless-style: the suite's PostgreSQL server and
# client (the `postgresql` metapackage's major version), Python for the entry
# point and tini, assembled file by file from the installed .deb packages onto
# an empty image, as the Python runtime is (assemble.py). No shell, no apt or
# dpkg, no Perl; dpkg status data is kept so scanners see every OS package.
# It runs as 65532 and reads the upstream image's settings (POSTGRES_USER,
# POSTGRES_DB, POSTGRES_PASSWORD and their _FILE forms, PGDATA).
ARG BASE_IMAGE
FROM ${BASE_IMAGE} AS assemble

ENV DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8

RUN --mount=type=cache,target=/var/cache/apt,sharing=locked \
    --mount=type=cache,target=/var/lib/apt/lists,sharing=locked \
    rm -f /etc/apt/apt.conf.d/docker-clean \
 && echo 'Binary::apt::APT::Keep-Downloaded-Packages "true";' > /etc/apt/apt.conf.d/keep-cache \
 && mkdir -p /etc/postgresql-common/createcluster.d \
 && echo 'create_main_cluster = false' > /etc/postgresql-common/createcluster.d/no-main-cluster.conf \
 && apt-get update \
 && apt-get install -y --no-install-recommends postgresql python3 ca-certificates tzdata tini netbase \
 && rm -f /etc/apt/apt.conf.d/keep-cache

COPY assemble.py drop.txt postgresql-exclude.txt postgresql-drop.txt postgresql-precompile.txt /assemble/
# The suite's major version is the metapackage's dependency (15 on bookworm, 17 on trixie, 18 on forky);
# /usr/lib/postgresql/current names it, so paths below hold for every suite.
RUN major="$(dpkg-query -W -f='${Depends}' postgresql | grep -o 'postgresql-[0-9][0-9]*' | head -n 1)" \
 && test -n "$major" \
 && printf '%s\n' python3 "$major" ca-certificates tzdata tini base-files netbase > /assemble/packages.txt \
 && cat /assemble/drop.txt /assemble/postgresql-drop.txt > /assemble/all-drop.txt \
 && python3 /assemble/assemble.py \
      --roots /assemble/packages.txt --exclude /assemble/postgresql-exclude.txt \
      --drop /assemble/all-drop.txt --precompile /assemble/postgresql-precompile.txt --out /rootfs \
 && ln -s "${major#postgresql-}" /rootfs/usr/lib/postgresql/current \
 && install -d -o 65532 -g 65532 -m 0700 /rootfs/var/lib/postgresql/data /tmp/template \
 && install -d -o 65532 -g 65532 -m 0775 /rootfs/var/run/postgresql \
 # The cluster is initialised here, where there is a shell: initdb runs its helpers through /bin/sh,
 # which the image does not have. Packed (its WAL segment is mostly zeros: 40 MB become about 4), the
 # entry point unpacks it into the empty volume on first start.
 && useradd --uid 65532 --user-group --no-create-home --shell /usr/sbin/nologin nonroot \
 && runuser -u nonroot -- "/usr/lib/postgresql/${major#postgresql-}/bin/initdb" \
      -D /tmp/template --username=postgres --encoding=UTF8 --locale=C \
      --auth-local=trust --auth-host=scram-sha-256 >/dev/null \
 && echo "host all all all scram-sha-256" >> /tmp/template/pg_hba.conf \
 && tar -C /tmp/template --sort=name --numeric-owner -czf /rootfs/var/lib/postgresql/template.tar.gz . \
 && chmod 0644 /rootfs/var/lib/postgresql/template.tar.gz

COPY --chown=0:0 postgresql-entrypoint.py /rootfs/usr/lib/pipelines/postgresql-entrypoint.py

FROM scratch
COPY --from=assemble /rootfs/ /
ENV LANG=C.UTF-8 \
    PATH=/usr/lib/postgresql/current/bin:/usr/bin \
    PGDATA=/var/lib/postgresql/data \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 65532:65532
VOLUME ["/var/lib/postgresql/data"]
EXPOSE 5432
# postgres takes SIGINT as a fast shutdown: open transactions roll back, nothing waits for clients.
STOPSIGNAL SIGINT
HEALTHCHECK --interval=3s --timeout=3s --start-period=30s --retries=5 \
  CMD ["/usr/lib/postgresql/current/bin/pg_isready", "-h", "127.0.0.1", "-p", "5432", "-q"]
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/bin/python3", "/usr/lib/pipelines/postgresql-entrypoint.py"]
