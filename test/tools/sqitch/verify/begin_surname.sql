SELECT 1 / (phase = 'backfilled')::int FROM zdd.transition WHERE id = zdd.find('customer-surname-sqitch');
