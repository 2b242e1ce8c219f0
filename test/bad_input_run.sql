\set ECHO none
-- Runs the bad inputs queued in bad_input, each in a transaction of its own (see
-- test/bad_input.sql), as the current role; prints one line per input: label | outcome.
\set QUIET on
\pset tuples_only on
\pset format unaligned
\pset fieldsep ' | '
SELECT 'BEGIN', format('CALL pg_temp.bad_input_attempt(%s)', n), 'COMMIT',
       format('SELECT * FROM pg_temp.bad_input_verdict(%s)', n)
  FROM pg_temp.bad_input WHERE before IS NULL AND via = 'select' ORDER BY n \gexec
\pset fieldsep '|'
\pset format aligned
\pset tuples_only off
\set QUIET off
\set ECHO all
