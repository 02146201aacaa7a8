// Release 1: start the rename, gate on the backfill (no transaction).
exports.up = (pgm) => {
  pgm.noTransaction();
  pgm.sql("SELECT zdd.begin_rename('customer_npm', 'lastname', 'surname', label => 'customer-surname-npm')");
  pgm.sql("CALL zdd.wait(zdd.find('customer-surname-npm'), '30 min')");
};
exports.down = (pgm) => {
  pgm.noTransaction();
  pgm.sql("SELECT zdd.abort('customer-surname-npm')");
};
