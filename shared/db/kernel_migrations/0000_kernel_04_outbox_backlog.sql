-- depends: 0000_kernel_02_inbox_outbox

-- How many committed outbox rows the relay has not published yet, across tenants: GET /health/outbox
-- answers it, and the test clock waits for every service's count to be zero (docs/architecture.md §7).
-- The app role sees only its tenant's rows, so the count runs as the owner, like outbox_pending().
CREATE FUNCTION outbox_backlog()
    RETURNS bigint
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path FROM CURRENT
    AS $$ SELECT count(*) FROM outbox WHERE published_at IS NULL $$;
