-- depends: 0000_kernel_05_outbox_set_aside

-- Where the outbox stands, for the live close barrier (shared/clock/barrier.py): `allocated` is the last seq
-- handed out (every row committed so far has a seq at or below it), `relayed_through` the seq up to which every
-- row has been relayed (the lowest unrelayed seq minus one; rows set aside do not hold it back). Once
-- relayed_through reaches a moment's allocated, every row committed before that moment is on its topic.
CREATE FUNCTION outbox_marks(OUT allocated bigint, OUT relayed_through bigint)
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path FROM CURRENT
    AS $$
    BEGIN
        EXECUTE format('SELECT last_value FROM %s', pg_get_serial_sequence('outbox', 'seq')) INTO allocated;
        SELECT min(o.seq) - 1 INTO relayed_through FROM outbox o
         WHERE o.published_at IS NULL AND o.set_aside_at IS NULL;
        relayed_through := coalesce(relayed_through, allocated);
    END $$;
