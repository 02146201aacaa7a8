-- Release 2, post-deploy: contract (refused while the old app still writes).
SELECT zdd.complete('customer-surname-sqitch');
