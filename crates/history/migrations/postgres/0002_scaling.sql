-- The workers' scaling during a run (autoscale decisions), as JSON: a
-- handful of events a run, read with the run, never queried by field.
-- Earlier runs had none.
ALTER TABLE runs ADD COLUMN scaling TEXT NOT NULL DEFAULT '[]';
