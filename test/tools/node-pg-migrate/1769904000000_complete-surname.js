// Release 2, post-deploy: contract (refused while the old app still writes).
exports.up = (pgm) => {
  pgm.noTransaction();
  pgm.sql("SELECT zdd.complete('customer-surname-npm')");
};
exports.down = false;
