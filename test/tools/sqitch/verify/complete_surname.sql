SELECT surname FROM customer_sqitch WHERE false;
