-- depends: 0001_approvals

-- The person an item is for (a time entry's technician, `requested_for`), resolved to a catalog user like the
-- requester: nobody decides a request for their own item either (issue 17: a billing manager approving their own
-- 16 hours).
ALTER TABLE requests ADD COLUMN subject_user_id uuid;
