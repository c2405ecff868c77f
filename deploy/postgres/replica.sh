#!/bin/sh
# The streaming replica: on first start, copy the primary with pg_basebackup (-R writes the standby
# settings), then run as a hot standby. Reads only; the web replicas skip it when it lags or is down.
set -e
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  export PGPASSWORD="$REPLICATION_PASSWORD"
  until pg_basebackup -h "$PRIMARY_HOST" -U replicator -D "$PGDATA" -R -X stream -c fast; do
    echo "waiting for the primary at $PRIMARY_HOST..."; rm -rf "$PGDATA"; sleep 2
  done
  chmod 700 "$PGDATA"
fi
exec postgres -D "$PGDATA" -c hot_standby=on
