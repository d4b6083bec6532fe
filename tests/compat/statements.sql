-- What runs once Debezium and timevault capture both stream (tests/compat/run):
-- every statement is captured by both and compared event by event. Statements
-- outside BEGIN/COMMIT are transactions of their own. The last statement
-- inserts the marker row both sides are waited for.
\set ON_ERROR_STOP on

-- 1. Inserts: every type with ordinary, extreme and special values; a row of NULLs.
INSERT INTO public.all_types VALUES
    (10, 'tenant-a', 7, 70, 700, 1234.5, 12345678901234567890.123456789, 3.25, -1.0e-300, true, 'x', 'unicode: é€😀',
     E'quotes " and \\ backslash, tab\t newline\n end', '\xdeadbeef'::bytea, '2000-01-01', '23:59:59.999999',
     '2262-04-11 23:47:16.854775', '2038-01-19 03:14:07.5+00', '3 days 4 hours', 'f47ac10b-58cc-4372-a567-0e02b2c3d479',
     '{"nested": {"k": [true, null, 1.5]}, "s": "v"}', '{"nested": {"k": [true, null, 1.5]}, "s": "v"}',
     '{-1,0,NULL,2147483647}', '{"a",NULL,"","comma,inside"}', 'ok'),
    (11, 'tenant-b', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
     NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
    (12, 'tenant-c', 0, 0, 0, 0, 0, 'NaN', 'Infinity', false, '     ', 'twenty chars exactly', repeat('r', 100),
     '\x00'::bytea, '0001-01-01', '00:00:00.000001', '1970-01-01 00:00:00', '1970-01-01 00:00:00+00', '0',
     'ffffffff-ffff-ffff-ffff-ffffffffffff', 'null', '"just a string"', '{{1,2},{3,4}}', '{}', 'happy');

-- 2. Updates on a REPLICA IDENTITY DEFAULT table (old row: none).
UPDATE public.all_types SET c_integer = c_integer + 1, c_text = 'updated', c_timestamptz = '2024-06-01 00:00:00+05:30'
 WHERE id = 10;
UPDATE public.all_types SET c_numeric = 0.01, c_numeric_any = 'NaN', c_mood = NULL, c_jsonb = '{"x": 1}' WHERE id = 1;
UPDATE public.all_types SET c_smallint = 5 WHERE id = 2;

-- 3. Updates on a REPLICA IDENTITY FULL table (old row: all columns).
UPDATE billing.invoices SET status = 'happy', amount = amount * 2 WHERE tenant_id = 'tenant-b' AND invoice_id = 2001;

-- 4. Deletes (a tombstone follows each delete event).
DELETE FROM public.all_types WHERE id = 11;
DELETE FROM billing.invoices WHERE tenant_id = 'tenant-b' AND invoice_id = 2001;

-- 5. One transaction over three tables, with a savepoint rolled back.
BEGIN;
INSERT INTO billing.invoices VALUES ('tenant-a', 1002, 10.00, 'sad', '2024-03-01 10:00:00+01', 'new invoice');
INSERT INTO public.line_items (tenant_id, invoice_id, sku, qty) VALUES
    ('tenant-a', 1002, 'SKU-2', 1), ('tenant-a', 1002, 'SKU-3', 5);
SAVEPOINT sp;
INSERT INTO public.line_items (tenant_id, invoice_id, sku, qty) VALUES ('tenant-a', 1002, 'ROLLED-BACK', 99);
ROLLBACK TO SAVEPOINT sp;
UPDATE public.line_items SET qty = qty + 1 WHERE sku = 'SKU-1';
UPDATE public.documents SET title = 'touched in the multi-table transaction' WHERE tenant_id = 'tenant-b';
COMMIT;

-- 6. A transaction rolled back: nothing may appear.
BEGIN;
INSERT INTO public.all_types (id, tenant_id) VALUES (99, 'tenant-z');
ROLLBACK;

-- 7. Unchanged TOAST: updates that leave the big text column alone
-- (__debezium_unavailable_value in the new row), on DEFAULT and FULL identity.
UPDATE public.documents SET title = 'title changed, body untouched' WHERE tenant_id = 'tenant-a' AND doc_id = 1;
UPDATE billing.invoices SET amount = 300.00 WHERE tenant_id = 'tenant-a' AND invoice_id = 1001;
-- A new big row, then an update of it that leaves the body alone.
INSERT INTO public.documents VALUES
    ('tenant-c', 7, 'streamed big doc', (SELECT string_agg(md5('doc-c7-' || i), ' ') FROM generate_series(1, 300) i));
UPDATE public.documents SET title = 'streamed big doc, retitled' WHERE tenant_id = 'tenant-c' AND doc_id = 7;
-- An update that does change the big column.
UPDATE public.documents SET body = body || ' appended' WHERE tenant_id = 'tenant-c' AND doc_id = 7;

-- 8. Primary-key updates: delete + tombstone + create on the key topic.
UPDATE public.all_types SET id = 100 WHERE id = 3;
UPDATE billing.invoices SET invoice_id = 1099 WHERE tenant_id = 'tenant-a' AND invoice_id = 1002;
UPDATE public.documents SET doc_id = 2 WHERE tenant_id = 'tenant-a' AND doc_id = 1;

-- 9. Truncate.
TRUNCATE public.line_items;

-- 10. Several rows in one statement, then deleted in one statement.
INSERT INTO public.line_items (tenant_id, invoice_id, sku, qty)
SELECT 'tenant-b', 2001, 'BULK-' || i, i FROM generate_series(1, 5) i;
DELETE FROM public.line_items WHERE sku LIKE 'BULK-%' AND qty > 3;

-- 11. A logical decoding message outside any transaction ('m' on <prefix>.message).
-- (Not inside a transaction: Debezium 3.6.1 then names the message's "data
-- collection" in the END record by a Java object's identity hash, which no two
-- runs share.)
SELECT pg_logical_emit_message(false, 'timevault-compat', 'a non-transactional message');

-- 12. Timestamps past the last int64 microsecond, infinities, BC (Debezium's
-- MicroTimestamp saturates and wraps there), and the value equal to the
-- stand-in Debezium uses for infinity.
INSERT INTO public.time_extremes VALUES
    (10, 'tenant-b', '294247-01-10 04:00:54.775807', '294247-01-10 04:00:54.775', '294247-01-10 04:00:54',
     '294247-01-10 04:00:54.775807+00', '294247-01-10 04:00:54.775+00', '294247-01-10 04:00:54+00', '294247-01-10'),
    (11, 'tenant-b', '294247-01-10 04:00:54.775808', '294247-01-10 04:00:54.776', '294247-01-10 04:00:55',
     '294247-01-10 04:00:54.775808+00', '294247-01-10 04:00:54.776+00', '294247-01-10 04:00:55+00', '294276-12-31'),
    (12, 'tenant-b', '294276-12-31 23:59:59.999999', '294276-12-31 23:59:59.999', '294276-12-31 23:59:59',
     '294276-12-31 20:59:59.999999-03', '294276-12-31 23:59:59.999+00', '294276-12-31 23:59:59+00', '5874897-12-31'),
    (13, 'tenant-b', 'infinity', 'infinity', 'infinity', 'infinity', 'infinity', 'infinity', 'infinity'),
    (14, 'tenant-b', '-infinity', '-infinity', '-infinity', '-infinity', '-infinity', '-infinity', '-infinity'),
    (15, 'tenant-b', '0001-01-01 00:00:00 BC', '0044-03-15 12:00:00.123 BC', '0001-12-31 23:59:59 BC',
     '0001-01-01 00:00:00+00 BC', '0044-03-15 12:00:00.123+00 BC', '0001-12-31 23:59:59+00 BC', '0001-01-01 BC'),
    (16, 'tenant-b', '294247-01-10 04:00:25.2', '294247-01-10 04:00:25.2', '294247-01-10 04:00:25',
     '294247-01-10 04:00:25.2+00', '294247-01-10 04:00:25.2+00', '294247-01-10 04:00:25+00', '294247-01-10'),
    (17, 'tenant-b', '200000-01-01 00:00:00', '100000-06-15 12:00:00.5', '200000-01-01 00:00:00',
     '100000-06-15 12:00:00.5+00', '200000-01-01 00:00:00+00', '100000-06-15 12:00:00+00', '100000-06-15');
UPDATE public.time_extremes SET t6 = '294276-01-01 00:00:00' WHERE id = 2;

-- 13. NULLs in columns with defaults (written as the defaults), the defaults'
-- values themselves, empty varbits; NULLs in before images (FULL identity).
INSERT INTO public.defaults (id, tenant_id) VALUES (10, 'tenant-b');
INSERT INTO public.defaults VALUES
    (11, 'tenant-b', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, B'', B''),
    (12, 'tenant-b', 'x', 5, '1970-01-01 00:00:00+00', '2020-01-02 03:04:05', 1.50, true, '2020-01-01',
     '00000000-0000-0000-0000-000000000001', '{"a": 1}', B'0', B'010');
UPDATE public.defaults SET note = 'set', vb = B'1' WHERE id = 11;
UPDATE public.defaults SET note = NULL, n = NULL, ts = NULL WHERE id = 12;
DELETE FROM public.defaults WHERE id = 1;

-- 14. Extension types, a generated column (not in streamed rows), a
-- sanitised topic name.
INSERT INTO public.ext_types (id, tenant_id, h, ci, lt, isb, price, qty) VALUES
    (3, 'tenant-a', 'z=>26, "with space"=>"é", n=>NULL', 'ÀbC', 'a.b_c.d', '0-393-04002-X', 1.25, 3);
UPDATE public.ext_types SET h = h || 'extra=>1'::hstore, qty = 5 WHERE id = 1;
DELETE FROM public.ext_types WHERE id = 2;
INSERT INTO "Sales-EU"."Order Lines" VALUES (2, 'tenant-b', 7);
UPDATE "Sales-EU"."Order Lines" SET "Qty" = 4 WHERE id = 1;

-- 15a. Partitioned tables: rows into each partition (the default ones and
-- sub-partitions included), updates inside a partition, updates of the
-- partition key that move rows between partitions (and sub-partitions),
-- deletes; all under the root's topic.
INSERT INTO parts.h_accounts VALUES (7, 1, 0, 'new'), (8, 1, 1.5, 'new');
UPDATE parts.h_accounts SET balance = balance + 1 WHERE tenant_id = 1;
UPDATE parts.h_accounts SET tenant_id = 9 WHERE tenant_id = 2 AND id = 1;   -- hash moves
DELETE FROM parts.h_accounts WHERE tenant_id = 3;
INSERT INTO parts.l_orders VALUES ('eu', 10, 'tenant-a', 1), ('br', 11, 'tenant-b', 2);
UPDATE parts.l_orders SET amount = amount * 10 WHERE id IN (1, 4);
UPDATE parts.l_orders SET region = 'us' WHERE region = 'eu' AND id = 1;      -- eu -> us
UPDATE parts.l_orders SET region = 'xx' WHERE region = 'ca' AND id = 3;      -- us -> default
UPDATE parts.l_orders SET region = 'eu' WHERE region = 'jp' AND id = 4;      -- default -> eu
DELETE FROM parts.l_orders WHERE region = 'br';
BEGIN;
INSERT INTO parts.r_events VALUES ('tenant-a', 7, '2024-07-01', 'a', '{"in": "2024_a"}'),
    ('tenant-b', 8, '2025-07-01', 'b', NULL), ('tenant-a', 9, '2040-01-01', 'c', '{}');
UPDATE parts.r_events SET kind = 'a' WHERE id = 2;                           -- 2024_rest -> 2024_a
UPDATE parts.r_events SET at = '2025-02-02' WHERE id = 1;                    -- 2024_a -> 2025_x
UPDATE parts.r_events SET at = '2031-01-01' WHERE id = 3;                    -- 2025_x -> default
UPDATE parts.r_events SET payload = '{"n": 2}' WHERE id = 4;
COMMIT;
DELETE FROM parts.r_events WHERE id = 6;
INSERT INTO parts.t_notes VALUES ('tenant-a', 2, 'second a note');
UPDATE parts.t_notes SET body = 'b note, edited' WHERE tenant_id = 'tenant-b';
UPDATE parts.t_notes SET tenant_id = 'tenant-b', id = 2 WHERE tenant_id = 'tenant-a' AND id = 1;  -- to another tenant's partition
UPDATE parts.p_one SET id = 50 WHERE id = 150;                               -- high -> low
INSERT INTO parts.p_empty VALUES (1, 'tenant-a');
DELETE FROM parts.p_empty;

-- 15b. Names of every kind.
INSERT INTO "CamelSchema"."CamelTable" VALUES (2, 'tenant-b', 'Two', NULL);
UPDATE "CamelSchema"."CamelTable" SET "MixedCol" = 'changed', "col with space" = 4 WHERE "Id" = 1;
UPDATE "with space"."a table" SET v = 'still spaced' WHERE id = 1;
INSERT INTO "dot.schema"."dot.table" VALUES (2, 'tenant-b', 'b.c');
DELETE FROM "dot.schema"."dot.table" WHERE id = 1;
INSERT INTO "Ünïcødé"."表格😀" VALUES (2, 'tenant-b', 'ß', 2);
UPDATE "Ünïcødé"."表格😀" SET "é" = 10 WHERE id = 1;
UPDATE s_63_bytes_schema_name_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx.t_63_bytes_table_name_yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy
    SET c_63_bytes_column_name_zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz = 64;
INSERT INTO public."éééééééééééééééééééééééééééééééx" VALUES (1, 'tenant-a');

-- 15c. Ranges, multiranges, composite types, domains, tsquery, geometric
-- types but point; update with the full old row, delete.
INSERT INTO public.more_types VALUES
    (3, 'tenant-c', 'empty', '[-9223372036854775808,9223372036854775807)', '(,)', '(,2024-01-01 00:00)',
     '[-infinity,2024-01-01 00:00+05:30]', '[2024-02-29,2024-03-01]', '{}', '{}', '{[2024-01-01,2024-01-05),[2024-02-01,)}',
     ROW(NULL, NULL, NULL), '{}', 2147483647, '{}', '', '!!x',
     '{0,1,2}', '[(1e10,-1e10),(0.5,0.25)]', '(1,1),(1,1)', '((0,0),(3,4))', '((0,0))',
     '<(0,0),0>', '{}');
UPDATE public.more_types SET rn = '[0,1)', comp.zip = 99999, bx = '(0,0),(0,0)', r_arr = r_arr || '[5,6)'::int4range
 WHERE id = 1;
UPDATE public.more_types SET dpos = 1, pg = '((0,0),(0,1),(1,1))' WHERE id = 2;
DELETE FROM public.more_types WHERE id = 3;

-- 15d. Identity and generated columns: an identity value given explicitly,
-- generated columns recomputed on update (not in streamed rows on PG15).
INSERT INTO public.identities (tenant_id, v) VALUES ('tenant-c', 21);
INSERT INTO public.identities (id, tenant_id, seq, v) OVERRIDING SYSTEM VALUE VALUES (1000, 'tenant-c', 5, 3);
UPDATE public.identities SET v = 5 WHERE tenant_id = 'tenant-a';
DELETE FROM public.identities WHERE tenant_id = 'tenant-b';

-- 15e. Types Debezium maps beyond the common set.
INSERT INTO public.mapped_types VALUES
    (3, 'tenant-c', '', '(-0,1e-300)', '{}', '{}', '{}', 'GEOMETRYCOLLECTION EMPTY', 'SRID=4326;POINT(-180 -90)',
     'SRID=4326;LINESTRING(0 0,10 10)');
UPDATE public.mapped_types SET tsv = tsv || 'dog'::tsvector, pt = '(0,0)', geom = 'POLYGON((0 0,1 0,1 1,0 0))',
    h_arr = h_arr || 'c=>3'::hstore WHERE id = 1;
UPDATE public.mapped_types SET pt = '(1e300,-1.5e-7)' WHERE id = 2;
DELETE FROM public.mapped_types WHERE id = 3;

-- 16. The end marker.
INSERT INTO public.compat_marker VALUES (1, 'tenant-a', 'statements.sql done');
