-- A shelve's expiry is data on its event (alert_events.shelved_until), not text baked into the reason, so whoever
-- reads the history (console, CLI, API) shows it in their display time zone. Events written before carried it as
-- "shelve: shelved until <UTC ISO time>: <reason>": the time moves to the column, the reason keeps the officer's words.
-- depends: 0016_notify

ALTER TABLE alert_events ADD COLUMN shelved_until timestamptz;

UPDATE alert_events
SET shelved_until = substring(reason FROM '^shelve: shelved until (\S+): ')::timestamptz,
    reason = 'shelve: ' || regexp_replace(reason, '^shelve: shelved until \S+: ', '')
WHERE reason ~ '^shelve: shelved until \S+: ';
