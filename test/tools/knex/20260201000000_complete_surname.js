// Release 2 (db 2.0.3), post-deploy: contract. zdd refuses while the old
// column was written within zdd.complete_quiet_period (an old app version
// still runs), so this migration cannot drop lastname under a live app.
exports.config = { transaction: false };
exports.up = async (knex) => {
  await knex.raw("SELECT zdd.complete('customer-surname-knex')");
};
exports.down = async () => {
  throw new Error('irreversible: lastname is gone (rename back with a new transition)');
};
