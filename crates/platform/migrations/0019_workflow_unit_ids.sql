-- Units named in a process (by name, region code or id) resolved to unit ids once, at upload:
-- a JSON object from what the file says to the unit id. Queues match units by id only, so a new
-- unit that happens to share a name never receives another unit's work. NULL for versions stored
-- before this column existed; those are resolved when loaded, and a name that is not unique then
-- matches nobody.
ALTER TABLE wf_definitions ADD COLUMN unit_ids TEXT;

-- Open queue entries that named a unit (by name) now name it by id, where exactly one unit has
-- that name; the engine state of their instances is brought along when next loaded.
UPDATE wf_task_candidates SET value = (SELECT CAST(u.id AS TEXT) FROM units u WHERE u.name = wf_task_candidates.value)
WHERE kind = 'unit'
  AND (SELECT COUNT(*) FROM units u WHERE u.name = wf_task_candidates.value) = 1
  AND NOT EXISTS (
    SELECT 1 FROM wf_task_candidates c2 JOIN units u2 ON CAST(u2.id AS TEXT) = c2.value
    WHERE c2.task_id = wf_task_candidates.task_id AND c2.kind = 'unit' AND u2.name = wf_task_candidates.value
  );
