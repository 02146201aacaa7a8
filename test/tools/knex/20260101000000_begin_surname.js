// Release 1 (db 2.0.1): start renaming customer_knex.lastname to surname
// and gate the deploy on the backfill. Non-transactional: CALL zdd.wait
// commits while it waits. begin_rename is safe to run twice (it returns
// the open transition), and the label finds it in later releases.
exports.config = { transaction: false };
exports.up = async (knex) => {
  await knex.raw("SELECT zdd.begin_rename('customer_knex', 'lastname', 'surname', label => 'customer-surname-knex')");
  await knex.raw("CALL zdd.wait(zdd.find('customer-surname-knex'), '30 min')");
};
exports.down = async (knex) => {
  await knex.raw("SELECT zdd.abort('customer-surname-knex')");
};
