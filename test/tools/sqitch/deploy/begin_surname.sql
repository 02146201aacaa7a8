-- Release 1: no BEGIN/COMMIT here: CALL zdd.wait must run outside a
-- transaction block (sqitch runs the script with psql, autocommit).
SELECT zdd.begin_rename('customer_sqitch', 'lastname', 'surname', label => 'customer-surname-sqitch');
CALL zdd.wait(zdd.find('customer-surname-sqitch'), '30 min');
