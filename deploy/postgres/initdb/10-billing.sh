#!/usr/bin/env bash
# Creates the `billing` database and, per service, its schema, owner role and runtime role: the same
# statements as shared/db/provision.py, with passwords from the environment instead of the local stack's
# derived ones.
#
#   <svc>_owner  LOGIN; owns schema <svc> and its tables; migrations run as it
#   <svc>_app    LOGIN, NOSUPERUSER, NOBYPASSRLS; owns nothing; what the running service logs in as
#
# Passwords: <SVC>_OWNER_PASSWORD and <SVC>_APP_PASSWORD (e.g. TAX_CURRENCY_APP_PASSWORD), or a file named
# by <VAR>_FILE (Docker / Kubernetes secrets). They end up in postgresql:// URLs: keep them URL-safe
# (e.g. `openssl rand -hex 24`).
#
# The official postgres image runs this once, on first initialisation of an empty data directory
# (mounted into /docker-entrypoint-initdb.d). It is idempotent, so it can also be run against an existing
# server as a superuser with psql's usual PGHOST / PGPORT / PGUSER / PGPASSWORD (see deploy/README.md).
#
# The services provisioned here must be those of shared/services.py (tests/contract/test_deploy_files.py
# checks it).

provision_billing() (
    set -euo pipefail

    local database="${BILLING_DATABASE:-billing}"
    local admin_user="${POSTGRES_USER:-${PGUSER:-postgres}}"
    local maintenance_db="${POSTGRES_DB:-${PGDATABASE:-postgres}}"
    local services=(catalog metering rating tax_currency invoicing approvals notification)

    secret() {
        # secret VAR: the value of $VAR, or the contents of the file named by $VAR_FILE.
        local var="$1" file_var="${1}_FILE"
        if [[ -n "${!file_var:-}" ]]; then
            cat -- "${!file_var}"
        elif [[ -n "${!var:-}" ]]; then
            printf '%s' "${!var}"
        else
            echo "provision: $var (or ${file_var}) is not set" >&2
            return 1
        fi
    }

    literal() {
        # A single-quoted SQL literal.
        local value="${1//\'/\'\'}"
        printf "'%s'" "$value"
    }

    role_sql() {
        # role_sql ROLE PASSWORD: create the role if missing, then (re)set its attributes and password.
        local role="$1" password="$2"
        cat <<SQL
DO \$do\$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = '${role}') THEN
        CREATE ROLE ${role};
    END IF;
END
\$do\$;
ALTER ROLE ${role} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEROLE NOCREATEDB PASSWORD $(literal "$password");
SQL
    }

    psql_as_admin() {
        psql -v ON_ERROR_STOP=1 --no-psqlrc --no-password --quiet --username "$admin_user" --dbname "$1"
    }

    # Every password first: a missing one stops the script before anything is created.
    local -A passwords=()
    local svc upper
    for svc in "${services[@]}"; do
        upper="${svc^^}"
        passwords["${svc}_owner"]="$(secret "${upper}_OWNER_PASSWORD")"
        passwords["${svc}_app"]="$(secret "${upper}_APP_PASSWORD")"
    done

    psql_as_admin "$maintenance_db" <<SQL
SELECT 'CREATE DATABASE ${database}'
WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_database WHERE datname = '${database}')\gexec
SQL

    {
        echo "BEGIN;"
        echo "-- Nobody but owners creates objects in public."
        echo "REVOKE CREATE ON SCHEMA public FROM PUBLIC;"
        for svc in "${services[@]}"; do
            echo "-- ${svc}"
            role_sql "${svc}_owner" "${passwords[${svc}_owner]}"
            role_sql "${svc}_app" "${passwords[${svc}_app]}"
            cat <<SQL
CREATE SCHEMA IF NOT EXISTS ${svc} AUTHORIZATION ${svc}_owner;
REVOKE ALL ON SCHEMA ${svc} FROM PUBLIC;
GRANT USAGE ON SCHEMA ${svc} TO ${svc}_app;
ALTER ROLE ${svc}_app SET search_path = ${svc};
ALTER ROLE ${svc}_owner SET search_path = ${svc};
SQL
        done
        echo "COMMIT;"
    } | psql_as_admin "$database"

    echo "provision: database ${database} has the schemas and roles of ${#services[@]} services"
)

provision_billing
