-- What PostgreSQL changed between majors underneath and pg_foreman keeps the
-- same on top (see src/pg/compat.hpp). Runs alike on 15, 16, 17 and 18.

-- The key a batch finds its rows by is a primary key that is valid and
-- immediate (RelationGetPrimaryKeyIndex as of 15): a DEFERRABLE primary key
-- is no key, since rows it finds may not be unique until commit.
CREATE TABLE deferred_only (
    id         bigint PRIMARY KEY DEFERRABLE INITIALLY DEFERRED,
    status     text NOT NULL,
    created_at timestamptz NOT NULL
);
INSERT INTO deferred_only VALUES (1, 'active', now() - interval '2 hours');
SELECT foreman.expire_stale('deferred_only', '1 hour');
\echo :LAST_ERROR_SQLSTATE

-- With an immediate unique index beside it, that index is the key.
CREATE TABLE deferred_pk (
    id         bigint PRIMARY KEY DEFERRABLE,
    code       text NOT NULL UNIQUE,
    status     text NOT NULL,
    created_at timestamptz NOT NULL
);
INSERT INTO deferred_pk VALUES (1, 'a', 'active', now() - interval '2 hours'),
                               (2, 'b', 'active', now());
SELECT foreman.expire_stale('deferred_pk', '1 hour') AS expired;
SELECT id, status FROM deferred_pk ORDER BY id;

-- A partitioned table whose primary key is not yet valid (ONLY the parent,
-- as pg_dump restores it before the partitions' indexes are attached) has no
-- key until it is; attached, it is the key.
CREATE TABLE part_pending (
    id         bigint NOT NULL,
    status     text NOT NULL,
    created_at timestamptz NOT NULL
) PARTITION BY RANGE (id);
CREATE TABLE part_pending_1 PARTITION OF part_pending FOR VALUES FROM (0) TO (100);
ALTER TABLE ONLY part_pending ADD CONSTRAINT part_pending_pkey PRIMARY KEY (id);
SELECT indisvalid FROM pg_index WHERE indexrelid = 'part_pending_pkey'::regclass;
INSERT INTO part_pending VALUES (1, 'active', now() - interval '2 hours');
SELECT foreman.expire_stale('part_pending', '1 hour');
\echo :LAST_ERROR_SQLSTATE
ALTER TABLE part_pending_1 ADD CONSTRAINT part_pending_1_pkey PRIMARY KEY (id);
ALTER INDEX part_pending_pkey ATTACH PARTITION part_pending_1_pkey;
SELECT indisvalid FROM pg_index WHERE indexrelid = 'part_pending_pkey'::regclass;
SELECT foreman.expire_stale('part_pending', '1 hour') AS expired;
SELECT id, status FROM part_pending;

DROP TABLE deferred_only, deferred_pk, part_pending;
