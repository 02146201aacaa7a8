DO $$ BEGIN RAISE EXCEPTION 'irreversible: lastname is gone'; END $$;
