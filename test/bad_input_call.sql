\set ECHO none
-- Runs one call at top level, outside any transaction block, so that what it commits before
-- it fails stays committed (see test/bad_input.sql); prints label | outcome. Set :bi_label
-- and :bi_call first (and :bi_broken_on_purpose to true in sql/bad_input_harness.sql).
\set QUIET on
\if :{?bi_broken_on_purpose}
\else
\set bi_broken_on_purpose false
\endif
SELECT pg_temp.bad_input_call(:'bi_label', :'bi_call', :'bi_broken_on_purpose') AS bi_n \gset
\set VERBOSITY terse
:bi_call;
\set VERBOSITY default
\pset tuples_only on
\pset format unaligned
\pset fieldsep ' | '
SELECT * FROM pg_temp.bad_input_verdict(:bi_n, :'SQLSTATE', :'LAST_ERROR_MESSAGE');
\pset fieldsep '|'
\pset format aligned
\pset tuples_only off
\unset bi_broken_on_purpose
\set QUIET off
\set ECHO all
