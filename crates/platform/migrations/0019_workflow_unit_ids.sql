-- Units named in a process (by name, region code or id) resolved to unit ids once, at upload:
-- a JSON object from what the file says to the unit id. Queues match units by id only, so a new
-- unit that happens to share a name never receives another unit's work. NULL for versions stored
-- before this column existed; those are resolved when loaded, and a name that is not unique then
-- matches nobody.
ALTER TABLE wf_definitions ADD COLUMN unit_ids TEXT;
