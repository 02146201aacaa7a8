-- Smoke test: the seed scenario's expand step, both app versions, abort.
CREATE EXTENSION zdd;
CREATE TABLE customer (id int PRIMARY KEY, lastname text NOT NULL);
INSERT INTO customer VALUES (1, 'Smith'), (2, 'Jones');
SELECT zdd.begin_rename('customer', 'lastname', 'surname', start_backfill => false) AS id \gset
SELECT phase FROM zdd.transition WHERE id = :id;
INSERT INTO customer (id, lastname) VALUES (3, 'Old');
INSERT INTO customer (id, surname) VALUES (4, 'New');
UPDATE customer SET lastname = 'Smyth' WHERE id = 1;
UPDATE customer SET surname = 'Jonas' WHERE id = 2;
SELECT * FROM customer ORDER BY id;
SELECT zdd.abort(:id);
SELECT * FROM customer ORDER BY id;
SELECT phase FROM zdd.transition WHERE id = :id;
DROP TABLE customer;
