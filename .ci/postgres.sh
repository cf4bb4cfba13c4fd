#!/usr/bin/env bash
# Make sure a PostgreSQL server answers on 127.0.0.1:5432 and print a URL the tests can use.
# Starts an installed cluster, or installs Debian's server first when there is none.
set -euo pipefail
say() { printf '[postgres] %s\n' "$*" >&2; }

ready() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }

if ! command -v pg_isready >/dev/null 2>&1 || ! ready; then
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    say "no PostgreSQL server installed: installing Debian's postgresql"
    apt-get update -qq >&2
    apt-get install -y -qq postgresql >&2
  fi
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  say "starting cluster $version/main"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start >&2 || true
  for _ in $(seq 1 60); do ready && break; sleep 0.5; done
  ready || { say "PostgreSQL did not come up on 127.0.0.1:5432"; exit 1; }
fi

# A trusting local server (as on our machines) takes the postgres user as it is.
if psql "postgresql://postgres@127.0.0.1:5432/postgres" -qAtc 'select 1' >/dev/null 2>&1; then
  echo "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
  exit 0
fi
# Otherwise (a fresh Debian install asks for passwords over TCP) make a test role through the
# local socket, as the postgres OS user.
say "creating role infusion_ci for the tests"
runuser -u postgres -- psql -qAt >&2 <<'SQL'
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'infusion_ci') THEN
    CREATE ROLE infusion_ci LOGIN CREATEDB PASSWORD 'infusion_ci';
  END IF;
END $$;
SQL
runuser -u postgres -- psql -qAtc "select 1 from pg_database where datname='infusion_ci'" \
  | grep -q 1 || runuser -u postgres -- createdb -O infusion_ci infusion_ci >&2
echo "postgresql+psycopg://infusion_ci:infusion_ci@127.0.0.1:5432/infusion_ci"
