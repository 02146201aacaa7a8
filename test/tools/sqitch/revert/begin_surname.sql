SELECT zdd.abort('customer-surname-sqitch');
